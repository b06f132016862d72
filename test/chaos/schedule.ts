/**
 * The fault schedule of a chaos run: a pure function of the seed, the number
 * of clients and the duration. Every kind of fault appears at least once;
 * the rest are drawn at random times, about one every `meanGapMs`.
 */
import { derive, int, weighted, type Rng } from './prng.ts';

export type FaultEvent =
  | { at: number; kind: 'drop-all' }
  | { at: number; kind: 'blackhole'; ms: number }
  | { at: number; kind: 'latency'; ms: number; jitter: number; forMs: number }
  | { at: number; kind: 'fail-reducers'; n: number; message: string }
  | { at: number; kind: 'corrupt-frame' }
  | { at: number; kind: 'restart' }
  | { at: number; kind: 'kill-client'; client: number };

export type FaultKind = FaultEvent['kind'];
export const FAULT_KINDS: readonly FaultKind[] = ['drop-all', 'blackhole', 'latency', 'fail-reducers', 'corrupt-frame', 'restart', 'kill-client'];

/** Marks the reason of every failure the run injects, so the accounting can tell it from the module's own. */
export const INJECTED_PREFIX = 'chaos: injected failure';

export interface ScheduleOptions {
  seed: number;
  clients: number;
  /** Length of the faulty phase (ms). */
  durationMs: number;
  /** Mean time between two faults. @default 600 */
  meanGapMs?: number;
}

const WEIGHTS: Record<FaultKind, number> = {
  'drop-all': 3,
  blackhole: 2,
  latency: 2,
  'fail-reducers': 3,
  'corrupt-frame': 2,
  restart: 1.5,
  'kill-client': 4,
};

function draw(rng: Rng, kind: FaultKind, at: number, clients: number, index: number): FaultEvent {
  switch (kind) {
    case 'drop-all':
      return { at, kind };
    case 'blackhole':
      return { at, kind, ms: int(rng, 150, 1500) };
    case 'latency':
      return { at, kind, ms: int(rng, 10, 250), jitter: int(rng, 0, 150), forMs: int(rng, 300, 2500) };
    case 'fail-reducers':
      return { at, kind, n: int(rng, 1, 4), message: `${INJECTED_PREFIX} #${index}` };
    case 'corrupt-frame':
      return { at, kind };
    case 'restart':
      return { at, kind };
    case 'kill-client':
      return { at, kind, client: int(rng, 0, clients - 1) };
  }
}

/** The events, sorted by time (ms from the start of the faulty phase). */
export function buildSchedule(options: ScheduleOptions): FaultEvent[] {
  const { seed, clients, durationMs } = options;
  const meanGap = options.meanGapMs ?? 600;
  const rng = derive(seed, 'schedule');
  // Leave the last stretch quiet-ish so the final drain starts from a known state; faults still overlap it through their durations.
  const span = Math.max(200, durationMs - 300);
  const times: { at: number; kind: FaultKind }[] = FAULT_KINDS.map((kind) => ({ at: Math.floor(rng() * span), kind }));
  for (let t = 0; ; ) {
    t += -Math.log(1 - rng()) * meanGap; // exponential gaps
    if (t >= span) break;
    times.push({ at: Math.floor(t), kind: weighted(rng, WEIGHTS) });
  }
  times.sort((a, b) => a.at - b.at);
  return times.map(({ at, kind }, i) => draw(rng, kind, at, clients, i + 1));
}

/** One line per event, for logs and for comparing two schedules. */
export function describeEvent(e: FaultEvent): string {
  switch (e.kind) {
    case 'blackhole':
      return `${e.at}ms blackhole ${e.ms}ms`;
    case 'latency':
      return `${e.at}ms latency ${e.ms}±${e.jitter}ms for ${e.forMs}ms`;
    case 'fail-reducers':
      return `${e.at}ms fail next ${e.n} reducers`;
    case 'kill-client':
      return `${e.at}ms kill client ${e.client}`;
    default:
      return `${e.at}ms ${e.kind}`;
  }
}
