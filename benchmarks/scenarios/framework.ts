/**
 * Against what a user would pick instead: the SDK's own framework
 * integrations (`useTable` for React and its Solid/Svelte/Vue/Angular
 * siblings) rebuild the whole table as an array — `Array.from(table.iter())`
 * — on the first row event of every transaction. That strategy, stdb-rx's
 * `table$` snapshot, and the raw callbacks (the floor: the SDK's own decode
 * and cache) consume the same small transactions on a large table: time per
 * transaction on the client and garbage per transaction.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { tables, type Entity } from '../bench_bindings/index.ts';
import { median, now, result, settledHeap, sideBySide, sleep, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, connectRaw, frameClock, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from '../setup.ts';

type Strategy = 'rx' | 'useTable' | 'raw';

export async function framework(cfg: RunConfig): Promise<ScenarioResult> {
  const rows = cfg.quick ? 20_000 : 100_000;
  const sizes = [10, 1_000];
  const txs = cfg.quick ? 5 : 9;
  const reps = cfg.quick ? 1 : 2;
  const server = await startBenchServer();
  const driver = await WireClient.open(server);
  await seedEntities(driver, rows);
  // Collections seen, to drop the garbage sample of a transaction during which one ran.
  const gcs: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(e.startTime, e.startTime + e.duration);
  });
  observer.observe({ entryTypes: ['gc'] });
  const collectedBetween = (from: number, to: number) => {
    for (let i = 0; i < gcs.length; i += 2) if (gcs[i] <= to && gcs[i + 1] >= from) return true;
    return false;
  };
  let cursor = 0;
  // A young-generation collection before each transaction (cheap even with 100,000 rows in the old one).
  const gcFn = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
  const collect = () => (gcFn ? gcFn({ type: 'minor' }) : void settledHeap());

  /** One connection consuming `txs` transactions of each size with one strategy; medians per size. */
  const consume = async (strategy: Strategy): Promise<Metrics> => {
    let doneAt: number | undefined;
    let doneHeap = 0;
    let expect = 0;
    let seen = 0;
    let sink = 0;
    let close: () => Promise<void>;
    const done = () => {
      doneHeap = process.memoryUsage().heapUsed;
      doneAt = now();
    };
    if (strategy === 'rx') {
      const client = rxClient(server);
      await whenLive(client, 60_000);
      let latest: ReadonlyMap<unknown, Entity> | undefined;
      let initial = true;
      const sub = client.table$(tables.entity).subscribe((snapshot) => {
        latest = snapshot;
        if (initial) return;
        sink += snapshot.size;
        if (doneAt === undefined) done();
      });
      await until(() => latest?.size === rows, 60_000, 'initial rows');
      initial = false;
      close = async () => {
        sub.unsubscribe();
        await client.close();
      };
    } else {
      const conn = await connectRaw(server);
      const table = conn.db.entity;
      let lastEvent: string | undefined;
      let state: Entity[] = [];
      const onRow = (ctx: { event?: { id?: string } }, row: Entity) => {
        if (strategy === 'useTable') {
          // What useTable does: on the first row event of a transaction, the whole table as a new array.
          const id = ctx.event?.id;
          if (id !== lastEvent) {
            lastEvent = id;
            state = Array.from(table.iter());
            sink += state.length;
            if (expect > 0 && doneAt === undefined) done();
          }
        } else {
          sink += row.hp;
          if (++seen === expect) done();
        }
      };
      table.onInsert(onRow);
      table.onUpdate((ctx, _old, row) => onRow(ctx, row));
      table.onDelete(onRow);
      await subscribeRaw(conn, 'SELECT * FROM entity');
      close = async () => {
        state = [];
        conn.disconnect();
      };
    }
    const out: Metrics = {};
    frameClock.trackHeap = true;
    try {
      for (const size of sizes) {
        const times: number[] = [];
        const garbage: number[] = [];
        for (let i = 0; i < txs; i++) {
          collect(); // start each transaction with an empty young generation
          seen = 0;
          expect = size;
          doneAt = undefined;
          const from = BigInt(1 + ((cursor++ * size) % rows));
          void driver.callOk('touch', args.range(from, size));
          await until(() => doneAt !== undefined, 30_000, 'a transaction', 0);
          const arrivedAt = frameClock.lastAt;
          const arrivedHeap = frameClock.lastHeap;
          const at = doneAt!;
          times.push(at - arrivedAt);
          await sleep(5); // let the gc entries of this transaction arrive
          if (!collectedBetween(arrivedAt, at)) garbage.push(doneHeap - arrivedHeap);
          expect = 0;
        }
        out[`txMs_${size}`] = median(times);
        out[`garbageBytes_${size}`] = garbage.length ? median(garbage) : NaN;
      }
    } finally {
      frameClock.trackHeap = false;
      await close();
      await sleep(300);
    }
    void sink;
    return out;
  };

  const started = now();
  const vsUseTable = await sideBySide(() => consume('rx'), () => consume('useTable'), { warmup: 0, reps });
  const vsRaw = await sideBySide(() => consume('rx'), () => consume('raw'), { warmup: 0, reps: 1 });
  observer.disconnect();
  await driver.close();
  await server.stop();
  const raw = vsRaw.baseline;
  const figures: Metrics = {};
  for (const size of sizes) {
    figures[`txMs_${size}`] = vsUseTable.subject[`txMs_${size}`];
    figures[`garbageBytes_${size}`] = vsUseTable.subject[`garbageBytes_${size}`];
  }
  const perRow = (size: number) => `${size.toLocaleString('en')}-row`;
  return result({
    id: 'framework',
    title: `Against the SDK's framework integrations: ${rows.toLocaleString('en')}-row table, ${sizes.map(perRow).join(' and ')} transactions`,
    subjectLabel: 'stdb-rx table$ (one snapshot per transaction)',
    baselineLabel: "useTable-style: Array.from(table.iter()) on each transaction's first row event",
    warmup: 0,
    reps,
    figures: {
      ...figures,
      ...Object.fromEntries(sizes.flatMap((s) => [[`rawTxMs_${s}`, raw[`txMs_${s}`]], [`rawGarbageBytes_${s}`, raw[`garbageBytes_${s}`]]])),
    },
    baseline: vsUseTable.baseline,
    ratio: vsUseTable.ratio,
    targets: sizes.flatMap((s) => [
      { label: `${perRow(s)} transaction: stdb-rx time < useTable-style (ratio reported)`, metric: `txMs_${s}`, op: '<=' as const, limit: 1 },
      { label: `${perRow(s)} transaction: stdb-rx garbage < useTable-style (ratio reported)`, metric: `garbageBytes_${s}`, op: '<=' as const, limit: 1 },
    ]),
    notes: [
      `Each repetition opens a connection per strategy, subscribes to all ${rows.toLocaleString('en')} rows, then consumes ${txs} transactions of each size (the 'touch' reducer updates that many rows); medians per repetition, then over repetitions. stdb-rx and useTable-style run in turns; the raw callbacks (rawTxMs, rawGarbageBytes: the SDK's own decode and cache, the floor) in one more pair of turns with stdb-rx. The first transactions of each connection are included (no warm-up round: a 100,000-row subscription per connection is the expensive part of this scenario).`,
      'Time = the transaction frame’s arrival at the WebSocket → the consumer has the new state (stdb-rx: the table$ emission; useTable-style: the new array; raw: the last row callback).',
      'Garbage = heap in use when the consumer has the new state minus heap in use at the frame’s arrival, after a young-generation collection before each transaction; a sample during which V8 collected is dropped. It includes the SDK’s decoding of the frame, the same for every strategy, and the new state itself (which becomes garbage at the next transaction).',
    ],
    charts: [
      {
        title: 'stdb-rx / useTable-style, per transaction',
        unit: '×',
        reference: 1,
        groups: Object.fromEntries(sizes.map((s) => [`${perRow(s)} tx`, { time: vsUseTable.ratio[`txMs_${s}`], garbage: vsUseTable.ratio[`garbageBytes_${s}`] }])),
      },
    ],
    durationMs: now() - started,
  });
}
