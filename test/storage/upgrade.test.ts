import { expect } from 'chai';
import { Dexie } from 'dexie';
import { SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, databaseName, upgradeToV2, type OutboxRecord, type OutboxRecordV1, type OutcomeRecord } from '../../storage/db.ts';
import { DexieStore } from '../../storage/dexieStore.ts';
import { describeSchema } from '../../storage/schema.ts';
import { productCodec } from '../../storage/codec.ts';
import { ALICE, BOB, FakeTime, arena, freshIndexedDB, open, uniqueServer } from './helpers.ts';

describe('storage/Dexie schema upgrade', () => {
  it('opens a real version-1 database with rows and upgrades it through version 2 (seq, identity index) and version 3 (outcomes) to version 4 (two outbox indexes) and version 5 (outcome sets)', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const name = databaseName(server, 'arena');
    const fingerprint = describeSchema(arena).fingerprint;
    const chatArgs = productCodec(arena.reducers.find(r => r.name === 'send_chat')!.paramsType);
    const v1entry = (id: string, createdAt: number, priority = 1): OutboxRecordV1 => ({
      id,
      reducer: 'send_chat',
      args: chatArgs.encode({ mutationId: id, text: `text of ${id}` }),
      priority,
      supersedeKey: '',
      deadline: null,
      identity: ALICE,
      createdAt,
      sentAt: null,
      attempts: 0,
      status: 'queued',
      receipts: true,
      schema: fingerprint,
      error: null,
    });

    // Build the database as the first release left it: version 1, with data.
    const old = new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]);
    old.version(1).stores(SCHEMA_V1);
    await old.open();
    // Inserted out of creation order, with a tie on createdAt.
    await old.table('outbox').bulkAdd([v1entry('c', 3000), v1entry('a', 1000), v1entry('b2', 2000), v1entry('b1', 2000), v1entry('h', 4000, 2)]);
    await old.table('rows').add({ table: 'player', key: 'x', row: new Uint8Array([1, 2, 3]) });
    expect(old.verno).to.equal(1);
    old.close();

    const s = await open({ ...idb, server, lease: 'none' });
    try {
      expect(s.mode).to.equal('durable');
      expect(s.db!.verno).to.equal(5);
      const entries = await s.outbox.entries();
      expect(entries.map(e => [e.id, e.seq])).to.deep.equal([
        ['a', 1],
        ['b1', 2],
        ['b2', 3],
        ['c', 4],
        ['h', 5],
      ]);
      expect(entries.every(e => e.updatedAt === e.createdAt && e.quarantine === null)).to.equal(true);
      expect(await s.db!.rows.count()).to.equal(1);

      // The new index serves the drain, and new entries continue the sequence.
      await s.outbox.setIdentity(ALICE);
      const next = (await s.outbox.enqueue('send_chat', { text: 'after the upgrade' })).entry;
      expect(next.seq).to.equal(6);
      expect((await s.outbox.nextBatch(10)).map(e => e.id)).to.deep.equal(['h', 'a', 'b1', 'b2', 'c', next.id]);
      expect(s.outbox.decodeArgs(entries[0])).to.deep.equal({ mutationId: 'a', text: 'text of a' });
    } finally {
      await s.close();
      await new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]).delete();
    }
  });

  it('opens a real version-3 database (entries of two identities in every status, outcome records) and serves every query from the version-4 indexes', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const name = databaseName(server, 'arena');
    const fingerprint = describeSchema(arena).fingerprint;
    const chatArgs = productCodec(arena.reducers.find(r => r.name === 'send_chat')!.paramsType);
    const entry = (id: string, seq: number, identity: string, status: OutboxRecord['status'], priority = 1): OutboxRecord => ({
      id,
      seq,
      reducer: 'send_chat',
      args: chatArgs.encode({ mutationId: id, text: `text of ${id}` }),
      priority,
      supersedeKey: id === 'q2' ? 'k' : '',
      deadline: null,
      identity,
      createdAt: 1000 + seq,
      updatedAt: 1000 + seq,
      sentAt: status === 'sent' ? 2000 : null,
      attempts: status === 'sent' ? 1 : 0,
      status,
      receipts: true,
      schema: fingerprint,
      error: status === 'rejected' ? { code: 'SenderError', message: 'no' } : null,
      quarantine: null,
    });
    const outcome: OutcomeRecord = { id: 'gone', outcome: 'confirmed', reducer: 'send_chat', at: Date.now(), by: 'answer', error: null };

    // Build the database as version 3 left it, with data, through the real v1 → v2 → v3 path.
    const old = new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]);
    old.version(1).stores(SCHEMA_V1);
    old.version(2).stores(SCHEMA_V2).upgrade(upgradeToV2);
    old.version(3).stores(SCHEMA_V3);
    await old.open();
    await old.table('outbox').bulkAdd([
      entry('q1', 1, ALICE, 'queued'),
      entry('s1', 2, ALICE, 'sent'),
      entry('r1', 3, ALICE, 'rejected'),
      entry('s2', 4, BOB, 'sent'),
      entry('q2', 5, ALICE, 'queued', 2),
      entry('q3', 6, BOB, 'queued'),
    ]);
    await old.table('meta').put({ key: 'seq', value: 6 });
    await old.table('outcomes').add(outcome);
    expect(old.verno).to.equal(3);
    old.close();

    const s = await open({ ...idb, server, lease: 'none' });
    try {
      expect(s.db!.verno).to.equal(5);
      expect(s.db!.outbox.schema.indexes.map(i => i.name).sort()).to.deep.equal(['[status+identity]', 'supersedeKey']);
      expect((await s.outbox.entries()).map(e => [e.id, e.supersedeKey])).to.deep.equal([
        ['q1', ''],
        ['s1', ''],
        ['r1', ''],
        ['s2', ''],
        ['q2', 'k'],
        ['q3', ''],
      ]);
      expect((await s.outbox.outcomes(['gone'])).map(o => o.outcome)).to.deep.equal(['confirmed']);

      // One identity's queued entries, in drain order (priority, then seq).
      await s.outbox.setIdentity(ALICE);
      expect((await s.outbox.nextBatch(10)).map(e => e.id)).to.deep.equal(['q2', 'q1']);
      // Every identity's sent entries go back to the queue (the key prefix [status]).
      expect((await s.outbox.requeueSent()).map(e => e.id)).to.deep.equal(['s1', 's2']);
      expect((await s.outbox.nextBatch(10)).map(e => e.id)).to.deep.equal(['q2', 'q1', 's1']);
      // The supersede-key index still finds the entry a newer call replaces; new entries continue the sequence.
      const { entry: next, superseded } = await s.outbox.enqueue('send_chat', { text: 'after' }, { supersedeKey: 'k' });
      expect(next.seq).to.equal(7);
      expect(superseded.map(e => e.id)).to.deep.equal(['q2']);
      // Claimed, confirmed: gone from the outbox, recorded as confirmed.
      const claimed = await s.outbox.claim(10);
      expect(claimed.map(e => [e.id, e.status])).to.deep.equal([
        ['q1', 'sent'],
        ['s1', 'sent'],
        [next.id, 'sent'],
      ]);
      await s.outbox.markConfirmed(claimed.map(e => e.id));
      expect((await s.outbox.entries()).map(e => [e.id, e.status])).to.deep.equal([
        ['r1', 'rejected'],
        ['s2', 'queued'],
        ['q3', 'queued'],
      ]);
      expect((await s.outbox.outcomes(['q1', 's1', next.id])).map(o => o.outcome)).to.deep.equal(['confirmed', 'confirmed', 'confirmed']);
    } finally {
      await s.close();
      await new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]).delete();
    }
  });

  it('opens a real version-4 database (entries in every status, outcome records) and moves its outcome records into version-5 outcome sets that answer per id and still age out', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const name = databaseName(server, 'arena');
    const fingerprint = describeSchema(arena).fingerprint;
    const chatArgs = productCodec(arena.reducers.find(r => r.name === 'send_chat')!.paramsType);
    const entry = (id: string, seq: number, status: OutboxRecord['status']): OutboxRecord => ({
      id,
      seq,
      reducer: 'send_chat',
      args: chatArgs.encode({ mutationId: id, text: `text of ${id}` }),
      priority: 1,
      supersedeKey: '',
      deadline: null,
      identity: ALICE,
      createdAt: 1000 + seq,
      updatedAt: 1000 + seq,
      sentAt: status === 'sent' ? 2000 : null,
      attempts: status === 'sent' ? 1 : 0,
      status,
      receipts: true,
      schema: fingerprint,
      error: status === 'rejected' ? { code: 'SenderError', message: 'no' } : null,
      quarantine: null,
    });
    const time = new FakeTime();
    const now = time.now();
    const records: OutcomeRecord[] = [
      { id: 'c1', outcome: 'confirmed', reducer: 'send_chat', at: now - 10, by: 'answer', error: null },
      { id: 'c2', outcome: 'confirmed', reducer: 'send_chat', at: now - 10, by: 'receipt', error: null },
      { id: 'r1', outcome: 'rejected', reducer: 'send_chat', at: now - 5, by: 'dismiss', error: { code: 'SenderError', message: 'bad move' } },
      { id: 'o1', outcome: 'superseded', reducer: 'send_chat', at: now - 5, by: 'supersede', error: null, supersededBy: 'q1' },
      { id: 'old', outcome: 'expired', reducer: 'send_chat', at: now - 3 * 86_400_000, by: 'deadline', error: null },
    ];

    // Version 4 with data, through the real v1 → v4 path.
    const old = new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]);
    old.version(1).stores(SCHEMA_V1);
    old.version(2).stores(SCHEMA_V2).upgrade(upgradeToV2);
    old.version(3).stores(SCHEMA_V3);
    old.version(4).stores(SCHEMA_V4);
    await old.open();
    await old.table('outbox').bulkAdd([entry('q1', 1, 'queued'), entry('s1', 2, 'sent'), entry('x1', 3, 'rejected')]);
    await old.table('meta').put({ key: 'seq', value: 3 });
    await old.table('outcomes').bulkAdd(records);
    expect(old.verno).to.equal(4);
    old.close();

    const s = await open({ ...idb, server, lease: 'none', time });
    try {
      expect(s.db!.verno).to.equal(5);
      // Entries are untouched.
      expect((await s.outbox.entries()).map(e => [e.id, e.seq, e.status, e.attempts])).to.deep.equal([
        ['q1', 1, 'queued', 0],
        ['s1', 2, 'sent', 1],
        ['x1', 3, 'rejected', 0],
      ]);
      // Every outcome record moved into a set of its own; the old table is empty.
      expect(await s.db!.outcomes.count()).to.equal(0);
      expect(await s.db!.outcomeSets.count()).to.equal(records.length);
      const asked = ['o1', 'missing', 'c1', 'r1', 'c2', 'old'];
      expect(await s.outbox.outcomes(asked)).to.deep.equal([records[3], records[0], records[2], records[1], records[4]]);
      expect(new Map((await new DexieStore(s.db!).outcomesList()).map(o => [o.id, o]))).to.deep.equal(new Map(records.map(o => [o.id, o])));

      // New removals are recorded in one set per write; the next write prunes records older than outcomeTtlMs (one day).
      await s.outbox.setIdentity(ALICE);
      const claimed = await s.outbox.claim(10);
      expect(claimed.map(e => e.id)).to.deep.equal(['q1']);
      await s.outbox.markConfirmed(['q1', 's1']);
      expect((await s.outbox.outcomes(['q1', 's1', 'old'])).map(o => [o.id, o.outcome, o.by])).to.deep.equal([
        ['q1', 'confirmed', 'answer'],
        ['s1', 'confirmed', 'answer'],
      ]);
      expect(await s.db!.outcomeSets.count()).to.equal(records.length - 1 + 1);
      expect((await s.outbox.outcomes(['c1', 'r1'])).map(o => o.id)).to.deep.equal(['c1', 'r1']);
    } finally {
      await s.close();
      await new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]).delete();
    }
  });
});
