/**
 * `node --expose-gc --import tsx benchmarks/profile.ts stream [--full] [--spans]` (any scenario name; `--full` for full sizes)
 *
 * Runs one scenario (quick sizes unless `--full`) under V8's sampling CPU
 * profiler and prints where the time goes: the share of busy samples per
 * part of the process (stdb-rx, rxjs, the SDK, the dev server, garbage
 * collection, …) and the functions with the most self time. Writes the raw
 * profile to `benchmarks/results/<scenario>.cpuprofile` (open it in Chrome
 * DevTools → Performance, or VS Code) for anything the summary leaves out.
 *
 * The scenario runs both sides (stdb-rx and its baseline) as the benchmark
 * does, so the shares are of the whole run; the stdb-rx rows are what the
 * layer adds.
 *
 * With `--spans` (the stream scenario), the samples inside each side's
 * timed transactions — frame arrival → the consumer has every row, the
 * interval `txClientMs` measures — are also attributed per side, as
 * `replay.ts` does for replayed frames: here with the server's work between
 * two frames, as in the benchmark.
 */
import { Session } from 'node:inspector/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spanLog, type RunConfig, type ScenarioResult } from './harness.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
/** A V8 CPU profile, as the inspector's `Profiler.stop` returns it. */
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

const loaders: Record<string, () => Promise<(cfg: RunConfig) => Promise<ScenarioResult>>> = {
  stream: async () => (await import('./scenarios/stream.ts')).streamOverhead,
  latency: async () => (await import('./scenarios/latency.ts')).latency,
  recovery: async () => (await import('./scenarios/recovery.ts')).recovery,
  outbox: async () => (await import('./scenarios/outbox.ts')).outbox,
  memory: async () => (await import('./scenarios/memory.ts')).memory,
  framework: async () => (await import('./scenarios/framework.ts')).framework,
};

/** Which part of the process a frame belongs to. */
export function partOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)' || fn === '(idle)' || fn === '(root)') return fn;
  if (url.startsWith('node:')) return 'Node internals / native';
  if (url.includes('/node_modules/spacetimedb/')) return 'SDK (spacetimedb)';
  if (url.includes('/node_modules/rxjs/')) return 'rxjs';
  if (url.includes('/node_modules/undici/') || url.includes('/node_modules/ws/')) return 'WebSocket (undici, ws)';
  if (url.includes('/node_modules/fake-indexeddb/') || url.includes('/node_modules/dexie/')) return 'IndexedDB (dexie, fake-indexeddb)';
  if (/\/(streams|src|operators)\//.test(url)) return 'stdb-rx (streams, src, operators)';
  if (url.includes('/storage/')) return 'stdb-rx storage';
  if (url.includes('/devserver/')) return 'dev server';
  if (url.includes('/benchmarks/')) return 'benchmark driver';
  if (url.startsWith('node:') || url === '') return 'Node internals / native';
  return 'other';
}

export function summarize(profile: Profile, top = 15): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const parts = new Map<string, number>();
  const fns = new Map<string, { us: number; part: string }>();
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const part = partOf(url, functionName);
    if (part === '(idle)' || part === '(root)') continue;
    busy += us;
    parts.set(part, (parts.get(part) ?? 0) + us);
    const file = url.replace(/^.*\/(node_modules\/[^/]+|streams|src|operators|storage|devserver|benchmarks)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    const f = fns.get(key) ?? { us: 0, part };
    f.us += us;
    fns.set(key, f);
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
  const lines = [`busy ${(busy / 1000).toFixed(0)} ms (idle excluded)`, '', 'by part:'];
  for (const [p, us] of [...parts].sort((a, b) => b[1] - a[1])) lines.push(`  ${pct(us)}  ${p}`);
  lines.push('', `top ${top} functions by self time:`);
  for (const [k, f] of [...fns].sort((a, b) => b[1].us - a[1].us).slice(0, top)) lines.push(`  ${pct(f.us)}  ${k}  [${f.part}]`);
  const ours = [...fns].filter(([, f]) => f.part.startsWith('stdb-rx') || f.part === 'rxjs').sort((a, b) => b[1].us - a[1].us);
  lines.push('', `top ${top} stdb-rx and rxjs functions by self time:`);
  for (const [k, f] of ours.slice(0, top)) lines.push(`  ${pct(f.us)}  ${k}`);
  return lines.join('\n');
}

/**
 * Start V8's sampling CPU profiler, one sample per `intervalUs`; the function
 * returned stops it and gives the profile.
 */
export async function startProfiler(intervalUs: number): Promise<() => Promise<Profile>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
    session.disconnect();
    return profile;
  };
}

/**
 * Where the time of some spans of a profile went, per span: only samples
 * inside `spans` (`[start, end]` pairs on the profile's clock, µs — see
 * `onProfileClock` — in any order) count, each attributed to the innermost stdb-rx or rxjs function on its
 * stack, or to the SDK when SDK code comes first, else to its part of the
 * process. So the stdb-rx lines are what the layer adds inside the spans.
 */
export function perSpan(profile: Profile, spans: readonly (readonly [number, number])[], count: number, top = 14): string {
  const byId = new Map(profile.nodes.map((nd) => [nd.id, nd]));
  const parent = new Map<number, number>();
  for (const nd of profile.nodes) for (const c of nd.children ?? []) parent.set(c, nd.id);
  const totals = new Map<string, number>();
  const onClock = [...spans].sort((x, y) => x[0] - y[0]);
  let t = profile.startTime;
  let j = 0;
  for (let s = 0; s < profile.samples.length; s++) {
    const d = profile.timeDeltas[s] ?? 0;
    t += d;
    while (j < onClock.length && onClock[j][1] < t) j++;
    if (j >= onClock.length || t < onClock[j][0]) continue;
    const leaf = byId.get(profile.samples[s])!;
    let key = partOf(leaf.callFrame.url, leaf.callFrame.functionName);
    if (key === '(idle)') continue;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const { url, functionName, lineNumber } = byId.get(id)!.callFrame;
      const part = partOf(url, functionName);
      if (part === 'SDK (spacetimedb)') {
        key = part;
        break;
      }
      if (part.startsWith('stdb-rx') || part === 'rxjs') {
        key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(streams|src|operators|node_modules\/rxjs)\//, '$1/')}:${lineNumber + 1}`;
        break;
      }
    }
    totals.set(key, (totals.get(key) ?? 0) + d);
  }
  const sum = [...totals.values()].reduce((a, b) => a + b, 0);
  const lines = [`${(sum / 1000 / count).toFixed(3)} ms sampled per span (profiler overhead included)`];
  for (const [k, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${(us / 1000 / count).toFixed(3).padStart(7)} ms ${((100 * us) / sum).toFixed(1).padStart(5)} %  ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const id = argv.find((a) => !a.startsWith('--')) ?? 'stream';
  const load = loaders[id];
  if (!load) throw new Error(`unknown scenario '${id}' (one of ${Object.keys(loaders).join(', ')})`);
  const run = await load();
  spanLog.on = argv.includes('--spans');
  const stop = await startProfiler(100);
  const r = await run({ quick: !argv.includes('--full') });
  const profile = await stop();
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}${id}.cpuprofile`, JSON.stringify(profile));
  console.log(`${r.title}`);
  for (const [k, v] of Object.entries(r.ratio)) console.log(`  ${k}: ${v.toFixed(3)}×`);
  console.log('');
  console.log(summarize(profile));
  for (const side of ['baseline', 'subject'] as const) {
    const spans = spanLog[side];
    if (spans.length) console.log(`\n${side === 'subject' ? r.subjectLabel : r.baselineLabel}, inside its ${spans.length} timed spans: ${perSpan(profile, spans, spans.length)}`);
  }
  console.log(`\nraw profile: benchmarks/results/${id}.cpuprofile`);
  process.exit(0);
}
