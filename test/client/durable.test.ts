/**
 * The client with storage, end to end: the arena module on the dev server,
 * the unmodified SDK over a real socket, the storage on fake-indexeddb (a
 * fresh IDBFactory per test). Effects are counted on the server: rows and
 * receipts.
 */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { ConnectionLostError, ReducerRejectedError, type OutboxState } from '../../src/index.ts';
import { InvalidArgsError, OfflineRefusedError } from '../../storage/errors.ts';
import type { Storage } from '../../storage/openStorage.ts';
import { until } from '../helpers/until.ts';
import { next } from '../helpers/syncClient.ts';
import { arenaClient, chatTexts, freshProfile, openArenaStorage, serverRows, startArena, type ArenaClient, type Profile } from './arena.ts';

const live = (c: ArenaClient) => next(c.status$, (s) => s.state === 'live', 10_000, 'live');
const outboxWhere = (c: ArenaClient, p: (s: OutboxState) => boolean, what = 'outbox state') => next(c.outbox$, p, 10_000, what);
const rejection = (h: PromiseLike<unknown>) =>
  h.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe('sync client with storage: durable calls (dev server + fake-indexeddb)', function () {
  this.timeout(30_000);
  let server: DevServer;
  let profile: Profile;
  const clients: ArenaClient[] = [];
  const storages: Storage[] = [];
  const client = (opts: Parameters<typeof arenaClient>[1] = {}) => {
    const c = arenaClient(server, opts);
    clients.push(c);
    return c;
  };
  const storage = async (p = profile, opts: Parameters<typeof openArenaStorage>[1] = {}) => {
    const s = await openArenaStorage(p, opts);
    storages.push(s);
    return s;
  };
  /** A live client whose connection then drops, with a long retry wait: calls made now queue. */
  const offlineAfterLive = async (opts: Parameters<typeof arenaClient>[1] = {}) => {
    const c = client({ retry: { initialInterval: 60_000, jitter: 'none' }, ...opts });
    await live(c);
    server.faults.dropAll();
    await next(c.status$, (s) => s.state === 'reconnecting');
    return c;
  };

  beforeEach(async () => {
    profile = freshProfile();
    // Every test counts effects from zero.
    server = await startArena();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of storages.splice(0)) await s.close();
    await server.stop();
  });

  it('writes every call to the outbox before sending it; a reload with a non-empty outbox replays it', async () => {
    const first = await offlineAfterLive({ storage: await storage() });
    const a = first.call('sendChat', { text: 'one' });
    const b = first.call('sendChat', { text: 'two' });
    const queued = await outboxWhere(first, (s) => s.queued === 2, 'two queued');
    expect(queued.pending.map((e) => e.reducer)).to.deep.equal(['send_chat', 'send_chat']);
    expect(chatTexts(server)).to.deep.equal([]);
    await first.close();
    // The handles of a closed client are settled, saying the calls stay in the outbox.
    const closedErr = await rejection(a);
    expect(closedErr).to.be.instanceOf(ConnectionLostError);
    expect(closedErr!.message).to.contain('stays in the outbox');
    await rejection(b);

    // "Reload": a new client on the same IndexedDB, with the token it stored.
    const opening = openArenaStorage(profile);
    void opening.then((s) => storages.push(s));
    const second = client({ storage: opening });
    await outboxWhere(second, (s) => s.pending.length === 0 && s.rejected.length === 0, 'outbox drained');
    await until(() => chatTexts(server).length === 2, 'both chats applied', 5000);
    expect(chatTexts(server)).to.deep.equal(['one', 'two']);
    expect(serverRows(server, 'mutation_receipt')).to.have.length(2);
    // Same identity as before the reload (token from storage), so the receipts are its own.
    const me = (await next(second.identity$)).toHexString();
    expect(serverRows(server, 'chat_message').every((r) => r.sender.toHexString() === me)).to.equal(true);
    expect(second.status.storage).to.equal('durable');
  });

  it('a drop after the server applied a call but before the client heard of it does not apply it twice (resolved by the receipt)', async () => {
    const c = client({ storage: await storage(), heartbeat: false });
    await live(c);
    server.faults.latency(150);
    const h = c.call('sendChat', { text: 'exactly once' });
    await until(() => chatTexts(server).length === 1, 'the server to apply the call', 5000);
    server.faults.dropAll(); // its ReducerResult is still held back by the latency: lost
    server.faults.latency(0);
    const done = await h;
    expect(done.status).to.equal('confirmed');
    expect(chatTexts(server)).to.deep.equal(['exactly once']);
    expect(serverRows(server, 'mutation_receipt')).to.have.length(1);
    // Resolved by the receipt after the reconnect: it was not sent a second time.
    const m = await next(c.metrics$);
    expect(m.messagesOut.CallReducer).to.equal(1);
    expect((await next(c.outbox$)).pending).to.deep.equal([]);
    // Confirmed by the receipt, not an answer: no latency is made up for it.
    expect(done.via).to.equal('receipt');
    expect(done.latencyMs).to.equal(undefined);
    expect(m.callsConfirmed).to.equal(1);
    expect(m.callLatency.count).to.equal(0);
  });

  it('a call sent into a blackhole is not left hanging: the heartbeat drops the connection and the call is sent again, once', async () => {
    const c = client({ storage: await storage(), heartbeat: { interval: 100, timeout: 200 } });
    await live(c);
    const lost: string[] = [];
    c.errors$.subscribe((e) => lost.push(e.name));
    server.faults.blackhole(1000);
    const h = c.call('sendChat', { text: 'into the void' });
    await h;
    expect(lost).to.include('HeartbeatTimeoutError');
    expect(chatTexts(server)).to.deep.equal(['into the void']);
    expect(serverRows(server, 'mutation_receipt')).to.have.length(1);
  });

  it('without the receipts subscription the lost call is sent again and the module skips the duplicate', async () => {
    const c = client({ storage: await storage(), heartbeat: false, receipts: false });
    await live(c);
    server.faults.latency(150);
    const h = c.call('sendChat', { text: 'replayed' });
    await until(() => chatTexts(server).length === 1, 'the server to apply the call', 5000);
    server.faults.dropAll();
    server.faults.latency(0);
    await h;
    const m = await next(c.metrics$);
    expect(m.messagesOut.CallReducer).to.equal(2);
    expect(chatTexts(server)).to.deep.equal(['replayed']);
    expect(serverRows(server, 'mutation_receipt')).to.have.length(1);
  });

  it('a rejected replay is reported and kept for the UI; later entries still go', async () => {
    const first = await offlineAfterLive({ storage: await storage() });
    for (const text of ['refused', 'after-1', 'after-2']) void rejection(first.call('sendChat', { text }));
    await outboxWhere(first, (s) => s.queued === 3);
    await first.close();

    server.faults.failNextReducers(1, 'not now');
    const second = client({ storage: await storage() });
    const errors: Error[] = [];
    second.errors$.subscribe((e) => errors.push(e));
    const state = await outboxWhere(second, (s) => s.pending.length === 0 && s.rejected.length === 1, 'one rejected, none pending');
    await until(() => chatTexts(server).length === 2, 'the later entries', 5000);
    expect(chatTexts(server)).to.deep.equal(['after-1', 'after-2']);
    expect(state.rejected[0].error?.message).to.contain('not now');
    expect(second.storage!.outbox.decodeArgs(state.rejected[0])).to.include({ text: 'refused' });
    const reported = errors.filter((e) => e instanceof ReducerRejectedError);
    expect(reported.map((e) => e.message)).to.deep.equal(['sendChat rejected: not now']);
    // Dismissed, it is gone.
    await second.storage!.outbox.dismiss([state.rejected[0].id]);
    await outboxWhere(second, (s) => s.rejected.length === 0);
  });

  it('drains queued calls pipelined by priority then FIFO; a newer call with the same supersede key replaces the queued one', async () => {
    const c = await offlineAfterLive({ storage: await storage() });
    const low1 = c.call('sendChat', { text: 'low-1' }, { priority: 0 });
    const move1 = c.call('sendChat', { text: 'move-1' }, { priority: 1, supersedeKey: 'move' });
    const high = c.call('sendChat', { text: 'high' }, { priority: 5 });
    const low2 = c.call('sendChat', { text: 'low-2' }, { priority: 0 });
    const move2 = c.call('sendChat', { text: 'move-2' }, { priority: 1, supersedeKey: 'move' });
    const superseded = await rejection(move1);
    expect(superseded).to.be.instanceOf(ReducerRejectedError);
    expect((superseded as ReducerRejectedError).info.kind).to.equal('superseded');
    await outboxWhere(c, (s) => s.queued === 4);
    let sent = 0;
    const msub = c.metrics$.subscribe((m) => (sent = m.messagesOut.CallReducer ?? 0));
    let sentAtFirstAnswer = -1;
    high.subscribe((o) => {
      if (o.status === 'confirmed') sentAtFirstAnswer = sent;
    });
    c.reconnectNow();
    await Promise.all([low1, high, low2, move2]);
    msub.unsubscribe();
    expect(chatTexts(server)).to.deep.equal(['high', 'move-2', 'low-1', 'low-2']);
    // Pipelined: all four calls were out before the first answer came back.
    expect(sentAtFirstAnswer).to.equal(4);
  });

  it('refuses bad arguments at once, before the outbox; online-only is refused while offline; expired calls are not sent', async () => {
    const s = await storage(profile, { reducers: { start_match: { offline: 'online-only' } } });
    const c = await offlineAfterLive({ storage: s });
    const bad = await rejection(c.call('sendChat', { text: 42 } as never));
    expect(bad).to.be.instanceOf(InvalidArgsError);
    expect(bad!.message).to.equal('send_chat: args.text must be a string, got 42');
    const offline = await rejection(c.call('startMatch', { matchId: 1n }));
    expect(offline).to.be.instanceOf(OfflineRefusedError);
    const stale = c.call('sendChat', { text: 'too late' }, { deadline: Date.now() });
    const kept = c.call('sendChat', { text: 'kept' });
    await outboxWhere(c, (st) => st.queued === 2);
    c.reconnectNow();
    const expired = await rejection(stale);
    expect((expired as ReducerRejectedError).info.kind).to.equal('expired');
    await kept;
    expect(chatTexts(server)).to.deep.equal(['kept']);
    expect((await s.outbox.entries()).length).to.equal(0);
  });

  it('durable: false calls skip the outbox and are rejected, not resent, when the connection drops in flight', async () => {
    const s = await storage();
    const c = client({ storage: s, heartbeat: false });
    await live(c);
    server.faults.latency(100);
    const h = c.call('sendChat', { text: 'per-frame' }, { durable: false });
    expect(await s.outbox.entries()).to.deep.equal([]);
    await until(() => chatTexts(server).length === 1, 'applied', 5000);
    server.faults.dropAll();
    server.faults.latency(0);
    expect(await rejection(h)).to.be.instanceOf(ConnectionLostError);
    await live(c);
    expect(chatTexts(server)).to.deep.equal(['per-frame']);
  });

  it('entries belong to their identity: after signOut they are quarantined, never sent under the new identity, until re-homed', async () => {
    const c = await offlineAfterLive({ storage: await storage() });
    const oldIdentity = (await next(c.identity$)).toHexString();
    void rejection(c.call('sendChat', { text: 'old-1' }));
    void rejection(c.call('sendChat', { text: 'old-2' }));
    await outboxWhere(c, (s) => s.queued === 2);
    await c.signOut();
    const fresh = await next(c.identity$, (i) => i.toHexString() !== oldIdentity, 10_000, 'a new identity');
    await live(c);
    // The stored session is the new identity's: the old token was cleared, not reused.
    let saved: string | null | undefined;
    for (let i = 0; i < 100 && saved !== fresh.toHexString(); i++) saved = (await c.storage!.tokens.session())?.identity;
    expect(saved).to.equal(fresh.toHexString());
    await c.call('sendChat', { text: 'new' });
    const state = await outboxWhere(c, (s) => s.quarantined.length === 2 && s.pending.length === 0);
    expect(chatTexts(server)).to.deep.equal(['new']);
    expect(serverRows(server, 'chat_message')[0].sender.toHexString()).to.equal(fresh.toHexString());
    expect(state.quarantined.every((e) => e.identity === oldIdentity)).to.equal(true);
    // The app re-homes them: they drain under the new identity.
    await c.storage!.outbox.rehome(state.quarantined.map((e) => e.id));
    await until(() => chatTexts(server).length === 3, 're-homed entries sent', 5000);
    expect(chatTexts(server)).to.deep.equal(['new', 'old-1', 'old-2']);
  });

  it('two clients on one database (two tabs): both enqueue, only the lease holder drains, every call applies once', async () => {
    const a = client({ storage: await storage() });
    await live(a);
    // The second tab: same profile, the token the first one stored.
    const b = client({ storage: await storage() });
    await live(b);
    expect((await next(b.identity$)).toHexString()).to.equal((await next(a.identity$)).toHexString());
    const handles = [
      a.call('sendChat', { text: 'a-1' }),
      b.call('sendChat', { text: 'b-1' }),
      a.call('sendChat', { text: 'a-2' }),
      b.call('sendChat', { text: 'b-2' }),
    ];
    await Promise.all(handles);
    expect([...chatTexts(server)].sort()).to.deep.equal(['a-1', 'a-2', 'b-1', 'b-2']);
    expect(serverRows(server, 'mutation_receipt')).to.have.length(4);
    const [ma, mb] = [await next(a.metrics$), await next(b.metrics$)];
    const sent = [ma.messagesOut.CallReducer ?? 0, mb.messagesOut.CallReducer ?? 0];
    // One tab sent all four, the other none.
    expect([...sent].sort()).to.deep.equal([0, 4]);
  });
});
