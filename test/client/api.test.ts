/**
 * Small API promises of issue 12: reducer names as the bindings and as the
 * module spell them, a predictable `retry` merge, the receipts warning, a
 * synchronous `identity`, a `where` typed on the table's columns, and a
 * handle with `catch`/`finally`.
 */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { mergeRetry } from '../../src/index.ts';
import { OfflineRefusedError } from '../../storage/errors.ts';
import { openStorage } from '../../storage/index.ts';
import { ReceiptsNotFoundError, type OutboxState } from '../../src/index.ts';
import { DbConnection } from '../../demo/arena/bindings/index.ts';
import { next } from '../helpers/syncClient.ts';
import { arenaClient, chatTexts, freshProfile, openArenaStorage, startArena, tables, type ArenaClient } from './arena.ts';

const live = (c: ArenaClient) => next(c.status$, (s) => s.state === 'live', 10_000, 'live');

describe('client API: retry merge rule', () => {
  it('a partial retry keeps the user\'s fields and raises the default maxInterval to a larger initialInterval', () => {
    expect(mergeRetry({ initialInterval: 60_000 })).to.deep.equal({ initialInterval: 60_000, maxInterval: 60_000, jitter: 'full' });
    expect(mergeRetry({ initialInterval: 1_000 })).to.deep.equal({ initialInterval: 1_000, maxInterval: 30_000, jitter: 'full' });
    expect(mergeRetry({ jitter: 'none' })).to.deep.equal({ initialInterval: 500, maxInterval: 30_000, jitter: 'none' });
    expect(mergeRetry(undefined)).to.deep.equal({ initialInterval: 500, maxInterval: 30_000, jitter: 'full' });
    // A maxInterval alone below the default start lowers the start to it (the user's cap wins).
    expect(mergeRetry({ maxInterval: 100 })).to.include({ initialInterval: 100, maxInterval: 100 });
    // undefined fields are "not given".
    expect(mergeRetry({ initialInterval: 2_000, maxInterval: undefined })).to.include({ maxInterval: 30_000 });
  });

  it('refuses a maxInterval below initialInterval when both are given, at createSyncClient', () => {
    expect(() => mergeRetry({ initialInterval: 5_000, maxInterval: 1_000 })).to.throw(TypeError, /maxInterval \(1000\) is below retry.initialInterval \(5000\)/);
    expect(() => arenaClient({ wsUrl: 'ws://127.0.0.1:9', database: 'arena' }, { retry: { initialInterval: 5_000, maxInterval: 1_000 } })).to.throw(TypeError, /maxInterval/);
  });
});

describe('client API against the dev server', function () {
  this.timeout(30_000);
  let server: DevServer;
  const clients: ArenaClient[] = [];
  const client = (opts: Parameters<typeof arenaClient>[1] = {}) => {
    const c = arenaClient(server, opts);
    clients.push(c);
    return c;
  };
  beforeEach(async () => {
    server = await startArena();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.stop();
  });

  it('identity is undefined before login and the logged-in identity after', async () => {
    const c = client();
    expect(c.identity).to.equal(undefined);
    const id = await next(c.identity$);
    expect(c.identity!.toHexString()).to.equal(id.toHexString());
  });

  it('status$ from start to live: connecting → syncing → live, once each, never stale (nothing was shown before), then closed (stale: its rows are no longer followed)', async () => {
    const c = client();
    const seen: string[] = [];
    const sub = c.status$.subscribe((s) => seen.push(`${s.state}${s.stale ? '/stale' : ''}`));
    await live(c);
    await c.close();
    sub.unsubscribe();
    // Closed: the rows last shown are kept but no longer followed, so they read as stale.
    expect(seen).to.deep.equal(['connecting', 'syncing', 'live', 'closed/stale']);
  });

  it('call() takes the module\'s reducer name as well as the accessor; policies take either', async () => {
    const profile = freshProfile();
    const storage = await openArenaStorage(profile, { reducers: { sendChat: { priority: 'high' } } });
    try {
      expect(storage.outbox.policy('send_chat').priority).to.equal('high');
      expect(storage.outbox.policy('sendChat').priority).to.equal('high');
      const c = client({ storage, retry: { initialInterval: 60_000, jitter: 'none' } });
      await live(c);
      const a = await c.call('sendChat', { text: 'by accessor' });
      const b = await c.call('send_chat', { text: 'by module name' });
      expect(a.status).to.equal('confirmed');
      expect(b.status).to.equal('confirmed');
      expect(chatTexts(server)).to.deep.equal(['by accessor', 'by module name']);
      // The accessor keeps its typed arguments: a wrong type does not slip through the module-name overload.
      // @ts-expect-error — text must be a string (checked by `npx tsc --noEmit`)
      const typed = () => c.call('sendChat', { text: 42 });
      expect(typed).to.be.a('function');
      // The module's name is typed the same way, and a name the bindings do not have is a compile error.
      // @ts-expect-error — text must be a string
      const typedByModuleName = () => c.call('send_chat', { text: 42 });
      // @ts-expect-error — no such reducer
      const unknown = () => c.call('no_such_reducer', {});
      expect([typedByModuleName, unknown].every((f) => typeof f === 'function')).to.equal(true);
      // Queued entries show the module's name; decodeArgs shows their arguments.
      server.faults.dropAll();
      await next(c.status$, (s) => s.state === 'reconnecting');
      void c.call('sendChat', { text: 'queued' }).catch(() => undefined);
      const state = await next(c.outbox$, (s: OutboxState) => s.queued === 1);
      expect(state.pending[0].reducer).to.equal('send_chat');
      expect(storage.outbox.decodeArgs(state.pending[0])).to.include({ text: 'queued' });
    } finally {
      for (const c of clients.splice(0)) await c.close();
      await storage.close();
    }
  });

  it('a client-side policy by accessor name applies (online-only refused while offline), and both spellings of one reducer are refused', async () => {
    const c = client({ storage: { open: openStorage, ...freshProfile(), lease: 'store', memory: true }, reducers: { sendChat: { offline: 'online-only' } }, retry: { initialInterval: 60_000, jitter: 'none' } });
    await live(c);
    server.faults.dropAll();
    await next(c.status$, (s) => s.state === 'reconnecting');
    const err = await c.call('sendChat', { text: 'offline' }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OfflineRefusedError);
    const refused = await openArenaStorage(freshProfile(), { reducers: { sendChat: {}, send_chat: {} } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(TypeError);
  });

  it('warns on errors$ at start-up, naming the reducers, when reducers take a mutation id but no receipts table is found; receipts: false silences it', async () => {
    // The arena bindings without their receipts table.
    const builder = () => {
      const b = DbConnection.builder();
      const rm = (b as unknown as { remoteModule: { tables: Record<string, { sourceName: string }> } }).remoteModule;
      const tablesWithout = Object.fromEntries(Object.entries(rm.tables).filter(([, t]) => t.sourceName !== 'mutation_receipt'));
      Object.defineProperty(b, 'remoteModule', { value: { ...rm, tables: tablesWithout } });
      return b;
    };
    const warned: Error[] = [];
    const c = client({ builder, storage: { open: openStorage, ...freshProfile(), memory: true } });
    c.errors$.subscribe((e) => warned.push(e));
    await c.ready;
    const w = warned.find((e) => e instanceof ReceiptsNotFoundError) as ReceiptsNotFoundError | undefined;
    expect(w, 'a ReceiptsNotFoundError').to.not.equal(undefined);
    expect(w!.info.reducers).to.include('sendChat');
    expect(w!.message).to.contain('receipts: { table:');
    const quiet: Error[] = [];
    const d = client({ builder, storage: { open: openStorage, ...freshProfile(), memory: true }, receipts: false });
    d.errors$.subscribe((e) => quiet.push(e));
    await d.ready;
    expect(quiet.filter((e) => e instanceof ReceiptsNotFoundError)).to.deep.equal([]);
    // With the bindings' own receipts table there is nothing to warn about.
    const withTable: Error[] = [];
    const e = client({ storage: { open: openStorage, ...freshProfile(), memory: true } });
    e.errors$.subscribe((x) => withTable.push(x));
    await e.ready;
    expect(withTable.filter((x) => x instanceof ReceiptsNotFoundError)).to.deep.equal([]);
  });

  it('the handle has catch and finally like a Promise', async () => {
    const c = client();
    await live(c);
    let done = false;
    const err = await c
      .call('sendChat', { text: '   ' })
      .finally(() => (done = true))
      .catch((e: Error) => e);
    expect(done).to.equal(true);
    expect((err as Error).message).to.contain('must not be empty');
    const ok = await c.call('sendChat', { text: 'fine' }).catch(() => 'unexpected');
    expect(ok).to.include({ status: 'confirmed' });
  });

  it('where is typed on the table\'s columns', async () => {
    const c = client();
    await live(c);
    await c.call('sendChat', { text: 'typed' });
    const rows = await next(c.table$(tables.chatMessage, { where: (r) => r.text.eq('typed') }), (m) => m.size === 1);
    expect([...rows.values()][0].text).to.equal('typed');
    // @ts-expect-error — no such column: caught at compile time (`npx tsc --noEmit`).
    const bad = () => c.table$(tables.chatMessage, { where: (r) => r.noSuchColumn.eq('x') });
    expect(bad).to.be.a('function');
  });
});
