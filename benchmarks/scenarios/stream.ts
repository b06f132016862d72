/**
 * 1. Stream overhead: a 10,000-row initial subscription, then transactions
 * of 1,000 updated rows, consumed through stdb-rx's `table$` + `changes$`
 * versus the raw SDK's `onInsert`/`onUpdate`/`onDelete` callbacks. Each
 * side has a server of its own with the same rows, so both can stay
 * connected while their transactions alternate one by one. Also the heap
 * each side retains with the rows, each measured alone.
 *
 * Times: end to end (request → consumer has the whole transaction) and on
 * the client (the frame's arrival at the socket → consumer has it), which
 * leaves out the server's work, identical for both.
 */
import type { Entity } from '../bench_bindings/index.ts';
import { median, medians, now, onProfileClock, ratios, result, settledHeap, sleep, spanLog, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, connectRaw, cpuUs, frameClock, RxConsumer, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from '../setup.ts';

const ROWS = 10_000;
const TX_ROWS = 1_000;

/** One side's client, as the paired loop drives it. */
interface Side {
  readonly name: 'rx' | 'raw';
  /** Connect, subscribe to the whole table and wait for every row: the initial subscription's times. */
  open(): Promise<Timed>;
  /** Start waiting for `n` changed rows. */
  expect(n: number): void;
  /** When the consumer had them all, and the process CPU time then (µs); undefined until then. */
  done(): { at: number; cpu: number } | undefined;
  close(): Promise<void>;
}

interface Timed {
  e2e: number;
  client: number;
  cpu: number;
}

export async function streamOverhead(cfg: RunConfig): Promise<ScenarioResult> {
  const txs = cfg.quick ? 5 : 15;
  const reps = cfg.quick ? 2 : 5;
  const started = now();
  // One server per side, with the same module and rows: a transaction on one reaches only
  // that side's client, so the two sides' transactions can alternate one by one.
  const servers = { rx: await startBenchServer(), raw: await startBenchServer() };
  const drivers = { rx: await WireClient.open(servers.rx), raw: await WireClient.open(servers.raw) };
  await seedEntities(drivers.rx, ROWS);
  await seedEntities(drivers.raw, ROWS);
  const cursor = { rx: 0, raw: 0 };
  frameClock.trackCpu = true;

  /** Whether the current transactions are among the figures (not the warm-up's, nor the untimed one after a sync). */
  let counted = false;
  /** Update the side's next 1,000 rows (wrapping around its table) and time it. */
  const transaction = async (side: Side): Promise<Timed> => {
    side.expect(TX_ROWS);
    const from = BigInt(1 + ((cursor[side.name]++ * TX_ROWS) % ROWS));
    const t0 = now();
    void drivers[side.name].callOk('touch', args.range(from, TX_ROWS));
    await until(() => side.done() !== undefined, 30_000, 'a transaction', 0);
    const done = side.done()!;
    if (spanLog.on && counted) spanLog[side.name === 'rx' ? 'subject' : 'baseline'].push([onProfileClock(frameClock.lastAt), onProfileClock(done.at)]);
    return { e2e: done.at - t0, client: done.at - frameClock.lastAt, cpu: (done.cpu - frameClock.lastCpuUs) / 1000 };
  };

  const raw = (): Side => {
    let conn: Awaited<ReturnType<typeof connectRaw>> | undefined;
    let changed = 0;
    let target = ROWS;
    let done: { at: number; cpu: number } | undefined;
    let sink = 0;
    const consume = (row: Entity) => {
      sink += row.hp;
      if (++changed === target) done = { at: now(), cpu: cpuUs() };
    };
    return {
      name: 'raw',
      async open() {
        conn = await connectRaw(servers.raw);
        conn.db.entity.onInsert((_ctx, row) => consume(row));
        conn.db.entity.onUpdate((_ctx, _old, row) => consume(row));
        conn.db.entity.onDelete((_ctx, row) => consume(row));
        const t0 = now();
        await subscribeRaw(conn, 'SELECT * FROM entity');
        if (changed !== ROWS || done === undefined) throw new Error(`raw SDK saw ${changed} initial rows`);
        return { e2e: done.at - t0, client: done.at - frameClock.lastAt, cpu: (done.cpu - frameClock.lastCpuUs) / 1000 };
      },
      expect(n) {
        changed = 0;
        target = n;
        done = undefined;
      },
      done: () => done,
      async close() {
        conn?.disconnect();
        void sink;
        await sleep(300); // let the socket close and release the connection
      },
    };
  };

  const rx = (): Side => {
    let client: ReturnType<typeof rxClient> | undefined;
    let consumer: RxConsumer | undefined;
    const done = () => {
      const d = consumer?.done;
      return d && { at: d.at, cpu: d.cpuUs };
    };
    return {
      name: 'rx',
      async open() {
        client = rxClient(servers.rx);
        await whenLive(client);
        const t0 = now();
        consumer = new RxConsumer(client, ROWS);
        await until(() => done() !== undefined, 30_000, 'initial rows', 0);
        if (consumer.latest?.size !== ROWS) throw new Error(`stdb-rx snapshot has ${consumer.latest?.size} rows`);
        const d = done()!;
        return { e2e: d.at - t0, client: d.at - frameClock.lastAt, cpu: (d.cpu - frameClock.lastCpuUs) / 1000 };
      },
      expect: (n) => consumer!.expect(n),
      done,
      async close() {
        consumer?.close();
        await client?.close();
        await sleep(300);
      },
    };
  };

  /**
   * One repetition, in two parts. Alone: each side in turn (`first` first)
   * connects, takes the initial subscription, applies one transaction more
   * (its snapshot then holds the rows as it will from now on) and measures
   * the heap it retains, then disconnects. Together: both connect again (the
   * other side first), and their timed transactions alternate one by one,
   * the order flipping every time. Each side's initial figures are the mean
   * of its two subscriptions.
   */
  const repetition = async (first: 'rx' | 'raw', timed: boolean) => {
    type Out = { initial: Timed[]; tx: Timed[]; heap?: number };
    const out: Record<'rx' | 'raw', Out> = { rx: { initial: [], tx: [] }, raw: { initial: [], tx: [] } };
    const make = () => (first === 'rx' ? [rx(), raw()] : [raw(), rx()]);
    for (const side of make()) {
      const heap0 = await settledHeap();
      out[side.name].initial.push(await side.open());
      await transaction(side);
      out[side.name].heap = (await settledHeap()) - heap0;
      await side.close();
    }
    const sides = make().reverse();
    for (const side of sides) {
      await settledHeap();
      out[side.name].initial.push(await side.open());
    }
    counted = timed;
    for (let i = 0; i < txs; i++) {
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) out[side.name].tx.push(await transaction(side));
    }
    counted = false;
    for (const side of sides) await side.close();
    const metrics = (r: Out): Metrics => ({
      initialE2eMs: median(r.initial.map((t) => t.e2e)),
      initialClientMs: median(r.initial.map((t) => t.client)),
      txE2eMs: median(r.tx.map((t) => t.e2e)),
      txClientMs: median(r.tx.map((t) => t.client)),
      retainedHeapBytes: r.heap!,
      initialClientCpuMs: median(r.initial.map((t) => t.cpu)),
      txClientCpuMs: median(r.tx.map((t) => t.cpu)),
    });
    return { rx: metrics(out.rx), raw: metrics(out.raw) };
  };

  const subjectSamples: Metrics[] = [];
  const baselineSamples: Metrics[] = [];
  for (let i = -1; i < reps; i++) {
    const r = await repetition(i % 2 === 0 ? 'rx' : 'raw', i >= 0);
    if (i < 0) continue; // warm-up
    subjectSamples.push(r.rx);
    baselineSamples.push(r.raw);
  }
  const subject = medians(subjectSamples);
  const baseline = medians(baselineSamples);
  const m = { subject, baseline, ratio: ratios(subject, baseline) };
  frameClock.trackCpu = false;
  for (const side of ['rx', 'raw'] as const) {
    await drivers[side].close();
    await servers[side].stop();
  }
  return result({
    id: 'stream',
    title: 'Stream overhead: 10,000-row subscription + 1,000-row transactions',
    subjectLabel: 'stdb-rx table$ + changes$',
    baselineLabel: 'raw SDK onInsert/onUpdate/onDelete',
    warmup: 1,
    reps,
    figures: m.subject,
    baseline: m.baseline,
    ratio: m.ratio,
    targets: [
      { label: '1,000-row transaction, client side ≤ 1.10× raw SDK', metric: 'txClientMs', op: '<=', limit: 1.1 },
      { label: '1,000-row transaction, end to end ≤ 1.10× raw SDK', metric: 'txE2eMs', op: '<=', limit: 1.1 },
      { label: '10,000-row initial subscription, client side ≤ 1.10× raw SDK', metric: 'initialClientMs', op: '<=', limit: 1.1 },
      { label: 'retained heap ≤ 1.2× raw SDK', metric: 'retainedHeapBytes', op: '<=', limit: 1.2 },
    ],
    notes: [
      `Each side has its own dev server (same module, same ${ROWS.toLocaleString('en')} rows), so a transaction reaches only its side's client. Each repetition: each side alone (the first side alternating) opens a fresh connection, subscribes to the whole table, applies one transaction and measures its retained heap, and disconnects; then both connect again, subscribe, and their transactions of ${TX_ROWS.toLocaleString('en')} updated rows alternate one by one, ${txs} per side, so a drift of the shared machine's load hits both sides alike. Initial figures: the mean of a side's two subscriptions per repetition; transaction figures: the median per repetition; then the median over repetitions.`,
      'The stdb-rx consumer subscribes to both table$ (keeps the latest snapshot) and changes$ (reads every changed row); the raw consumer reads every row in the SDK callbacks.',
      'Client side = frame arrival at the WebSocket → consumer has the whole transaction; end to end adds the server (reducer, subscription evaluation, encoding), the same for both.',
      'Retained heap = heap after gc() with the connection open (the only one), its rows cached and one transaction applied, minus the heap before connecting (the server\u2019s per-connection state is included on both sides).',
      'CPU figures (initialClientCpuMs, txClientCpuMs): the process\u2019s CPU time (all threads, garbage collector included) over the same client-side interval; less disturbed than wall time when other work shares the cores.',
    ],
    charts: [
      {
        title: 'Stream overhead: stdb-rx / raw SDK',
        unit: '×',
        reference: 1,
        groups: {
          'initial 10k (client)': { ratio: m.ratio.initialClientMs },
          '1k tx (client)': { ratio: m.ratio.txClientMs },
          '1k tx (end to end)': { ratio: m.ratio.txE2eMs },
          'retained heap': { ratio: m.ratio.retainedHeapBytes },
        },
      },
    ],
    durationMs: now() - started,
  });
}
