import { expect } from 'chai';
import { AlgebraicType as T } from 'spacetimedb';
import { compileQuery } from '../../devserver/sql/compile.ts';
import { deltaRows, initialRows } from '../../devserver/sql/evaluate.ts';
import { bag, changeSet, contextFor, makeTable, MemorySource } from './sqlKit.ts';

const a = makeTable('a', { id: { type: T.U32, primaryKey: true }, x: { type: T.U32, indexed: true }, tag: { type: T.String } });
const b = makeTable('b', { id: { type: T.U32, primaryKey: true }, y: { type: T.U32, indexed: true }, w: { type: T.I32 } });
const ctx = contextFor([a, b]);
const q = (sql: string) => compileQuery(sql, ctx)[0];

const JOIN = 'SELECT a.* FROM a JOIN b ON a.x = b.y WHERE b.w > 0';

describe('subscription SQL evaluation', () => {
  let src: MemorySource;
  const a1 = a.row({ id: 1, x: 1, tag: 'one' });
  const a2 = a.row({ id: 2, x: 1, tag: 'two' });
  const a3 = a.row({ id: 3, x: 2, tag: 'three' });
  const b1 = b.row({ id: 1, y: 1, w: 5 });
  const b2 = b.row({ id: 2, y: 1, w: 7 });
  const b3 = b.row({ id: 3, y: 2, w: 1 });

  /** Commits `changes` to `src` and returns the join's delta, asserting it never scanned. */
  function commit(sql: string, changes: ReturnType<typeof changeSet>) {
    src.apply(changes);
    const scans = src.scans;
    const delta = deltaRows(q(sql), changes, src);
    expect(src.scans, 'deltaRows must not scan tables').to.equal(scans);
    return delta;
  }

  beforeEach(() => {
    src = new MemorySource([a, b]);
    src.insert([a, a1]);
  });

  describe('single table', () => {
    it('filters the changed rows and returns the very same objects', () => {
      const sql = "SELECT * FROM a WHERE tag <> 'two'";
      const delta = commit(sql, changeSet({ a: { inserts: [a2, a3], deletes: [a1] }, b: { inserts: [b1] } }));
      expect(delta.inserts).to.have.length(1);
      expect(delta.inserts[0]).to.equal(a3);
      expect(delta.deletes).to.have.length(1);
      expect(delta.deletes[0]).to.equal(a1);
    });

    it('is empty when the table did not change', () => {
      expect(commit('SELECT * FROM a', changeSet({ b: { inserts: [b1] } }))).to.deep.equal({ inserts: [], deletes: [] });
    });
  });

  describe('join', () => {
    it('initial rows repeat a row once per matching row of the other table', () => {
      src.insert([a, a2], [a, a3], [b, b1], [b, b2], [b, b3], [b, b.row({ id: 4, y: 2, w: -1 })]);
      expect(bag(initialRows(q(JOIN), src))).to.deep.equal(new Map([[a1.key, 2], [a2.key, 2], [a3.key, 1]]));
      expect(bag(initialRows(q('SELECT b.* FROM a JOIN b ON a.x = b.y WHERE b.w > 0'), src))).to.deep.equal(
        new Map([[b1.key, 2], [b2.key, 2], [b3.key, 1]]),
      );
    });

    it('an inserted matching row of the other table adds the row, a second one adds it again', () => {
      const first = commit(JOIN, changeSet({ b: { inserts: [b1] } }));
      expect(first.inserts).to.deep.equal([a1]);
      expect(first.inserts[0]).to.equal(a1); // the object the datastore holds
      expect(first.deletes).to.deep.equal([]);
      const second = commit(JOIN, changeSet({ b: { inserts: [b2] } }));
      expect(second).to.deep.equal({ inserts: [a1], deletes: [] });
    });

    it('an update of the other table that stops matching the WHERE removes one copy', () => {
      src.insert([b, b1], [b, b2]);
      const b1neg = b.row({ id: 1, y: 1, w: -5 });
      const delta = commit(JOIN, changeSet({ b: { inserts: [b1neg], deletes: [b1] } }));
      expect(delta).to.deep.equal({ inserts: [], deletes: [a1] });
    });

    it('an update of the other table that keeps matching changes nothing', () => {
      src.insert([b, b1]);
      const b1b = b.row({ id: 1, y: 1, w: 6 });
      expect(commit(JOIN, changeSet({ b: { inserts: [b1b], deletes: [b1] } }))).to.deep.equal({ inserts: [], deletes: [] });
    });

    it('inserting and deleting returned rows counts their matches', () => {
      src.insert([b, b1], [b, b2]);
      const ins = commit(JOIN, changeSet({ a: { inserts: [a2] } }));
      expect(ins.inserts).to.deep.equal([a2, a2]);
      expect(ins.inserts[0]).to.equal(a2);
      const del = commit(JOIN, changeSet({ a: { deletes: [a1] } }));
      expect(del).to.deep.equal({ inserts: [], deletes: [a1, a1] });
      expect(del.deletes[0]).to.equal(a1);
    });

    it('a row and its match inserted in one transaction appear once', () => {
      const delta = commit(JOIN, changeSet({ a: { inserts: [a3] }, b: { inserts: [b3] } }));
      expect(delta).to.deep.equal({ inserts: [a3], deletes: [] });
    });

    it('a row and its match deleted in one transaction disappear once', () => {
      src.insert([b, b1]);
      const delta = commit(JOIN, changeSet({ a: { deletes: [a1] }, b: { deletes: [b1] } }));
      expect(delta).to.deep.equal({ inserts: [], deletes: [a1] });
    });

    it('moving the returned row to another join key swaps its copies', () => {
      src.insert([b, b1], [b, b2], [b, b3]);
      const moved = a.row({ id: 1, x: 2, tag: 'one' });
      const delta = commit(JOIN, changeSet({ a: { inserts: [moved], deletes: [a1] } }));
      expect(delta).to.deep.equal({ inserts: [moved], deletes: [a1, a1] });
    });

    it('changes that touch no matching row produce nothing', () => {
      src.insert([b, b1]);
      const delta = commit(JOIN, changeSet({ b: { inserts: [b.row({ id: 9, y: 42, w: 1 })] }, a: { inserts: [a.row({ id: 9, x: 77, tag: '' })] } }));
      expect(delta).to.deep.equal({ inserts: [], deletes: [] });
    });

    it('a predicate over both tables is checked per pair', () => {
      src.insert([b, b1], [b, b2]);
      const sql = "SELECT a.* FROM a JOIN b ON a.x = b.y WHERE a.tag = 'two' OR b.w = 7";
      expect(bag(initialRows(q(sql), src))).to.deep.equal(new Map([[a1.key, 1]]));
      const delta = commit(sql, changeSet({ a: { inserts: [a2] } }));
      expect(delta).to.deep.equal({ inserts: [a2, a2], deletes: [] });
    });

    it('a self-join sees one change on both of its sides', () => {
      const sql = 'SELECT l.* FROM a l JOIN a r ON l.x = r.x';
      expect(bag(initialRows(q(sql), src))).to.deep.equal(new Map([[a1.key, 1]]));
      // a2 joins a1 and itself: a1 gains one copy, a2 appears twice.
      const delta = commit(sql, changeSet({ a: { inserts: [a2] } }));
      expect(bag(delta.inserts)).to.deep.equal(new Map([[a1.key, 1], [a2.key, 2]]));
      expect(delta.deletes).to.deep.equal([]);
    });

    it('looks rows up instead of scanning, in initialRows too when the other side is indexed', () => {
      src.insert([b, b1]);
      const before = src.scans;
      initialRows(q(JOIN), src);
      expect(src.scans - before).to.equal(1);
    });
  });
});
