/**
 * 5. Bandwidth: bytes on the wire (the dev server's own counters) for the
 * initial sync of a 10,000-row table, for one 1,000-row transaction, and per
 * reducer call, with compression None versus Gzip, through the stdb-rx
 * client. The bytes are the protocol's: the raw SDK sends and receives the
 * same messages (stdb-rx adds only heartbeat probes on a quiet connection).
 */
import { Subscription } from 'rxjs';
import { tables } from '../bench_bindings/index.ts';
import { result, sideBySide, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, rxClient, seedEntities, startBenchServer, whenLive, WireClient, type Compression } from '../setup.ts';

const ROWS = 10_000;
const TX_ROWS = 1_000;
const CALLS = 100;

export async function bandwidth(cfg: RunConfig): Promise<ScenarioResult> {
  const server = await startBenchServer();
  const driver = await WireClient.open(server);
  await seedEntities(driver, ROWS);
  let cursor = 0;

  const measure = async (compression: Compression): Promise<Metrics> => {
    const out = () => server.stats().bytesOut;
    const inn = () => server.stats().bytesIn;
    let size = 0;
    let txs = 0;
    const subs = new Subscription();
    const before = out();
    const client = rxClient(server, { compression });
    subs.add(
      client.table$(tables.entity).subscribe((m) => {
        size = m.size;
        txs++;
      }),
    );
    await whenLive(client);
    await until(() => size === ROWS, 30_000, 'initial rows');
    const initialSyncBytes = out() - before;

    // One 1,000-row transaction, as received by the client (the driver's own answer subtracted).
    const [o0, d0, t0] = [out(), driver.bytesIn, txs];
    await driver.callOk('touch', args.range(BigInt(1 + ((cursor++ * TX_ROWS) % ROWS)), TX_ROWS));
    await until(() => txs > t0, 30_000, 'the transaction');
    const txBytes = out() - o0 - (driver.bytesIn - d0);

    // Reducer calls: a one-row move each, confirmed, with the caller subscribed to the table.
    const [o1, i1] = [out(), inn()];
    for (let i = 0; i < CALLS; i++) await client.call('move', { id: 7n, x: i, y: i });
    const bytesDownPerCall = (out() - o1) / CALLS;
    const bytesUpPerCall = (inn() - i1) / CALLS;
    subs.unsubscribe();
    await client.close();
    return { initialSyncBytes, txBytes, bytesUpPerCall, bytesDownPerCall };
  };

  const reps = cfg.quick ? 1 : 3;
  const m = await sideBySide(() => measure('gzip'), () => measure('none'), { warmup: 0, reps });
  await driver.close();
  await server.stop();
  return result({
    id: 'bandwidth',
    title: 'Bandwidth: bytes on the wire, Gzip versus None',
    subjectLabel: 'compression Gzip',
    baselineLabel: 'compression None',
    warmup: 0,
    reps,
    figures: m.subject,
    baseline: m.baseline,
    ratio: m.ratio,
    targets: [],
    notes: [
      `Initial sync = every byte the server sent the client from connect to the ${ROWS.toLocaleString('en')} rows (InitialConnection + SubscribeApplied).`,
      `Transaction = the client's TransactionUpdate for ${TX_ROWS.toLocaleString('en')} updated rows (each update is a delete + insert of the row).`,
      `Per call = ${CALLS} sequential one-row 'move' calls by the subscribed client: up = CallReducer frame, down = ReducerResult carrying the caller's row update. The dev server leaves frames under 1 KiB uncompressed, as SpacetimeDB does, so per-call bytes do not shrink with Gzip.`,
      'No target was set; the ratio is Gzip / None (below 1 = smaller).',
    ],
    charts: [
      {
        title: 'Bytes on the wire (KiB)',
        unit: 'KiB',
        groups: {
          'initial sync 10k': { None: m.baseline.initialSyncBytes / 1024, Gzip: m.subject.initialSyncBytes / 1024 },
          '1k-row tx': { None: m.baseline.txBytes / 1024, Gzip: m.subject.txBytes / 1024 },
        },
      },
    ],
  });
}

