/**
 * `node --expose-gc --import tsx benchmarks/initial.ts [rounds] [--prof]`
 *
 * The stream scenario's 10,000-row initial subscription, client side, many
 * times over: each round opens a fresh raw SDK connection and a fresh
 * stdb-rx client (the order alternating from round to round), collects
 * garbage, subscribes to the whole table and measures from the arrival of
 * the frame that completed it to the consumer having every row — wall time
 * and the process's CPU time — as the full benchmark does once per
 * repetition. With many rounds the medians hold still where the benchmark's
 * five samples per run do not; it is a tool for work on the sync path, not a
 * target.
 *
 * With `--prof`, a CPU profile of the timed spans is attributed per side, as
 * `benchmarks/replay.ts` does for transactions.
 */
import type { Entity } from './bench_bindings/index.ts';
import { median, now, onProfileClock, sleep, until } from './harness.ts';
import { perSpan, startProfiler } from './profile.ts';
import { connectRaw, cpuUs, frameClock, RxConsumer, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from './setup.ts';

const ROWS = 10_000;
const argv = process.argv.slice(2);
const rounds = Number(argv.find((a) => !a.startsWith('--')) ?? 30);
const profiling = argv.includes('--prof');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const server = await startBenchServer();
const driver = await WireClient.open(server);
await seedEntities(driver, ROWS);
frameClock.trackCpu = true;

interface Sample {
  wall: number;
  cpu: number;
  span: [number, number];
}

async function raw(): Promise<Sample> {
  const conn = await connectRaw(server);
  let seen = 0;
  let done: { at: number; cpu: number } | undefined;
  let sink = 0;
  const consume = (row: Entity) => {
    sink += row.hp;
    if (++seen === ROWS) done = { at: now(), cpu: cpuUs() };
  };
  conn.db.entity.onInsert((_c, r) => consume(r));
  conn.db.entity.onUpdate((_c, _o, r) => consume(r));
  conn.db.entity.onDelete((_c, r) => consume(r));
  gc!();
  await subscribeRaw(conn, 'SELECT * FROM entity');
  await until(() => done !== undefined, 30_000, 'the raw rows', 0);
  const s: Sample = { wall: done!.at - frameClock.lastAt, cpu: (done!.cpu - frameClock.lastCpuUs) / 1000, span: [onProfileClock(frameClock.lastAt), onProfileClock(done!.at)] };
  conn.disconnect();
  void sink;
  return s;
}

async function rx(): Promise<Sample> {
  const client = rxClient(server);
  await whenLive(client);
  gc!();
  const consumer = new RxConsumer(client, ROWS);
  await until(() => consumer.done !== undefined, 30_000, 'the stdb-rx rows', 0);
  if (consumer.latest?.size !== ROWS) throw new Error(`stdb-rx snapshot has ${consumer.latest?.size} rows`);
  const done = consumer.done!;
  const s: Sample = { wall: done.at - frameClock.lastAt, cpu: (done.cpuUs - frameClock.lastCpuUs) / 1000, span: [onProfileClock(frameClock.lastAt), onProfileClock(done.at)] };
  consumer.close();
  await client.close();
  return s;
}

const stopProfiler = profiling ? await startProfiler(50) : undefined;
const got = { raw: [] as Sample[], rx: [] as Sample[] };
for (let i = -1; i < rounds; i++) {
  // Round -1 warms both sides up and is not counted.
  const order = i % 2 === 0 ? ([raw, rx] as const) : ([rx, raw] as const);
  for (const side of order) {
    const s = await side();
    if (i >= 0) got[side === raw ? 'raw' : 'rx'].push(s);
    await sleep(50);
  }
}

const line = (what: string, pick: (s: Sample) => number) => {
  const r = median(got.raw.map(pick));
  const x = median(got.rx.map(pick));
  return `${what}: raw median ${r.toFixed(2)} ms | stdb-rx median ${x.toFixed(2)} ms | ratio of medians ${(x / r).toFixed(3)}`;
};
console.log(`${rounds} initial subscriptions of ${ROWS.toLocaleString('en')} rows per side`);
console.log(line('CPU ', (s) => s.cpu));
console.log(line('wall', (s) => s.wall));
if (stopProfiler) {
  const profile = await stopProfiler();
  for (const side of ['raw', 'rx'] as const) console.log(`\n${side}: ${perSpan(profile, got[side].map((s) => s.span), got[side].length)}`);
}

await driver.close();
await server.stop();
process.exit(0);
