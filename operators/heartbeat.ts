import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { HeartbeatTimeoutError } from './errors.ts';

/** Configuration of {@link heartbeat}. */
export interface HeartbeatConfig {
  /**
   * Silence, in ms, after which a probe is sent. Any inbound activity restarts
   * this wait, so a busy connection is never probed. Must be finite and `> 0`.
   */
  interval: number;
  /**
   * Time, in ms, allowed after a probe for any activity to arrive before the
   * result errors with {@link HeartbeatTimeoutError}. Must be finite and `> 0`.
   */
  timeout: number;
  /**
   * Sends one probe (e.g. a ping frame, or a cheap one-off query). Called
   * synchronously; an exception it throws becomes the result's error.
   */
  probe: () => void;
  /**
   * Scheduler that times the silence and supplies `now()` for the measurements.
   * @default asyncScheduler
   */
  scheduler?: SchedulerLike;
}

/** The round trip of one probe, emitted by {@link heartbeat}. */
export interface HeartbeatMeasurement {
  /** Time in ms from the probe to the next inbound activity of any kind. */
  readonly rttMs: number;
  /** Scheduler time at which the probe was sent. */
  readonly probeAt: number;
}

/**
 * Probes a connection that went quiet and errors when it stays quiet.
 *
 * ```
 * activity: --a-a--------a-----------
 * heartbeat({ interval: 5, timeout: 4, probe })
 * probe():  ---------P--------P----
 * result:   -------------m--------#
 *
 * m = { rttMs: 4, probeAt: 9 };  # = HeartbeatTimeoutError
 *     (info { lastActivityAt: 13, probeAt: 18, probesSent: 2, timeout: 4 })
 * ```
 *
 * The source is the stream of inbound activity — any message counts as life.
 * When nothing arrived for `interval`, `probe()` is called; the next activity
 * after it is that probe's answer, and its round trip is emitted. When nothing
 * at all arrives within `timeout` after a probe, the result errors with a
 * {@link HeartbeatTimeoutError} whose `info` holds the last activity time and
 * the number of probes sent. Completion and errors of the source pass through.
 * Timers and counters live per subscription.
 *
 * ## Example
 * ```ts
 * import { Subject } from 'rxjs';
 * import { heartbeat } from 'stdb-rx';
 *
 * const inbound$ = new Subject<unknown>(); // every message from the server
 * inbound$
 *   .pipe(heartbeat({ interval: 5_000, timeout: 3_000, probe: () => socket.send(PING) }))
 *   .subscribe({
 *     next: ({ rttMs }) => console.log(`rtt ${rttMs} ms`),
 *     error: (err) => console.log(err.name, err.info),
 *   });
 * // After 5 s of silence the probe goes out; the reply arrives 42 ms later:
 * // rtt 42 ms
 * // If the server had stayed silent for 3 s after the probe:
 * // HeartbeatTimeoutError { lastActivityAt: …, probeAt: …, probesSent: 1, timeout: 3000 }
 * ```
 *
 * @param config Interval, timeout, the probe to send and an optional scheduler.
 * @returns A function that turns inbound activity into round-trip measurements.
 * @throws {TypeError} At creation, when the configuration is invalid.
 */
export function heartbeat<T>(config: HeartbeatConfig): OperatorFunction<T, HeartbeatMeasurement> {
  const { interval, timeout, probe, scheduler = asyncScheduler } = config ?? ({} as HeartbeatConfig);
  for (const [name, value] of [['interval', interval], ['timeout', timeout]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new TypeError(`heartbeat: ${name} must be a finite number > 0, got ${String(value)}.`);
    }
  }
  if (typeof probe !== 'function') throw new TypeError('heartbeat: probe must be a function.');

  return (source) =>
    new Observable<HeartbeatMeasurement>((subscriber) => {
      let lastActivityAt: number | null = null;
      let probeAt: number | null = null;
      let probesSent = 0;
      let timer: Subscription | undefined;

      const waitForSilence = () => {
        timer?.unsubscribe();
        timer = scheduler.schedule(sendProbe, interval);
      };
      const sendProbe = () => {
        probeAt = scheduler.now();
        probesSent++;
        const sentAt = probeAt;
        timer = scheduler.schedule(() => {
          subscriber.error(new HeartbeatTimeoutError({ lastActivityAt, probeAt: sentAt, probesSent, timeout }));
        }, timeout);
        try {
          probe();
        } catch (err) {
          subscriber.error(err);
        }
      };

      const sourceSubscription = source.subscribe({
        next: () => {
          const now = scheduler.now();
          lastActivityAt = now;
          const answered = probeAt;
          probeAt = null;
          waitForSilence();
          if (answered !== null) subscriber.next({ rttMs: now - answered, probeAt: answered });
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      if (!subscriber.closed) waitForSilence();

      return () => {
        timer?.unsubscribe();
        sourceSubscription.unsubscribe();
      };
    });
}
