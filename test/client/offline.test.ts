/**
 * The client with storage across starts: offline start from the snapshot
 * cache, migrations when the bindings change, and storage failures.
 */
import { expect } from 'chai';
import { Identity, Timestamp } from 'spacetimedb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevServer } from '../../devserver/index.ts';
import type { Phase, SyncProgress, SyncStatus } from '../../src/index.ts';
import type { StdbRxDB } from '../../storage/db.ts';
import { MigrationError, StorageQuotaError, StorageUnavailableError } from '../../storage/errors.ts';
import { openStorage, type Storage } from '../../storage/openStorage.ts';
import type { StorageModule } from '../../storage/schema.ts';
import { until } from '../helpers/until.ts';
import { next } from '../helpers/syncClient.ts';
import { arenaClient, arenaModule, chatTexts, freshProfile, openArenaStorage, serverRows, startArena, tables, type ArenaClient, type Profile } from './arena.ts';

const live = (c: ArenaClient) => next(c.status$, (s) => s.state === 'live', 10_000, 'live');
const texts = (m: ReadonlyMap<unknown, { text: string }>) => [...m.values()].map((r) => r.text).sort();

/** DBCore middleware failing every write to `table` with the browser's QuotaExceededError while `quota.full`. */
function quotaMiddleware(quota: { full: boolean }, table: string) {
  return (db: StdbRxDB) => {
    db.use({
      stack: 'dbcore',
      name: 'simulated-quota',
      create: (down) => ({
        ...down,
        table: (name) => {
          const inner = down.table(name);
          return {
            ...inner,
            mutate: (req) => (quota.full && name === table ? Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError')) : inner.mutate(req)),
          };
        },
      }),
    });
  };
}

/** The arena bindings as an older app version had them: `send_chat` and `set_name` took a parameter more, chat rows had a column more. */
function olderBindings(): StorageModule {
  const module: StorageModule = structuredClone({ ...arenaModule, tables: { ...arenaModule.tables } });
  const extra = (name: string, tag: 'String' | 'Bool') => ({ name, algebraicType: { tag } as never });
  const reducers = module.reducers.map((r) =>
    r.name === 'send_chat' ? { ...r, paramsType: { elements: [...r.paramsType.elements, extra('channel', 'String')] } } : r.name === 'set_name' ? { ...r, paramsType: { elements: [...r.paramsType.elements, extra('color', 'String')] } } : r,
  );
  const chat = module.tables.chatMessage;
  const tablesOld = { ...module.tables, chatMessage: { ...chat, rowType: { elements: [...chat.rowType.elements, extra('edited', 'Bool')] }, columns: arenaModule.tables.chatMessage.columns } };
  for (const [k, t] of Object.entries(tablesOld)) if (k !== 'chatMessage') t.columns = arenaModule.tables[k].columns;
  return { ...module, reducers, tables: tablesOld };
}

describe('sync client with storage: offline start, migrations, failures', function () {
  this.timeout(30_000);
  let server: DevServer | undefined;
  let profile: Profile;
  let dir: string | undefined;
  const clients: ArenaClient[] = [];
  const storages: Storage[] = [];
  const client = (target: DevServer | { wsUrl: string; database: string }, opts: Parameters<typeof arenaClient>[1] = {}) => {
    const c = arenaClient(target, opts);
    clients.push(c);
    return c;
  };
  const storage = async (opts: Parameters<typeof openArenaStorage>[1] = {}) => {
    const s = await openArenaStorage(profile, opts);
    storages.push(s);
    return s;
  };

  beforeEach(() => {
    profile = freshProfile();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of storages.splice(0)) await s.close();
    await server?.stop();
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('a cold start without the server shows the cached rows at once, marked stale; when it comes up only the differences are emitted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'stdb-rx-offline-'));
    server = await startArena({ dataDir: dir });
    const first = client(server, { storage: await storage() });
    const sub = first.table$(tables.chatMessage).subscribe();
    await first.call('sendChat', { text: 'one' });
    await first.call('sendChat', { text: 'two' });
    await next(first.table$(tables.chatMessage), (m) => m.size === 2);
    sub.unsubscribe();
    await first.close(); // flushes the snapshot cache
    // While this player is away, someone else writes.
    const other = client(server);
    await live(other);
    await other.call('sendChat', { text: 'three' });
    await other.close();
    const { port, database } = server;
    await server.stop();
    server = undefined;

    // Cold start with the server down.
    const cold = client({ wsUrl: `ws://127.0.0.1:${port}`, database }, { storage: await storage() });
    const emissions: string[][] = [];
    const batches: string[][] = [];
    cold.table$(tables.chatMessage).subscribe((m) => emissions.push(texts(m)));
    cold.changes$(tables.chatMessage).subscribe((b) => batches.push(b.map((c) => `${c.op}:${c.newRow?.text ?? c.oldRow?.text}`)));
    await next(cold.table$(tables.chatMessage), (m) => m.size === 2, 5000, 'cached rows');
    expect(emissions).to.deep.equal([['one', 'two']]);
    const offlineStatus: SyncStatus = cold.status;
    expect(offlineStatus.stale).to.equal(true);
    expect(offlineStatus.storage).to.equal('durable');
    expect(offlineStatus.state).to.be.oneOf(['connecting', 'reconnecting']);

    server = await startArena({ dataDir: dir, port });
    await live(cold);
    await next(cold.table$(tables.chatMessage), (m) => m.size === 3);
    expect(emissions).to.deep.equal([['one', 'two'], ['one', 'three', 'two']]);
    expect(batches).to.deep.equal([['insert:one', 'insert:two'], ['insert:three']]);
    expect(cold.status.stale).to.equal(false);

    // The start's rows served until the server's arrived; a query opened now never sees them.
    const later: string[][] = [];
    cold.table$(tables.chatMessage, { where: (r) => r.text.ne('') }).subscribe((m) => later.push(texts(m)));
    await next(cold.table$(tables.chatMessage, { where: (r) => r.text.ne('') }), (m) => m.size === 3);
    expect(later[0]).to.deep.equal(['one', 'three', 'two']);
  });

  it('a lost connection writes the snapshot cache at once: a start right after it has the rows received last', async () => {
    server = await startArena();
    // A throttle far longer than the test: only the loss of the connection can write these rows in time.
    const s = await storage({ snapshotThrottleMs: 60_000 });
    const c = client(server, { storage: s });
    const sub = c.table$(tables.chatMessage).subscribe();
    await live(c);
    await c.call('sendChat', { text: 'just before' });
    await next(c.table$(tables.chatMessage), (m) => texts(m).includes('just before'));
    expect(s.snapshots.pendingChanges).to.be.greaterThan(0);
    expect(server.faults.dropAll()).to.be.greaterThan(0);
    // `load` reads the database (what a reloaded page would find), not the pending changes.
    await until(async () => (await s.snapshots.load('chat_message')).rows.some((r) => r.text === 'just before'), 'the row in the stored cache');
    sub.unsubscribe();
  });

  it('a schema fingerprint change runs migration-download and migration-upload: stale rows resynced, entries migrated or quarantined', async () => {
    // An older app version left a cached table and two queued calls behind.
    const old = await openArenaStorage(profile, { module: olderBindings() });
    await old.migrations.commit();
    const errors0: Error[] = [];
    old.errors$.subscribe((e) => errors0.push(e));
    old.snapshots.replace('chat_message', [{ id: 9n, sender: Identity.zero(), text: 'stale', sentAt: Timestamp.now(), edited: false }]);
    await old.snapshots.flush();
    expect((await old.snapshots.load('chat_message')).rows.map((r) => r.text)).to.deep.equal(['stale']);
    expect(errors0).to.deep.equal([]);
    await old.outbox.enqueue('send_chat', { mutationId: 'm-chat', text: 'hello', channel: 'general' });
    await old.outbox.enqueue('set_name', { mutationId: 'm-name', name: 'Ada', color: 'red' });
    await old.close();

    server = await startArena();
    // Cache writes held until close: the fresh rows of this connection, written before the migration looked,
    // would make the stale table current already and leave migration-download nothing to discard (0/0).
    const s = await storage({ snapshotThrottleMs: 60_000, migrators: { send_chat: ({ args }) => ({ args: { mutationId: args.mutationId, text: `${args.channel}: ${args.text}` } }) } });
    const c = client(server, { storage: s });
    const phases: Phase[] = [];
    const progress: NonNullable<SyncProgress['migration']>[] = [];
    const errors: Error[] = [];
    c.phase$.subscribe((p) => phases.push(p));
    c.syncProgress$.subscribe((p) => p.migration && progress.push(p.migration));
    c.errors$.subscribe((e) => errors.push(e));
    const rows: string[][] = [];
    c.table$(tables.chatMessage).subscribe((m) => rows.push(texts(m)));
    await live(c);
    await until(() => chatTexts(server!).length === 1, 'the migrated call', 5000);
    expect(chatTexts(server)).to.deep.equal(['general: hello']);
    expect(phases.slice(phases.indexOf('server-sync'))).to.deep.equal(['server-sync', 'migration-download', 'migration-upload', 'active']);
    expect(progress.map((p) => `${p.phase} ${p.done}/${p.total}`)).to.deep.equal([
      'migration-download 0/1',
      'migration-download 1/1',
      'migration-upload 0/2',
      'migration-upload 1/2',
      'migration-upload 2/2',
    ]);
    // The stale cached rows were never shown: the table went from nothing to the server's rows.
    expect(rows.flat()).to.not.include('stale');
    const quarantined = (await next(c.outbox$, (st) => st.quarantined.length === 1)).quarantined[0];
    expect(quarantined.id).to.equal('m-name');
    expect(quarantined.quarantine?.message).to.contain('no migrator is registered');
    expect(errors.filter((e) => e instanceof MigrationError).map((e) => (e as MigrationError).reducer)).to.deep.equal(['set_name']);
    expect(serverRows(server, 'player').every((p) => p.name !== 'Ada')).to.equal(true);
    // The cache was resynced from the server with the new row type.
    await next(c.table$(tables.chatMessage), (m) => m.size === 1);
    await c.close();
    expect((await s.snapshots.load('chat_message')).rows.map((r) => r.text)).to.deep.equal(['general: hello']);
    expect((await s.migrations.check()).changed).to.equal(false);
  });

  it('quota exceeded: a StorageError on errors$, the client carries on in memory and says so in status$', async () => {
    server = await startArena();
    const quota = { full: false };
    const c = client(server, { storage: await storage({ configureDexie: quotaMiddleware(quota, 'outbox') }) });
    const errors: Error[] = [];
    c.errors$.subscribe((e) => errors.push(e));
    await live(c);
    expect(c.status.storage).to.equal('durable');
    quota.full = true;
    await c.call('sendChat', { text: 'still goes' });
    expect(chatTexts(server)).to.deep.equal(['still goes']);
    expect(errors.some((e) => e instanceof StorageQuotaError)).to.equal(true);
    await next(c.status$, (st) => st.storage === 'memory');
    await c.call('sendChat', { text: 'in memory' });
    expect(chatTexts(server)).to.deep.equal(['still goes', 'in memory']);
  });

  it('opens its own storage from options; without IndexedDB it runs in memory and reports StorageUnavailableError', async () => {
    server = await startArena();
    const c = client(server, { storage: { open: openStorage, lease: 'none' } });
    const errors: Error[] = [];
    c.errors$.subscribe((e) => errors.push(e));
    await live(c);
    expect(c.storage?.mode).to.equal('memory');
    expect(c.status.storage).to.equal('memory');
    expect(errors.some((e) => e instanceof StorageUnavailableError)).to.equal(true);
    await c.call('sendChat', { text: 'works anyway' });
    expect(chatTexts(server)).to.deep.equal(['works anyway']);
  });
});
