import { expect } from 'chai';
import { createServer } from 'node:net';
import type { DevServer } from '../../devserver/index.ts';
import type { PlayerFacingError, SyncStatus } from '../../src/index.ts';
import { probeQuery } from '../../streams/socketAdapter.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

/** Nothing a player should read: timestamps, protocol message names, exception class names. */
const INTERNALS = /\d{10,}|InitialConnection|OneOffQuery|ServerMessage|TransactionUpdate|\w+Error\b|\bms\b/;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('sync client: connection quality at default settings (dev server faults)', () => {
  let server: DevServer | undefined;
  let client: BasicClient | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server?.stop();
    server = undefined;
  });

  it('an idle live link is probed with a valid no-row query: RTT appears, no error is raised or logged', async () => {
    server = await startBasicServer();
    // The probe is valid SQL answered with no rows, never an error answer.
    const raw = await RawClient.open(server);
    raw.send({ tag: 'OneOffQuery', value: { requestId: 7, queryString: probeQuery(['person']) } });
    const answer = await raw.next('OneOffQueryResult', (m) => m.value.requestId === 7);
    expect(answer.value.result.tag, JSON.stringify(answer.value.result)).to.equal('Ok');
    raw.ws.close();
    // `heartbeat` left out: the library defaults (interval 1.5 s, floor 1 s).
    client = basicClient(server, { heartbeat: undefined });
    const errors: Error[] = [];
    const esub = client.errors$.subscribe((e) => errors.push(e));
    await live(client);
    expect(client.status).to.deep.include({ quality: 'good' });
    const withRtt = await next(client.status$, (s) => s.rttMs !== undefined, 6000, 'a measured RTT');
    expect(withRtt.state).to.equal('live');
    expect(withRtt.rttMs).to.be.a('number').and.to.be.lessThan(1000);
    expect(withRtt.rttVarianceMs).to.be.a('number');
    const m = await next(client.metrics$);
    expect(m.probesSent).to.be.greaterThan(0);
    expect(m.probesAnswered).to.be.greaterThan(0);
    expect(errors).to.deep.equal([]);
    esub.unsubscribe();
  });

  it('blackhole: a call unanswered turns quality degraded within 1.5 s, the connection is rebuilt within 5 s, the call counts as lost', async () => {
    server = await startBasicServer();
    client = basicClient(server, { heartbeat: undefined });
    await live(client);
    const seen: SyncStatus[] = [];
    const ssub = client.status$.subscribe((s) => seen.push(s));
    const started = Date.now();
    server.faults.blackhole(8000);
    const outcome = client.call('addPerson', { name: 'into-the-void', age: 1 }).then(
      () => 'confirmed',
      (e: PlayerFacingError) => e.userMessage,
    );
    const degraded = await next(client.status$, (s) => s.quality === 'degraded', 3000, 'quality degraded');
    const degradedAfter = Date.now() - started;
    expect(degraded.state).to.equal('live');
    expect(degradedAfter, 'degraded within 1.5 s of the unanswered call').to.be.lessThan(1500);
    const reconnecting = await next(client.status$, (s) => s.state === 'reconnecting', 6000, 'reconnecting');
    expect(Date.now() - started, 'reconnecting within 5 s of the fault').to.be.lessThan(5000);
    // What a game shows while reconnecting: no RTT, a player-facing reason.
    expect(reconnecting).to.deep.include({ quality: 'lost', rttMs: undefined, rttVarianceMs: undefined });
    expect(reconnecting.lastError?.userMessage).to.equal('Connection lost — reconnecting');
    expect(reconnecting.lastError?.userMessage).to.not.match(INTERNALS);
    expect(await outcome).to.equal('Connection lost — this change may not have been saved');
    const m = await next(client.metrics$);
    expect(m.callsLost, 'the call in flight is lost, not rejected').to.equal(1);
    expect(m.callsRejected).to.equal(0);
    // Every status that is not live carries no RTT.
    for (const s of seen) if (s.state !== 'live') expect(s.rttMs, s.state).to.equal(undefined);
    ssub.unsubscribe();
  });

  it('blackhole on an idle link: reconnecting within 5 s though the game sends nothing', async () => {
    server = await startBasicServer();
    client = basicClient(server, { heartbeat: undefined });
    await live(client);
    const started = Date.now();
    server.faults.blackhole(8000);
    await next(client.status$, (s) => s.quality === 'degraded', 5000, 'quality degraded');
    await next(client.status$, (s) => s.state === 'reconnecting', 6000, 'reconnecting');
    expect(Date.now() - started).to.be.lessThan(5000);
  });

  it('a page resume probes at once with a deadline: a dead link is found without waiting for the probe interval', async () => {
    server = await startBasicServer();
    const events = new EventTarget();
    // A probe interval far longer than the test: only the resume check can find the blackhole.
    client = basicClient(server, { heartbeat: { interval: 60_000, timeout: 500 }, events });
    await live(client);
    server.faults.blackhole(8000);
    const started = Date.now();
    events.dispatchEvent(new Event('pageshow'));
    await next(client.status$, (s) => s.quality === 'degraded', 3000, 'quality degraded after the resume probe');
    await next(client.status$, (s) => s.state === 'reconnecting', 4000, 'reconnecting after the resume probe');
    expect(Date.now() - started).to.be.lessThan(3000);
  });

  it('a client that never connected says "Can\'t reach the server", not "Connection lost"', async () => {
    const port = await freePort();
    client = basicClient({ wsUrl: `ws://127.0.0.1:${port}`, database: 'nowhere' } as DevServer, { heartbeat: undefined, retry: { initialInterval: 5000, jitter: 'none' } });
    const s = await next(client.status$, (x) => x.state === 'reconnecting' && x.lastError !== null, 5000, 'the first failure');
    expect(s.lastError!.userMessage).to.equal("Can't reach the server");
    expect(s.lastError!.message, 'the technical message stays for logs').to.match(/connect/i);
  });
});
