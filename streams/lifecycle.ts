/**
 * The connection supervisor: runs one session (one `DbConnection`) at a time,
 * replaces it under `retryBackoff` when it fails, and turns everything that
 * happens into {@link LifecycleEvent}s for the pure reducers in `status.ts`.
 *
 * A session is any `Observable<SessionEvent>`: it emits `opened`, `connected`
 * and `synced` and **errors** when the connection is lost (socket close,
 * socket error, heartbeat timeout, refused token…). Unsubscribing from it
 * must tear the connection down. Tests pass cold marbles as sessions.
 *
 * Triggers from outside:
 * - `now` (`reconnectNow()`): while waiting for a retry, or stopped after a
 *   failure or `offline`, start a fresh attempt at once; otherwise ignored;
 * - `offline`: tear the session down and wait for `online` or `now`;
 * - `online`: like `now`;
 * - `resume` (page resume): while live, ask the session to check itself
 *   (`checkLiveness`); otherwise like `now`.
 *
 * @module
 */
import { EMPTY, NEVER, Observable, Subject, asyncScheduler, catchError, concat, defer, filter, ignoreElements, merge, of, switchMap, tap, type SchedulerLike } from 'rxjs';
import { retryBackoff, type RetryBackoffConfig } from '../operators/index.ts';
import { ConnectionLostError } from './errors.ts';
import type { LifecycleEvent } from './status.ts';
import type { Identity } from 'spacetimedb';

/** What a session reports while its connection is healthy. */
export type SessionEvent =
  | { readonly type: 'opened' }
  | { readonly type: 'connected'; readonly identity: Identity; readonly token: string }
  | { readonly type: 'synced' }
  | { readonly type: 'migrating'; readonly phase: 'migration-download' | 'migration-upload' }
  /** The heartbeat's view of the link (see {@link LifecycleEvent} `quality`). */
  | { readonly type: 'quality'; readonly quality: 'good' | 'degraded'; readonly rttMs?: number; readonly rttVarianceMs?: number };

/** `restart`: replace the current session with a fresh attempt, whatever its state (sign-out). */
export type Trigger = 'now' | 'online' | 'offline' | 'resume' | 'restart';

/** Options of {@link supervise}. */
export interface SuperviseOptions {
  /** Build and run one session. Called for every attempt. */
  readonly session: () => Observable<SessionEvent>;
  /** Retry policy; `onRetry`, `resetOnSuccess` and `scheduler` are set by the supervisor. */
  readonly retry: Omit<RetryBackoffConfig, 'onRetry' | 'resetOnSuccess' | 'scheduler'>;
  /** Errors never retried (on top of `retry.shouldRetry`). */
  readonly isFatal?: (error: unknown) => boolean;
  /** External triggers. @default NEVER */
  readonly triggers?: Observable<Trigger>;
  /** Called on `resume` while live. */
  readonly checkLiveness?: () => void;
  /** @default asyncScheduler */
  readonly scheduler?: SchedulerLike;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Supervise sessions forever (until unsubscribed), emitting lifecycle events.
 *
 * ```
 * session 1:  -o-c-s----#                       (lost after sync)
 * session 2:             ----#                  (retry 1 fails)
 * session 3:                      -o-c-s-----   (retry 2 succeeds)
 * events:     Ko-c-s----(LR)K---(LR)---K-o-c-s  (K connecting, L lost, R retry-scheduled)
 * ```
 */
export function supervise(options: SuperviseOptions): Observable<LifecycleEvent> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const triggers = options.triggers ?? NEVER;
  const isFatal = options.isFatal ?? (() => false);
  const userShouldRetry = options.retry.shouldRetry ?? (() => true);

  return defer(() => {
    const side = new Subject<LifecycleEvent>();
    // What the supervisor is doing, to decide what a trigger means.
    let mode: 'attempting' | 'live' | 'waiting' | 'stopped' = 'attempting';
    const at = () => scheduler.now();

    const attempts = (): Observable<LifecycleEvent> =>
      defer(() => {
        mode = 'attempting';
        side.next({ type: 'connecting', at: at() });
        return options.session();
      }).pipe(
        tap({
          next: (ev) => {
            if (ev.type === 'synced') mode = 'live';
            side.next(toLifecycle(ev, at()));
          },
          error: (err) => {
            mode = 'waiting';
            side.next({ type: 'lost', at: at(), error: asError(err) });
          },
        }),
        // Only `synced` goes through the retry operator, so only a connection that got live resets the backoff.
        filter((ev) => ev.type === 'synced'),
        retryBackoff<SessionEvent>({
          ...options.retry,
          shouldRetry: (err) => !isFatal(err) && userShouldRetry(err),
          resetOnSuccess: true,
          scheduler,
          onRetry: ({ attempt, delay }) => side.next({ type: 'retry-scheduled', at: at(), attempt, delay }),
        }),
        ignoreElements(),
        catchError((err) => {
          mode = 'stopped';
          side.next({ type: 'failed', at: at(), error: asError(err) });
          return NEVER;
        }),
      );

    const control = concat(of<Trigger | 'start'>('start'), triggers).pipe(
      filter((t) => {
        if (t === 'start' || t === 'restart') return true;
        if (t === 'offline') return true;
        if (t === 'resume' && mode === 'live') {
          options.checkLiveness?.();
          return false;
        }
        // now / online / resume: only when not already connecting or live.
        return mode === 'waiting' || mode === 'stopped';
      }),
      switchMap((t) => {
        if (t === 'offline') {
          mode = 'stopped';
          side.next({
            type: 'offline',
            at: at(),
            error: new ConnectionLostError('The network went offline.', { reason: 'offline' }),
          });
          return EMPTY;
        }
        return attempts();
      }),
    );

    return merge(side, control.pipe(ignoreElements()));
  });
}

function toLifecycle(ev: SessionEvent, at: number): LifecycleEvent {
  switch (ev.type) {
    case 'opened':
      return { type: 'opened', at };
    case 'connected':
      return { type: 'connected', at, identity: ev.identity, token: ev.token };
    case 'synced':
      return { type: 'synced', at };
    case 'migrating':
      return { type: 'migrating', at, phase: ev.phase };
    case 'quality':
      return { type: 'quality', at, quality: ev.quality, rttMs: ev.rttMs, rttVarianceMs: ev.rttVarianceMs };
  }
}
