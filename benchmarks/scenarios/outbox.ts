/**
 * 4. Outbox: enqueue 10,000 durable calls (Dexie on fake-indexeddb in Node)
 * versus the same outbox in memory; and replay queued calls after a
 * reconnect — the stdb-rx client's pipelined drain of its durable outbox
 * versus one round trip per call (send, await the answer, mark it
 * confirmed, next) from the same kind of outbox.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { openStorage, moduleFromBindings, type Storage } from '../../storage/index.ts';
import { reducers, tables } from '../bench_bindings/index.ts';
import { now, result, sideBySide, until, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { connectRaw, rxClient, seedEntities, startBenchServer, whenLive, WireClient } from '../setup.ts';

const ROWS = 100;
let opened = 0;

function open(memory = false): Promise<Storage> {
  return openStorage({
    server: `ws://bench-${process.pid}-${++opened}.local`,
    database: 'bench',
    module: moduleFromBindings({ tables, reducers }),
    indexedDB: new IDBFactory(),
    IDBKeyRange,
    memory,
    lease: 'none',
  });
}

const moveArgs = (i: number) => ({ id: BigInt(1 + (i % ROWS)), x: i, y: -i });

export async function outbox(cfg: RunConfig): Promise<ScenarioResult> {
  const enqueueN = cfg.quick ? 1_000 : 10_000;
  // A small queue and the issue's 10,000: the ratio is taken at the largest.
  const replaySizes = cfg.quick ? [200] : [500, 10_000];
  const serialN = cfg.quick ? 300 : 1_500;
  // Three replays of each kind per run, in alternating order, and their medians: one replay of
  // each moved the ratio between about 8.5 and 16 from one run to the next.
  const reps = cfg.quick ? 1 : 3;
  const server = await startBenchServer();
  {
    const seeder = await WireClient.open(server);
    await seedEntities(seeder, ROWS);
    await seeder.close();
  }

  // Enqueue: every call issued at once (as a game does), until all are stored.
  const enqueue = (memory: boolean, n: number) => async (): Promise<Metrics> => {
    const storage = await open(memory);
    const t0 = now();
    await Promise.all(Array.from({ length: n }, (_, i) => storage.outbox.enqueue('move', moveArgs(i))));
    const ms = now() - t0;
    if ((await storage.outbox.entries()).length !== n) throw new Error('not every call was stored');
    await storage.close();
    return { [`enqueueCallsPerSec_${n}`]: n / (ms / 1000) };
  };
  // Side by side at 1,000, then 10,000 durable alone.
  const enq = await sideBySide(enqueue(false, 1_000), enqueue(true, 1_000), { warmup: 0, reps });
  const enqBig = enqueueN > 1_000 ? await enqueue(false, enqueueN)() : {};

  // Replay, pipelined: the client's own drain after reconnectNow().
  const pipelined = (replayN: number) => async (): Promise<Metrics> => {
    const storage = await open();
    const client = rxClient(server, { storage, retry: { initialInterval: 600_000, jitter: 'none' } });
    const idSub = client.identity$.subscribe((id) => void storage.outbox.setIdentity(id));
    await whenLive(client);
    server.faults.dropAll();
    await until(() => client.status.state === 'reconnecting', 10_000, 'reconnecting');
    const handles = Array.from({ length: replayN }, (_, i) => client.call('move', moveArgs(i)));
    let confirmed = 0;
    let failed: unknown;
    for (const h of handles) h.then(() => confirmed++, (e) => (failed ??= e));
    await storedAll(storage, replayN);
    const t0 = now();
    client.reconnectNow();
    await until(() => confirmed === replayN || failed !== undefined, 120_000, 'every replayed call confirmed', 2);
    if (failed) throw failed;
    const ms = now() - t0;
    idSub.unsubscribe();
    await client.close();
    await storage.close();
    return { replayCallsPerSec: replayN / (ms / 1000), replayMs: ms };
  };

  // Replay, one round trip per call, from the same kind of durable outbox.
  const serial = async (): Promise<Metrics> => {
    const storage = await open();
    const conn = await connectRaw(server);
    await storage.outbox.setIdentity(conn.identity!);
    await Promise.all(Array.from({ length: serialN }, (_, i) => storage.outbox.enqueue('move', moveArgs(i))));
    const t0 = now();
    const entries = await storage.outbox.claim(serialN);
    for (const e of entries) {
      await conn.reducers.move(storage.outbox.decodeArgs(e) as ReturnType<typeof moveArgs>);
      await storage.outbox.markConfirmed([e.id]);
    }
    const ms = now() - t0;
    if (entries.length !== serialN) throw new Error(`claimed ${entries.length} of ${serialN}`);
    conn.disconnect();
    await storage.close();
    return { replayCallsPerSec: serialN / (ms / 1000), replayMs: ms };
  };
  const replay: Metrics = {};
  let rep = await sideBySide(pipelined(replaySizes[0]), serial, { warmup: 0, reps });
  replay[`replayMs_${replaySizes[0]}`] = rep.subject.replayMs;
  for (const n of replaySizes.slice(1)) {
    rep = await sideBySide(pipelined(n), serial, { warmup: 0, reps });
    replay[`replayMs_${n}`] = rep.subject.replayMs;
  }
  const replayN = replaySizes.at(-1)!;
  await server.stop();

  return result({
    id: 'outbox',
    title: 'Outbox: durable calls, enqueue and replay',
    subjectLabel: 'durable outbox (fake-indexeddb) / stdb-rx pipelined replay',
    baselineLabel: 'in-memory outbox / one round trip per call',
    warmup: 0,
    reps,
    figures: { ...enq.subject, ...enqBig, ...rep.subject, replayedCalls: replayN, ...replay },
    baseline: { ...enq.baseline, ...rep.baseline },
    ratio: { enqueueCallsPerSec_1000: enq.ratio.enqueueCallsPerSec_1000, replayCallsPerSec: rep.ratio.replayCallsPerSec },
    targets: [{ label: 'replay ≥ 10× the one-at-a-time baseline (calls/s)', metric: 'replayCallsPerSec', op: '>=', limit: 10 }],
    notes: [
      `Enqueue: 'move' calls issued at once to storage.outbox.enqueue (argument check, BSATN encoding, Dexie write) until all are stored: 1,000 side by side with openStorage({ memory: true }), then ${enqueueN.toLocaleString('en')} durable alone.`,
      `Pipelined replay: a stdb-rx client with that storage is cut off (dropAll, 10-minute retry), ${replaySizes.map((n) => n.toLocaleString('en')).join(' and ')} calls are made and stored, then reconnectNow(); the time runs until every call handle is confirmed (${replaySizes.map((n) => `${n.toLocaleString('en')}: ${fmtMs(replay[`replayMs_${n}`])}`).join(', ')}). replayCallsPerSec is for ${replayN.toLocaleString('en')} calls.`,
      `One round trip per call: ${serialN.toLocaleString('en')} entries claimed from a durable outbox, each sent with the raw SDK, awaited and marked confirmed before the next (calls/s compare; a smaller queue only helps the baseline).`,
      'Chromium with its real IndexedDB: the same measurements, by a page driven by playwright-core, are in the section "Outbox in Chromium" below.',
    ],
    charts: [
      {
        title: 'Outbox throughput (calls/s)',
        unit: '/s',
        groups: {
          'enqueue 1,000': { 'durable (fake-indexeddb)': enq.subject.enqueueCallsPerSec_1000, 'in memory': enq.baseline.enqueueCallsPerSec_1000 },
          replay: { 'stdb-rx pipelined': rep.subject.replayCallsPerSec, 'one round trip per call': rep.baseline.replayCallsPerSec },
        },
      },
    ],
  });
}

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

/** Wait until the outbox holds `n` entries. */
async function storedAll(storage: Storage, n: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await storage.outbox.entries()).length >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the outbox never held ${n} entries`);
}
