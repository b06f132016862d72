/**
 * The browser side of the Chromium outbox benchmark (driven by
 * `benchmarks/scenarios/outboxBrowser.ts` through playwright-core): the same
 * measurements as the Node outbox scenario, with the browser's real
 * IndexedDB under Dexie instead of fake-indexeddb.
 *
 * Bundled for the browser with esbuild; the page exposes
 * `window.outboxBench(config)`, which resolves with the figures.
 */
import { createSyncClient } from '../../src/index.ts';
import { moduleFromBindings, openStorage, type Storage } from '../../storage/index.ts';
import { DbConnection, reducers, tables } from '../bench_bindings/index.ts';

export interface OutboxBenchConfig {
  /** Dev server address (`ws://127.0.0.1:<port>`) and database. */
  uri: string;
  database: string;
  /** Rows of the benchmark table the 'move' calls cycle over. */
  rows: number;
  /** Calls enqueued, side by side durable / in memory. */
  enqueueN: number;
  /** Calls queued offline, then replayed by the client (pipelined). */
  replayN: number;
  /** Calls sent one round trip at a time (the baseline). */
  serialN: number;
}

export type OutboxBenchFigures = Record<string, number>;

let opened = 0;
const open = (memory: boolean): Promise<Storage> =>
  openStorage({
    server: `ws://browser-bench-${Date.now()}-${++opened}.local`,
    database: 'bench',
    module: moduleFromBindings({ tables, reducers }),
    memory,
    lease: 'none',
  });

const moveArgs = (rows: number, i: number) => ({ id: BigInt(1 + (i % rows)), x: i, y: -i });
const until = async (predicate: () => boolean, ms: number, what: string) => {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

async function enqueue(memory: boolean, cfg: OutboxBenchConfig): Promise<number> {
  const storage = await open(memory);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: cfg.enqueueN }, (_, i) => storage.outbox.enqueue('move', moveArgs(cfg.rows, i))));
  const ms = performance.now() - t0;
  const stored = (await storage.outbox.entries()).length;
  await storage.close();
  if (stored !== cfg.enqueueN) throw new Error(`stored ${stored} of ${cfg.enqueueN}`);
  return cfg.enqueueN / (ms / 1000);
}

const client = (cfg: OutboxBenchConfig, storage?: Storage) =>
  createSyncClient<DbConnection>({
    builder: DbConnection.builder,
    uri: cfg.uri,
    database: cfg.database,
    compression: 'none',
    sdkLogLevel: 'error',
    events: null,
    heartbeat: false,
    storage,
    retry: { initialInterval: 600_000, jitter: 'none' },
  });

/** The client's own pipelined drain of `replayN` calls queued while it was offline. */
async function pipelined(cfg: OutboxBenchConfig, dropAll: () => Promise<void>): Promise<number> {
  const storage = await open(false);
  const c = client(cfg, storage);
  const idSub = c.identity$.subscribe((id) => void storage.outbox.setIdentity(id));
  await until(() => c.status.state === 'live', 30_000, 'live');
  await dropAll();
  await until(() => c.status.state === 'reconnecting', 10_000, 'reconnecting');
  const handles = Array.from({ length: cfg.replayN }, (_, i) => c.call('move', moveArgs(cfg.rows, i)));
  let confirmed = 0;
  let failed: unknown;
  for (const h of handles) h.then(() => confirmed++, (e) => (failed ??= e));
  for (let i = 0; (await storage.outbox.entries()).length < cfg.replayN; i++) {
    if (i > 600) throw new Error('the outbox never held every call');
    await new Promise((r) => setTimeout(r, 50));
  }
  const t0 = performance.now();
  c.reconnectNow();
  await until(() => confirmed === cfg.replayN || failed !== undefined, 180_000, 'every replayed call confirmed');
  if (failed) throw failed;
  const ms = performance.now() - t0;
  idSub.unsubscribe();
  await c.close();
  await storage.close();
  return ms;
}

/** One round trip per call: claim, send with the raw SDK, await, mark confirmed, next. */
async function serial(cfg: OutboxBenchConfig): Promise<number> {
  const storage = await open(false);
  const conn = await new Promise<DbConnection>((resolve, reject) =>
    DbConnection.builder()
      .withUri(cfg.uri)
      .withDatabaseName(cfg.database)
      .withCompression('none')
      .onConnect((c) => resolve(c))
      .onConnectError((_ctx, e) => reject(e))
      .build(),
  );
  await storage.outbox.setIdentity(conn.identity!);
  await Promise.all(Array.from({ length: cfg.serialN }, (_, i) => storage.outbox.enqueue('move', moveArgs(cfg.rows, i))));
  const t0 = performance.now();
  const entries = await storage.outbox.claim(cfg.serialN);
  for (const e of entries) {
    await conn.reducers.move(storage.outbox.decodeArgs(e) as ReturnType<typeof moveArgs>);
    await storage.outbox.markConfirmed([e.id]);
  }
  const ms = performance.now() - t0;
  conn.disconnect();
  await storage.close();
  if (entries.length !== cfg.serialN) throw new Error(`claimed ${entries.length} of ${cfg.serialN}`);
  return ms;
}

async function outboxBench(cfg: OutboxBenchConfig, dropAll: () => Promise<void>): Promise<OutboxBenchFigures> {
  // Side by side, in turns: durable, memory, memory, durable.
  const durable: number[] = [];
  const memory: number[] = [];
  durable.push(await enqueue(false, cfg));
  memory.push(await enqueue(true, cfg));
  memory.push(await enqueue(true, cfg));
  durable.push(await enqueue(false, cfg));
  const serialMs = await serial(cfg);
  const replayMs = await pipelined(cfg, dropAll);
  const mid = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    enqueueCallsPerSec: mid(durable),
    enqueueMemoryCallsPerSec: mid(memory),
    replayMs,
    replayCallsPerSec: cfg.replayN / (replayMs / 1000),
    serialMs,
    serialCallsPerSec: cfg.serialN / (serialMs / 1000),
  };
}

declare global {
  interface Window {
    outboxBench(cfg: OutboxBenchConfig): Promise<OutboxBenchFigures>;
    /** Provided by the driver (playwright's exposeFunction): drop every connection on the dev server. */
    benchDropAll(): Promise<void>;
  }
}

window.outboxBench = (cfg) => outboxBench(cfg, () => window.benchDropAll());
document.body.dataset.ready = 'true';
