/**
 * Time, injected. Leases and throttling read the clock and arm timers only
 * through these two interfaces, so tests drive them without sleeping.
 */

/** Wall-clock time in milliseconds since the Unix epoch. */
export interface Clock {
  now(): number;
}

/** One-shot timers; the returned function cancels the timer. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    // A pending flush or lease renewal must not keep Node alive on its own.
    (handle as { unref?: () => void }).unref?.();
    return () => clearTimeout(handle);
  },
};
