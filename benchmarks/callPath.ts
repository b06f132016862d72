/**
 * `node --expose-gc --import tsx benchmarks/callPath.ts [calls] [--prof]`
 *
 * The latency scenario's one-client set-up, split into its legs: a raw SDK
 * connection and a stdb-rx client on one dev server, calls made in turns,
 * each timed from the call to the socket's `send` (the client's send path),
 * from there to the answer's frame (the server and the network), and from
 * that frame to the confirmed result (stdb-rx: the confirmed row in
 * `table$`; raw SDK: its promise). Prints the median of each leg per side.
 * The legs show which side of the round trip the added latency is on; it is
 * a tool for work on the call path, not a target.
 *
 * With `--prof`, the samples inside stdb-rx's send legs and receive legs
 * are attributed as `benchmarks/replay.ts` does for transactions.
 */
import { tables, type Entity } from './bench_bindings/index.ts';
import { median, now, onProfileClock, until } from './harness.ts';
import { perSpan, startProfiler } from './profile.ts';
import { connectRaw, frameClock, rxClient, seedEntities, startBenchServer, subscribeRaw, whenLive, WireClient } from './setup.ts';

const argv = process.argv.slice(2);
const calls = Number(argv.find((a) => !a.startsWith('--')) ?? 1000);
const profiling = argv.includes('--prof');
const WARM_UP = 200;

// The time of the last frame sent, on any socket (setup.ts installed the timed WebSocket class).
let sentAt = 0;
const Socket = (globalThis as unknown as { WebSocket: { prototype: { send(data: unknown): void } } }).WebSocket;
const send = Socket.prototype.send;
Socket.prototype.send = function (this: unknown, data: unknown) {
  sentAt = now();
  return send.call(this, data);
};

const server = await startBenchServer();
const driver = await WireClient.open(server);
await seedEntities(driver, 100);
const conn = await connectRaw(server);
await subscribeRaw(conn, 'SELECT * FROM entity');
const client = rxClient(server);
await whenLive(client);

const id = 2n;
let want = NaN;
let confirmedAt = 0;
const sub = client.table$(tables.entity).subscribe((rows) => {
  if ((rows.get(id) as Entity | undefined)?.x === want) confirmedAt = now();
});

type Legs = { send: number[]; server: number[]; receive: number[]; total: number[] };
const legs = (): Legs => ({ send: [], server: [], receive: [], total: [] });
const rx = legs();
const raw = legs();
const spans = { send: [] as [number, number][], receive: [] as [number, number][] };
const stop = profiling ? await startProfiler(20) : undefined;
let x = 0;
for (let i = 0; i < WARM_UP + calls; i++) {
  const keep = i >= WARM_UP;
  {
    want = ++x;
    confirmedAt = 0;
    const t0 = now();
    await client.call('move', { id, x: want, y: 0 });
    await until(() => confirmedAt !== 0, 10_000, 'the confirmed emission', 0);
    if (keep) {
      rx.send.push(sentAt - t0);
      rx.server.push(frameClock.lastAt - sentAt);
      rx.receive.push(confirmedAt - frameClock.lastAt);
      rx.total.push(confirmedAt - t0);
      spans.send.push([onProfileClock(t0), onProfileClock(sentAt)]);
      spans.receive.push([onProfileClock(frameClock.lastAt), onProfileClock(confirmedAt)]);
    }
  }
  {
    const t0 = now();
    await conn.reducers.move({ id, x: ++x, y: 0 });
    const t1 = now();
    if (keep) {
      raw.send.push(sentAt - t0);
      raw.server.push(frameClock.lastAt - sentAt);
      raw.receive.push(t1 - frameClock.lastAt);
      raw.total.push(t1 - t0);
    }
  }
}
const profile = await stop?.();

const line = (side: string, l: Legs) =>
  `${side}: send ${median(l.send).toFixed(3)} ms, server and network ${median(l.server).toFixed(3)} ms, receive ${median(l.receive).toFixed(3)} ms, total ${median(l.total).toFixed(3)} ms`;
console.log(`${calls} calls per side, medians`);
console.log(line('raw SDK', raw));
console.log(line('stdb-rx', rx));
console.log(`added at p50: ${(median(rx.total) - median(raw.total)).toFixed(3)} ms`);
if (profile) {
  console.log(`\nstdb-rx send legs: ${perSpan(profile, spans.send, spans.send.length)}`);
  console.log(`\nstdb-rx receive legs: ${perSpan(profile, spans.receive, spans.receive.length)}`);
}

sub.unsubscribe();
await client.close();
conn.disconnect();
await driver.close();
await server.stop();
process.exit(0);
