/**
 * The one harness every benchmark uses: warm-up, repetitions, medians and
 * ratios measured side by side in the same run, retained heap after `gc()`,
 * and the shape of a scenario's result.
 *
 * Rules it enforces: figures are medians of repetitions; a comparison is a
 * ratio of two things measured in the same run, interleaved (A B, B A, …) so
 * that drift of a shared, noisy machine hits both sides alike.
 */
import { cpus } from 'node:os';

export type Metrics = Record<string, number>;

export interface RunConfig {
  /** `--quick`: fewer repetitions and smaller sizes, under a minute in all. */
  readonly quick: boolean;
}

export const machine = { node: process.version, cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown' };

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile, `p` in [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Per-key medians of a list of metric records. */
export function medians(samples: readonly Metrics[]): Metrics {
  const out: Metrics = {};
  for (const key of Object.keys(samples[0] ?? {})) out[key] = median(samples.map((s) => s[key]));
  return out;
}

/** Per-key `subject / baseline` (keys present in both). */
export function ratios(subject: Metrics, baseline: Metrics): Metrics {
  const out: Metrics = {};
  for (const key of Object.keys(subject)) if (key in baseline) out[key] = subject[key] / baseline[key];
  return out;
}

export interface SideBySide {
  readonly subject: Metrics;
  readonly baseline: Metrics;
  readonly ratio: Metrics;
  readonly subjectSamples: Metrics[];
  readonly baselineSamples: Metrics[];
}

/**
 * Measure `subject` and `baseline` in turns — A B, then B A, … — after
 * `warmup` discarded rounds; medians per metric and their ratios.
 */
export async function sideBySide(
  subject: (rep: number) => Promise<Metrics>,
  baseline: (rep: number) => Promise<Metrics>,
  { warmup, reps }: { warmup: number; reps: number },
): Promise<SideBySide> {
  const subjectSamples: Metrics[] = [];
  const baselineSamples: Metrics[] = [];
  for (let i = -warmup; i < reps; i++) {
    const order = (i & 1) === 0 ? [true, false] : [false, true];
    for (const isSubject of order) {
      const m = await (isSubject ? subject(i) : baseline(i));
      if (i >= 0) (isSubject ? subjectSamples : baselineSamples).push(m);
    }
  }
  const s = medians(subjectSamples);
  const b = medians(baselineSamples);
  return { subject: s, baseline: b, ratio: ratios(s, b), subjectSamples, baselineSamples };
}

/** Heap in use after full collections (needs `node --expose-gc`). */
export async function settledHeap(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

export const now = (): number => performance.now();

/**
 * Timed spans a scenario reports when `on` (`performance.now()` ms, start and
 * end), per side: `benchmarks/profile.ts --spans` attributes the profile
 * samples inside each side's spans, so the figures' own intervals can be read
 * apart from everything else the run does. Only the stream scenario reports
 * them (its client-side transaction spans).
 */
export const spanLog = { on: false, subject: [] as [number, number][], baseline: [] as [number, number][] };

/**
 * A `performance.now()` time (ms) that has just passed, on the clock of V8's
 * CPU profiles (µs, as `process.hrtime`). The offset between the two clocks
 * drifts (about a millisecond over a few seconds on this machine), so it is
 * taken at each call: convert a span's ends when the span is recorded, not
 * with one offset for a whole run.
 */
export function onProfileClock(ms: number): number {
  return ms * 1000 + Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
}
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve when `predicate()` holds (checked every `everyMs`); reject after `ms`. */
export async function until(predicate: () => boolean, ms: number, what: string, everyMs = 1): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A target: a figure (usually a ratio) compared with a limit. */
export interface Target {
  readonly label: string;
  /** Which figure: a key of `ratio` (or of `figures` when `of: 'figures'`). */
  readonly metric: string;
  readonly of?: 'ratio' | 'figures';
  readonly op: '<=' | '>=' | '==';
  readonly limit: number;
  value?: number;
  met?: boolean;
}

/** One scenario's entry in results/latest.json. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** What the subject and the baseline are. */
  readonly subjectLabel: string;
  readonly baselineLabel: string;
  readonly status: 'measured' | 'not measured';
  readonly reason?: string;
  readonly warmup: number;
  readonly reps: number;
  /** Medians of the subject (stdb-rx), by metric; names end in their unit. */
  readonly figures: Metrics;
  /** Medians of the baseline, by metric. */
  readonly baseline: Metrics;
  /** `figures[k] / baseline[k]`. */
  readonly ratio: Metrics;
  readonly targets: Target[];
  readonly notes: string[];
  /** Chart data: `{ title, unit, series: { label → { group → value } } }`. */
  readonly charts?: Chart[];
  readonly node: string;
  readonly cores: number;
  durationMs?: number;
}

export interface Chart {
  readonly title: string;
  readonly unit: string;
  /** group label → series label → value (e.g. "10 clients" → { "stdb-rx p50": 1.2, "raw SDK p50": 1.0 }). */
  readonly groups: Record<string, Record<string, number>>;
  /** Draw a reference line at this value (e.g. 1.0 for ratios). */
  readonly reference?: number;
}

/** Build a scenario result; targets are evaluated against the figures. */
export function result(r: Omit<ScenarioResult, 'node' | 'cores' | 'status' | 'ratio'> & { ratio?: Metrics; status?: ScenarioResult['status'] }): ScenarioResult {
  const ratio = r.ratio ?? ratios(r.figures, r.baseline);
  const targets = r.targets.map((t) => {
    const value = (t.of === 'figures' ? r.figures : ratio)[t.metric];
    const met = value === undefined || Number.isNaN(value) ? undefined : t.op === '<=' ? value <= t.limit : t.op === '>=' ? value >= t.limit : value === t.limit;
    return { ...t, value, met };
  });
  return { status: 'measured', ...r, ratio, targets, node: machine.node, cores: machine.cores };
}

/** A scenario that cannot be measured yet: its reason, and nothing else. */
export function notMeasured(id: string, title: string, reason: string, targets: Target[] = []): ScenarioResult {
  return {
    id,
    title,
    subjectLabel: 'stdb-rx',
    baselineLabel: '',
    status: 'not measured',
    reason,
    warmup: 0,
    reps: 0,
    figures: {},
    baseline: {},
    ratio: {},
    targets,
    notes: [],
    node: machine.node,
    cores: machine.cores,
  };
}
