/**
 * `npm run bench [-- --quick] [-- --only stream,latency]`
 *
 * Runs the scenarios one after another (each starts and stops its own dev
 * server on 127.0.0.1), writes benchmarks/results/latest.json and
 * regenerates benchmarks/RESULTS.md with its charts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machine, notMeasured, now, type RunConfig, type ScenarioResult } from './harness.ts';
import { writeReport } from './report.ts';
import { streamOverhead } from './scenarios/stream.ts';
import { latency } from './scenarios/latency.ts';
import { recovery } from './scenarios/recovery.ts';
import { outbox } from './scenarios/outbox.ts';
import { bandwidth } from './scenarios/bandwidth.ts';
import { deltas } from './scenarios/deltas.ts';
import { devServer } from './scenarios/devserver.ts';
import { memory } from './scenarios/memory.ts';
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

const cfg: RunConfig = { quick };
const results: ScenarioResult[] = [];
const started = now();
console.log(`stdb-rx benchmarks${quick ? ' (quick)' : ''}: Node ${machine.node}, ${machine.cores} cores (${machine.cpu})`);

// A scenario that fails must not hang the run: hard deadline per scenario.
const DEADLINE_MS = quick ? 60_000 : 240_000;
for (const [id, title, run] of SCENARIOS) {
  if (only && !only.includes(id)) continue;
  const t0 = now();
  process.stdout.write(`• ${title} … `);
  let r: ScenarioResult;
  try {
    let timer: ReturnType<typeof setTimeout> | undefined;
    r = await Promise.race([
      run(cfg),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`did not finish within ${DEADLINE_MS / 1000} s`)), DEADLINE_MS))),
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

const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const meta = { command, quick, date: new Date().toISOString(), node: machine.node, cores: machine.cores, cpu: machine.cpu, totalMs: now() - started, code: codeVersion() };
writeFileSync(`${dir}latest.json`, JSON.stringify(results.map((r) => ({ ...r, command, date: meta.date, meta })), null, 2) + '\n');
writeReport(results, meta);
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

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
}
