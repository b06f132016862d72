/**
 * 9. Views and row-level security: what recomputing views per commit costs.
 * The same one-row write per reducer call, followed by N subscribed clients
 * through four kinds of subscription — a plain table (the baseline), a table
 * behind a visibility filter (`owner = :sender`), a per-caller view (each
 * subscriber's own rows) and an anonymous view summing the whole table.
 * Each kind runs on a fresh dev server, in rotating order.
 */
import { fileURLToPath } from 'node:url';
import { BinaryWriter } from 'spacetimedb';
import { startDevServer, type DevServer } from '../../devserver/index.ts';
import { accessFor } from '../../devserver/subscriptions.ts';
import { median, now, result, until, type RunConfig, type ScenarioResult } from '../harness.ts';
import { WireClient } from '../setup.ts';

const MODULE = fileURLToPath(new URL('../views.module.ts', import.meta.url));
const ROWS_EACH = 10;

const KINDS = {
  table: 'SELECT * FROM item',
  rls: 'SELECT * FROM owned',
  view: 'SELECT * FROM my_items',
  anonView: 'SELECT * FROM item_total',
} as const;
type Kind = keyof typeof KINDS;

const drained = (server: DevServer, clients: WireClient[]) => () => clients.reduce((n, c) => n + c.bytesIn, 0) === server.stats().bytesOut;

function u64Args(...values: (bigint | number)[]): Uint8Array {
  const w = new BinaryWriter(16);
  values.forEach((v, i) => (i === 0 ? w.writeU64(BigInt(v)) : w.writeU32(Number(v))));
  return w.getBuffer().slice();
}

async function measure(kind: Kind, subscribers: number, calls: number): Promise<{ rate: number; viewRunsPerCall: number }> {
  const server = await startDevServer({ module: MODULE, port: 0, database: 'views-bench' });
  const clients: WireClient[] = [];
  try {
    for (let i = 0; i < subscribers; i++) {
      const c = await WireClient.open(server, { decode: false });
      clients.push(c);
      await c.callOk('seed', u64Args(1 + i * ROWS_EACH, ROWS_EACH));
      await c.subscribe(KINDS[kind]);
    }
    const caller = await WireClient.open(server);
    clients.push(caller);
    const views = accessFor(server.module, undefined).views;
    const runs0 = views.runs;
    const total = subscribers * ROWS_EACH;
    const window = 32;
    let sent = 0;
    const t0 = now();
    const worker = async () => {
      while (sent < calls) {
        const i = sent++;
        await caller.callOk('bump', u64Args(1 + ((i * 7919) % total)));
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    await until(drained(server, clients), 60_000, 'fan-out', 0);
    return { rate: calls / ((now() - t0) / 1000), viewRunsPerCall: (views.runs - runs0) / calls };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  }
}

export async function viewsCost(cfg: RunConfig): Promise<ScenarioResult> {
  const subscribers = cfg.quick ? 20 : 100;
  const calls = cfg.quick ? 300 : 500;
  const reps = cfg.quick ? 1 : 3;
  const kinds = Object.keys(KINDS) as Kind[];
  const rates: Record<Kind, number[]> = { table: [], rls: [], view: [], anonView: [] };
  const runs: Record<Kind, number[]> = { table: [], rls: [], view: [], anonView: [] };
  for (let r = -1; r < reps; r++) {
    // Rotate the order so no kind always runs first (or last) on a noisy machine.
    const order = kinds.map((_, i) => kinds[(i + Math.max(0, r)) % kinds.length]);
    for (const kind of order) {
      const m = await measure(kind, subscribers, r < 0 ? 50 : calls);
      if (r < 0) continue;
      rates[kind].push(m.rate);
      runs[kind].push(m.viewRunsPerCall);
    }
  }
  const table = median(rates.table);
  const figures = {
    callsPerSec_rls: median(rates.rls),
    callsPerSec_view: median(rates.view),
    callsPerSec_anonView: median(rates.anonView),
    callsPerSec_table: table,
    viewRunsPerCall_view: median(runs.view),
    viewRunsPerCall_anonView: median(runs.anonView),
  };
  return result({
    id: 'views',
    title: `Views and row-level security: reducer throughput with ${subscribers} subscribers`,
    subjectLabel: 'filtered table / view',
    baselineLabel: 'plain table',
    warmup: 1,
    reps,
    figures,
    baseline: { callsPerSec_rls: table, callsPerSec_view: table, callsPerSec_anonView: table },
    targets: [],
    notes: [
      `${subscribers} clients each own ${ROWS_EACH} rows and subscribe to one query; a caller makes ${calls} 'bump' calls (32 in flight), each changing one row in the plain table and one in the filtered table. A call counts once every subscriber has received every byte the server sent.`,
      'Filtered table: the filter reads only the row, so each transaction\'s changes are filtered per subscriber (no recomputation). Per-caller view (`ctx.db.item.owner.filter(ctx.sender)`): each run records the index keys it looked up, so a commit reruns only the views of the subscriber whose row changed (viewRunsPerCall_view ≈ 1), compares the result with what that subscriber has and sends the difference. Anonymous view: it scans the whole table, so every commit reruns it — once for all subscribers (viewRunsPerCall_anonView ≈ 1).',
    ],
    charts: [
      {
        title: `Reducer calls per second with ${subscribers} subscribers, by what they subscribe to`,
        unit: 'calls/s',
        groups: {
          'plain table': { 'calls/s': table },
          'visibility filter': { 'calls/s': figures.callsPerSec_rls },
          'per-caller view': { 'calls/s': figures.callsPerSec_view },
          'anonymous view': { 'calls/s': figures.callsPerSec_anonView },
        },
      },
    ],
  });
}
