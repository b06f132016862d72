/**
 * The dev server's datastore: index scans, sequences, constraints and
 * transactions, driven directly with BSATN rows as a module's host calls do.
 */
import { concatBytes } from '@noble/hashes/utils.js';
import { expect } from 'chai';
import { AlgebraicType, BinaryWriter, Identity } from 'spacetimedb';
import { ModuleInstance } from '../../devserver/host/instance.ts';
import { Datastore, Errno, HostCallError } from '../../devserver/host/datastore.ts';
import type { TableDesc } from '../../devserver/host/moduleDef.ts';
import { BASIC_MODULE } from '../helpers/sdk.ts';

describe('dev server datastore', () => {
  let ds: Datastore;
  let types: { types: AlgebraicType[] };
  const table = (name: string) => ds.module.tables.find((t) => t.name === name) as TableDesc;
  const encode = (t: TableDesc, row: object) => {
    const w = new BinaryWriter(32);
    AlgebraicType.makeSerializer(t.rowType, types)(w, row);
    return w.getBuffer().slice();
  };
  const encodeValues = (serializerTypes: AlgebraicType[], values: unknown[]) => {
    const w = new BinaryWriter(16);
    serializerTypes.forEach((ty, i) => AlgebraicType.makeSerializer(ty, types)(w, values[i]));
    return w.getBuffer().slice();
  };
  const bound = (ty: AlgebraicType, kind: 'included' | 'excluded' | 'unbounded', value?: unknown) => {
    const w = new BinaryWriter(16);
    w.writeU8({ included: 0, excluded: 1, unbounded: 2 }[kind]);
    if (kind !== 'unbounded') AlgebraicType.makeSerializer(ty, types)(w, value);
    return w.getBuffer().slice();
  };
  const expectHostError = (fn: () => unknown, code: number) => {
    try {
      fn();
    } catch (e) {
      expect(e).to.be.instanceOf(HostCallError);
      expect((e as HostCallError).code).to.equal(code);
      return e as HostCallError;
    }
    expect.fail(`expected host error ${code}`);
  };

  before(async () => {
    const inst = await ModuleInstance.load(BASIC_MODULE, { databaseIdentity: new Identity(1n) });
    types = inst.description.typespace as { types: AlgebraicType[] };
  });
  beforeEach(async () => {
    const inst = await ModuleInstance.load(BASIC_MODULE, { databaseIdentity: new Identity(1n) });
    ds = inst.datastore;
  });

  it('fills auto-increment columns from the sequence and reports the generated values', () => {
    const person = table('person');
    ds.begin();
    const a = ds.insert(person.id, encode(person, { id: 0n, name: 'a', age: 1, nickName: undefined }));
    const b = ds.insert(person.id, encode(person, { id: 0n, name: 'b', age: 2, nickName: undefined }));
    const explicit = ds.insert(person.id, encode(person, { id: 100n, name: 'c', age: 3, nickName: undefined }));
    ds.commit();
    expect([a.row.value.id, b.row.value.id, explicit.row.value.id]).to.deep.equal([1n, 2n, 100n]);
    // The generated value travels back as the BSATN of the u64 column alone.
    expect(Buffer.from(b.generated).readBigUInt64LE(0)).to.equal(2n);
    expect(explicit.generated.length).to.equal(0);
  });

  it('enforces unique constraints and keeps set semantics for identical rows', () => {
    const person = table('person');
    ds.begin();
    const row = encode(person, { id: 5n, name: 'dup', age: 1, nickName: undefined });
    ds.insert(person.id, row);
    ds.insert(person.id, row); // identical: a no-op
    expect(ds.rowCount(person.id)).to.equal(1);
    const err = expectHostError(() => ds.insert(person.id, encode(person, { id: 6n, name: 'dup', age: 9, nickName: undefined })), Errno.UniqueAlreadyExists);
    expect(err.message).to.match(/name/);
    expectHostError(() => ds.insert(person.id, encode(person, { id: 5n, name: 'other', age: 1, nickName: undefined })), Errno.UniqueAlreadyExists);
    ds.commit();
    expect(ds.rowCount(person.id)).to.equal(1);
  });

  it('rolls back every write of a failed transaction', () => {
    const person = table('person');
    ds.begin();
    ds.insert(person.id, encode(person, { id: 1n, name: 'keep', age: 1, nickName: undefined }));
    ds.commit();
    ds.begin();
    ds.insert(person.id, encode(person, { id: 2n, name: 'gone', age: 1, nickName: undefined }));
    ds.clear(person.id);
    ds.rollback();
    expect([...ds.scan('person')].map((r) => r.value.name)).to.deep.equal(['keep']);
    // Indexes were restored too.
    const byName = person.indexes.find((i) => i.columns.length === 1 && i.columns[0] === 1)!;
    expect(ds.indexScanPoint(byName.id, encodeValues([AlgebraicType.String], ['keep']))).to.have.length(1);
    expect(ds.indexScanPoint(byName.id, encodeValues([AlgebraicType.String], ['gone']))).to.have.length(0);
  });

  it('reports the net change of a transaction', () => {
    const person = table('person');
    ds.begin();
    ds.insert(person.id, encode(person, { id: 1n, name: 'old', age: 1, nickName: undefined }));
    ds.commit();
    ds.begin();
    const pk = person.indexes.find((i) => i.columns.length === 1 && i.columns[0] === 0)!;
    ds.update(person.id, pk.id, encode(person, { id: 1n, name: 'new', age: 1, nickName: undefined }));
    ds.insert(person.id, encode(person, { id: 2n, name: 'temp', age: 1, nickName: undefined }));
    ds.deleteAllByEq(person.id, concatBytes(encodeValues([AlgebraicType.U32], [1]), encode(person, { id: 2n, name: 'temp', age: 1, nickName: undefined })));
    const changes = ds.commit().get('person')!;
    expect(changes.inserts.map((r) => r.value.name)).to.deep.equal(['new']);
    expect(changes.deletes.map((r) => r.value.name)).to.deep.equal(['old']);
  });

  it('updates through a unique index and refuses a missing row or a non-unique index', () => {
    const person = table('person');
    const pk = person.indexes.find((i) => i.columns.length === 1 && i.columns[0] === 0)!;
    const age = person.indexes.find((i) => i.columns.length === 1 && i.columns[0] === 2)!;
    ds.begin();
    expectHostError(() => ds.update(person.id, pk.id, encode(person, { id: 9n, name: 'x', age: 1, nickName: undefined })), Errno.NoSuchRow);
    expectHostError(() => ds.update(person.id, age.id, encode(person, { id: 9n, name: 'x', age: 1, nickName: undefined })), Errno.IndexNotUnique);
    ds.rollback();
  });

  it('scans a BTree index by range, in key order, with included, excluded and unbounded bounds', () => {
    const person = table('person');
    const age = person.indexes.find((i) => i.columns.length === 1 && i.columns[0] === 2)!;
    ds.begin();
    for (const [i, a] of [50, 10, 30, 20, 40].entries()) {
      ds.insert(person.id, encode(person, { id: BigInt(i + 1), name: `p${a}`, age: a, nickName: undefined }));
    }
    ds.commit();
    const range = (from: Uint8Array, to: Uint8Array) =>
      ds.indexScanRange(age.id, concatBytes(from, to), 0, 0, from.length, to.length).map((r) => r.value.age);
    const U32 = AlgebraicType.U32;
    expect(range(bound(U32, 'included', 20), bound(U32, 'excluded', 40))).to.deep.equal([20, 30]);
    expect(range(bound(U32, 'excluded', 20), bound(U32, 'included', 40))).to.deep.equal([30, 40]);
    expect(range(bound(U32, 'unbounded'), bound(U32, 'included', 20))).to.deep.equal([10, 20]);
    expect(range(bound(U32, 'included', 45), bound(U32, 'unbounded'))).to.deep.equal([50]);
    // rend_len 0 means "the same as the start": a point on the range column.
    const point = bound(U32, 'included', 30);
    expect(ds.indexScanRange(age.id, point, 0, 0, point.length, 0).map((r) => r.value.name)).to.deep.equal(['p30']);
    expectHostError(() => ds.indexScanRange(age.id, new Uint8Array([7]), 0, 0, 1, 0), Errno.BsatnDecodeError);
  });

  it('scans a two-column index by prefix and range', () => {
    const score = table('score');
    const ix = score.indexes.find((i) => i.columns.length === 2)!;
    ds.begin();
    let id = 1n;
    for (const player of ['ann', 'bob']) {
      for (const level of [3, 1, 2]) ds.insert(score.id, encode(score, { id: id++, player, level, points: BigInt(level * 10) }));
    }
    ds.commit();
    const prefix = encodeValues([AlgebraicType.String], ['bob']);
    const from = bound(AlgebraicType.U32, 'included', 2);
    const to = bound(AlgebraicType.U32, 'unbounded');
    const rows = ds.indexScanRange(ix.id, concatBytes(prefix, from, to), prefix.length, 1, from.length, to.length);
    expect(rows.map((r) => [r.value.player, r.value.level])).to.deep.equal([
      ['bob', 2],
      ['bob', 3],
    ]);
    const point = encodeValues([AlgebraicType.String, AlgebraicType.U32], ['ann', 1]);
    expect(ds.indexScanPoint(ix.id, point).map((r) => r.value.points)).to.deep.equal([10n]);
  });

  it('refuses writes outside a transaction and unknown tables or indexes', () => {
    const person = table('person');
    expectHostError(() => ds.insert(person.id, encode(person, { id: 1n, name: 'a', age: 1, nickName: undefined })), Errno.NotInTransaction);
    expectHostError(() => ds.tableIdFromName('nope'), Errno.NoSuchTable);
    expectHostError(() => ds.indexIdFromName('nope'), Errno.NoSuchIndex);
    ds.begin();
    expectHostError(() => ds.insert(person.id, new Uint8Array([1, 2])), Errno.BsatnDecodeError);
    ds.rollback();
  });
});
