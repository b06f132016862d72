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
 * @module
 */
import type { Identity } from 'spacetimedb';

export type ConnectionState = 'connecting' | 'syncing' | 'live' | 'reconnecting' | 'offline' | 'closed';

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
}

/**
 * What `status$` emits: the connection state plus what the client knows
 * about its data and its storage.
 */
export interface SyncStatus extends ConnectionStatus {
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
  /** `close()`: final. */
  | { readonly type: 'closed'; readonly at: number };

export function initialStatus(at: number): ConnectionStatus {
  return { state: 'connecting', attempt: 0, nextRetryAt: null, lastError: null, since: at };
}

function enter(s: ConnectionStatus, state: ConnectionState, at: number, patch: Partial<ConnectionStatus> = {}): ConnectionStatus {
  return { ...s, ...patch, state, since: state === s.state ? s.since : at };
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
      return enter(s, 'live', e.at, { attempt: 0, nextRetryAt: null, lastError: null });
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
