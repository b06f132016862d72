import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { HeartbeatTimeoutError } from './errors.ts';

/** Configuration of {@link heartbeat}. */
export interface HeartbeatConfig<T = unknown> {
  /**
   * Silence, in ms, after which a probe is sent. Any inbound activity restarts
   * this wait, so a busy connection is never probed. Must be finite and `> 0`.
   */
  interval: number;
  /**
   * The floor of the answer deadline, in ms: a request or probe is never
   * declared unanswered sooner than this, however short the measured round
   * trips are. Before the first measurement the deadline is this value.
   * Must be finite and `> 0`.
   */
  timeout: number;
  /**
   * The ceiling of the answer deadline, in ms, also for the follow-up probe.
   * @default 10_000 (or `timeout`, when that is larger)
   */
  maxTimeout?: number;
  /**
   * Sends one probe (e.g. a ping frame, or a cheap one-off query). Called
   * synchronously; an exception it throws becomes the result's error.
   */
  probe: () => void;
  /**
   * Tells outbound requests from inbound activity among the source's values.
   * A request waits for an answer: when no activity at all follows it within
   * the deadline, the link is reported `degraded`.
   * @default () => false (every value is inbound activity)
   */
  isRequest?: (value: T) => boolean;
  /**
   * Scheduler that times the silence and supplies `now()` for the measurements.
   * @default asyncScheduler
   */
  scheduler?: SchedulerLike;
}

/** One round trip, emitted by {@link heartbeat} with the smoothed estimates it updated. */
export interface HeartbeatMeasurement {
  readonly type: 'rtt';
  /** Time in ms from the probe (or request) to the next inbound activity of any kind. */
  readonly rttMs: number;
  /** Scheduler time at which the probe or request was sent. */
  readonly probeAt: number;
  /** What was answered. */
  readonly source: 'probe' | 'request';
  /** Smoothed round trip (RFC 6298's SRTT). */
  readonly srttMs: number;
  /** Round-trip variation (RFC 6298's RTTVAR). */
  readonly rttVarMs: number;
  /** The answer deadline now in force: `srtt + 4·rttvar`, within [`timeout`, `maxTimeout`]. */
  readonly deadlineMs: number;
}

/** A request or probe went unanswered past the deadline; a follow-up probe was sent. */
export interface HeartbeatDegraded {
  readonly type: 'degraded';
  /** Scheduler time of the unanswered request or probe. */
  readonly waitingSince: number;
  /** The deadline (ms) that passed. */
  readonly deadlineMs: number;
  readonly cause: 'probe' | 'request';
}

/** Activity arrived after a `degraded`. */
export interface HeartbeatRecovered {
  readonly type: 'recovered';
  /** How long the link was degraded, in ms. */
  readonly degradedMs: number;
}

/** What {@link heartbeat} emits. */
export type HeartbeatEvent = HeartbeatMeasurement | HeartbeatDegraded | HeartbeatRecovered;

/**
 * Watches a connection's liveness the way TCP times its retransmissions
 * (RFC 6298): it keeps a smoothed round trip and its variation, and gives
 * every request or probe a deadline of `srtt + 4·rttvar`, never below
 * `timeout` nor above `maxTimeout`.
 *
 * ```
 * activity: --a-a--------a----------------------------------------------
 * heartbeat({ interval: 5, timeout: 4, probe })
 * probe():  ---------P--------P-----------P-----------------------
 * result:   -------------m-----------------d-----------------------#
 *
 * m at 13 = { type: 'rtt', rttMs: 4, probeAt: 9, source: 'probe', srttMs: 4, rttVarMs: 2, deadlineMs: 12 }
 * d at 30 = { type: 'degraded', waitingSince: 18, deadlineMs: 12, cause: 'probe' }   (probe at 18 + 12)
 * # at 54 = HeartbeatTimeoutError { lastActivityAt: 13, probeAt: 30, probesSent: 3, timeout: 24 }
 * ```
 *
 * The source mixes inbound activity — any message counts as life — with
 * outbound requests, told apart by `isRequest`:
 * - after `interval` of inbound silence with nothing awaited, `probe()` is
 *   called; the next activity is its answer, and the round trip is emitted;
 * - a request (or probe) unanswered past the deadline emits `degraded` and
 *   calls `probe()` at once; activity after that emits `recovered` (and, as
 *   in Karn's algorithm, no round trip: it cannot tell which send it answers);
 * - when the follow-up probe also goes unanswered for twice the deadline
 *   (RFC 6298's back-off, capped by `maxTimeout`), the result errors with a
 *   {@link HeartbeatTimeoutError}.
 *
 * Completion and errors of the source pass through. Timers, counters and
 * estimates live per subscription.
 *
 * ## Example
 * ```ts
 * import { Subject } from 'rxjs';
 * import { heartbeat } from 'stdb-rx';
 *
 * const wire$ = new Subject<'in' | 'out'>(); // 'in' per server message, 'out' per request sent
 * wire$
 *   .pipe(heartbeat({ interval: 1_500, timeout: 1_000, probe: () => socket.send(PING), isRequest: (v) => v === 'out' }))
 *   .subscribe({
 *     next: (ev) => console.log(ev.type, ev.type === 'rtt' ? ev.srttMs : ''),
 *     error: (err) => console.log(err.name, err.info),
 *   });
 * // rtt 42        (an idle link probed after 1.5 s)
 * // degraded      (a request unanswered for 1 s: a probe went out)
 * // HeartbeatTimeoutError { … }   (the probe unanswered for 2 s more)
 * ```
 *
 * @param config Interval, deadline bounds, the probe to send, the request test and an optional scheduler.
 * @returns A function that turns wire activity into quality events.
 * @throws {TypeError} At creation, when the configuration is invalid.
 */
export function heartbeat<T>(config: HeartbeatConfig<T>): OperatorFunction<T, HeartbeatEvent> {
  const { interval, timeout, probe, scheduler = asyncScheduler, isRequest = () => false } = config ?? ({} as HeartbeatConfig<T>);
  const maxTimeout = config?.maxTimeout ?? Math.max(10_000, timeout);
  for (const [name, value] of [['interval', interval], ['timeout', timeout], ['maxTimeout', maxTimeout]] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new TypeError(`heartbeat: ${name} must be a finite number > 0, got ${String(value)}.`);
    }
  }
  if (maxTimeout < timeout) throw new TypeError(`heartbeat: maxTimeout (${maxTimeout}) must not be below timeout (${timeout}).`);
  if (typeof probe !== 'function') throw new TypeError('heartbeat: probe must be a function.');
  if (typeof isRequest !== 'function') throw new TypeError('heartbeat: isRequest must be a function.');
  const clamp = (ms: number) => Math.min(maxTimeout, Math.max(timeout, ms));

  return (source) =>
    new Observable<HeartbeatEvent>((subscriber) => {
      let lastActivityAt: number | null = null;
      /** The oldest request or probe still unanswered, and what it was. */
      let waitingSince: number | null = null;
      let waitingFor: 'probe' | 'request' = 'probe';
      let degradedAt: number | null = null;
      let probesSent = 0;
      let srtt: number | null = null;
      let rttVar = 0;
      /** Degraded: how long the follow-up probe (sent at `degradedAt`) is waited for before the result errors. */
      let followUpMs = 0;
      const startedAt = scheduler.now();
      /**
       * One timer for whatever is due next (see `dueAt`), armed for `armedAt`.
       * Activity that only moves the due time later leaves it alone: it fires
       * early, finds nothing due and re-arms for the rest. So a busy link
       * re-arms no timer per message — once per silence or deadline at most.
       */
      let timer: Subscription | undefined;
      let armedAt = Infinity;

      const deadline = () => clamp(srtt === null ? timeout : srtt + 4 * rttVar);
      /** What is due next: the follow-up probe's end when degraded, else the deadline of what is awaited, else the end of the silence. */
      const dueAt = () => (degradedAt !== null ? degradedAt + followUpMs : waitingSince !== null ? waitingSince + deadline() : (lastActivityAt ?? startedAt) + interval);
      const ensure = () => {
        const due = dueAt();
        if (timer !== undefined && armedAt <= due) return;
        timer?.unsubscribe();
        armedAt = due;
        timer = scheduler.schedule(fire, Math.max(0, due - scheduler.now()));
      };
      const fire = () => {
        timer = undefined;
        armedAt = Infinity;
        if (scheduler.now() < dueAt()) ensure();
        else if (degradedAt !== null) subscriber.error(new HeartbeatTimeoutError({ lastActivityAt, probeAt: degradedAt, probesSent, timeout: followUpMs }));
        else if (waitingSince !== null) onDeadline();
        else onSilence();
      };
      const sendProbe = (): boolean => {
        probesSent++;
        try {
          probe();
          return true;
        } catch (err) {
          subscriber.error(err);
          return false;
        }
      };
      const await_ = (since: number, what: 'probe' | 'request') => {
        waitingSince = since;
        waitingFor = what;
        ensure();
      };
      const onSilence = () => {
        await_(scheduler.now(), 'probe');
        sendProbe();
      };
      const onDeadline = () => {
        const since = waitingSince!;
        const used = deadline();
        followUpMs = Math.min(maxTimeout, 2 * used);
        degradedAt = scheduler.now();
        subscriber.next({ type: 'degraded', waitingSince: since, deadlineMs: used, cause: waitingFor });
        if (subscriber.closed) return;
        ensure();
        sendProbe();
      };

      const sourceSubscription = source.subscribe({
        next: (value) => {
          const now = scheduler.now();
          if (isRequest(value)) {
            // The oldest unanswered send sets the deadline; once degraded, the follow-up probe's does.
            if (waitingSince === null && degradedAt === null) await_(now, 'request');
            return;
          }
          lastActivityAt = now;
          const since = waitingSince;
          const what = waitingFor;
          const wasDegraded = degradedAt;
          waitingSince = null;
          degradedAt = null;
          ensure();
          if (wasDegraded !== null) {
            subscriber.next({ type: 'recovered', degradedMs: now - wasDegraded });
          } else if (since !== null) {
            const r = now - since;
            if (srtt === null) {
              srtt = r;
              rttVar = r / 2;
            } else {
              rttVar = 0.75 * rttVar + 0.25 * Math.abs(srtt - r);
              srtt = 0.875 * srtt + 0.125 * r;
            }
            subscriber.next({ type: 'rtt', rttMs: r, probeAt: since, source: what, srttMs: srtt, rttVarMs: rttVar, deadlineMs: deadline() });
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      if (!subscriber.closed) ensure();

      return () => {
        timer?.unsubscribe();
        sourceSubscription.unsubscribe();
      };
    });
}
