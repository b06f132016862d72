/**
 * Connection quality at the library's default heartbeat settings.
 *
 * `quality` — 20 blackholes with a game sending a move every 200 ms, and 20
 * with an idle game (each starting at a random point of the probe cycle):
 * time from the first unanswered call or probe to `quality: 'degraded'`, and
 * from the fault's start to `reconnecting` (p50 and p95). Also the idle cost:
 * probe bytes per minute on a quiet live link. The baseline is a bare SDK
 * connection, which has no liveness check: it notices a blackhole only when
 * the server closes the socket at the blackhole's end.
 *
 * `quality-soak` (`npm run bench -- --only quality-soak`, 5 minutes; 1 with
 * `--quick`): a healthy link with 300 ms ± 150 ms latency each way (the dev
 * server's latency fault, 150–450 ms per frame), the game alternating busy and
 * idle spells: no `degraded` and no reconnect may happen.
 *
 * @module
 */
import { Subscription } from 'rxjs';
import { percentile, result, sleep, until, type RunConfig, type ScenarioResult } from '../harness.ts';
import { DbConnection } from '../bench_bindings/index.ts';
import { args, rxClient, startBenchServer, whenLive, WireClient } from '../setup.ts';

const BLACKHOLE_MS = 12_000;

export async function quality(cfg: RunConfig): Promise<ScenarioResult> {
  const rounds = cfg.quick ? 5 : 20;
  const server = await startBenchServer();
  {
    const seeder = await WireClient.open(server);
    await seeder.callOk('seed', args.range(1n, 10));
    await seeder.close();
  }
  const client = rxClient(server, { retry: { initialInterval: 50, maxInterval: 200, jitter: 'full' } });
  await whenLive(client);
  let probesSent = 0;
  const probeTimes: number[] = [];
  const subs = new Subscription();
  subs.add(
    client.metrics$.subscribe((m) => {
      if (m.probesSent !== probesSent) {
        probesSent = m.probesSent;
        probeTimes.push(performance.now());
      }
    }),
  );
  let degradedAt = 0;
  let reconnectingAt = 0;
  subs.add(
    client.status$.subscribe((s) => {
      if (s.quality === 'degraded' && degradedAt === 0) degradedAt = performance.now();
      if (s.state === 'reconnecting' && reconnectingAt === 0) reconnectingAt = performance.now();
    }),
  );

  // Idle cost: bytes of probes (both ways) over a quiet live minute.
  const idleWindowMs = cfg.quick ? 15_000 : 30_000;
  await sleep(2_000);
  const m0 = await firstMetrics(client);
  await sleep(idleWindowMs);
  const m1 = await firstMetrics(client);
  const perMinute = 60_000 / idleWindowMs;
  const idleProbesPerMin = (m1.probesSent - m0.probesSent) * perMinute;
  const idleBytesPerMin = (m1.bytesOut - m0.bytesOut + (m1.bytesIn - m0.bytesIn)) * perMinute;

  const busyDegraded: number[] = [];
  const busyReconnecting: number[] = [];
  const idleDegraded: number[] = [];
  const idleReconnecting: number[] = [];
  for (const mode of ['busy', 'idle'] as const) {
    for (let i = 0; i < rounds; i++) {
      await whenLive(client, 30_000);
      // A fresh estimate and a random phase of the probe cycle.
      await sleep(2_000 + Math.random() * 1_500);
      degradedAt = 0;
      reconnectingAt = 0;
      const t0 = performance.now();
      server.faults.blackhole(BLACKHOLE_MS);
      let firstUnanswered = t0;
      let mover: ReturnType<typeof setInterval> | undefined;
      if (mode === 'busy') {
        let x = 0;
        const move = () => void client.call('move', { id: 1n, x: x++, y: 0 }).then(() => {}, () => {});
        move();
        mover = setInterval(move, 200);
      }
      await until(() => reconnectingAt !== 0, 20_000, `reconnecting (${mode} round ${i})`);
      if (mover) clearInterval(mover);
      if (mode === 'idle') {
        // The first probe sent after the fault began is the first unanswered one.
        const first = probeTimes.find((t) => t >= t0);
        if (first === undefined) throw new Error('no probe was sent during an idle blackhole');
        firstUnanswered = first;
      }
      if (degradedAt === 0) throw new Error(`reconnecting without degraded first (${mode} round ${i})`);
      (mode === 'busy' ? busyDegraded : idleDegraded).push(degradedAt - firstUnanswered);
      (mode === 'busy' ? busyReconnecting : idleReconnecting).push(reconnectingAt - t0);
      server.faults.clear();
    }
  }
  await whenLive(client, 30_000);

  // Baseline: a bare SDK connection notices nothing until the blackhole ends.
  const rawBlackholeMs = cfg.quick ? 4_000 : 8_000;
  let rawClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (rawClosed = resolve));
  await new Promise<void>((resolve, reject) => {
    DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(server.database)
      .withCompression('none')
      .onConnect(() => resolve())
      .onConnectError((_ctx, err) => reject(err))
      .onDisconnect(() => rawClosed())
      .build();
  });
  const baselineStart = performance.now();
  server.faults.blackhole(rawBlackholeMs);
  await closed;
  const rawClosedAt = performance.now() - baselineStart;

  subs.unsubscribe();
  await client.close();
  await server.stop();
  const p = (xs: number[], q: number) => Math.round(percentile(xs, q * 100));
  const figures = {
    busyDegradedP50Ms: p(busyDegraded, 0.5),
    busyDegradedP95Ms: p(busyDegraded, 0.95),
    idleDegradedP50Ms: p(idleDegraded, 0.5),
    idleDegradedP95Ms: p(idleDegraded, 0.95),
    degradedP95Ms: p([...busyDegraded, ...idleDegraded], 0.95),
    busyReconnectingP50Ms: p(busyReconnecting, 0.5),
    busyReconnectingP95Ms: p(busyReconnecting, 0.95),
    idleReconnectingP50Ms: p(idleReconnecting, 0.5),
    idleReconnectingP95Ms: p(idleReconnecting, 0.95),
    reconnectingP95Ms: p([...busyReconnecting, ...idleReconnecting], 0.95),
    idleProbesPerMin: Math.round(idleProbesPerMin),
    idleProbeBytesPerMin: Math.round(idleBytesPerMin),
  };
  return result({
    id: 'quality',
    title: `Connection quality: ${rounds} blackholes busy + ${rounds} idle, default heartbeat`,
    subjectLabel: 'stdb-rx status$ (quality, state)',
    baselineLabel: 'bare SDK connection (no liveness check)',
    warmup: 0,
    reps: rounds,
    figures,
    baseline: { reconnectingP95Ms: Math.round(rawClosedAt) },
    ratio: { reconnectingP95Ms: figures.reconnectingP95Ms / rawClosedAt },
    targets: [
      { label: 'degraded within 1.5 s of the first unanswered call or probe (p95, busy and idle)', metric: 'degradedP95Ms', of: 'figures', op: '<=', limit: 1500 },
      { label: 'reconnecting within 5 s of the fault, game sending (p95)', metric: 'busyReconnectingP95Ms', of: 'figures', op: '<=', limit: 5000 },
      { label: 'reconnecting within 5 s of the fault, game idle (p95)', metric: 'idleReconnectingP95Ms', of: 'figures', op: '<=', limit: 5000 },
      { label: 'idle cost: probe traffic ≤ 8 KB per minute (both ways)', metric: 'idleProbeBytesPerMin', of: 'figures', op: '<=', limit: 8192 },
    ],
    notes: [
      `Defaults: probe after 1.5 s of inbound silence; answer deadline srtt + 4·rttvar (RFC 6298), floor 1 s, ceiling 10 s; follow-up probe allowed twice the deadline.`,
      `Busy: a move call every 200 ms from the fault's start; "first unanswered" = the first call. Idle: nothing sent but probes; "first unanswered" = the first probe after the fault began.`,
      `Samples (ms) — busy degraded: ${busyDegraded.map(Math.round).join(', ')}; idle degraded: ${idleDegraded.map(Math.round).join(', ')}.`,
      `Samples (ms) — busy reconnecting: ${busyReconnecting.map(Math.round).join(', ')}; idle reconnecting: ${idleReconnecting.map(Math.round).join(', ')}.`,
      `Idle cost: ${figures.idleProbesPerMin} probes and ${figures.idleProbeBytesPerMin} bytes per minute (probe and answer, wire bytes), measured over ${idleWindowMs / 1000} s.`,
      `Baseline: a bare SDK connection saw the socket close ${Math.round(rawClosedAt)} ms after a ${rawBlackholeMs / 1000} s blackhole began, i.e. only when the server ended it.`,
    ],
    charts: [
      {
        title: 'Time to degraded / reconnecting (ms)',
        unit: 'ms',
        groups: {
          'degraded (busy)': { p50: figures.busyDegradedP50Ms, p95: figures.busyDegradedP95Ms },
          'degraded (idle)': { p50: figures.idleDegradedP50Ms, p95: figures.idleDegradedP95Ms },
          'reconnecting (busy)': { p50: figures.busyReconnectingP50Ms, p95: figures.busyReconnectingP95Ms },
          'reconnecting (idle)': { p50: figures.idleReconnectingP50Ms, p95: figures.idleReconnectingP95Ms },
        },
      },
    ],
  });
}

function firstMetrics(client: ReturnType<typeof rxClient>) {
  return new Promise<{ probesSent: number; bytesOut: number; bytesIn: number }>((resolve) => {
    const s = client.metrics$.subscribe((m) => {
      resolve(m);
      queueMicrotask(() => s.unsubscribe());
    });
  });
}

export async function qualitySoak(cfg: RunConfig): Promise<ScenarioResult> {
  const minutes = cfg.quick ? 1 : 5;
  const server = await startBenchServer();
  {
    const seeder = await WireClient.open(server);
    await seeder.callOk('seed', args.range(1n, 10));
    await seeder.close();
  }
  server.faults.latency(150, 300);
  const client = rxClient(server);
  await whenLive(client, 60_000);
  let degraded = 0;
  let reconnects = 0;
  let lastQuality = client.status.quality;
  let lastState = client.status.state;
  let rttSamples: number[] = [];
  const sub = client.status$.subscribe((s) => {
    if (s.quality === 'degraded' && lastQuality !== 'degraded') degraded++;
    if (lastState === 'live' && s.state !== 'live') reconnects++;
    if (s.rttMs !== undefined) rttSamples.push(s.rttMs);
    lastQuality = s.quality;
    lastState = s.state;
  });
  const end = performance.now() + minutes * 60_000;
  let x = 0;
  let calls = 0;
  let failed = 0;
  while (performance.now() < end) {
    // A busy spell (a move every 100–400 ms for 5–15 s), then an idle one (5–20 s).
    const busyUntil = performance.now() + 5_000 + Math.random() * 10_000;
    while (performance.now() < Math.min(busyUntil, end)) {
      calls++;
      void client.call('move', { id: 1n, x: x++, y: 0 }).then(() => {}, () => failed++);
      await sleep(100 + Math.random() * 300);
    }
    await sleep(Math.min(Math.max(0, end - performance.now()), 5_000 + Math.random() * 15_000));
  }
  await sleep(3_000);
  sub.unsubscribe();
  const m = await firstMetrics(client);
  await client.close();
  await server.stop();
  rttSamples = rttSamples.sort((a, b) => a - b);
  return result({
    id: 'quality-soak',
    title: `Connection quality: ${minutes} min healthy link, 300 ms ± 150 ms latency each way`,
    subjectLabel: 'stdb-rx status$ at default heartbeat settings',
    baselineLabel: '(none: false alarms must be zero)',
    warmup: 0,
    reps: 1,
    figures: { falseDegraded: degraded, falseReconnects: reconnects, calls, callsFailed: failed, probesSent: m.probesSent, minutes },
    baseline: {},
    ratio: {},
    targets: [
      { label: `no false degraded on a healthy 300 ± 150 ms link (${minutes} min)`, metric: 'falseDegraded', of: 'figures', op: '==', limit: 0 },
      { label: `no false reconnect on a healthy 300 ± 150 ms link (${minutes} min)`, metric: 'falseReconnects', of: 'figures', op: '==', limit: 0 },
    ],
    notes: [
      'Latency fault: every frame both ways delayed 150 ms + up to 300 ms (uniform), order kept per connection: round trips of 300–900 ms.',
      `The game alternates busy spells (a move every 100–400 ms) and idle ones (5–20 s, only probes). ${calls} calls, ${failed} failed.`,
      `Smoothed RTT shown in status$: ${rttSamples.length ? `${Math.round(rttSamples[0])}–${Math.round(rttSamples[rttSamples.length - 1])} ms` : 'none'}.`,
      'Run with `npm run bench -- --only quality-soak` (5 minutes); a run of other scenarios keeps its last result.',
    ],
  });
}
