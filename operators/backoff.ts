/**
 * Pure delay maths for {@link retryBackoff}: no streams, no clocks. The only
 * source of randomness is the `random` function passed in, so every result is
 * reproducible in tests.
 *
 * The jitter strategies are the ones compared in AWS's "Exponential Backoff
 * and Jitter" article: with `d = min(backoffDelay(iteration, initialInterval), maxInterval)`
 *
 * | jitter           | delay                                                          |
 * | ---------------- | -------------------------------------------------------------- |
 * | `'none'`         | `d` (exactly backoff-rxjs)                                     |
 * | `'full'`         | `random() * d`                                                 |
 * | `'equal'`        | `d / 2 + random() * d / 2`                                     |
 * | `'decorrelated'` | `min(maxInterval, initialInterval + random() * (3 * previous - initialInterval))`, `previous` starting at `initialInterval`; `backoffDelay` is not used |
 *
 * @module
 */

/** How a backoff delay is randomised. See the table in this module's header. */
export type Jitter = 'none' | 'full' | 'equal' | 'decorrelated';

/** The jitter strategies, for validation. */
export const JITTERS: readonly Jitter[] = ['none', 'full', 'equal', 'decorrelated'];

/**
 * Exponential backoff: `2^iteration * initialInterval`, the default
 * `backoffDelay` of backoff-rxjs.
 *
 * @param iteration Zero-based retry number (0 for the first retry).
 * @param initialInterval Delay of the first retry, in ms.
 * @returns The un-capped, un-jittered delay in ms.
 */
export function exponentialBackoffDelay(iteration: number, initialInterval: number): number {
  return Math.pow(2, iteration) * initialInterval;
}

/** Everything {@link computeBackoffDelay} needs; all of it explicit. */
export interface BackoffInput {
  /** Zero-based retry number. */
  readonly iteration: number;
  /** Delay of the first retry, in ms. */
  readonly initialInterval: number;
  /** Upper bound of any delay, in ms. */
  readonly maxInterval: number;
  /** The un-jittered delay curve. */
  readonly backoffDelay: (iteration: number, initialInterval: number) => number;
  /** The jitter strategy. */
  readonly jitter: Jitter;
  /** Uniform random source in `[0, 1)`. */
  readonly random: () => number;
  /** The delay this function returned for the previous retry (only `'decorrelated'` reads it). */
  readonly previousDelay: number | undefined;
}

/**
 * Computes the delay before a retry.
 *
 * @param input The retry number, the configuration and, for `'decorrelated'`, the previous delay.
 * @returns The delay in ms, never negative and never above `maxInterval`.
 */
export function computeBackoffDelay(input: BackoffInput): number {
  const { iteration, initialInterval, maxInterval, backoffDelay, jitter, random } = input;
  if (jitter === 'decorrelated') {
    const previous = iteration === 0 || input.previousDelay === undefined ? initialInterval : input.previousDelay;
    const upper = Math.max(initialInterval, previous * 3);
    return clamp(initialInterval + random() * (upper - initialInterval), maxInterval);
  }
  const capped = clamp(backoffDelay(iteration, initialInterval), maxInterval);
  switch (jitter) {
    case 'none':
      return capped;
    case 'full':
      return random() * capped;
    case 'equal':
      return capped / 2 + (random() * capped) / 2;
  }
}

function clamp(delay: number, maxInterval: number): number {
  return Math.max(0, Math.min(delay, maxInterval));
}
