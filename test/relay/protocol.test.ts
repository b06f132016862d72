/** The relay's wire protocol seen by a raw WebSocket: join, resume, history bound, bad input, tokens, limits. */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { Timestamp } from 'spacetimedb';
import type { Relay } from '../../relay/index.ts';
import { tables } from '../../demo/arena/bindings/index.ts';
import { until } from '../helpers/until.ts';
import { arenaClient, createMatch, rawSpectator, serverRows, serverStream, startArena, startRelay, type ArenaClient } from './helpers.ts';

describe('relay protocol (dev server, raw WebSocket spectators)', () => {
  let server: DevServer;
  let host: ArenaClient;
  let relay: Relay | undefined;
  let matchId: bigint;

  beforeEach(async () => {
    server = await startArena();
    host = arenaClient(server);
    matchId = await createMatch(server, host);
    await host.call('startMatch', { matchId });
  });

  afterEach(async () => {
    await relay?.close();
    relay = undefined;
    await host.close();
    await server.stop();
  });

  const hit = (i: number) => host.call('recordBattleEvent', { matchId, action: `hit${i}`, detail: '{}', scoreDelta: 1 });
  /** Waits until the relay published the server's current log. */
  async function settled(r: Relay, stream = `match/${matchId}`) {
    const spy = await rawSpectator(r, { stream });
    const want = serverStream(server, matchId).log.length;
    await spy.message((m) => m.t === 'snapshot' && Object.keys(m.data.log).length === want);
    spy.ws.close();
    return r.version(stream)!;
  }

  it('a spectator joining mid-match gets the current rows as a snapshot with a version', async () => {
    relay = await startRelay(server);
    for (let i = 0; i < 3; i++) await hit(i);
    const s = await rawSpectator(relay, { stream: `match/${matchId}` });
    const snap = await s.message((m) => m.t === 'snapshot');
    expect(snap.version).to.match(/^[0-9a-f]{16}$/);
    expect(snap.delayMs).to.equal(0);
    expect(snap.keys.log).to.equal('bigint');
    expect(Object.keys(snap.data.log).map(BigInt)).to.deep.equal(serverStream(server, matchId).log);
    expect(Object.values(snap.data.members)[0]).to.have.property('score', 3);
    // The id column arrives in the tagged bigint form of operators/jsonCodec.ts.
    expect(snap.data.match[String(matchId)].id).to.deep.equal({ $bigint: String(matchId) });
    s.ws.close();
  });

  it('a spectator reconnecting with its last version gets exactly the patches it missed, folded into one', async () => {
    relay = await startRelay(server);
    const v0 = await settled(relay);
    for (let i = 0; i < 4; i++) await hit(i);
    const want = serverStream(server, matchId).log.length;
    // Wait until the relay has published all four.
    const probe = await rawSpectator(relay, { stream: `match/${matchId}` });
    await probe.message((m) => m.t === 'snapshot' && Object.keys(m.data.log).length === want);
    probe.ws.close();
    const s = await rawSpectator(relay, { stream: `match/${matchId}`, since: v0 });
    const patch = await s.message();
    expect(patch).to.include({ t: 'patch', from: v0, n: 4, version: relay.version(`match/${matchId}`) });
    const added = patch.ops.filter((op: any) => op.op === 'add' && op.path.startsWith('/log/')).map((op: any) => op.value.action);
    expect(added).to.deep.equal(['hit0', 'hit1', 'hit2', 'hit3']);
    expect(s.messages.filter((m) => m.t === 'snapshot')).to.have.length(0);
    // Reconnecting at the head: an empty patch confirms the version.
    const again = await rawSpectator(relay, { stream: `match/${matchId}`, since: patch.version });
    expect(await again.message()).to.deep.include({ t: 'patch', from: patch.version, version: patch.version, n: 0, ops: [] });
    s.ws.close();
    again.ws.close();
  });

  it('one too far behind the bounded history, or with a version the relay never had, gets a fresh snapshot', async () => {
    relay = await startRelay(server, { history: { maxEntries: 2 }, resumeWaitMs: 50 });
    const v0 = await settled(relay);
    for (let i = 0; i < 3; i++) await hit(i);
    await settled(relay);
    const s = await rawSpectator(relay, { stream: `match/${matchId}`, since: v0 });
    const first = await s.message();
    expect(first.t).to.equal('snapshot');
    expect(Object.keys(first.data.log)).to.have.length(3);
    const unknown = await rawSpectator(relay, { stream: `match/${matchId}`, since: '00000000deadbeef' });
    expect((await unknown.message()).t).to.equal('snapshot');
    s.ws.close();
    unknown.ws.close();
  });

  it('malformed messages close only that spectator, with a clear reason', async () => {
    relay = await startRelay(server);
    const good = await rawSpectator(relay, { stream: `match/${matchId}` });
    await good.message((m) => m.t === 'snapshot');
    const cases: [unknown, RegExp][] = [
      ['not json', /not JSON/],
      [[1, 2], /not a JSON object/],
      [{ t: 'sql', query: 'SELECT * FROM player' }, /unknown message type "sql"/],
      [{ t: 'call', reducer: 'end_match' }, /unknown message type "call"/],
      [{ t: 'watch', stream: 7 }, /stream must be a non-empty string/],
      [{ t: 'watch', stream: 'match/1', since: 'yesterday' }, /since must be a version/],
      [{ t: 'watch', stream: 'match/1', sql: 'SELECT 1' }, /unknown field "sql"/],
    ];
    for (const [message, reason] of cases) {
      const bad = await rawSpectator(relay);
      bad.send(message);
      const closed = await bad.closed;
      expect(closed.code, JSON.stringify(message)).to.equal(4400);
      expect(closed.reason).to.match(reason);
    }
    // A second watch on one connection is refused too.
    const twice = await rawSpectator(relay, { stream: `match/${matchId}` });
    await twice.message((m) => m.t === 'snapshot');
    twice.send({ t: 'watch', stream: `match/${matchId}` });
    expect(await twice.closed).to.deep.equal({ code: 4400, reason: 'watch: already watching (one stream per connection)' });
    // Binary frames, oversized messages.
    const binary = await rawSpectator(relay);
    binary.ws.send(Buffer.from([1, 2, 3]));
    expect((await binary.closed).code).to.equal(4400);
    const huge = await rawSpectator(relay);
    huge.send({ t: 'watch', stream: 'x'.repeat(20_000) });
    expect((await huge.closed).code).to.equal(1009);
    // Unknown streams and parameters failing their check: the relay never builds a query from them.
    for (const stream of ['match', 'match/1/2', 'player/1', 'match/0', "match/1 OR 1=1", 'match/-1']) {
      const u = await rawSpectator(relay, { stream });
      expect((await u.closed).code, stream).to.equal(4404);
    }
    // The good spectator still gets its patches.
    await hit(9);
    const p = await good.message((m) => m.t === 'patch');
    expect(p.ops.some((op: any) => op.value?.action === 'hit9')).to.equal(true);
    good.ws.close();
  });

  it('the token hook decides who watches which stream', async () => {
    const seen: unknown[] = [];
    relay = await startRelay(server, {
      authorize: async ({ token, params, transport }) => {
        seen.push({ token, params: { ...params }, transport });
        if (token !== 'ticket-ok' && token !== 'ticket-other') return 'unauthorized';
        return token === 'ticket-ok' && params.id === String(matchId);
      },
    });
    const none = await rawSpectator(relay, { stream: `match/${matchId}` });
    expect(await none.closed).to.deep.equal({ code: 4401, reason: 'token refused' });
    const other = await rawSpectator(relay, { stream: `match/${matchId}`, token: 'ticket-other' });
    expect(await other.closed).to.deep.equal({ code: 4403, reason: `not allowed to watch match/${matchId}` });
    const ok = await rawSpectator(relay, { stream: `match/${matchId}`, token: 'ticket-ok' });
    expect((await ok.message()).t).to.equal('snapshot');
    expect(seen).to.deep.equal([
      { token: undefined, params: { id: String(matchId) }, transport: 'websocket' },
      { token: 'ticket-other', params: { id: String(matchId) }, transport: 'websocket' },
      { token: 'ticket-ok', params: { id: String(matchId) }, transport: 'websocket' },
    ]);
    ok.ws.close();
  });

  it('serves only what the relay\'s identity may read: a stream on a private table fails, no row reaches a spectator', async () => {
    await host.call('reportTelemetry', { events: [{ kind: 'fps', value: 60, clientTime: Timestamp.now() }] });
    expect(serverRows(server, 'telemetry')).to.have.length(1);
    // A table reference aimed at the module's private `telemetry` table (the bindings leave it out).
    const telemetry = Object.create(tables.chatMessage, { toSql: { value: () => 'SELECT * FROM telemetry' } });
    const failures: string[] = [];
    relay = await startRelay(server, {
      streams: { secrets: { tables: () => ({ telemetry: { table: telemetry } }) } },
      onError: (e, stream) => failures.push(`${stream}: ${e.message}`),
    });
    const s = await rawSpectator(relay, { stream: 'secrets' });
    const closed = await s.closed;
    expect(closed.code).to.equal(1011);
    expect(closed.reason).to.match(/^stream failed: .*telemetry/);
    expect(s.messages).to.deep.equal([]);
    expect(failures).to.have.length(1);
  });

  it('limits spectators per relay and the wait for the first message', async () => {
    relay = await startRelay(server, { maxSpectators: 2, watchTimeoutMs: 100 });
    const a = await rawSpectator(relay, { stream: `match/${matchId}` });
    const b = await rawSpectator(relay, { stream: `match/${matchId}` });
    await a.message();
    await b.message();
    const c = await rawSpectator(relay, { stream: `match/${matchId}` });
    expect(await c.closed).to.deep.equal({ code: 1013, reason: 'relay full (2 spectators)' });
    a.ws.close();
    await a.closed;
    await until(() => relay!.stats().spectators === 1, 'the relay to count the spectator');
    const silent = await rawSpectator(relay);
    expect(await silent.closed).to.deep.equal({ code: 4408, reason: 'no watch message in time' });
    b.ws.close();
  });

  it('serves Server-Sent Events with the same messages, resuming from Last-Event-ID', async () => {
    relay = await startRelay(server);
    const v0 = await settled(relay);
    await hit(1);
    await settled(relay);
    const res = await fetch(`${relay.url}/sse?stream=match/${matchId}`, { headers: { 'last-event-id': v0 } });
    expect(res.headers.get('content-type')).to.equal('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    const event = /^id: ([0-9a-f]{16})\nevent: patch\ndata: (.*)\n\n/.exec(text);
    expect(event, text).to.not.equal(null);
    expect(JSON.parse(event![2])).to.include({ t: 'patch', from: v0, n: 1 });
    expect(event![1]).to.equal(relay.version(`match/${matchId}`));
    await reader.cancel();
    const bad = await fetch(`${relay.url}/sse?stream=match/${matchId}&since=nope`);
    expect(bad.status).to.equal(400);
    expect(await bad.text()).to.match(/since must be a version/);
    const unknown = await fetch(`${relay.url}/sse?stream=nope/1`);
    expect(await unknown.text()).to.equal('event: close\ndata: {"code":4404,"reason":"unknown stream nope/1"}\n\n');
  });
});

