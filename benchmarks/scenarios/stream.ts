/**
 * 1. Stream overhead: a 10,000-row initial subscription, then transactions
 * of 1,000 updated rows, consumed through stdb-rx's `table$` + `changes$`
 * versus the raw SDK's `onInsert`/`onUpdate`/`onDelete` callbacks, on the
 * same server, in turns. Also the heap each side retains with the rows.
 *
 * Times: end to end (request → consumer has the whole transaction) and on
 * the client (the frame's arrival at the socket → consumer has it), which
 * leaves out the server's work, identical for both.
 */
import type { Entity } from '../bench_bindings/index.ts';
import { median, now, result, settledHeap, sideBySide, sleep, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, connectRaw, cpuUs, frameClock, RxConsumer, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from '../setup.ts';

const ROWS = 10_000;
const TX_ROWS = 1_000;

export async function streamOverhead(cfg: RunConfig): Promise<ScenarioResult> {
  const txs = cfg.quick ? 5 : 15;
  const server = await startBenchServer();
  const driver = await WireClient.open(server);
  await seedEntities(driver, ROWS);
  let cursor = 0;
  /** CPU time (µs) when the consumer had the whole transaction (set next to each `doneAt`). */
  let doneCpu = 0;
  frameClock.trackCpu = true;
  /**
   * Update the next 1,000 rows (wrapping around the table). `reset` zeroes the
   * consumer's count; `doneAt` is the time it noted when it had all rows.
   */
  const transaction = async (reset: () => void, doneAt: () => number | undefined) => {
    reset();
    const from = BigInt(1 + ((cursor++ * TX_ROWS) % ROWS));
    const t0 = now();
    void driver.callOk('touch', args.range(from, TX_ROWS));
    await until(() => doneAt() !== undefined, 30_000, 'a transaction', 0);
    const done = doneAt()!;
    return { e2e: done - t0, client: done - frameClock.lastAt, cpu: (doneCpu - frameClock.lastCpuUs) / 1000 };
  };
  const collect = async (subscribeAll: () => Promise<{ initial: { e2e: number; client: number; cpu: number } }>, tx: () => Promise<{ e2e: number; client: number; cpu: number }>) => {
    const heap0 = await settledHeap();
    const { initial } = await subscribeAll();
    const e2e: number[] = [];
    const client: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < txs; i++) {
      const r = await tx();
      e2e.push(r.e2e);
      client.push(r.client);
      cpu.push(r.cpu);
    }
    const heap = (await settledHeap()) - heap0;
    return { initial, e2e, client, cpu, heap };
  };
  const summarize = (r: Awaited<ReturnType<typeof collect>>): Metrics => ({
    initialE2eMs: r.initial.e2e,
    initialClientMs: r.initial.client,
    txE2eMs: median(r.e2e),
    txClientMs: median(r.client),
    retainedHeapBytes: r.heap,
    initialClientCpuMs: r.initial.cpu,
    txClientCpuMs: median(r.cpu),
  });

  const raw = async (): Promise<Metrics> => {
    const conn = await connectRaw(server);
    let changed = 0;
    let target = ROWS;
    let doneAt: number | undefined;
    let sink = 0;
    const consume = (row: Entity) => {
      sink += row.hp;
      if (++changed === target) {
        doneAt = now();
        doneCpu = cpuUs();
      }
    };
    conn.db.entity.onInsert((_ctx, row) => consume(row));
    conn.db.entity.onUpdate((_ctx, _old, row) => consume(row));
    conn.db.entity.onDelete((_ctx, row) => consume(row));
    const r = await collect(
      async () => {
        const t0 = now();
        await subscribeRaw(conn, 'SELECT * FROM entity');
        if (changed !== ROWS || doneAt === undefined) throw new Error(`raw SDK saw ${changed} initial rows`);
        return { initial: { e2e: doneAt - t0, client: doneAt - frameClock.lastAt, cpu: (doneCpu - frameClock.lastCpuUs) / 1000 } };
      },
      () =>
        transaction(
          () => {
            changed = 0;
            target = TX_ROWS;
            doneAt = undefined;
          },
          () => doneAt,
        ),
    );
    conn.disconnect();
    await sleep(300); // let the socket close and release the connection
    void sink;
    return summarize(r);
  };

  const rx = async (): Promise<Metrics> => {
    const client = rxClient(server);
    await whenLive(client);
    let consumer: RxConsumer | undefined;
    /** When the consumer had everything, with the CPU reading beside it (for `transaction`). */
    const doneAt = () => {
      const d = consumer?.done;
      if (d !== undefined) doneCpu = d.cpuUs;
      return d?.at;
    };
    const r = await collect(
      async () => {
        const t0 = now();
        consumer = new RxConsumer(client, ROWS);
        await until(() => doneAt() !== undefined, 30_000, 'initial rows', 0);
        if (consumer.latest?.size !== ROWS) throw new Error(`stdb-rx snapshot has ${consumer.latest?.size} rows`);
        const at = doneAt()!;
        return { initial: { e2e: at - t0, client: at - frameClock.lastAt, cpu: (doneCpu - frameClock.lastCpuUs) / 1000 } };
      },
      () => transaction(() => consumer!.expect(TX_ROWS), doneAt),
    );
    consumer!.close();
    await client.close();
    await sleep(300);
    return summarize(r);
  };

  const started = now();
  const m = await sideBySide(rx, raw, { warmup: 1, reps: cfg.quick ? 2 : 5 });
  frameClock.trackCpu = false;
  await driver.close();
  await server.stop();
  return result({
    id: 'stream',
    title: 'Stream overhead: 10,000-row subscription + 1,000-row transactions',
    subjectLabel: 'stdb-rx table$ + changes$',
    baselineLabel: 'raw SDK onInsert/onUpdate/onDelete',
    warmup: 1,
    reps: cfg.quick ? 2 : 5,
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
      `Each repetition opens a fresh connection of each kind, subscribes to the ${ROWS.toLocaleString('en')}-row table and consumes ${txs} transactions of ${TX_ROWS.toLocaleString('en')} updated rows (medians per repetition, then the median over repetitions).`,
      'The stdb-rx consumer subscribes to both table$ (keeps the latest snapshot) and changes$ (reads every changed row); the raw consumer reads every row in the SDK callbacks.',
      'Client side = frame arrival at the WebSocket → consumer has the whole transaction; end to end adds the server (reducer, subscription evaluation, encoding), the same for both.',
      'Retained heap = heap after gc() with the connection open and its rows cached, minus the heap before connecting (the server\u2019s per-connection state is included on both sides).',
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
