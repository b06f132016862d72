/**
 * The connection state machine as a pure reducer: `(status, event) → status`.
 * The supervisor (`lifecycle.ts`) produces {@link LifecycleEvent}s; the client
 * folds them with {@link reduceStatus} and {@link reducePhase} into the
 * `BehaviorSubject`s behind `status$` and `phase$`. Nothing here touches a
 * socket or a clock: `at` comes with every event.
 *
 * ```
 *            connecting ──opened──► (login) ──connected──► syncing ──synced──► live
 *                ▲                                            │                 │
 *                │                   lost / retry-scheduled   ▼                 ▼
 *                └──────────────────────────────────────── reconnecting ◄───────┘
 *   network offline / non-retryable failure ──► offline      close ──► closed (final)
 * ```
 *
 * While `live`, `quality` follows the heartbeat: `good`, or `degraded` when a
 * call or probe went unanswered past its deadline (a follow-up probe is out;
 * if that goes unanswered too, the connection is `lost` and rebuilt). In every
 * other state `quality` is `lost` and the round-trip figures are `undefined`.
 *
 * @module
 */
import type { Identity } from 'spacetimedb';
import type { PlayerFacingError } from './errors.ts';

export type ConnectionState = 'connecting' | 'syncing' | 'live' | 'reconnecting' | 'offline' | 'closed';

/**
 * How well the connection carries traffic right now: `good`; `degraded` (live,
 * but a call or probe is unanswered past its deadline — show it, keep playing);
 * `lost` (not live: connecting, syncing, reconnecting, offline or closed).
 */
export type ConnectionQuality = 'good' | 'degraded' | 'lost';

/** What `status$` emits. */
export interface ConnectionStatus {
  readonly state: ConnectionState;
  /** Retries since the connection was last live (0 for the very first attempt and while live). */
  readonly attempt: number;
  /** Epoch ms of the next scheduled attempt, while waiting for it; else `null`. */
  readonly nextRetryAt: number | null;
  /** The error that caused the current state (kept until the connection is live again). */
  readonly lastError: Error | null;
  /** Epoch ms at which `state` was entered. */
  readonly since: number;
  /** `good` or `degraded` while live; `lost` otherwise. */
  readonly quality: ConnectionQuality;
  /** Smoothed round trip (ms) of this connection, while live and once measured; else `undefined`. */
  readonly rttMs: number | undefined;
  /** Variation of the round trip (ms), as `rttMs`. */
  readonly rttVarianceMs: number | undefined;
}

/**
 * What `status$` emits: the connection state plus what the client knows
 * about its data and its storage.
 */
export interface SyncStatus extends ConnectionStatus {
  /** The error that caused the current state, with its player-facing `userMessage`. */
  readonly lastError: PlayerFacingError | null;
  /**
   * The tables show rows that are not being kept up to date: rows from the
   * offline cache before the first sync, or the last rows seen while the
   * connection is down. False while live (and before anything was shown).
   */
  readonly stale: boolean;
  /**
   * Where calls and cached rows are kept: `durable` (IndexedDB), `memory`
   * (storage configured, but IndexedDB failed: lost on reload), or `none`
   * (no storage configured).
   */
  readonly storage: 'durable' | 'memory' | 'none';
}

/**
 * The game flow. The migration phases run once, after the first sync of a
 * client whose bindings' schema fingerprint differs from the stored one
 * (storage only): they sit between `server-sync` and `active`.
 */
export type Phase = 'connect' | 'login' | 'server-sync' | 'migration-download' | 'migration-upload' | 'active';

/** Events the supervisor emits, in order, for every connection attempt. */
export type LifecycleEvent =
  /** A connection attempt starts (a fresh `DbConnection` is being built). */
  | { readonly type: 'connecting'; readonly at: number }
  /** The socket is open; waiting for `InitialConnection`. */
  | { readonly type: 'opened'; readonly at: number }
  /** `InitialConnection` arrived: logged in as `identity`. */
  | { readonly type: 'connected'; readonly at: number; readonly identity: Identity; readonly token: string }
  /** Every live query is applied: the client is in sync. */
  | { readonly type: 'synced'; readonly at: number }
  /** A storage migration phase runs (after the server sync, before `synced`). */
  | { readonly type: 'migrating'; readonly at: number; readonly phase: 'migration-download' | 'migration-upload' }
  /** The connection (or the attempt) failed; a retry follows. */
  | { readonly type: 'lost'; readonly at: number; readonly error: Error }
  /** The next attempt is scheduled `delay` ms from `at`. */
  | { readonly type: 'retry-scheduled'; readonly at: number; readonly attempt: number; readonly delay: number }
  /** The browser reported the network going away. The client waits for `online` or `reconnectNow()`. */
  | { readonly type: 'offline'; readonly at: number; readonly error: Error }
  /** A non-retryable failure (token refused, retries exhausted): the client stops until `reconnectNow()`. */
  | { readonly type: 'failed'; readonly at: number; readonly error: Error }
  /** The heartbeat's view of a live link changed: quality, or new round-trip estimates (`undefined` when not measured yet). */
  | { readonly type: 'quality'; readonly at: number; readonly quality: 'good' | 'degraded'; readonly rttMs?: number; readonly rttVarianceMs?: number }
  /** `close()`: final. */
  | { readonly type: 'closed'; readonly at: number };

export function initialStatus(at: number): ConnectionStatus {
  return { state: 'connecting', attempt: 0, nextRetryAt: null, lastError: null, since: at, quality: 'lost', rttMs: undefined, rttVarianceMs: undefined };
}

const NOT_LIVE = { quality: 'lost', rttMs: undefined, rttVarianceMs: undefined } as const;

function enter(s: ConnectionStatus, state: ConnectionState, at: number, patch: Partial<ConnectionStatus> = {}): ConnectionStatus {
  return { ...s, ...(state === 'live' ? {} : NOT_LIVE), ...patch, state, since: state === s.state ? s.since : at };
}

/** The status reducer. `closed` absorbs everything. */
export function reduceStatus(s: ConnectionStatus, e: LifecycleEvent): ConnectionStatus {
  if (s.state === 'closed') return s;
  switch (e.type) {
    case 'connecting':
      // The first attempt (and attempts after a stop) show `connecting`; retries stay `reconnecting`.
      return enter(s, s.state === 'reconnecting' ? 'reconnecting' : 'connecting', e.at, { nextRetryAt: null });
    case 'opened':
    case 'migrating':
      return s;
    case 'connected':
      return enter(s, 'syncing', e.at, { nextRetryAt: null });
    case 'synced':
      return enter(s, 'live', e.at, { attempt: 0, nextRetryAt: null, lastError: null, quality: 'good' });
    case 'quality':
      if (s.state !== 'live') return s;
      if (s.quality === e.quality && s.rttMs === e.rttMs && s.rttVarianceMs === e.rttVarianceMs) return s;
      return { ...s, quality: e.quality, rttMs: e.rttMs, rttVarianceMs: e.rttVarianceMs };
    case 'lost':
      return enter(s, 'reconnecting', e.at, { lastError: e.error, nextRetryAt: null });
    case 'retry-scheduled':
      return enter(s, 'reconnecting', e.at, { attempt: e.attempt, nextRetryAt: e.at + e.delay });
    case 'offline':
      return enter(s, 'offline', e.at, { lastError: e.error, nextRetryAt: null });
    case 'failed':
      return enter(s, 'offline', e.at, { lastError: e.error, nextRetryAt: null });
    case 'closed':
      return enter(s, 'closed', e.at, { nextRetryAt: null });
  }
}

/** The phase reducer. */
export function reducePhase(p: Phase, e: LifecycleEvent): Phase {
  switch (e.type) {
    case 'connecting':
    case 'lost':
    case 'retry-scheduled':
    case 'offline':
    case 'failed':
      return 'connect';
    case 'opened':
      return 'login';
    case 'quality':
      return p;
    case 'connected':
      return 'server-sync';
    case 'synced':
      return 'active';
    case 'migrating':
      return e.phase;
    case 'closed':
      return p;
  }
}
