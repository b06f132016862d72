import { expect } from 'chai';
import { Dexie } from 'dexie';
import { SCHEMA_V1, databaseName, type OutboxRecordV1 } from '../../storage/db.ts';
import { describeSchema } from '../../storage/schema.ts';
import { productCodec } from '../../storage/codec.ts';
import { ALICE, arena, freshIndexedDB, open, uniqueServer } from './helpers.ts';

describe('storage/Dexie schema upgrade', () => {
  it('opens a real version-1 database with rows and upgrades it through version 2 (seq, identity index) to version 3 (outcomes)', async () => {
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
      expect(s.db!.verno).to.equal(3);
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
});
