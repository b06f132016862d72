/**
 * 3. Recovery: a client follows 50,000 rows; the server restarts and, while
 * the client is away, 1% of the rows change. From the moment the client may
 * reconnect (`reconnectNow()`, the server being back) to `live` and to the
 * difference emitted, versus a fresh client connecting and subscribing to the
 * same rows — in turns. Also how many row changes the consumers saw.
 */
import { Subscription } from 'rxjs';
import { tables } from '../bench_bindings/index.ts';
import { now, result, sideBySide, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, rxClient, seedEntities, startBenchServer, whenLive, WireClient } from '../setup.ts';

export async function recovery(cfg: RunConfig): Promise<ScenarioResult> {
  const rows = cfg.quick ? 20_000 : 50_000;
  const changedRows = rows / 100;
  const reps = cfg.quick ? 2 : 4;
  const server = await startBenchServer();
  {
    const seeder = await WireClient.open(server);
    await seedEntities(seeder, rows);
    await seeder.close();
  }
  // The client under test: it stays away after a drop (a long retry wait) until told.
  const client = rxClient(server, { retry: { initialInterval: 600_000, jitter: 'none' } });
  await whenLive(client);
  let changesSeen = 0;
  let snapshotsSeen = 0;
  let snapshotAt = 0;
  const subs = new Subscription();
  subs.add(
    client.table$(tables.entity).subscribe(() => {
      snapshotsSeen++;
      snapshotAt = now();
    }),
  );
  subs.add(client.changes$(tables.entity).subscribe((batch) => (changesSeen += batch.length)));
  await until(() => changesSeen === rows, 60_000, 'initial rows');
  let cursor = 0;

  const reconnect = async (): Promise<Metrics> => {
    await server.faults.restart();
    await until(() => client.status.state === 'reconnecting', 10_000, 'reconnecting');
    // While the client is away, change 1% of the rows (a different slice each time).
    const other = await WireClient.open(server);
    const from = BigInt(1 + ((cursor++ * changedRows) % rows));
    await other.callOk('touch', args.range(from, changedRows));
    await other.close();
    changesSeen = 0;
    snapshotsSeen = 0;
    const t0 = now();
    client.reconnectNow();
    await whenLive(client, 60_000);
    const liveAt = now();
    await until(() => changesSeen >= changedRows, 30_000, 'the diff', 1);
    // Anything more would arrive with the same flush; give it a moment to show.
    await new Promise((r) => setTimeout(r, 50));
    return { toLiveMs: liveAt - t0, toDiffMs: snapshotAt - t0, rowChangesSeen: changesSeen, emissions: snapshotsSeen };
  };

  const fresh = async (): Promise<Metrics> => {
    const t0 = now();
    const c = rxClient(server);
    let seen = 0;
    let at = 0;
    const s = c.table$(tables.entity).subscribe((m) => {
      seen = m.size;
      at = now();
    });
    await whenLive(c, 60_000);
    const liveAt = now();
    await until(() => seen === rows, 60_000, 'fresh rows', 1);
    const m = { toLiveMs: liveAt - t0, toDiffMs: at - t0, rowChangesSeen: seen, emissions: 1 };
    s.unsubscribe();
    await c.close();
    return m;
  };

  const m = await sideBySide(reconnect, fresh, { warmup: 1, reps });
  subs.unsubscribe();
  await client.close();
  await server.stop();
  const exact = m.subjectSamples.every((s) => s.rowChangesSeen === changedRows);
  return result({
    id: 'recovery',
    title: `Recovery: ${rows.toLocaleString('en')} subscribed rows, 1% changed during an outage`,
    subjectLabel: 'stdb-rx reconnect (reconnectNow → live)',
    baselineLabel: 'fresh stdb-rx client connect + subscribe → live',
    warmup: 1,
    reps,
    figures: { ...m.subject, changedRows, exactDiff: exact ? 1 : 0 },
    baseline: m.baseline,
    ratio: { toLiveMs: m.ratio.toLiveMs, toDiffMs: m.ratio.toDiffMs },
    targets: [
      { label: 'consumers see exactly the changed rows (every repetition)', metric: 'exactDiff', of: 'figures', op: '==', limit: 1 },
      { label: 'reconnect → live ≤ 1.05× a fresh connect-and-subscribe', metric: 'toLiveMs', op: '<=', limit: 1.05 },
      { label: 'reconnect → diff emitted ≤ 1.05× fresh → rows emitted', metric: 'toDiffMs', op: '<=', limit: 1.05 },
    ],
    notes: [
      `Outage = faults.restart() (in-memory state kept), then another client updates ${changedRows.toLocaleString('en')} rows; the client under test waits (10-minute retry) until reconnectNow().`,
      'Row changes seen = rows in changes$ batches after reconnectNow() (the baseline figure is the rows a fresh client receives).',
      `Per repetition: ${m.subjectSamples.map((s) => `${s.rowChangesSeen} changes in ${s.emissions} emission(s)`).join('; ')}.`,
    ],
    charts: [
      {
        title: 'Recovery / fresh connect',
        unit: '×',
        reference: 1,
        groups: { '→ live': { ratio: m.ratio.toLiveMs }, '→ rows emitted': { ratio: m.ratio.toDiffMs } },
      },
    ],
  });
}
