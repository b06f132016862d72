/**
 * What a game passes to `createSyncClient` and the client it gets back: the
 * public option and client types, and the reconnect-policy merge.
 *
 * @module
 */
import type { DbConnectionBuilder, DbConnectionImpl, Identity, LogLevel as SdkLogLevel, RowTypedQuery } from 'spacetimedb';
import type { Observable, SchedulerLike } from 'rxjs';
import type { ReconcileConfig, ReconciledView, RetryBackoffConfig, RowChanges } from '../../operators/index.ts';
import type { CallHandle, CallOptions as BaseCallOptions } from '../../streams/calls.ts';
import type { Storage, StorageOptions } from '../../storage/openStorage.ts';
import type { OutboxState } from '../../storage/outbox.ts';
import type { ReducerPolicy } from '../../streams/reducers.ts';
import type { PlayerFacingError } from '../../streams/errors.ts';
import type { SyncProgress } from '../../streams/liveQueries.ts';
import type { LoggerOptions, Logger } from '../../streams/logger.ts';
import type { ClientMetrics } from '../../streams/metrics.ts';
import type { QuerySource } from '../../streams/query.ts';
import type { WebSocketCtor } from '../../streams/socketAdapter.ts';
import type { Phase, SyncStatus } from '../../streams/status.ts';
import type { RowChange, RowKey } from '../../streams/tableView.ts';

export type AnyConnection = DbConnectionImpl<any>;

/** Why the token provider is asked for a token. */
export interface TokenRequest {
  /** `connect`: before a connection attempt; `refused`: the server just refused the previous token. */
  readonly reason: 'connect' | 'refused';
}

/** Returns a fresh JWT from an external OIDC provider. */
export type TokenProvider = (request: TokenRequest) => string | Promise<string>;

/**
 * Heartbeat and connection-quality settings; `false` turns both off. Every
 * call or probe gets an answer deadline of `srtt + 4·rttvar` from the
 * measured round trips (as TCP's RFC 6298), never below `timeout` nor above
 * `maxTimeout`. Past it, `status.quality` turns `degraded` and a probe goes
 * out; when that probe stays unanswered for twice the deadline, the
 * connection is lost and rebuilt. See docs/client.md, "Connection quality".
 */
export interface HeartbeatOptions {
  /** Inbound silence (ms) after which a probe is sent. @default 1_500 */
  interval?: number;
  /** The floor of the answer deadline (ms). @default 1_000 */
  timeout?: number;
  /** The ceiling of the answer deadline (ms). @default 10_000 */
  maxTimeout?: number;
  /**
   * The `OneOffQuery` sent as probe; its result is consumed by the socket
   * adapter. Any answer proves the connection alive.
   * @default `SELECT * FROM "<first table of the bindings>" WHERE FALSE` (valid, answers with no rows), else 'SELECT * FROM __stdb_rx_heartbeat__'
   */
  query?: string;
}

/** Options of {@link createSyncClient}. */
export interface SyncClientOptions<C extends AnyConnection> {
  /** The bindings' builder factory: `DbConnection.builder` (optionally pre-configured with URI and database). */
  builder: () => DbConnectionBuilder<C>;
  /** Server URI (`ws://…` or `http://…`), unless the builder sets it. */
  uri?: string | URL;
  /** Database name or identity, unless the builder sets it. */
  database?: string;
  /**
   * Credentials. A string: that token (e.g. restored from storage). A function:
   * an external OIDC provider, asked before every connection and again when the
   * server refuses a token. Absent: anonymous — the server mints an identity
   * and the client keeps that token for every reconnect (same identity).
   */
  token?: string | TokenProvider;
  /** Told the token and identity after every successful login (persist an anonymous token here). */
  onToken?: (token: string, identity: Identity) => void;
  /**
   * Reconnect policy (`retryBackoff`). The fields you give win; the others
   * keep their defaults, with one adjustment: `maxInterval` left out is
   * raised to your `initialInterval` when that is larger (so
   * `{ initialInterval: 60_000 }` waits 60 s, not the default 30 s cap).
   * Giving both with `maxInterval < initialInterval` is refused with a
   * `TypeError`. The default jitter is `'full'` (each wait is random in
   * `[0, delay]`): pass `jitter: 'none'` for exact waits.
   * @default { initialInterval: 500, maxInterval: 30_000, jitter: 'full' }
   */
  retry?: Partial<Omit<RetryBackoffConfig, 'onRetry' | 'resetOnSuccess' | 'scheduler'>>;
  /** @default { interval: 1_500, timeout: 1_000, maxTimeout: 10_000 } */
  heartbeat?: HeartbeatOptions | false;
  /** Time (ms) allowed from starting a connection to `InitialConnection`. @default 15_000 */
  connectTimeout?: number;
  /** @default 'gzip' */
  compression?: 'gzip' | 'brotli' | 'none';
  /** Grace (ms) before a query nobody observes any more is unsubscribed. @default 1000 */
  unsubscribeGraceMs?: number;
  /** Logger or logger options. @default silent (warn when NODE_ENV=development) */
  logger?: LoggerOptions | Logger;
  /**
   * The SDK's own global log level. The SDK logs at `info` on its own (a line
   * on every connect); the client lowers it to `warn` unless told otherwise.
   * It is a process-wide setting of the SDK. @default 'warn'
   */
  sdkLogLevel?: SdkLogLevel;
  /**
   * Durable outbox, offline cache, token storage and migrations (see
   * docs/storage.md), from `stdb-rx/storage`: an opened storage
   * (`await openStorage({...})`), the promise of one, or `openStorage`'s
   * options with `open: openStorage` and without `server`, `database` and
   * `module` — then the client opens (and on `close()` closes) it itself, for
   * its own URI, database and bindings. The client never loads the storage
   * code (nor Dexie) itself: a game without storage does not bundle it. With storage every call is
   * written to the outbox before it is sent (opt out per call with
   * `durable: false`). @default none: calls wait in memory only
   */
  storage?: Storage | Promise<Storage> | ClientStorageOptions;
  /**
   * The module's receipts, which make replaying a durable call harmless and
   * tell the client which calls took effect before a connection dropped.
   * Subscribed on every connection when the client has storage.
   * `false`: no receipts subscription (replays still apply at most once for
   * reducers that record receipts). When storage is used, no receipts table
   * is found and some reducers take a mutation id, a
   * `ReceiptsNotFoundError` naming them is put on `errors$` (and logged) at
   * start-up; `false` says you mean it and silences it.
   * @default the bindings' `mutation_receipt` table (accessor `mutationReceipt`), if any
   */
  receipts?: ReceiptsOptions | false;
  /**
   * Per-reducer offline policy, priority and receipts, keyed by the module's
   * reducer name (`send_chat`) or the bindings' accessor (`sendChat`), for a
   * client without storage or one that opens its storage itself (an opened
   * storage brings its own `reducers`). @default every reducer `queue`
   */
  reducers?: Record<string, ReducerPolicy>;
  /** Persist subscribed tables' rows for an offline start (storage only). @default true */
  persistTables?: boolean;
  /** Keep the session token in storage and use it at the next start when `token` is not given (storage only). @default true */
  persistToken?: boolean;
  /** Largest inbound frame accepted; a larger one is a `ProtocolError` and the connection is rebuilt. @default 64 MiB */
  maxFrameBytes?: number;
  /**
   * Source of `online`, `offline`, `pageshow`, `resume` and `visibilitychange`
   * events. @default `window` in browsers, none elsewhere
   */
  events?: EventTarget | null;
  /** WebSocket implementation. @default global WebSocket, else undici's */
  WebSocket?: WebSocketCtor;
  /** Scheduler for retries, heartbeat and grace timers. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** How optimistic predictions meet server changes (`reconcile`). @default { conflict: 'server-wins' } */
  reconcile?: ReconcileConfig<RowKey, any>;
}

/**
 * `openStorage` options for a storage the client opens itself (server,
 * database and module come from the client), with the opener:
 * `{ open: openStorage, lease: 'store' }`.
 */
export type ClientStorageOptions = Omit<StorageOptions, 'server' | 'database' | 'module'> &
  Partial<Pick<StorageOptions, 'server' | 'database' | 'module'>> & {
    /** `openStorage` from `stdb-rx/storage`. */
    open: (options: StorageOptions) => Promise<Storage>;
  };

/** Where the client finds its own receipts. */
export interface ReceiptsOptions {
  /** The receipts table (a table reference from the bindings). @default the bindings' table named `mutation_receipt` */
  table?: QuerySource;
  /** Subscription SQL. @default `SELECT * FROM <table> WHERE <senderColumn> = :sender` */
  query?: string;
  /** Column (bindings' field name) holding the mutation id. @default 'mutationId' */
  mutationIdColumn?: string;
  /** Column (bindings' field name) holding the caller's identity. @default 'sender' */
  senderColumn?: string;
}

/** An optimistic prediction attached to a call: applied to `table$` at once, until the server answers. */
export interface Optimistic<Q extends QuerySource> {
  /** The table the prediction changes (a table reference from the bindings). */
  table: Q;
  /**
   * Predicts the call's effect from the current rows (server rows with earlier
   * predictions applied): row key → new row, or `null` to delete. Pure; it is
   * re-run whenever the server rows change while the call is pending.
   */
  predict: (rows: ReadonlyMap<RowKey, RowOf<Q>>) => RowChanges<RowKey, RowOf<Q>>;
}

/** Options of `call`. */
export interface CallOptions<Q extends QuerySource = QuerySource> extends BaseCallOptions {
  /** Show the call's predicted effect in `table$` at once, marked pending, until confirmed or rolled back. */
  optimistic?: Optimistic<Q>;
}

/** Row type of a table reference or query from the bindings. */
export type RowOf<Q> = Q extends RowTypedQuery<infer R, any> ? R : Record<string, any>;

/** The predicate a table reference's own `where` takes (typed on that table's columns), else any function. */
export type WhereOf<Q> = Q extends { where(predicate: infer P): any } ? P : (row: any) => any;

/** Options of `table$` / `changes$` / `row$`. */
export interface TableQueryOptions<Q = QuerySource> {
  /**
   * Filter with the SDK's query builder, typed on the table's columns:
   * `{ where: r => r.age.gte(18) }`. Becomes subscription SQL.
   */
  where?: WhereOf<Q>;
}

type ReducerName<C extends AnyConnection> = Extract<keyof C['reducers'], string>;
type MutationIdOptional<A> = A extends { mutationId: string } ? Omit<A, 'mutationId'> & { mutationId?: string } : A;
/** A reducer's arguments; a `mutationId` parameter may be left out (the outbox fills it in). */
type ReducerArgs<C extends AnyConnection, K extends ReducerName<C>> = C['reducers'][K] extends (args: infer A) => any ? MutationIdOptional<A> : never;
/** `sendChat` → `send_chat`: the module's name of a reducer, from its accessor (the bindings' default case policy). */
type SnakeCase<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${SnakeCase<T>}` : S;
/** A reducer's name as the module spells it. */
type ModuleReducerName<C extends AnyConnection> = SnakeCase<ReducerName<C>>;
/** The accessor of the reducer the module calls `N`. */
type AccessorOf<C extends AnyConnection, N extends string> = { [K in ReducerName<C>]: SnakeCase<K> extends N ? K : never }[ReducerName<C>];

/** The client a game uses. */
export interface SyncClient<C extends AnyConnection> {
  /** Connection status, with `quality`, `stale` and `storage`; replays the current one. Completes on `close()`. */
  readonly status$: Observable<SyncStatus>;
  /** Game flow phase; replays the current one. */
  readonly phase$: Observable<Phase>;
  /** The identity, once logged in. */
  readonly identity$: Observable<Identity>;
  /** The current identity, synchronously: undefined before the first login. */
  readonly identity: Identity | undefined;
  /** Initial sync progress of the current connection. */
  readonly syncProgress$: Observable<SyncProgress>;
  /** Recoverable errors (never ending a data stream), each with a `userMessage` to show a player as is. */
  readonly errors$: Observable<PlayerFacingError>;
  /** Network metrics. */
  readonly metrics$: Observable<ClientMetrics>;
  /** Current status, synchronously. */
  readonly status: SyncStatus;
  /**
   * The outbox for the UI: pending entries in drain order, counts, rejected
   * entries (kept until `storage.outbox.dismiss`) and quarantined ones. With
   * storage it is the storage's `outbox$` (other tabs' calls included; calls
   * with `durable: false` not); without, counts of the calls in memory.
   */
  readonly outbox$: Observable<OutboxState>;
  /** The storage, once open (undefined without one). */
  readonly storage: Storage | undefined;
  /** Resolves once the storage is open and its cached rows and token are loaded (at once without storage). */
  readonly ready: Promise<void>;
  /** The current `DbConnection`, while there is one. */
  readonly connection: C | undefined;

  /** Rows of a table (optionally filtered): current rows first, then one snapshot per transaction. */
  table$<Q extends QuerySource>(table: Q, options?: TableQueryOptions<Q>): Observable<ReadonlyMap<RowKey, RowOf<Q>>>;
  /** Change batches, one per transaction; the first batch holds the current rows as inserts. */
  changes$<Q extends QuerySource>(table: Q, options?: TableQueryOptions<Q>): Observable<readonly RowChange<RowOf<Q>>[]>;
  /**
   * The rows with pending optimistic predictions applied, which keys are
   * pending, and rollback/conflict events (`reconcile`'s view). `table$` emits
   * its `rows`.
   */
  optimistic$<Q extends QuerySource>(table: Q, options?: TableQueryOptions<Q>): Observable<ReconciledView<RowKey, RowOf<Q>>>;
  /** One row by primary key (`undefined` while absent). */
  row$<Q extends QuerySource>(table: Q, key: unknown, options?: TableQueryOptions<Q>): Observable<RowOf<Q> | undefined>;

  /**
   * Call a reducer (accessor name from the bindings). Arguments that do not
   * fit the bindings are rejected at once (`InvalidArgsError`), never queued
   * or stored. With storage the call is written to the outbox first and
   * survives reloads and dropped connections; delivery is at-least-once and
   * the effect exactly-once for reducers that record receipts (a mutation
   * id), at-least-once for the others.
   */
  call<K extends ReducerName<C>, Q extends QuerySource = QuerySource>(reducer: K, args: ReducerArgs<C, K>, options?: CallOptions<Q>): CallHandle;
  /**
   * The same by the module's own reducer name (`send_chat`): both names
   * work. Handles and their errors show the name you called with; outbox
   * entries show the module's name (`storage.outbox.decodeArgs(entry)`
   * shows their arguments).
   */
  call<N extends Exclude<ModuleReducerName<C>, ReducerName<C>>, Q extends QuerySource = QuerySource>(reducer: N, args: ReducerArgs<C, AccessorOf<C, N>>, options?: CallOptions<Q>): CallHandle;

  /** Skip the retry wait (or leave `offline`) and connect now. */
  reconnectNow(): void;
  /**
   * Forget the session: clear the stored token (storage) and the outbox's
   * identity, and reconnect without the token (a new anonymous identity, or
   * the token provider asked again). Entries of the old identity stay,
   * quarantined, until the app discards or re-homes them.
   */
  signOut(): Promise<void>;
  /** End everything: socket, timers, calls (rejected), and every stream (completed). */
  close(): Promise<void>;
}

const DEFAULT_RETRY = { initialInterval: 500, maxInterval: 30_000, jitter: 'full' as const };

/**
 * The reconnect policy from the user's partial `retry`: their fields win; a
 * `maxInterval` they left out is raised to their `initialInterval` when that
 * is larger; both given with `maxInterval < initialInterval` is refused.
 */
export function mergeRetry(user: SyncClientOptions<AnyConnection>['retry'] = {}): RetryBackoffConfig {
  const given = Object.fromEntries(Object.entries(user ?? {}).filter(([, v]) => v !== undefined)) as NonNullable<SyncClientOptions<AnyConnection>['retry']>;
  const merged = { ...DEFAULT_RETRY, ...given };
  if (given.maxInterval !== undefined && given.initialInterval !== undefined && given.maxInterval < given.initialInterval) {
    throw new TypeError(`createSyncClient: retry.maxInterval (${given.maxInterval}) is below retry.initialInterval (${given.initialInterval}); raise maxInterval or leave it out.`);
  }
  if (given.maxInterval === undefined && merged.initialInterval > merged.maxInterval) merged.maxInterval = merged.initialInterval;
  if (given.maxInterval !== undefined && given.initialInterval === undefined && merged.maxInterval < merged.initialInterval) merged.initialInterval = merged.maxInterval;
  return merged as RetryBackoffConfig;
}

