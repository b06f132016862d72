/**
 * 2. Latency: reducer call → the confirmed row in `table$` (stdb-rx) versus
 * call → the SDK's promise resolving (raw SDK), with 1, 10 and 100 clients
 * subscribed to the table. One client of each kind is measured; the others
 * are lean protocol clients, so the server fans out to all of them while the
 * process does not also pay for 99 client libraries. Calls alternate in
 * blocks between the two sides. Plus optimistic emission: call → the
 * predicted row visible in `table$`.
 */
import { tables, type Entity } from '../bench_bindings/index.ts';
import { now, percentile, result, until, type RunConfig, type ScenarioResult } from '../harness.ts';
import { connectRaw, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from '../setup.ts';

const ROWS = 100;

export async function latency(cfg: RunConfig): Promise<ScenarioResult> {
  const counts = [1, 10, 100];
  const perSide = cfg.quick ? 60 : 300;
  const block = 20;
  const figures: Record<string, number> = {};
  const baseline: Record<string, number> = {};
  const groups: Record<string, Record<string, number>> = {};
  const server = await startBenchServer();
  const driver = await WireClient.open(server);
  await seedEntities(driver, ROWS);
  const others: WireClient[] = [];

  for (const n of counts) {
    while (others.length < n - 1) {
      const w = await WireClient.open(server, { decode: false });
      await w.subscribe('SELECT * FROM entity');
      others.push(w);
    }
    const conn = await connectRaw(server);
    await subscribeRaw(conn, 'SELECT * FROM entity');
    const client = rxClient(server);
    await whenLive(client);
    // The confirmed emission: the snapshot in which row `id` has x === `want`.
    let want = NaN;
    let confirmedAt = 0;
    const id = BigInt(1 + (n % ROWS));
    const sub = client.table$(tables.entity).subscribe((rows) => {
      if ((rows.get(id) as Entity | undefined)?.x === want) confirmedAt = now();
    });
    await until(() => client.status.state === 'live', 10_000, 'live');
    let x = 0;
    const rxSamples: number[] = [];
    const rawSamples: number[] = [];
    const rxOnce = async () => {
      want = ++x;
      confirmedAt = 0;
      const t0 = now();
      const handle = client.call('move', { id, x: want, y: 0 });
      await handle;
      await until(() => confirmedAt !== 0, 10_000, 'confirmed emission', 0);
      return confirmedAt - t0;
    };
    const rawOnce = async () => {
      const t0 = now();
      await conn.reducers.move({ id, x: ++x, y: 0 });
      return now() - t0;
    };
    // Warm-up, then blocks in turns.
    for (let i = 0; i < 10; i++) {
      await rxOnce();
      await rawOnce();
    }
    for (let done = 0; done < perSide; done += block) {
      const first = (done / block) % 2 === 0;
      for (const side of first ? ['rx', 'raw'] : ['raw', 'rx']) {
        for (let i = 0; i < block; i++) (side === 'rx' ? rxSamples : rawSamples).push(side === 'rx' ? await rxOnce() : await rawOnce());
      }
    }
    const label = `${n} client${n > 1 ? 's' : ''}`;
    figures[`p50Ms_${n}`] = percentile(rxSamples, 50);
    figures[`p99Ms_${n}`] = percentile(rxSamples, 99);
    baseline[`p50Ms_${n}`] = percentile(rawSamples, 50);
    baseline[`p99Ms_${n}`] = percentile(rawSamples, 99);
    figures[`addedP50Ms_${n}`] = figures[`p50Ms_${n}`] - baseline[`p50Ms_${n}`];
    groups[label] = {
      'stdb-rx p50': figures[`p50Ms_${n}`],
      'raw SDK p50': baseline[`p50Ms_${n}`],
      'stdb-rx p99': figures[`p99Ms_${n}`],
      'raw SDK p99': baseline[`p99Ms_${n}`],
    };

    if (n === 1) {
      // Optimistic emission: call → the predicted row in table$, synchronous or not.
      const opt: number[] = [];
      let predictedAt = 0;
      let predicted = NaN;
      const osub = client.table$(tables.entity).subscribe((rows) => {
        if ((rows.get(id) as Entity | undefined)?.y === predicted && predictedAt === 0) predictedAt = now();
      });
      for (let i = 0; i < (cfg.quick ? 100 : 400); i++) {
        predicted = -(i + 1);
        predictedAt = 0;
        const t0 = now();
        const handle = client.call(
          'move',
          { id, x: ++x, y: predicted },
          { optimistic: { table: tables.entity, predict: (rows) => new Map([[id, { ...(rows.get(id) as Entity), y: predicted }]]) } },
        );
        await until(() => predictedAt !== 0, 10_000, 'optimistic emission', 0);
        if (i >= 20) opt.push((predictedAt - t0) * 1000);
        await handle;
      }
      osub.unsubscribe();
      figures.optimisticP50Us = percentile(opt, 50);
      figures.optimisticP99Us = percentile(opt, 99);
    }
    sub.unsubscribe();
    await client.close();
    conn.disconnect();
  }
  await Promise.all(others.map((w) => w.close()));
  await driver.close();
  await server.stop();

  return result({
    id: 'latency',
    title: 'Latency: reducer call → confirmed emission',
    subjectLabel: 'stdb-rx call → confirmed row in table$',
    baselineLabel: 'raw SDK reducer promise',
    warmup: 10,
    reps: perSide,
    figures,
    baseline,
    targets: counts.map((n) => ({ label: `added latency at p50 with ${n} client${n > 1 ? 's' : ''} ≤ 0.2 ms`, metric: `addedP50Ms_${n}`, of: 'figures' as const, op: '<=' as const, limit: 0.2 })),
    notes: [
      `${perSide} calls per side and client count, in alternating blocks of ${block}, after 10 warm-up calls each; the percentiles are over all calls.`,
      'With n clients, n − 1 of them are lean protocol clients subscribed to the same table (the server fans every transaction out to all n).',
      `The row changed lives in a ${ROWS}-row table every client subscribes to. Optimistic emission is measured with 1 client, in microseconds, from before call() to the table$ emission carrying the prediction.`,
    ],
    charts: [{ title: 'Call → confirmed, by subscribed clients', unit: 'ms', groups }],
  });
}
