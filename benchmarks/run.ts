/**
 * `npm run bench [-- --quick] [-- --only stream,latency] [-- --runs 3]`
 *
 * `--runs N` runs every selected scenario N times (one after another, the
 * whole list each time) and reports, per figure and per ratio, the median
 * over the runs; each target is judged on that median, and the notes list
 * every run's value of the targeted ratios.
 *
 * The scenarios not run keep their saved results (the report says which run
 * each came from); the ones run replace theirs.
 *
 * Runs the scenarios one after another (each starts and stops its own dev
 * server on 127.0.0.1), writes benchmarks/results/latest.json and
 * regenerates benchmarks/RESULTS.md with its charts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machine, median, notMeasured, now, result, type RunConfig, type ScenarioResult } from './harness.ts';
import { writeReport } from './report.ts';
import { streamOverhead } from './scenarios/stream.ts';
import { latency } from './scenarios/latency.ts';
import { recovery } from './scenarios/recovery.ts';
import { outbox } from './scenarios/outbox.ts';
import { bandwidth } from './scenarios/bandwidth.ts';
import { deltas } from './scenarios/deltas.ts';
import { devServer } from './scenarios/devserver.ts';
import { memory } from './scenarios/memory.ts';
import { viewsCost } from './scenarios/views.ts';
import { spectators } from './scenarios/spectators.ts';
import { quality, qualitySoak } from './scenarios/quality.ts';

/** Scenarios listed here run only when named with `--only` (too long for every run); their last result is kept. */
const ON_REQUEST = new Set(['quality-soak']);
/** Per-scenario deadline (ms) where the default does not fit. */
const LONG_DEADLINE: Record<string, number> = { quality: 480_000, 'quality-soak': 420_000 };
import { framework } from './scenarios/framework.ts';
import { outboxBrowser } from './scenarios/outboxBrowser.ts';

const SCENARIOS: [string, string, (cfg: RunConfig) => Promise<ScenarioResult>][] = [
  ['stream', 'Stream overhead', streamOverhead],
  ['latency', 'Latency', latency],
  ['recovery', 'Recovery', recovery],
  ['outbox', 'Outbox', outbox],
  ['outboxBrowser', 'Outbox in Chromium', outboxBrowser],
  ['bandwidth', 'Bandwidth', bandwidth],
  ['deltas', 'Deltas', deltas],
  ['devserver', 'Dev server', devServer],
  ['memory', 'Memory', memory],
  ['spectators', 'Spectators', spectators],
  ['quality', 'Connection quality', quality],
  ['quality-soak', 'Connection quality soak', qualitySoak],
  ['views', 'Views and RLS', viewsCost],
  ['framework', 'Against useTable', framework],
];

const argv = process.argv.slice(2);

// `--report-only`: rewrite RESULTS.md and the charts from results/latest.json (no measurement).
if (argv.includes('--report-only')) {
  const { readFileSync } = await import('node:fs');
  const saved = JSON.parse(readFileSync(fileURLToPath(new URL('./results/latest.json', import.meta.url)), 'utf8')) as (ScenarioResult & { command: string; date: string; meta?: RunMetaLike })[];
  const first = saved[0];
  if (!first) throw new Error('results/latest.json is empty');
  // Older files carry no meta: rebuild it (the code version from the RESULTS.md they produced).
  const oldReport = (() => {
    try {
      return readFileSync(fileURLToPath(new URL('./RESULTS.md', import.meta.url)), 'utf8');
    } catch {
      return '';
    }
  })();
  const m: RunMetaLike = first.meta ?? {
    command: first.command,
    quick: first.command.includes('--quick'),
    date: first.date,
    node: first.node,
    cores: first.cores,
    cpu: machine.cpu,
    totalMs: saved.reduce((n, r) => n + (r.durationMs ?? 0), 0),
    code: /^- Code measured: (.*)$/m.exec(oldReport)?.[1] ?? 'unknown',
  };
  writeReport(saved, m);
  console.log('rewrote benchmarks/RESULTS.md from benchmarks/results/latest.json');
  process.exit(0);
}
type RunMetaLike = Parameters<typeof writeReport>[1];
const quick = argv.includes('--quick');
const onlyArg = argv.find((a) => a.startsWith('--only'));
const only = onlyArg ? (onlyArg.includes('=') ? onlyArg.split('=')[1] : argv[argv.indexOf(onlyArg) + 1]).split(',') : undefined;
const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

const runsArg = argv.find((a) => a.startsWith('--runs'));
const runs = runsArg ? Number(runsArg.includes('=') ? runsArg.split('=')[1] : argv[argv.indexOf(runsArg) + 1]) : 1;
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');

const cfg: RunConfig = { quick };
const results: ScenarioResult[] = [];
const started = now();
console.log(`stdb-rx benchmarks${quick ? ' (quick)' : ''}: Node ${machine.node}, ${machine.cores} cores (${machine.cpu})${runs > 1 ? `, ${runs} runs` : ''}`);

// A scenario that fails must not hang the run: hard deadline per scenario.
const DEADLINE_MS = quick ? 60_000 : 240_000;
const perRun: ScenarioResult[][] = [];
for (let runNo = 1; runNo <= runs; runNo++) {
if (runs > 1) console.log(`run ${runNo} of ${runs}`);
results.length = 0;
for (const [id, title, run] of SCENARIOS) {
  if (only ? !only.includes(id) : ON_REQUEST.has(id)) continue;
  const t0 = now();
  process.stdout.write(`• ${title} … `);
  let r: ScenarioResult;
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = LONG_DEADLINE[id] ?? DEADLINE_MS;
    r = await Promise.race([
      run(cfg),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`did not finish within ${deadline / 1000} s`)), deadline))),
    ]).finally(() => clearTimeout(timer));
  } catch (e) {
    r = notMeasured(id, title, `failed: ${(e as Error).message}`);
    console.error(e);
  }
  r.durationMs = now() - t0;
  results.push(r);
  console.log(`${(r.durationMs / 1000).toFixed(1)} s${r.status === 'measured' ? '' : ` — not measured: ${r.reason}`}`);
  for (const t of r.targets) if (t.value !== undefined) console.log(`    ${t.met ? 'met   ' : 'MISSED'} ${t.label}: ${fmt(t.value)}`);
}
perRun.push([...results]);
}
if (runs > 1) {
  const merged = mergeRuns(perRun);
  results.length = 0;
  results.push(...merged);
  console.log(`medians over ${runs} runs:`);
  for (const r of results) for (const t of r.targets) if (t.value !== undefined) console.log(`    ${t.met ? 'met   ' : 'MISSED'} ${t.label}: ${fmt(t.value)}`);
}

const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const meta = { command, quick, date: new Date().toISOString(), node: machine.node, cores: machine.cores, cpu: machine.cpu, totalMs: now() - started, code: codeVersion() };
// Scenarios not run this time keep their last result (each entry says when and how it was measured).
const kept = (() => {
  try {
    const prev = JSON.parse(readFileSync(`${dir}latest.json`, 'utf8')) as (ScenarioResult & { command: string; date: string })[];
    const ran = new Set(results.map((r) => r.id));
    return prev.filter((r) => !ran.has(r.id) && SCENARIOS.some(([id]) => id === r.id));
  } catch {
    return [];
  }
})();
const fresh = results.map((r) => ({ ...r, command, date: meta.date, meta }));
const all = SCENARIOS.map(([id]) => fresh.find((r) => r.id === id) ?? kept.find((r) => r.id === id)).filter((r) => r !== undefined);
writeFileSync(`${dir}latest.json`, JSON.stringify(all, null, 2) + '\n');
writeReport(all, meta);
console.log(`done in ${(meta.totalMs / 1000).toFixed(0)} s: benchmarks/results/latest.json, benchmarks/RESULTS.md`);
// Sockets of the SDK may linger a moment after close(); everything was stopped.
process.exit(0);

/** The commit measured, and the code paths that differed from it (others work in the same tree). */
function codeVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'streams', 'operators', 'storage', 'devserver'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return dirty.length ? `${head} plus uncommitted changes in ${dirty.join(', ')}` : head;
  } catch {
    return 'unknown';
  }
}

/** One result per scenario: per-figure and per-ratio medians over the runs that measured it, targets judged on those. */
function mergeRuns(all: ScenarioResult[][]): ScenarioResult[] {
  return all[0].map((first) => {
    const same = all.map((rs) => rs.find((r) => r.id === first.id)).filter((r): r is ScenarioResult => r?.status === 'measured');
    if (same.length === 0) return first;
    const med = (pick: (r: ScenarioResult) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const k of Object.keys(pick(same[0]))) out[k] = median(same.map((r) => pick(r)[k]).filter((v) => v !== undefined && !Number.isNaN(v)));
      return out;
    };
    const fmtRuns = (metric: string, of: 'ratio' | 'figures' | undefined) => same.map((r) => fmt((of === 'figures' ? r.figures : r.ratio)[metric])).join(', ');
    return result({
      ...same[0],
      figures: med((r) => r.figures),
      baseline: med((r) => r.baseline),
      ratio: med((r) => r.ratio),
      targets: same[0].targets.map(({ value: _v, met: _m, ...t }) => t),
      notes: [
        ...same[0].notes,
        `Medians over ${same.length} full runs (figures, baselines and ratios each the median of the runs' medians). Per run: ${same[0].targets.map((t) => `${t.metric} ${fmtRuns(t.metric, t.of)}`).join('; ')}. The chart below is the first run's.`,
      ],
      durationMs: same.reduce((n, r) => n + (r.durationMs ?? 0), 0),
    });
  });
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
}
