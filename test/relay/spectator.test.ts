/** The spectator client against a relay on the dev server: status, delay badge, refusals, healing. */
import { expect } from 'chai';
import { BehaviorSubject } from 'rxjs';
import type { DevServer } from '../../devserver/index.ts';
import { createRelay, type Relay } from '../../relay/index.ts';
import { SpectatorRefusedError, SpectatorUnknownTableError, type Spectator, type SpectatorStatus } from '../../src/index.ts';
import { arenaClient, createMatch, next, rawSpectator, spectate, startArena, startBalancer, startRelay, type ArenaClient } from './helpers.ts';
import { until } from '../helpers/until.ts';

describe('spectator client (dev server, relay, real sockets)', () => {
  let server: DevServer;
  let host: ArenaClient;
  let relay: Relay;
  let spectator: Spectator | undefined;
  let matchId: bigint;

  beforeEach(async () => {
    server = await startArena({ admin: true });
    host = arenaClient(server);
    matchId = await createMatch(server, host);
  });

  afterEach(async () => {
    await spectator?.close();
    spectator = undefined;
    await relay.close();
    await host.close();
    await server.stop();
  });

  it('late subscribers get the current rows at once; status shows the delay and the version', async () => {
    relay = await startRelay(server, { delayMs: 50 });
    spectator = spectate(relay, `match/${matchId}`);
    const live = await next(spectator.status$, (s) => s.state === 'live');
    expect(live).to.include({ delayMs: 50, upstream: 'live', stale: false, storage: 'none' });
    expect(live.version).to.match(/^[0-9a-f]{16}$/);
    await next(spectator.table$('match'), (m) => m.size === 1);
    const seen: number[] = [];
    const sub = spectator.table$('members').subscribe((m) => seen.push(m.size));
    expect(seen).to.deep.equal([1]);
    const first: string[] = [];
    spectator.changes$('members').subscribe((b) => first.push(b.map((c) => c.op).join(',')));
    expect(first).to.deep.equal(['insert']);
    sub.unsubscribe();
  });

  it('a table the stream does not have is a typed error, before and after the first snapshot', async () => {
    relay = await startRelay(server);
    spectator = spectate(relay, `match/${matchId}`);
    const early = next(spectator.table$('chat'), () => true).then(
      () => expect.fail('should error'),
      (e: Error) => e,
    );
    await next(spectator.status$, (s) => s.state === 'live');
    const e1 = await early;
    expect(e1).to.be.instanceOf(SpectatorUnknownTableError);
    expect((e1 as SpectatorUnknownTableError).info).to.deep.equal({ stream: `match/${matchId}`, table: 'chat', tables: ['match', 'members', 'log', 'nodes'] });
    const e2 = await next(spectator.changes$('player'), () => true).then(
      () => expect.fail('should error'),
      (e: Error) => e,
    );
    expect(e2.message).to.equal(`stream match/${matchId} has no table "player" (it has "match", "members", "log", "nodes")`);
    // The stream's own tables are unaffected.
    expect((await next(spectator.table$('match'))).size).to.equal(1);
  });

  it('a refused stream stops retrying: offline with a typed error', async () => {
    relay = await startRelay(server, { authorize: ({ token }) => (token === 'ok' ? true : 'unauthorized') });
    spectator = spectate(relay, `match/${matchId}`, { token: () => 'wrong' });
    const offline = await next(spectator.status$, (s) => s.state === 'offline');
    expect(offline.lastError).to.be.instanceOf(SpectatorRefusedError);
    expect((offline.lastError as unknown as SpectatorRefusedError).info).to.deep.equal({ kind: 'unauthorized', code: 4401, reason: 'token refused', stream: `match/${matchId}` });
    await spectator.close();
    spectator = spectate(relay, 'nope/1');
    const unknown = await next(spectator.status$, (s) => s.state === 'offline');
    expect((unknown.lastError as unknown as SpectatorRefusedError).info.kind).to.equal('unknown-stream');
  });

  it('heals a connection that went silent (heartbeat) and one cut off, resuming from its version without a snapshot', async () => {
    relay = await startRelay(server);
    const balancer = await startBalancer([relay.port]);
    spectator = spectate(balancer.url, `match/${matchId}`, { heartbeat: { interval: 100, timeout: 150 } });
    await next(spectator.status$, (s) => s.state === 'live');
    const errors: Error[] = [];
    spectator.errors$.subscribe((e) => errors.push(e));
    // Silence: the connection stays open but nothing passes any more.
    balancer.freeze();
    const lost = await next(spectator.status$, (s) => s.state === 'reconnecting', 3000, 'heartbeat timeout');
    expect(lost.lastError?.name).to.equal('HeartbeatTimeoutError');
    expect(lost.stale).to.equal(true);
    await next(spectator.status$, (s) => s.state === 'live', 3000, 'live again');
    // Cut off while the match moves on.
    balancer.drop();
    await host.call('startMatch', { matchId });
    await next(spectator.table$<any>('match'), (m) => m.get(matchId)?.state.tag === 'Battle', 5000);
    expect(errors.map((e) => e.name)).to.include.members(['HeartbeatTimeoutError', 'ConnectionLostError']);
    // Every reconnect resumed from the history: the only snapshot was the first.
    expect(relay.stats().snapshots).to.equal(1);
    expect(relay.stats().resumes).to.be.greaterThanOrEqual(2);
    expect(relay.stats().transactions).to.be.greaterThan(0);
    expect(relay.stats().fanOutMs).to.be.greaterThan(0);
    await balancer.close();
  });

  it('tells spectators when the relay loses SpacetimeDB, and catches up once it is back', async () => {
    relay = await startRelay(server);
    spectator = spectate(relay, `match/${matchId}`);
    await next(spectator.status$, (s) => s.state === 'live');
    const states: string[] = [];
    spectator.status$.subscribe((s: SpectatorStatus) => states.push(s.upstream));
    const res = await fetch(`${server.url}/_dev/drop-all`, { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } });
    expect(res.status).to.equal(200);
    await next(spectator.status$, (s) => s.upstream !== 'live', 5000, 'upstream not live');
    await next(spectator.status$, (s) => s.upstream === 'live', 5000, 'upstream live again');
    await host.call('startMatch', { matchId });
    await next(spectator.table$<any>('match'), (m) => m.get(matchId)?.state.tag === 'Battle');
    expect(states[0]).to.equal('live');
    expect(states.some((s) => s !== 'live')).to.equal(true);
  });
});

describe('relay: slow spectators (scripted upstream, real sockets)', () => {
  const blob = (i: number) => String(i).padEnd(32 * 1024, 'x');
  async function setup(maxLagMs: number) {
    const rows = new BehaviorSubject(new Map<number, { blob: string }>());
    const status$ = new BehaviorSubject({ state: 'live' as const });
    const upstream = { table$: () => rows.asObservable(), status$, get status() { return status$.value; } } as any;
    const relay = await createRelay({
      upstream,
      streams: { big: { tables: () => ({ blobs: { table: {} as any } }) } },
      maxBufferBytes: 64 * 1024,
      maxLagMs,
      compression: false,
    });
    const slow = await rawSpectator(relay, { stream: 'big' }, { perMessageDeflate: false });
    const fast = await rawSpectator(relay, { stream: 'big' }, { perMessageDeflate: false });
    await slow.message((m) => m.t === 'snapshot');
    await fast.message((m) => m.t === 'snapshot');
    slow.tcp.pause();
    let i = 0;
    const patches = (n: number) => fast.message(() => fast.messages.filter((m) => m.t === 'patch').length >= n);
    const push = async () => {
      rows.next(new Map([[1, { blob: blob(++i) }]]));
      await patches(i);
    };
    // Until the slow spectator's socket buffers are full and the relay holds back.
    while (relay.stats().lagging === 0 && i < 3000) await push();
    return { relay, slow, fast, push };
  }

  it('stops sending past the budget, and brings the spectator back with one folded message once it reads again', async () => {
    const { relay, slow, fast, push } = await setup(10_000);
    try {
      expect(relay.stats().lagging).to.equal(1);
      const sentWhenLagging = relay.stats().bytesSent;
      for (let k = 0; k < 5; k++) await push();
      // Only the fast spectator got the five: the slow one's buffer did not grow.
      const perPatch = fast.messages.at(-1) && JSON.stringify(fast.messages.at(-1)).length;
      expect(relay.stats().bytesSent - sentWhenLagging).to.be.lessThan(6 * perPatch);
      slow.tcp.resume();
      const head = relay.version('big');
      const last = await slow.message((m) => m.version === head, 10_000);
      // Everything it missed came as one patch folding the transactions, or as one snapshot (the fold would exceed the budget here).
      expect(last.t).to.equal('snapshot');
      expect(last.data.blobs['1'].blob).to.equal(fast.messages.at(-1).ops[0].value);
      expect(relay.stats().lagging).to.equal(0);
      fast.ws.close();
      slow.ws.close();
    } finally {
      await relay.close();
    }
  });

  it('closes a spectator that stays behind longer than maxLagMs, and keeps serving the others', async () => {
    const { relay, slow, fast, push } = await setup(200);
    try {
      // Cut within maxLagMs plus the close grace.
      await until(() => relay.stats().spectators <= 1, 'the lagging spectator to be cut', 10_000);
      expect(relay.stats().lagging).to.equal(0);
      await push();
      slow.tcp.resume();
      const closed = await slow.closed;
      expect(closed.code).to.be.oneOf([4409, 1006]);
      fast.ws.close();
    } finally {
      await relay.close();
    }
  });
});
