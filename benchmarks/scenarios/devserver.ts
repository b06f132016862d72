/**
 * 7. Dev server: reducer calls per second with 1, 10 and 100 subscribed
 * clients (every call changes one row all of them follow), and the time to
 * serve 1,000 concurrent subscribed WebSocket connections, then one
 * transaction fanned out to all of them. The clients are lean protocol
 * clients (ws + the dev server's codecs) in the same process; a call counts
 * when its result is back and every subscriber has received every byte the
 * server sent.
 */
import type { DevServer } from '../../devserver/index.ts';
import { median, now, result, until, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, seedEntities, startBenchServer, WireClient } from '../setup.ts';

const ROWS = 100;

/** Every byte the server sent has arrived at its clients (all connections are in `clients`). */
const drained = (server: DevServer, clients: WireClient[]) => () => clients.reduce((n, c) => n + c.bytesIn, 0) === server.stats().bytesOut;

export async function devServer(cfg: RunConfig): Promise<ScenarioResult> {
  const figures: Record<string, number> = {};
  const calls = cfg.quick ? 600 : 3000;
  const window = 32;
  const reps = cfg.quick ? 1 : 3;
  const groups: Record<string, Record<string, number>> = {};
  {
    const server = await startBenchServer();
    const caller = await WireClient.open(server);
    const clients = [caller];
    await seedEntities(caller, ROWS);
    await caller.subscribe('SELECT * FROM entity');
    for (const n of [1, 10, 100]) {
      while (clients.length < n) {
        const c = await WireClient.open(server, { decode: false });
        await c.subscribe('SELECT * FROM entity');
        clients.push(c);
      }
      const rates: number[] = [];
      for (let r = -1; r < reps; r++) {
        const count = r < 0 ? 100 : calls;
        const t0 = now();
        let sent = 0;
        const worker = async () => {
          while (sent < count) {
            const i = sent++;
            await caller.callOk('move', args.move(BigInt(1 + (i % ROWS)), i, r));
          }
        };
        await Promise.all(Array.from({ length: window }, worker));
        await until(drained(server, clients), 60_000, 'fan-out', 0);
        if (r >= 0) rates.push(count / ((now() - t0) / 1000));
      }
      figures[`callsPerSec_${n}`] = median(rates);
      groups[`${n} client${n > 1 ? 's' : ''}`] = { 'calls/s': median(rates) };
    }
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }

  // 1,000 concurrent subscribed connections.
  const target = 1000;
  {
    const server = await startBenchServer();
    const seeder = await WireClient.open(server);
    await seedEntities(seeder, ROWS);
    const clients: WireClient[] = [seeder];
    const t0 = now();
    const batch = 100;
    let failed = 0;
    for (let i = 0; i < target; i += batch) {
      const opened = await Promise.allSettled(
        Array.from({ length: Math.min(batch, target - i) }, async () => {
          const c = await WireClient.open(server, { decode: false });
          clients.push(c);
          // Subscribe and wait for SubscribeApplied (needs decoding for this one reply).
          await c.subscribe('SELECT * FROM entity');
        }),
      );
      failed += opened.filter((o) => o.status === 'rejected').length;
    }
    figures.connect1000Ms = now() - t0;
    figures.connectedSubscribed = server.stats().connections - 1;
    figures.failedConnections = failed;
    // One transaction, fanned out to every subscriber.
    const f0 = now();
    await seeder.callOk('move', args.move(1n, -1, -1));
    await until(drained(server, clients), 60_000, 'fan-out to 1,000', 0);
    figures.fanout1000Ms = now() - f0;
    figures.heapMiBWith1000 = process.memoryUsage().heapUsed / 2 ** 20;
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }

  return result({
    id: 'devserver',
    title: 'Dev server: reducer throughput and 1,000 subscribed connections',
    subjectLabel: 'dev server',
    baselineLabel: '',
    warmup: 1,
    reps,
    figures,
    baseline: {},
    targets: [{ label: 'holds 1,000 concurrent subscribed WebSocket clients', metric: 'connectedSubscribed', of: 'figures', op: '>=', limit: target }],
    notes: [
      `Throughput: ${calls} one-row 'move' calls per repetition from one client keeping ${window} calls in flight; the other clients are subscribed to the same ${ROWS}-row table, so each call is one transaction fanned out to all of them. The clients run in the server's process.`,
      `1,000 connections: opened ${100} at a time, each subscribing to the ${ROWS}-row table; the time runs until the last SubscribeApplied. Fan-out: one transaction until every byte reached every client.`,
    ],
    charts: [{ title: 'Reducer calls per second, by subscribed clients', unit: 'calls/s', groups }],
  });
}
