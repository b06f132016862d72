/**
 * Memory: retained heap for 100,000 cached rows — the raw SDK's table cache
 * versus the same connection inside stdb-rx with a `table$` snapshot held
 * (the SDK cache plus the snapshot table sharing its row objects).
 */
import { tables } from '../bench_bindings/index.ts';
import { result, settledHeap, sideBySide, sleep, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { connectRaw, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from '../setup.ts';

export async function memory(cfg: RunConfig): Promise<ScenarioResult> {
  const rows = cfg.quick ? 50_000 : 100_000;
  const server = await startBenchServer();
  {
    const seeder = await WireClient.open(server);
    await seedEntities(seeder, rows);
    await seeder.close();
  }

  const raw = async (): Promise<Metrics> => {
    const heap0 = await settledHeap();
    const conn = await connectRaw(server);
    await subscribeRaw(conn, 'SELECT * FROM entity');
    const heap = (await settledHeap()) - heap0;
    if (conn.db.entity.count() !== BigInt(rows) && Number(conn.db.entity.count()) !== rows) throw new Error('raw SDK cache incomplete');
    conn.disconnect();
    await sleep(300); // let the socket close and release the connection
    return { retainedBytes: heap, bytesPerRow: heap / rows };
  };

  const rx = async (): Promise<Metrics> => {
    const heap0 = await settledHeap();
    const client = rxClient(server);
    let latest: ReadonlyMap<unknown, unknown> | undefined;
    const sub = client.table$(tables.entity).subscribe((m) => (latest = m));
    await whenLive(client, 60_000);
    await until(() => latest?.size === rows, 60_000, 'rows');
    const heap = (await settledHeap()) - heap0;
    sub.unsubscribe();
    await client.close();
    latest = undefined;
    await sleep(300);
    return { retainedBytes: heap, bytesPerRow: heap / rows };
  };

  const reps = cfg.quick ? 1 : 3;
  const m = await sideBySide(rx, raw, { warmup: cfg.quick ? 0 : 1, reps });
  await server.stop();
  return result({
    id: 'memory',
    title: `Memory: ${rows.toLocaleString('en')} cached rows`,
    subjectLabel: 'stdb-rx (SDK cache + table$ snapshot)',
    baselineLabel: 'raw SDK cache',
    warmup: cfg.quick ? 0 : 1,
    reps,
    figures: { ...m.subject, overheadBytesPerRow: m.subject.bytesPerRow - m.baseline.bytesPerRow },
    baseline: m.baseline,
    ratio: m.ratio,
    targets: [{ label: 'retained heap ≤ 1.2× raw SDK (the stream target, at 100k rows)', metric: 'retainedBytes', op: '<=', limit: 1.2 }],
    notes: ['Retained = heap after gc() with the connection open and the rows cached, minus the heap before connecting. Rows have 6 columns (u64 id, u32, 2 × f64, u32, a ~12-character string).'],
    charts: [
      {
        title: 'Retained heap per cached row (bytes)',
        unit: 'B/row',
        groups: { [`${rows / 1000}k rows`]: { 'raw SDK': m.baseline.bytesPerRow, 'stdb-rx': m.subject.bytesPerRow } },
      },
    ],
  });
}
