import {
  asyncScheduler,
  defer,
  retry,
  throwError,
  timer,
  type MonoTypeOperatorFunction,
  type Observer,
  type SchedulerLike,
} from 'rxjs';
import { computeBackoffDelay, exponentialBackoffDelay, JITTERS, type Jitter } from './backoff.ts';

/** One scheduled retry, as reported to {@link RetryBackoffConfig.onRetry}. */
export interface RetryScheduled {
  /** One-based retry number since the last reset (1 for the first retry). */
  readonly attempt: number;
  /** Delay in ms before the source is subscribed again. */
  readonly delay: number;
  /** The error that caused this retry. */
  readonly error: unknown;
}

/**
 * Configuration of {@link retryBackoff}. A superset of backoff-rxjs's
 * `RetryBackoffConfig`: the same fields have the same meanings and defaults.
 */
export interface RetryBackoffConfig {
  /**
   * Delay of the first retry in ms; later ones grow from it along `backoffDelay`.
   * Must be a finite number `>= 0`.
   */
  initialInterval: number;
  /**
   * Maximum number of retries before the error is passed on. `0` makes the
   * operator a no-op.
   * @default Infinity
   */
  maxRetries?: number;
  /**
   * Upper bound of any delay, in ms.
   * @default Infinity
   */
  maxInterval?: number;
  /**
   * Whether an error is worth retrying. When it returns `false` the error is
   * passed on at once, without waiting.
   * @default () => true
   */
  shouldRetry?: (error: any) => boolean;
  /**
   * The delay curve: `iteration` is zero-based (0 for the first retry).
   * Ignored by `jitter: 'decorrelated'`.
   * @default exponentialBackoffDelay — `Math.pow(2, iteration) * initialInterval`
   */
  backoffDelay?: (iteration: number, initialInterval: number) => number;
  /**
   * When `true`, every value the source emits resets the retry count, so the
   * next failure starts again at `initialInterval`.
   * @default false
   */
  resetOnSuccess?: boolean;
  /**
   * How delays are randomised to spread out reconnecting clients:
   * `'none'`, `'full'`, `'equal'` or `'decorrelated'` (see `operators/backoff.ts`).
   * `'none'` behaves exactly like backoff-rxjs.
   * @default 'none'
   */
  jitter?: Jitter;
  /**
   * Uniform random source in `[0, 1)` used by jitter. Inject a fixed sequence in tests.
   * @default Math.random
   */
  random?: () => number;
  /**
   * Told about every scheduled retry before the wait starts — e.g. to show
   * "reconnecting in 4 s". A function or an observer (only `next` is called,
   * so a `Subject` shared by several subscriptions stays open).
   * @default undefined
   */
  onRetry?: ((retry: RetryScheduled) => void) | Partial<Observer<RetryScheduled>>;
  /**
   * Scheduler that times the delays.
   * @default asyncScheduler
   */
  scheduler?: SchedulerLike;
}

/**
 * Retries a failing source with exponentially growing, optionally jittered delays.
 *
 * ```
 * source:  --#                  (every subscription errors after 2 ms)
 * retryBackoff({ initialInterval: 3, maxRetries: 2 })
 * subs:    ^-!
 *          -----^-!             (resubscribed 3 ms after the error)
 *          -------------^-!     (then 6 ms after)
 * result:  ---------------#     (the third error is passed on)
 * ```
 *
 * A drop-in replacement for backoff-rxjs's `retryBackoff`, built on RxJS's
 * `retry({ count, delay, resetOnSuccess })`. Errors for which `shouldRetry`
 * returns `false`, and the error after `maxRetries` retries, are passed on
 * unchanged. The delay state lives per subscription, so one operator instance
 * can be shared by many sources.
 *
 * ## Example
 * ```ts
 * import { defer } from 'rxjs';
 * import { retryBackoff } from 'stdb-rx';
 *
 * let calls = 0;
 * defer(async () => {
 *   if (++calls < 3) throw new Error('offline');
 *   return 'connected';
 * })
 *   .pipe(
 *     retryBackoff({
 *       initialInterval: 100,
 *       maxRetries: 5,
 *       onRetry: ({ attempt, delay }) => console.log(`retry ${attempt} in ${delay} ms`),
 *     }),
 *   )
 *   .subscribe(console.log);
 * // Logs:
 * // retry 1 in 100 ms
 * // retry 2 in 200 ms
 * // connected
 * ```
 *
 * @param config The initial interval in ms, or a {@link RetryBackoffConfig}.
 * @returns A function that returns an Observable mirroring the source, resubscribing to it after errors.
 * @throws {TypeError} At creation, when the configuration is invalid.
 */
export function retryBackoff<T>(config: number | RetryBackoffConfig): MonoTypeOperatorFunction<T> {
  const {
    initialInterval,
    maxRetries = Infinity,
    maxInterval = Infinity,
    shouldRetry = () => true,
    backoffDelay = exponentialBackoffDelay,
    resetOnSuccess = false,
    jitter = 'none',
    random = Math.random,
    onRetry,
    scheduler = asyncScheduler,
  } = typeof config === 'number' ? { initialInterval: config } : (config ?? ({} as RetryBackoffConfig));

  if (typeof initialInterval !== 'number' || !Number.isFinite(initialInterval) || initialInterval < 0) {
    throw new TypeError(`retryBackoff: initialInterval must be a finite number >= 0, got ${String(initialInterval)}.`);
  }
  if (typeof maxRetries !== 'number' || Number.isNaN(maxRetries) || maxRetries < 0) {
    throw new TypeError(`retryBackoff: maxRetries must be a number >= 0, got ${String(maxRetries)}.`);
  }
  if (typeof maxInterval !== 'number' || Number.isNaN(maxInterval) || maxInterval < 0) {
    throw new TypeError(`retryBackoff: maxInterval must be a number >= 0, got ${String(maxInterval)}.`);
  }
  if (!JITTERS.includes(jitter)) {
    throw new TypeError(`retryBackoff: jitter must be one of ${JITTERS.join(', ')}, got ${String(jitter)}.`);
  }
  for (const [name, fn] of [['shouldRetry', shouldRetry], ['backoffDelay', backoffDelay], ['random', random]] as const) {
    if (typeof fn !== 'function') throw new TypeError(`retryBackoff: ${name} must be a function.`);
  }
  if (maxRetries === 0) return (source) => source;

  const report = typeof onRetry === 'function' ? onRetry : onRetry?.next?.bind(onRetry);

  return (source) =>
    defer(() => {
      let previousDelay: number | undefined;
      return source.pipe(
        retry({
          count: maxRetries,
          resetOnSuccess,
          delay: (error, retryCount) => {
            if (!shouldRetry(error)) return throwError(() => error);
            const delay = computeBackoffDelay({
              iteration: retryCount - 1,
              initialInterval,
              maxInterval,
              backoffDelay,
              jitter,
              random,
              previousDelay,
            });
            previousDelay = delay;
            report?.({ attempt: retryCount, delay, error });
            return timer(delay, scheduler);
          },
        }),
      );
    });
}
