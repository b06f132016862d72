import { expect } from 'chai';
import { Identity, Timestamp } from 'spacetimedb';
import { DROP, type MigrationProgress } from '../../storage/migrations.ts';
import type { StorageModule } from '../../storage/schema.ts';
import { ALICE, arena, freshIndexedDB, open, uniqueServer } from './helpers.ts';

const F64 = { tag: 'F64' } as const;
const STRING = { tag: 'String' } as const;

/** The next app version's bindings: game_node rows and three reducers changed, delete_node gone. */
function nextVersion(): StorageModule {
  const withZ = (elements: { name: string | undefined; algebraicType: unknown }[]) => [...elements, { name: 'z', algebraicType: F64 }];
  const tables = { ...arena.tables };
  tables.gameNode = { ...tables.gameNode, rowType: { elements: withZ(tables.gameNode.rowType.elements) as never } };
  const reducers = arena.reducers
    .filter(r => r.name !== 'delete_node')
    .map(r => {
      if (r.name === 'move_node') return { ...r, paramsType: { elements: withZ(r.paramsType.elements) as never } };
      if (r.name === 'send_chat') return { ...r, paramsType: { elements: [{ name: 'mutationId', algebraicType: STRING }, { name: 'body', algebraicType: STRING }] } };
      if (r.name === 'update_node_data') return { ...r, paramsType: { elements: [...r.paramsType.elements, { name: 'schemaVersion', algebraicType: { tag: 'U32' } }] as never } };
      return r;
    });
  return { tables, reducers };
}

describe('storage/Migrations', () => {
  it('a fingerprint change discards stale snapshots and migrates or quarantines queued entries', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();

    // App version 1: queue work and cache rows.
    const v1 = await open({ ...idb, server, lease: 'none' });
    expect((await v1.migrations.run()).check.firstRun).to.equal(true);
    await v1.outbox.setIdentity(ALICE);
    const move = (await v1.outbox.enqueue('move_node', { id: 4n, x: 1, y: 2 })).entry;
    const chat = (await v1.outbox.enqueue('send_chat', { text: 'gg' })).entry;
    const join = (await v1.outbox.enqueue('join_match', { matchId: 9n })).entry;
    const update = (await v1.outbox.enqueue('update_node_data', { id: 4n, data: '{}' })).entry;
    const del = (await v1.outbox.enqueue('delete_node', { id: 5n })).entry;
    v1.snapshots.replace('game_node', [
      { id: 4n, owner: new Identity(ALICE), parent: 0n, x: 1, y: 2, data: '{}', version: 1, updatedAt: new Timestamp(5n) },
    ]);
    v1.snapshots.replace('player', [{ identity: new Identity(ALICE), name: 'alice', online: true, lastSeen: new Timestamp(6n) }]);
    await v1.close();

    // App version 2 starts on the same database.
    const v2 = await open({
      ...idb,
      server,
      lease: 'none',
      module: nextVersion(),
      migrators: {
        move_node: ({ args }) => ({ args: { ...args, z: 0 } }),
        update_node_data: () => null,
        delete_node: () => DROP,
      },
    });
    try {
      await v2.outbox.setIdentity(ALICE);
      const check = await v2.migrations.check();
      expect(check.changed).to.equal(true);
      expect(check.staleTables).to.deep.equal(['game_node']);
      expect(check.changedReducers.sort()).to.deep.equal(['delete_node', 'move_node', 'send_chat', 'update_node_data']);

      const progress: MigrationProgress[] = [];
      const onProgress = (p: MigrationProgress) => progress.push(p);

      // migration-download
      expect(await v2.migrations.discardStaleSnapshots({ onProgress })).to.deep.equal(['game_node']);
      expect((await v2.snapshots.load('game_node')).rows).to.deep.equal([]);
      expect((await v2.snapshots.load('player')).rows).to.have.length(1);

      // migration-upload
      const result = await v2.migrations.migrateOutbox({ onProgress });
      expect(result.migrated.map(e => e.id)).to.deep.equal([move.id]);
      expect(result.carried.map(e => e.id)).to.deep.equal([join.id]);
      expect(result.dropped.map(e => e.id)).to.deep.equal([del.id]);
      expect(result.quarantined.map(e => e.id)).to.deep.equal([chat.id, update.id]);
      expect(result.quarantined[0].quarantine?.message).to.match(/send_chat: its parameters changed and no migrator is registered/);
      expect(result.quarantined[1].quarantine?.message).to.match(/the migrator could not carry/);

      expect(progress.map(p => `${p.phase} ${p.done}/${p.total}`)).to.deep.equal([
        'migration-download 0/1',
        'migration-download 1/1',
        'migration-upload 0/5',
        'migration-upload 1/5',
        'migration-upload 2/5',
        'migration-upload 3/5',
        'migration-upload 4/5',
        'migration-upload 5/5',
      ]);

      const batch = await v2.outbox.nextBatch(10);
      expect(batch.map(e => e.id)).to.deep.equal([move.id, join.id]);
      expect(v2.outbox.decodeArgs(batch[0])).to.deep.equal({ mutationId: move.id, id: 4n, x: 1, y: 2, z: 0 });
      expect((await v2.outbox.quarantined()).map(e => e.id)).to.deep.equal([chat.id, update.id]);

      await v2.migrations.commit();
      expect((await v2.migrations.check()).changed).to.equal(false);
    } finally {
      await v2.close();
    }
  });

  it('a later version can still carry entries an earlier migration quarantined', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const v1 = await open({ ...idb, server, lease: 'none' });
    await v1.migrations.run();
    await v1.outbox.setIdentity(ALICE);
    const chat = (await v1.outbox.enqueue('send_chat', { text: 'hello again' })).entry;
    await v1.close();

    const v2 = await open({ ...idb, server, lease: 'none', module: nextVersion() });
    const first = await v2.migrations.run();
    expect(first.outbox?.quarantined.map(e => e.id)).to.deep.equal([chat.id]);
    await v2.close();

    const v2fixed = await open({
      ...idb,
      server,
      lease: 'none',
      module: nextVersion(),
      migrators: { send_chat: ({ args }) => ({ args: { body: args.text } }) },
    });
    try {
      await v2fixed.outbox.setIdentity(ALICE);
      const check = await v2fixed.migrations.check();
      expect(check.changed).to.equal(false); // same bindings as the last run ...
      const again = await v2fixed.migrations.migrateOutbox(); // ... but the quarantined entry is still old
      expect(again.migrated.map(e => e.id)).to.deep.equal([chat.id]);
      const [entry] = await v2fixed.outbox.nextBatch(5);
      expect(v2fixed.outbox.decodeArgs(entry)).to.deep.equal({ mutationId: chat.id, body: 'hello again' });
    } finally {
      await v2fixed.close();
    }
  });

  it('a migrator whose result does not fit the new parameters quarantines the entry with the reason', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const v1 = await open({ ...idb, server, lease: 'none' });
    await v1.migrations.run();
    await v1.outbox.setIdentity(ALICE);
    await v1.outbox.enqueue('move_node', { id: 4n, x: 1, y: 2 });
    await v1.close();
    const v2 = await open({ ...idb, server, lease: 'none', module: nextVersion(), migrators: { move_node: ({ args }) => ({ args: { ...args, z: 'up' } }) } });
    try {
      const { outbox } = await v2.migrations.run();
      expect(outbox?.quarantined).to.have.length(1);
      expect(outbox?.quarantined[0].quarantine?.message).to.match(/args\.z must be a number/);
    } finally {
      await v2.close();
    }
  });
});
