/**
 * 9. Spectators: N viewers of one match through one relay versus N direct
 * SDK subscribers, side by side in one run, while a driver changes the
 * match's 50 rows ten times a second.
 *
 * Processes: the dev server runs as a child process (its CPU time is read
 * from /proc), the relay and the driver in this thread (its heap is the
 * relay's), and the viewers in two worker threads (their own heaps): one with
 * the lean connections that count bytes, one with a sample of full clients
 * that time each transaction from the reducer call being sent to the rows
 * being applied. The sampled viewers connect spread among the lean ones, so
 * they sit at every position of the server's (or relay's) fan-out order.
 * Each repetition measures both sides, relay side first; figures are the
 * per-side medians.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRelay, type Relay } from '../../relay/index.ts';
import { DbConnection, tables } from '../bench_bindings/index.ts';
import { medians, percentile, result, settledHeap, sleep, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';
import { args, BENCH_MODULE, seedEntities, WireClient } from '../setup.ts';
import type { LoadCommand } from './spectatorLoad.ts';

const ROWS = 50;
const RATE = 10;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const epoch = () => performance.timeOrigin + performance.now();

interface DevChild {
  child: ChildProcess;
  wsUrl: string;
  database: string;
}

async function spawnDevServer(): Promise<DevChild> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'devserver/cli.ts', '--port', '0', '--module', BENCH_MODULE, '--db', 'bench-spectators'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+) \(database/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`dev server exited with ${code}`)));
  });
  return { child, wsUrl: url.replace(/^http/, 'ws'), database: 'bench-spectators' };
}

/** CPU time of this process's main thread (ms, ns precision), from /proc: the relay and the driver, not the viewer workers. */
function mainThreadCpuMs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** CPU time (user + system, ms) of a process, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // fields[11], fields[12] = utime, stime (14th and 15th of the full line), in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

class Load {
  readonly #worker: Worker;
  #queue: ((m: any) => void)[] = [];
  constructor() {
    const entry = new URL('./spectatorLoad.ts', import.meta.url).href;
    this.#worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`, { eval: true });
    this.#worker.on('message', (m) => this.#queue.shift()?.(m));
    this.#worker.on('error', (e) => {
      for (const r of this.#queue.splice(0)) r({ ok: false, error: String(e) });
    });
  }
  send<T = any>(c: LoadCommand): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#queue.push((m) => (m.ok ? resolve(m) : reject(new Error(m.error))));
      this.#worker.postMessage(c);
    });
  }
  stop(): Promise<number> {
    return this.#worker.terminate();
  }
}

export async function spectators(cfg: RunConfig): Promise<ScenarioResult> {
  const viewers = cfg.quick ? 50 : 1000;
  const sample = cfg.quick ? 5 : 10;
  const txs = cfg.quick ? 30 : 100;
  const reps = cfg.quick ? 1 : 3;
  const dev = await spawnDevServer();
  const server = { wsUrl: dev.wsUrl, database: dev.database } as any;
  const driver = await WireClient.open(server);
  await seedEntities(driver, ROWS);
  let hp = 100;
  const leanLoad = new Load();
  const sampleLoad = new Load();
  const loads = [leanLoad, sampleLoad];

  /** `count` transactions at RATE per second, each touching all 50 rows; returns their send times by hp. */
  const play = async (count: number) => {
    const sent = new Map<number, number>();
    const start = epoch();
    for (let i = 0; i < count; i++) {
      const wait = start + (i * 1000) / RATE - epoch();
      if (wait > 0) await sleep(wait);
      hp++;
      sent.set(hp, epoch());
      await driver.callOk('touch', args.range(1n, ROWS));
    }
    return sent;
  };

  const measure = async (side: 'relay' | 'direct', relay: Relay | undefined): Promise<Metrics> => {
    const heap0 = side === 'relay' ? await settledHeap() : 0;
    const open = { cmd: 'open', side, relayUrl: relay?.wsUrl ?? '', stream: 'match', wsUrl: dev.wsUrl, database: dev.database } as const;
    // Lean viewers in groups, one sampled viewer after each group: samples sit throughout the fan-out order.
    const lean = viewers - sample;
    for (let i = 0; i < sample; i++) {
      const from = Math.floor((i * lean) / sample);
      const to = Math.floor(((i + 1) * lean) / sample);
      await leanLoad.send({ ...open, lean: to - from, sample: 0 });
      await sampleLoad.send({ ...open, lean: 0, sample: 1 });
    }
    const heapN = side === 'relay' ? await settledHeap() : 0;
    await play(5); // warm-up
    await sleep(300);
    const bytes = async () => {
      const [a, b] = await Promise.all(loads.map((l) => l.send<{ bytes: number; connections: number }>({ cmd: 'bytes' })));
      return { bytes: a.bytes + b.bytes, connections: a.connections + b.connections };
    };
    const b0 = (await bytes()).bytes;
    const f0 = relay?.stats().fanOutMs ?? 0;
    const x0 = relay?.stats().transactions ?? 0;
    const c0 = cpuMs(dev.child.pid!);
    const r0 = mainThreadCpuMs();
    const t0 = epoch();
    const sent = await play(txs);
    const last = hp;
    // Every sampled viewer has the last transaction applied.
    const deadline = Date.now() + 60_000;
    let applied: Map<number, number[]> = new Map();
    for (;;) {
      applied = new Map((await sampleLoad.send<{ applied: [number, number[]][] }>({ cmd: 'applied' })).applied);
      if ((applied.get(last)?.length ?? 0) >= sample || Date.now() > deadline) break;
      await sleep(20);
    }
    const elapsed = epoch() - t0;
    const devCpu = cpuMs(dev.child.pid!) - c0;
    const r1 = mainThreadCpuMs() - r0;
    const { bytes: b1, connections } = await bytes();
    const fanOutMs = (relay?.stats().fanOutMs ?? 0) - f0;
    const published = (relay?.stats().transactions ?? 0) - x0;
    const lat: number[] = [];
    for (const [h, at] of sent) for (const t of applied.get(h) ?? []) lat.push(t - at);
    const missing = txs * sample - lat.length;
    for (const l of loads) await l.send({ cmd: 'close' });
    const m: Metrics = {
      devServerCpuMsPerTx: devCpu / txs,
      bytesPerViewerPerTx: (b1 - b0) / connections / txs,
      appliedP50Ms: percentile(lat, 50),
      appliedP99Ms: percentile(lat, 99),
      txPerSecond: (txs * 1000) / elapsed,
      samplesMissing: missing,
    };
    if (side === 'relay') {
      m.relayHeapBytesPerViewer = (heapN - heap0) / viewers;
      m.relayCpuMsPerTx = r1 / txs;
      m.relayFanOutMsPerTx = fanOutMs / published;
    }
    return m;
  };

  const subjects: Metrics[] = [];
  const baselines: Metrics[] = [];
  const loadAverages: number[] = [];
  try {
    for (let rep = 0; rep < reps; rep++) {
      const relay = await createRelay({
        upstream: { builder: DbConnection.builder, uri: dev.wsUrl, database: dev.database, compression: 'gzip', events: null, sdkLogLevel: 'error' },
        streams: { match: { tables: () => ({ entity: { table: tables.entity } }) } },
        maxSpectators: viewers + 10,
        onError: (e) => console.error(`relay: ${e.message}`),
      });
      try {
        subjects.push(await measure('relay', relay));
      } finally {
        await relay.close();
      }
      baselines.push(await measure('direct', undefined));
      loadAverages.push(loadavg()[0]);
    }
  } finally {
    for (const l of loads) await l.stop();
    await driver.close();
    dev.child.kill('SIGTERM');
  }
  const subject = medians(subjects);
  const baseline = medians(baselines);
  const n = viewers.toLocaleString('en');
  const la = loadAverages.map((x) => x.toFixed(1)).join(', ');
  return result({
    id: 'spectators',
    title: `Spectators: ${n} viewers through one relay versus ${n} direct SDK subscribers`,
    subjectLabel: `${n} spectators on one relay`,
    baselineLabel: `${n} direct SDK subscribers (Gzip)`,
    warmup: 1,
    reps,
    figures: subject,
    baseline,
    targets: [
      { label: 'bytes per viewer per transaction ≤ 1.5× a direct subscriber (both compressed)', metric: 'bytesPerViewerPerTx', op: '<=', limit: 1.5 },
      { label: 'reducer call → applied in a spectator\'s table$, p99 ≤ 50 ms', metric: 'appliedP99Ms', of: 'figures', op: '<=', limit: 50 },
      { label: 'dev server CPU per transaction with the relay ≤ 0.1× with direct subscribers', metric: 'devServerCpuMsPerTx', op: '<=', limit: 0.1 },
    ],
    notes: [
      `A match of ${ROWS} rows; the driver calls a reducer updating all ${ROWS} rows ${RATE} times a second, ${txs} transactions measured after 5 of warm-up. ${reps} repetition${reps > 1 ? 's' : ''}, each one pass per side (relay side first) of ${txs} transactions with ${n} connections open; figures are per-side medians over the repetitions. 1-minute load average after each repetition: ${la} (${cpus().length} cores).`,
      `Dev server CPU: user + system time of the dev server process (a child process, /proc, 10 ms ticks) during the measured transactions, per transaction. With the relay the server has 2 subscribers (the relay and the driver); directly it has ${n} + 1.`,
      `Bytes: TCP payload bytes received by ${viewers - sample} lean viewers (WebSocket framing included), per viewer per transaction. Spectators: the relay's JSON Patch messages with permessage-deflate. Direct: the server's TransactionUpdate frames with Gzip (the SDK's compression), BSATN.`,
      `Latency: from the reducer call being sent to the changed row being applied — in the spectator's table$ (${sample} createSpectator clients) or in the raw SDK's row callback (${sample} SDK connections) — p50/p99 over every sampled viewer and transaction; it includes the dev server, the relay hop and both sockets. The sampled viewers run in their own worker thread, the ${viewers - sample} lean ones in another; each sampled viewer connects after a group of ${Math.round((viewers - sample) / sample)} lean ones, so the samples are spread over the fan-out order on both sides.`,
      `Relay heap per viewer: the relay process's heap after gc() with all viewers connected, minus before, over ${n} (viewers' own objects live in the workers' heaps). Relay CPU: on-CPU time of this process's main thread (relay + driver; /proc schedstat) per transaction — the viewer workers are not counted. Relay fan-out: wall time of the relay's broadcast loop per transaction (relay.stats().fanOutMs), including time the thread waited for a core.`,
    ],
    charts: [
      { title: 'Dev server CPU per transaction (ms)', unit: 'ms', groups: { [`${n} viewers`]: { relay: subject.devServerCpuMsPerTx, direct: baseline.devServerCpuMsPerTx } } },
      { title: 'Call → applied (ms)', unit: 'ms', groups: { p50: { relay: subject.appliedP50Ms, direct: baseline.appliedP50Ms }, p99: { relay: subject.appliedP99Ms, direct: baseline.appliedP99Ms } } },
    ],
  });
}
