/**
 * `node --expose-gc --import tsx benchmarks/replay.ts [transactions] [--prof]`
 *
 * The stream scenario's client side without the server in the timed part:
 * records ten 1,000-row transaction frames as they reach a raw SDK connection
 * and a stdb-rx client (both following the 10,000-row table), then hands the
 * same frames again and again to each socket's message handler, the two
 * sides alternating, and measures from the hand-over to the consumer having
 * the whole transaction — wall time and the process's CPU time. With no
 * server work and no network between the two sides, the ratio moves far less
 * than the full benchmark's on a shared machine; it is a tool for work on the
 * client path, not a target.
 *
 * With `--prof`, a CPU profile of the replays is attributed per side (only
 * samples inside that side's replays) to the innermost stdb-rx/rxjs function
 * on the stack, or to the SDK when SDK code comes first — so the stdb-rx
 * lines are what the layer adds per transaction.
 *
 * With `--phases`, each side's time is also split at the SDK cache's change
 * (its table cache's `applyOperations`, timed on both sides): before it (the
 * socket, any frame handling, the SDK's decode), the change itself, and
 * after it (row callbacks, and for stdb-rx the flush and the emissions) up
 * to the consumer having every row; and the heap allocated per transaction
 * (heap in use at the end minus at the hand-over, over the transactions
 * during which nothing was collected).
 */
import type { Entity } from './bench_bindings/index.ts';
import { median, now, onProfileClock, sleep, until } from './harness.ts';
import { perSpan, startProfiler } from './profile.ts';
import { args, connectRaw, RxConsumer, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from './setup.ts';

const ROWS = 10_000;
const TX = 1_000;
const argv = process.argv.slice(2);
const n = Number(argv.find((a) => !a.startsWith('--')) ?? 400);
const profiling = argv.includes('--prof');
const phasing = argv.includes('--phases');

/** Sockets opened from here on note their SDK-side message handler and can record frames. */
interface Tapped {
  handler: ((ev: { data: unknown }) => void) | undefined;
  frames: unknown[];
  recording: boolean;
}
const sockets: Tapped[] = [];
const Base = (globalThis as unknown as { WebSocket: new (...a: any[]) => any }).WebSocket;
class TapSocket extends Base implements Tapped {
  handler: ((ev: { data: unknown }) => void) | undefined;
  frames: unknown[] = [];
  recording = false;
  constructor(...a: any[]) {
    super(...a);
    sockets.push(this);
  }
  set onmessage(h: any) {
    this.handler = h ? (ev) => h.call(this, ev) : undefined;
    super.onmessage = h
      ? (ev: { data: unknown }) => {
          if (this.recording) this.frames.push(ev.data);
          h.call(this, ev);
        }
      : null;
  }
  get onmessage(): any {
    return super.onmessage;
  }
}
(globalThis as unknown as { WebSocket: unknown }).WebSocket = TapSocket;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const server = await startBenchServer();
const driver = await WireClient.open(server);
await seedEntities(driver, ROWS);

// The raw SDK, counting rows in its callbacks.
const conn = await connectRaw(server);
const rawSocket = sockets[sockets.length - 1];
let target = ROWS;
let rawRows = 0;
let rawDone: { at: number; cpu: number } | undefined;
const rawRow = (row: Entity) => {
  void row.hp;
  if (++rawRows === target) rawDone = { at: now(), cpu: cpuMs() };
};
conn.db.entity.onInsert((_c, r) => rawRow(r));
conn.db.entity.onUpdate((_c, _o, r) => rawRow(r));
conn.db.entity.onDelete((_c, r) => rawRow(r));
await subscribeRaw(conn, 'SELECT * FROM entity');

// stdb-rx: table$ (keeps the latest snapshot) and changes$ (reads every changed row), as the stream scenario.
const client = rxClient(server);
await whenLive(client);
const rxSocket = sockets[sockets.length - 1];
const consumer = new RxConsumer(client, ROWS);
await until(() => consumer.done !== undefined, 30_000, 'the initial rows', 0);
if (consumer.latest?.size !== ROWS) throw new Error(`stdb-rx snapshot has ${consumer.latest?.size} rows`);

// The SDK cache's change, timed on both sides (`--phases`).
const change = { at: 0, end: 0 };
const timeChange = (table: { applyOperations(ops: unknown, ctx: unknown): unknown }) => {
  const apply = table.applyOperations;
  table.applyOperations = function (this: unknown, ops: unknown, ctx: unknown) {
    change.at = now();
    try {
      return apply.call(this, ops, ctx);
    } finally {
      change.end = now();
    }
  };
};
if (phasing) {
  timeChange((conn.db as unknown as Record<string, Parameters<typeof timeChange>[0]>).entity);
  timeChange((client.connection!.db as unknown as Record<string, Parameters<typeof timeChange>[0]>).entity);
}

// Record ten transactions as both sockets receive them.
target = TX;
rawSocket.recording = rxSocket.recording = true;
for (let i = 0; i < 10; i++) {
  rawRows = 0;
  rawDone = undefined;
  consumer.expect(TX);
  await driver.callOk('touch', args.range(BigInt(1 + i * TX), TX));
  await until(() => rawDone !== undefined && consumer.done !== undefined, 30_000, 'a transaction', 0);
}
rawSocket.recording = rxSocket.recording = false;
const big = (frames: unknown[]) => frames.filter((f) => ((f as ArrayBuffer).byteLength ?? 0) > 10_000);
const rawFrames = big(rawSocket.frames);
const rxFrames = big(rxSocket.frames);
if (rawFrames.length !== 10 || rxFrames.length !== 10) throw new Error(`recorded ${rawFrames.length}/${rxFrames.length} transaction frames, expected 10 each`);
await sleep(200);

// Replay, alternating sides.
const spans = { raw: [] as [number, number][], rx: [] as [number, number][] };
const stopProfiler = profiling ? await startProfiler(25) : undefined;
const wall = { raw: [] as number[], rx: [] as number[] };
const cpu = { raw: [] as number[], rx: [] as number[] };
const phases = { raw: [] as [number, number, number][], rx: [] as [number, number, number][] };
const allocated = { raw: [] as number[], rx: [] as number[] };
const heapUsed = () => (phasing ? process.memoryUsage().heapUsed : 0);
for (let i = 0; i < n; i++) {
  const f = i % 10;
  rawRows = 0;
  rawDone = undefined;
  let h0 = heapUsed();
  let c0 = cpuMs();
  let t0 = now();
  rawSocket.handler!({ data: rawFrames[f] });
  if (rawDone === undefined) await until(() => rawDone !== undefined, 30_000, 'a replayed transaction (raw)', 0);
  if (phasing) {
    allocated.raw.push(heapUsed() - h0);
    phases.raw.push([change.at - t0, change.end - change.at, rawDone!.at - change.end]);
  }
  wall.raw.push(rawDone!.at - t0);
  cpu.raw.push(rawDone!.cpu - c0);
  spans.raw.push([onProfileClock(t0), onProfileClock(rawDone!.at)]);
  consumer.expect(TX);
  h0 = heapUsed();
  c0 = cpuMs();
  t0 = now();
  rxSocket.handler!({ data: rxFrames[f] });
  if (consumer.done === undefined) await until(() => consumer.done !== undefined, 30_000, 'a replayed transaction (stdb-rx)', 0);
  const done = consumer.done!;
  if (phasing) {
    allocated.rx.push(heapUsed() - h0);
    phases.rx.push([change.at - t0, change.end - change.at, done.at - change.end]);
  }
  wall.rx.push(done.at - t0);
  cpu.rx.push(done.cpuUs / 1000 - c0);
  spans.rx.push([onProfileClock(t0), onProfileClock(done.at)]);
  if (i % 50 === 49) await sleep(5);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const line = (what: string, m: { raw: number[]; rx: number[] }) =>
  `${what}: raw median ${median(m.raw).toFixed(3)} ms, mean ${mean(m.raw).toFixed(3)} | stdb-rx median ${median(m.rx).toFixed(3)} ms, mean ${mean(m.rx).toFixed(3)} | ratio of medians ${(median(m.rx) / median(m.raw)).toFixed(3)}, of means ${(mean(m.rx) / mean(m.raw)).toFixed(3)}`;
console.log(`${n} replayed 1,000-row transactions per side (10,000-row table)`);
console.log(line('CPU ', cpu));
console.log(line('wall', wall));
if (phasing) {
  for (const side of ['raw', 'rx'] as const) {
    const [before, during, after] = [0, 1, 2].map((k) => median(phases[side].map((p) => p[k])).toFixed(3));
    // A collection inside a transaction shows as less heap in use: those are left out.
    const kb = (median(allocated[side].filter((b) => b > 0)) / 1024).toFixed(0);
    console.log(`${side}: before the cache change ${before} ms, the change ${during} ms, after it ${after} ms (medians); ${kb} KB allocated per transaction`);
  }
}

if (stopProfiler) {
  const profile = await stopProfiler();
  for (const side of ['raw', 'rx'] as const) console.log(`\n${side}: ${perSpan(profile, spans[side], n)}`);
}

consumer.close();
await client.close();
conn.disconnect();
await driver.close();
await server.stop();
process.exit(0);
