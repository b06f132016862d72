/**
 * `createSyncClient`: the object a game uses. It composes the SDK (one
 * `DbConnection` at a time), the streams in `streams/` (socket adapter, status
 * machine, live queries, calls, metrics) and the operators (`retryBackoff`,
 * `heartbeat`).
 *
 * Data flows one way: SDK → streams → operators → game.
 *
 * @module
 */
import {
  BehaviorSubject,
  EMPTY,
  Observable,
  Subject,
  concat,
  defer,
  from,
  switchMap,
  distinctUntilChanged,
  filter,
  fromEvent,
  map,
  merge,
  of,
  type Subscription,
  type SchedulerLike,
  asyncScheduler,
  NEVER,
} from 'rxjs';
import { setGlobalLogLevel, type DbConnectionBuilder, type DbConnectionImpl, type Identity, type LogLevel as SdkLogLevel, type RowTypedQuery } from 'spacetimedb';
import { heartbeat, HeartbeatTimeoutError, reconcile, type MutationEvent, type PendingMutation, type ReconcileConfig, type ReconciledView, type RetryBackoffConfig, type RowChanges } from '../operators/index.ts';
import { Calls, type CallHandle, type CallOptions as BaseCallOptions, type PreparedCall } from '../streams/calls.ts';
import type { Storage, StorageOptions } from '../storage/openStorage.ts';
import type { OutboxState } from '../storage/outbox.ts';
import { moduleFromBindings, type StorageModule } from '../streams/bindings.ts';
import { priorityOf, ReducerCatalogue, type ReducerPolicy } from '../streams/reducers.ts';
import { MigrationError, StorageError, toStorageError } from '../streams/storageErrors.ts';
import type { MigrationProgress } from '../storage/migrations.ts';
import { AuthError, CallbackError, ConnectionLostError, OutcomeUnknownError, ProtocolError, ReceiptsNotFoundError, withUserMessage, type PlayerFacingError } from '../streams/errors.ts';
import { GuardedObservable } from '../streams/guard.ts';
import { supervise, type SessionEvent, type Trigger } from '../streams/lifecycle.ts';
import { LiveQueries, type ConnectionLike, type SyncProgress, type TableChangeBatch } from '../streams/liveQueries.ts';
import { createLogger, type Logger, type LoggerOptions } from '../streams/logger.ts';
import { MetricsRecorder, type ClientMetrics } from '../streams/metrics.ts';
import { compileQuery, compileRawQuery, type QuerySource, type TableRefLike } from '../streams/query.ts';
import { createSocketAdapter, probeQuery, type SocketAdapter, type WebSocketCtor } from '../streams/socketAdapter.ts';
import { initialStatus, reducePhase, reduceStatus, type ConnectionStatus, type LifecycleEvent, type Phase, type SyncStatus } from '../streams/status.ts';
import type { RowChange, RowKey } from '../streams/tableView.ts';

type AnyConnection = DbConnectionImpl<any>;

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

function lostReason(err: unknown): ConnectionLostError['info']['reason'] {
  if (err instanceof HeartbeatTimeoutError) return 'heartbeat';
  if (err instanceof ConnectionLostError) return err.info.reason;
  return 'error';
}

/**
 * Create a sync client. It starts connecting at once.
 *
 * ```ts
 * const client = createSyncClient({ builder: DbConnection.builder, uri: 'ws://localhost:3000', database: 'arena' });
 * client.table$(tables.player).subscribe((players) => render(players));
 * await client.call('joinMatch', { matchId: 7n });
 * ```
 */
export function createSyncClient<C extends AnyConnection>(options: SyncClientOptions<C>): SyncClient<C> {
  if (typeof options?.builder !== 'function') throw new TypeError('createSyncClient: `builder` must be the bindings\' builder factory (e.g. `DbConnection.builder`).');
  const probeBuilder = options.builder();
  if (!options.uri && !probeBuilder.getUri()) throw new TypeError('createSyncClient: no server URI: pass `uri` or a builder with `withUri`.');
  if (!options.database && !probeBuilder.getModuleName()) throw new TypeError('createSyncClient: no database: pass `database` or a builder with `withDatabaseName`.');
  const retry = mergeRetry(options.retry);
  const hbOptions = options.heartbeat === false ? undefined : { interval: 1_500, timeout: 1_000, maxTimeout: 10_000, ...options.heartbeat };
  const connectTimeout = options.connectTimeout ?? 15_000;
  const scheduler = options.scheduler ?? asyncScheduler;
  const log = createLogger(options.logger);
  const debug = (m: () => string) => log.log('debug', m);
  setGlobalLogLevel(options.sdkLogLevel ?? 'warn');

  const provider = typeof options.token === 'function' ? options.token : undefined;
  let currentToken: string | undefined = typeof options.token === 'string' ? options.token : undefined;

  // What the bindings say: names, types (for checking arguments), wire table names.
  const remoteModule = (probeBuilder as unknown as { remoteModule?: { tables: Record<string, any>; reducers: readonly any[] } }).remoteModule;
  let bindings: StorageModule | undefined;
  try {
    if (remoteModule) bindings = moduleFromBindings({ tables: remoteModule.tables, reducers: remoteModule.reducers });
  } catch (e) {
    log.log('warn', `cannot read the bindings' types; reducer arguments are not checked: ${(e as Error).message}`);
  }
  const tableSource = new Map<string, string>(Object.entries(bindings?.tables ?? {}).map(([accessor, t]) => [accessor, t.sourceName]));
  const knownTables = bindings ? new Set(tableSource.values()) : undefined;
  // A valid query that answers with no rows: nothing for a real server to log as an error.
  const hb = hbOptions ? { ...hbOptions, query: hbOptions.query ?? probeQuery(knownTables ?? []) } : undefined;

  const storageOption: SyncClientOptions<C>['storage'] = options.storage;
  if (storageOption && typeof storageOption === 'object' && !(storageOption instanceof Promise) && !('outbox' in storageOption) && typeof (storageOption as { open?: unknown }).open !== 'function') {
    throw new TypeError("createSyncClient: `storage` options need `open: openStorage` (import { openStorage } from 'stdb-rx/storage').");
  }
  const isStorage = (x: unknown): x is Storage => typeof x === 'object' && x !== null && 'outbox' in x && 'snapshots' in x && 'migrations' in x;
  if (storageOption && isStorage(storageOption) && options.reducers) {
    throw new TypeError('createSyncClient: `reducers` policies belong to openStorage when an opened storage is passed.');
  }
  const mutationIdParam = (storageOption && !isStorage(storageOption) && !(storageOption instanceof Promise) ? storageOption.mutationIdParam : undefined) ?? 'mutationId';
  const persistTables = options.persistTables ?? true;
  const persistToken = (options.persistToken ?? true) && options.token === undefined;
  /** Reducer names and types: checks calls (types, policies) when there is no storage, or before it is open. */
  let catalogue: ReducerCatalogue | undefined;
  try {
    if (bindings) catalogue = new ReducerCatalogue(bindings.reducers, { mutationIdParam });
  } catch (e) {
    log.log('warn', `cannot read the bindings' types; reducer arguments are not checked: ${(e as Error).message}`);
  }
  // A policy for a reducer the bindings lack is the caller's mistake: thrown here.
  if (catalogue && options.reducers && !isStorage(storageOption)) catalogue = catalogue.withPolicies(options.reducers);
  const canonical = (reducer: string) => catalogue?.canonical(reducer) ?? reducer;
  const accessor = (reducer: string) => catalogue?.accessor(reducer) ?? reducer;
  /** Whether the connection is live (`online-only` reducers refuse calls otherwise). */
  let isOnline = false;
  let storage: Storage | undefined;
  let ownsStorage = false;

  let baseStatus: ConnectionStatus = initialStatus(Date.now());
  /** Rows were shown (cache or server): when not live, they are stale. */
  let shown = false;
  let storageMode: SyncStatus['storage'] = storageOption ? 'durable' : 'none';
  const decorate = (s: ConnectionStatus): SyncStatus => ({ ...s, lastError: s.lastError as PlayerFacingError | null, stale: shown && s.state !== 'live', storage: storageMode });
  const statusSubject = new BehaviorSubject<SyncStatus>(decorate(baseStatus));
  const publishStatus = () => {
    const next = decorate(baseStatus);
    const cur = statusSubject.value;
    if (statusSubject.closed) return;
    if (
      cur.state !== next.state || cur.since !== next.since || cur.attempt !== next.attempt || cur.nextRetryAt !== next.nextRetryAt || cur.lastError !== next.lastError ||
      cur.stale !== next.stale || cur.storage !== next.storage || cur.quality !== next.quality || cur.rttMs !== next.rttMs || cur.rttVarianceMs !== next.rttVarianceMs
    ) {
      statusSubject.next(next);
    }
  };
  const phaseSubject = new BehaviorSubject<Phase>('connect');
  const identitySubject = new BehaviorSubject<Identity | undefined>(undefined);
  const progressSubject = new BehaviorSubject<SyncProgress>({ applied: 0, total: 0, rows: 0 });
  const errorSubject = new Subject<PlayerFacingError>();
  /** Whether any connection of this client got live: network failures before that read "Can't reach the server". */
  let everLive = false;
  /** Every error reported (errors$, status.lastError) gets its player-facing text. */
  const present = (e: unknown): PlayerFacingError => withUserMessage(e, { connectedBefore: everLive });
  const errorsSubject = { next: (e: unknown) => errorSubject.next(present(e)), complete: () => errorSubject.complete() };
  const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
  /** Application code threw: a CallbackError on errors$, never a connection failure. */
  const callbackFailed = (callback: CallbackError['info']['callback'], e: unknown, stream?: string) => {
    const err = new CallbackError(`${stream ? `A subscriber of ${stream}` : callback} threw: ${describe(e)}`, stream ? { callback, stream } : { callback }, { cause: e });
    log.log('warn', err.message);
    return err;
  };
  const guarded = <T,>(source: Observable<T>, stream: string): Observable<T> =>
    GuardedObservable.from(source, (e, name) => {
      const err = callbackFailed('subscriber', e, name);
      // A throwing subscriber of errors$ is logged only: reporting it there again could loop.
      if (name !== 'errors$') errorsSubject.next(err);
    }, stream);
  const triggers = new Subject<Trigger>();
  const metrics = new MetricsRecorder();
  let connection: C | undefined;
  let closed = false;
  let resolveDurable: (() => void) | undefined;
  let liveCheck: (() => void) | undefined;

  /** Pending optimistic mutations per table (accessor name), replayed to every new `table$` subscriber. */
  const optimisticLogs = new Map<string, { pending: PendingMutation<RowKey, any>[]; events: Subject<MutationEvent<RowKey, any>> }>();
  const logFor = (table: string) => {
    let log = optimisticLogs.get(table);
    if (!log) optimisticLogs.set(table, (log = { pending: [], events: new Subject() }));
    return log;
  };
  const optimisticTable = new Map<string, string>(); // call id → table
  let confirmsSeen: unknown[] = [];

  const queries = new LiveQueries({
    graceMs: options.unsubscribeGraceMs ?? 1000,
    scheduler,
    onError: (e) => {
      log.log('warn', `subscription error on ${e.info.table}: ${e.message}`);
      errorsSubject.next(e);
    },
    onProgress: (p) => progressSubject.next(p),
    log: debug,
    onTransaction: (event) => {
      if (event?.tag === 'Reducer' && event.value?.reducer?.args) confirmsSeen.push(event.value.reducer.args);
    },
    beforeFlush: () => {
      if (confirmsSeen.length === 0) return;
      const seen = confirmsSeen;
      confirmsSeen = [];
      for (const args of seen) calls.confirmByArgs(args);
    },
    onTableApplied: (table, rows) => persist({ kind: 'replace', table, rows }),
    onViewCreated: (entry) => seedView(entry),
  });

  // --- Offline cache: rows loaded at start, seeded into views; table changes persisted, batched off the emission path.
  let cached: Map<string, readonly any[]> | undefined;
  const seedView = (entry: { query: { table: { accessorName: string } }; view: { seed(rows: Iterable<any>): void; everSynced: boolean } }) => {
    const rows = cached?.get(entry.query.table.accessorName);
    if (!rows || entry.view.everSynced) return;
    entry.view.seed(rows);
    shown = true;
    publishStatus();
  };
  // Row changes reach the cache in batches (one per table and transaction, see TableChangeBatch), and only
  // once the storage is open with persistTables on: without it row events do no offline-cache work at all.
  type PersistOp = { kind: 'write'; table: string; inserts: readonly any[]; deletes: readonly any[] } | { kind: 'replace'; table: string; rows: readonly any[] };
  let persistOps: PersistOp[] = [];
  const persisting = (table: string) => !!storage && persistTables && table !== receipts?.accessor;
  const persist = (op: PersistOp) => {
    if (!persisting(op.table)) return;
    persistOps.push(op);
    if (persistOps.length === 1) queueMicrotask(flushPersist);
  };
  const persistChanges = (batches: TableChangeBatch[]) => {
    if (persistOps.length === 0) queueMicrotask(flushPersist);
    for (const b of batches) persistOps.push({ kind: 'write', table: b.table, inserts: b.inserts, deletes: b.deletes });
  };
  const flushPersist = () => {
    const ops = persistOps;
    persistOps = [];
    const snapshots = storage?.snapshots;
    if (!snapshots) return;
    // Coalesce consecutive writes of one table; the cache itself throttles the I/O.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const name = tableSource.get(op.table) ?? op.table;
      if (op.kind === 'replace') {
        snapshots.replace(name, op.rows as Record<string, unknown>[]);
        continue;
      }
      let { inserts, deletes } = op;
      let owned = false;
      while (i + 1 < ops.length && ops[i + 1].kind === 'write' && ops[i + 1].table === op.table) {
        const n = ops[i + 1] as Extract<PersistOp, { kind: 'write' }>;
        // Keep the order of changes per row: a delete after an insert of one key must win.
        if (n.deletes.length > 0 && inserts.length > 0) break;
        i++;
        if (!owned) {
          inserts = [...inserts];
          deletes = [...deletes];
          owned = true;
        }
        for (const r of n.inserts) (inserts as any[]).push(r);
        for (const r of n.deletes) (deletes as any[]).push(r);
      }
      snapshots.write(name, { inserts, deletes });
    }
  };

  const prepare = (reducer: string, args: unknown, opts: BaseCallOptions): PreparedCall => {
    const record = (args ?? {}) as Record<string, unknown>;
    if (storage) {
      // The storage's own policies and mutation-id parameter apply (it may have been opened by the app).
      const name = canonical(reducer);
      const p = storage.outbox.prepare(name, record, { priority: opts.priority, supersedeKey: opts.supersedeKey, deadline: opts.deadline, durable: false });
      const takesId = storage.outbox.takesMutationId(name);
      const given = record[mutationIdParam];
      const full = takesId && (given === undefined || given === '') ? { ...record, [mutationIdParam]: p.id } : args;
      return { args: full, priority: p.priority, deadline: p.deadline, receipts: p.receipts, mutationId: takesId ? p.id : undefined };
    }
    if (!catalogue) return { args, priority: opts.priority ?? 0, deadline: opts.deadline ?? null, receipts: false };
    const c = catalogue.check(reducer, record, isOnline, () => crypto.randomUUID());
    const { policy } = c;
    const deadline = opts.deadline ?? (policy.offline === 'drop-if-stale' ? Date.now() + policy.staleAfterMs : null);
    return { args: c.takesId ? c.args : args, priority: priorityOf(opts.priority ?? policy.priority), deadline, receipts: policy.receipts, mutationId: c.takesId ? c.id : undefined };
  };
  const calls = new Calls({ prepare, log: debug, onError: (e) => errorsSubject.next(e) });
  if (storageOption) calls.expectDurable(new Promise<void>((resolve) => (resolveDurable = resolve)));
  calls.events$.subscribe((ev) => {
    const table = optimisticTable.get(ev.id);
    if (table !== undefined && ev.status !== 'pending') {
      optimisticTable.delete(ev.id);
      const log = logFor(table);
      log.pending = log.pending.filter((m) => m.id !== ev.id);
      log.events.next(ev.status === 'confirmed' ? { type: 'confirmed', id: ev.id } : { type: 'rejected', id: ev.id, reason: ev.error });
    }
    if (ev.status === 'confirmed') {
      // Latency only from answers this client saw: a receipt or another tab's record says nothing of it.
      metrics.callConfirmed(ev.via === 'answer' ? ev.latencyMs : undefined);
      debug(() => `call ${ev.reducer} confirmed ${ev.latencyMs === undefined ? `(${ev.via})` : `in ${ev.latencyMs.toFixed(1)} ms`}`);
    } else if (ev.status === 'rejected' && ((ev.error instanceof ConnectionLostError && ev.error.info.reducer !== undefined) || ev.error instanceof OutcomeUnknownError)) {
      // Sent, then the connection died (or a durable call's outcome was never recorded): unknown, not a rejection.
      metrics.callLost();
      debug(() => `call ${ev.reducer} lost: its outcome is unknown`);
      errorsSubject.next(ev.error);
    } else if (ev.status === 'rejected') {
      metrics.callRejected();
      debug(() => `call ${ev.reducer} rejected: ${ev.error.message}`);
      errorsSubject.next(ev.error);
    }
  });

  // --- Receipts, draining and migrations (storage only).
  let identityHex: string | undefined;
  let migrated = false;
  let migrationCheck: Awaited<ReturnType<Storage['migrations']['check']>> | undefined;
  /** While a connection is live: the mutation ids of this identity's receipts in the SDK cache. */
  let sendable: (() => string[]) | undefined;

  const receipts = (() => {
    if (!storageOption || options.receipts === false) return undefined;
    const r = options.receipts ?? {};
    let table: Pick<TableRefLike, 'tableDef' | 'sourceName' | 'accessorName'> | undefined;
    if (r.table) table = 'tableDef' in r.table ? (r.table as TableRefLike) : (r.table as { table: TableRefLike }).table;
    else {
      const def = Object.values(remoteModule?.tables ?? {}).find((t: any) => t?.sourceName === 'mutation_receipt');
      // A table of the module description is what a table reference calls its `tableDef`.
      if (def?.columns) table = { sourceName: def.sourceName, accessorName: def.accessorName, tableDef: def };
    }
    if (!table) {
      if (options.receipts) throw new TypeError('createSyncClient: `receipts.table` is not a table reference from the bindings.');
      return undefined;
    }
    const idColumn = r.mutationIdColumn ?? 'mutationId';
    const senderColumn = r.senderColumn ?? 'sender';
    const senderSql = table.tableDef.columns[senderColumn]?.columnMetadata?.name ?? senderColumn;
    const sql = r.query ?? `SELECT * FROM "${table.sourceName}" WHERE "${table.sourceName}"."${senderSql}" = :sender`;
    const mine = (row: any) => identityHex !== undefined && row?.[senderColumn]?.toHexString?.() === identityHex;
    return { accessor: table.accessorName, idColumn, mine, query: compileRawQuery<any>(table, sql, mine) };
  })();

  const receiptIds = (conn: ConnectionLike): string[] => {
    if (!receipts) return [];
    const ids: string[] = [];
    const t = conn.db[receipts.accessor];
    if (!t) return ids;
    for (const row of t.iter()) if (receipts.mine(row) && typeof row[receipts.idColumn] === 'string') ids.push(row[receipts.idColumn]);
    return ids;
  };

  /** Drain when live and holding the lease (or there is none). */
  const maybeDrain = () => {
    if (!sendable || closed) return;
    const lease = storage?.lease;
    if (lease && !lease.held) return;
    void calls.startDrain(sendable());
  };

  /** The migration phases, once per client, after the first sync when the bindings' fingerprint changed. */
  const migrate = async (st: Storage, conn: ConnectionLike, enter: (phase: 'migration-download' | 'migration-upload') => void) => {
    try {
      const check = migrationCheck ?? (await st.migrations.check());
      if (check.changed) {
        const onProgress = (p: MigrationProgress) => progressSubject.next({ ...progressSubject.value, migration: p });
        enter('migration-download');
        const discarded = await st.migrations.discardStaleSnapshots({ onProgress });
        debug(() => `migration: discarded cached rows of ${discarded.join(', ') || 'no table'}`);
        // Resync the cache from what this connection just received.
        if (persistTables) {
          const tablesFollowed = new Set([...queries.entries].map((e) => e.query.table.accessorName));
          for (const accessor of tablesFollowed) {
            const t = conn.db[accessor];
            if (t) st.snapshots.replace(tableSource.get(accessor) ?? accessor, [...t.iter()]);
          }
        }
        enter('migration-upload');
        const result = await st.migrations.migrateOutbox({ onProgress });
        for (const q of result.quarantined) errorsSubject.next(new MigrationError(q.reducer, q.quarantine?.message ?? `${q.reducer}: entry ${q.id} could not be migrated; it is quarantined`));
        debug(() => `migration: ${result.migrated.length} migrated, ${result.carried.length} carried, ${result.quarantined.length} quarantined, ${result.dropped.length} dropped`);
      }
      await st.migrations.commit();
    } catch (e) {
      errorsSubject.next(toStorageError('migrations', e));
    }
  };

  /** One connection attempt: emits opened/connected/synced, errors when the connection is lost. */
  const session = (): Observable<SessionEvent> =>
    new Observable<SessionEvent>((sub) => {
      let conn: C | undefined;
      let adapter: SocketAdapter | undefined;
      let ended = false;
      let protocolError: ProtocolError | undefined;
      let closeInfo: { code?: number; reason?: string } = {};
      const subs: Subscription[] = [];
      /** The heartbeat's latest round-trip estimates for this connection. */
      let estimate: { rttMs?: number; rttVarianceMs?: number } = {};
      let isLive = false;
      /** `in` per inbound frame, `out` per frame the SDK sends (each expects an answer). */
      const activity = new Subject<'in' | 'out'>();

      const teardown = (reason: ConnectionLostError['info']['reason'], cause?: unknown) => {
        for (const s of subs) s.unsubscribe();
        queries.detach();
        sendable = undefined;
        calls.connectionLost(reason, cause);
        liveCheck = undefined;
        if (connection === conn) connection = undefined;
        try {
          conn?.disconnect();
        } catch {
          /* not connected yet */
        }
        adapter?.close();
      };
      const fail = (err: Error) => {
        if (ended) return;
        ended = true;
        teardown(lostReason(err), err);
        log.log('info', `connection lost: ${err.message}`);
        sub.error(err);
      };

      const start = (token: string | undefined, refreshed: boolean) => {
        if (ended) return;
        protocolError = undefined;
        closeInfo = {};
        const thisAdapter = (adapter = createSocketAdapter({
          WebSocket: options.WebSocket,
          maxFrameBytes: options.maxFrameBytes,
          knownTables,
          observer: {
            opened: (protocol) => {
              debug(() => `socket open (${protocol})`);
              sub.next({ type: 'opened' });
              if (hb) {
                let lastRttAt = -Infinity;
                subs.push(
                  activity
                    .pipe(
                      heartbeat({
                        interval: hb.interval,
                        timeout: hb.timeout,
                        maxTimeout: hb.maxTimeout,
                        probe: () => void thisAdapter.probe(hb.query),
                        isRequest: (v) => v === 'out',
                        scheduler,
                      }),
                    )
                    .subscribe({
                      next: (ev) => {
                        if (ev.type === 'rtt') {
                          estimate = { rttMs: Math.round(ev.srttMs * 10) / 10, rttVarianceMs: Math.round(ev.rttVarMs * 10) / 10 };
                          // At most one round-trip update per second: a status a game can render as is.
                          const t = scheduler.now();
                          if (t - lastRttAt < 1000 || !isLive) return;
                          lastRttAt = t;
                          sub.next({ type: 'quality', quality: 'good', ...estimate });
                        } else if (ev.type === 'degraded') {
                          log.log('info', `no answer within ${Math.round(ev.deadlineMs)} ms: connection degraded, probing`);
                          if (isLive) sub.next({ type: 'quality', quality: 'degraded', ...estimate });
                        } else if (isLive) {
                          sub.next({ type: 'quality', quality: 'good', ...estimate });
                        }
                      },
                      error: (e) => fail(e),
                    }),
                );
              }
            },
            frameIn: (f) => {
              metrics.frameIn(f);
              activity.next('in');
              debug(() => `← ${f.messages.map((m) => m.kind + (m.tableBytes ? `[${[...m.tableBytes].map(([t, n]) => `${t}:${n}B`).join(',')}]` : '')).join(' ')} (${f.wireBytes} B)`);
            },
            frameOut: (f) => {
              metrics.frameOut(f);
              if (!f.probe) activity.next('out');
              debug(() => `→ ${f.messages.map((m) => (m.reducer ? `${m.kind} ${m.reducer}` : m.kind)).join(' ')}${f.probe ? ' (probe)' : ''} (${f.bytes} B)`);
            },
            probeAnswered: (ms) => metrics.probeAnswered(ms),
            afterFrame: () => queries.flush(),
            closed: (code, reason) => (closeInfo = { code, reason }),
            // Reported on errors$ once, as the reason the connection is lost.
            protocolError: (e) => {
              protocolError = e;
            },
          },
        }));
        let b = options.builder();
        if (options.uri) b = b.withUri(options.uri);
        if (options.database) b = b.withDatabaseName(options.database);
        b = b.withCompression(options.compression ?? 'gzip').withWSFn(thisAdapter.factory as Parameters<typeof b.withWSFn>[0]);
        if (token) b = b.withToken(token);
        let connected = false;
        b.onConnect((c, identity, tok) => {
          if (ended || c !== conn) return;
          connected = true;
          connection = c;
          if (!provider) currentToken = tok;
          identityHex = identity.toHexString();
          if (identitySubject.value?.toHexString() !== identity.toHexString()) identitySubject.next(identity);
          try {
            options.onToken?.(tok, identity);
          } catch (e) {
            errorsSubject.next(callbackFailed('onToken', e));
          }
          const st = storage;
          // The outbox drains this identity's entries only; others' wait, quarantined.
          const identityReady = st ? st.outbox.setIdentity(identity).then(() => undefined, (e) => errorsSubject.next(toStorageError('outbox.setIdentity', e))) : undefined;
          if (st && persistToken) void st.tokens.set(tok, identity).catch((e) => errorsSubject.next(toStorageError('tokens.set', e)));
          debug(() => `logged in as ${identity.toHexString().slice(0, 16)}…`);
          sub.next({ type: 'connected', identity, token: tok });
          // A page resume: probe now, with an answer deadline like any request (no answer → degraded → lost).
          liveCheck = () => {
            if (thisAdapter.probe(hb?.query ?? probeQuery(knownTables ?? []))) activity.next('out');
          };
          queries.attach(c as unknown as ConnectionLike, () => {
            if (ended) return;
            void (async () => {
              await identityReady;
              if (ended) return;
              if (st && !migrated) {
                migrated = true;
                await migrate(st, c as unknown as ConnectionLike, (phase) => sub.next({ type: 'migrating', phase }));
                if (ended) return;
              }
              metrics.connectionLive();
              calls.setSender((reducer, args) => {
                const fn = (c.reducers as Record<string, (a: unknown) => Promise<void>>)[reducer];
                if (typeof fn !== 'function') return Promise.reject(new Error(`no such reducer in the bindings: ${reducer}`));
                return fn(args);
              });
              sendable = () => receiptIds(c as unknown as ConnectionLike);
              everLive = true;
              isLive = true;
              sub.next({ type: 'synced' });
              if (estimate.rttMs !== undefined) sub.next({ type: 'quality', quality: 'good', ...estimate });
              maybeDrain();
            })().catch((e) => fail(e instanceof Error ? e : new Error(String(e))));
          });
        });
        b.onConnectError((_ctx, err) => {
          if (ended) return;
          if (err instanceof AuthError) {
            if (provider && !refreshed) {
              log.log('info', 'token refused; asking the token provider for a fresh one');
              const stale = conn;
              stale?.disconnect();
              Promise.resolve()
                .then(() => provider({ reason: 'refused' }))
                .then(
                  (t) => start(t, true),
                  (e) => fail(callbackFailed('token', e)),
                );
              return;
            }
            fail(new AuthError(err.message, { status: err.info.status, refreshed }, { cause: err.cause }));
            return;
          }
          fail(new ConnectionLostError(`Could not connect: ${err?.message ?? err}`, { reason: 'connect-failed' }, { cause: err }));
        });
        b.onDisconnect((_ctx, err) => {
          if (ended) return;
          fail(
            protocolError ??
              (err
                ? new ConnectionLostError(`Socket error: ${err.message}`, { reason: 'error' }, { cause: err })
                : new ConnectionLostError(`Socket closed${closeInfo.code ? ` (code ${closeInfo.code}${closeInfo.reason ? `: ${closeInfo.reason}` : ''})` : ''}.`, { reason: 'close' })),
          );
        });
        subs.push(
          scheduler.schedule(() => {
            if (!connected) fail(new ConnectionLostError(`No InitialConnection within ${connectTimeout} ms.`, { reason: 'connect-failed' }));
          }, connectTimeout),
        );
        try {
          conn = b.build();
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
        }
      };

      Promise.resolve()
        .then(() => (provider ? provider({ reason: 'connect' }) : currentToken))
        .then(
          (t) => start(t, false),
          (e) => fail(callbackFailed('token', e)),
        );

      return () => {
        if (ended) return;
        ended = true;
        teardown(closed ? 'closed' : 'reconnect');
      };
    });

  // Browser events → triggers.
  // A `window` that is no EventTarget (some hosts alias it to Node's global) means no browser events.
  const win = (globalThis as { window?: EventTarget }).window;
  const target = options.events === undefined ? (typeof win?.addEventListener === 'function' ? win : null) : options.events;
  const env$: Observable<Trigger> = target
    ? merge(
        fromEvent(target, 'online').pipe(map(() => 'online' as const)),
        fromEvent(target, 'offline').pipe(map(() => 'offline' as const)),
        fromEvent(target, 'pageshow').pipe(map(() => 'resume' as const)),
        fromEvent(target, 'resume').pipe(map(() => 'resume' as const)),
        fromEvent(target, 'visibilitychange').pipe(
          filter(() => (globalThis as { document?: { visibilityState?: string } }).document?.visibilityState !== 'hidden'),
          map(() => 'resume' as const),
        ),
      )
    : NEVER;

  const lifecycle$ = supervise({
    session,
    retry,
    isFatal: (e) => e instanceof AuthError || e instanceof CallbackError,
    triggers: merge(triggers, env$),
    checkLiveness: () => liveCheck?.(),
    scheduler,
  });

  const onEvent = (e: LifecycleEvent) => {
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') present(e.error);
    const next = reduceStatus(baseStatus, e);
    if (next !== baseStatus) baseStatus = next;
    if (e.type === 'synced') shown = true;
    publishStatus();
    const online = baseStatus.state === 'live';
    storage?.outbox.setOnline(online);
    isOnline = online;
    const phase = reducePhase(phaseSubject.value, e);
    if (phase !== phaseSubject.value) phaseSubject.next(phase);
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') {
      errorsSubject.next(e.error);
      if (e.type === 'failed') log.log('error', `stopped: ${e.error.message}`);
    }
    if (e.type === 'retry-scheduled') log.log('info', `reconnect attempt ${e.attempt} in ${Math.round(e.delay)} ms`);
  };

  // --- Storage: open, load the token and the cached rows, then connect.
  const storageSubs: Subscription[] = [];
  let receiptsEntry: ReturnType<LiveQueries['acquire']> | undefined;
  const openTheStorage = async (): Promise<Storage | undefined> => {
    const opt = storageOption!;
    if (isStorage(opt)) return opt;
    if (opt instanceof Promise) return await opt;
    const { open, ...rest } = opt;
    if (!bindings) throw new TypeError('createSyncClient: cannot open storage: the builder has no module description');
    ownsStorage = true;
    return open({
      server: String(options.uri ?? probeBuilder.getUri()),
      database: options.database ?? probeBuilder.getModuleName()!,
      module: bindings,
      reducers: options.reducers,
      ...rest,
    });
  };
  const ready: Promise<void> = (async () => {
    if (!storageOption) return;
    let st: Storage | undefined;
    try {
      st = await openTheStorage();
    } catch (e) {
      const err = e instanceof StorageError ? e : toStorageError('open', e);
      errorsSubject.next(err);
      log.log('warn', `storage unavailable, calls are kept in memory: ${err.message}`);
      storageMode = 'none';
      publishStatus();
      return;
    }
    if (!st) return;
    storage = st;
    if (persistTables) queries.recordChanges({ wants: persisting, write: persistChanges });
    storageSubs.push(
      st.errors$.subscribe((e) => errorsSubject.next(e)),
      st.mode$.subscribe((m) => {
        storageMode = m;
        publishStatus();
      }),
    );
    try {
      migrationCheck = await st.migrations.check();
    } catch (e) {
      errorsSubject.next(toStorageError('migrations.check', e));
    }
    if (persistToken) {
      const saved = await st.tokens.session().catch(() => undefined);
      if (saved) {
        if (!provider && currentToken === undefined) currentToken = saved.token;
        if (saved.identity) await st.outbox.setIdentity(saved.identity).catch(() => undefined);
      }
    }
    if (persistTables && bindings) {
      const loaded = new Map<string, readonly any[]>();
      for (const [accessor, t] of Object.entries(bindings.tables)) {
        if (receipts && accessor === receipts.accessor) continue;
        const { rows } = await st.snapshots.load(t.sourceName).catch(() => ({ rows: [] as any[] }));
        if (rows.length) loaded.set(accessor, rows);
      }
      cached = loaded;
      for (const entry of queries.entries) seedView(entry);
    }
    if (closed) return;
    calls.useDurable(st.callQueue({ canonical, accessor }));
    if (receipts) receiptsEntry = queries.acquire(receipts.query);
    else if (options.receipts === undefined) {
      // No silent degrade of exactly-once: say which reducers expected receipts, and how to configure them.
      const expecting = (bindings?.reducers ?? []).filter((r) => st.outbox.takesMutationId(r.name)).map((r) => r.accessorName ?? r.name);
      if (expecting.length > 0) {
        const warning = new ReceiptsNotFoundError(
          `${expecting.join(', ')} take${expecting.length === 1 ? 's' : ''} a ${mutationIdParam} but the bindings have no \`mutation_receipt\` table: calls lost in flight are not resolved from receipts after a reconnect. ` +
            'Pass `receipts: { table: tables.<yourReceipts> }` to createSyncClient (or name the module\'s table `mutation_receipt`), or `receipts: false` if this is intended.',
          { reducers: expecting, table: 'mutation_receipt' },
        );
        log.log('warn', warning.message);
        errorsSubject.next(warning);
      }
    }
    if (st.lease) {
      st.lease.start();
      storageSubs.push(
        st.lease.held$.subscribe((held) => {
          if (held) maybeDrain();
          else calls.stopDrain();
        }),
      );
    }
  })()
    .catch((e) => errorsSubject.next(e instanceof StorageError ? e : toStorageError('open', e)))
    .finally(() => resolveDurable?.());
  let lifecycleSub: Subscription | undefined;
  void ready.then(() => {
    if (!closed) lifecycleSub = lifecycle$.subscribe(onEvent);
  });

  const client: SyncClient<C> = {
    status$: guarded(statusSubject, 'status$'),
    phase$: guarded(phaseSubject, 'phase$'),
    identity$: guarded(identitySubject.pipe(filter((i): i is Identity => i !== undefined)), 'identity$'),
    syncProgress$: guarded(progressSubject, 'syncProgress$'),
    errors$: guarded(errorSubject, 'errors$'),
    metrics$: guarded(metrics.metrics$, 'metrics$'),
    get status() {
      return statusSubject.value;
    },
    get connection() {
      return connection;
    },
    get identity() {
      return identitySubject.value;
    },
    get storage() {
      return storage;
    },
    ready,
    outbox$: guarded(
      from(ready).pipe(
        switchMap(() =>
          storage
            ? storage.outbox.outbox$
            : calls.transient$.pipe(map((c): OutboxState => ({ pending: [], queued: c.queued, sent: c.sent, rejected: [], quarantined: [] }))),
        ),
      ),
      'outbox$',
    ),

    optimistic$(source, opts) {
      const q = compileQuery<any>(source, opts?.where);
      return guarded(new Observable<ReconciledView<RowKey, any>>((sub) => {
        if (closed) {
          sub.complete();
          return;
        }
        const entry = queries.acquire(q);
        const log = logFor(q.table.accessorName);
        const mutations$ = defer(() => concat(of(...log.pending), log.events));
        const s = entry.view.snapshots$
          .pipe(
            filter((m) => m !== undefined),
            reconcile<RowKey, any>(mutations$, options.reconcile),
            queries.coalesceFlush(),
            map((v) => {
              if (v.pending.size === 0) return v;
              // Predictions that fall outside this query's filter are not its rows.
              let rows: Map<RowKey, any> | undefined;
              for (const key of v.pending.keys()) {
                const row = v.rows.get(key);
                if (row !== undefined && !q.matches(row)) (rows ??= new Map(v.rows)).delete(key);
              }
              return rows ? { ...v, rows } : v;
            }),
          )
          .subscribe(sub);
        return () => {
          s.unsubscribe();
          queries.release(entry);
        };
      }), 'optimistic$');
    },

    table$(source, opts) {
      return guarded(client.optimistic$(source, opts).pipe(map((v) => v.rows)), 'table$');
    },

    changes$(source, opts) {
      const q = compileQuery<any>(source, opts?.where);
      return guarded(new Observable<readonly RowChange<any>[]>((sub) => {
        if (closed) {
          sub.complete();
          return;
        }
        const entry = queries.acquire(q);
        const view = entry.view;
        const initial = defer(() => {
          if (!view.everSynced || view.state.size === 0) return EMPTY;
          const rows: RowChange<any>[] = [];
          for (const [key, row] of view.state) rows.push({ op: 'insert', key, oldRow: undefined, newRow: row });
          return of(rows as readonly RowChange<any>[]);
        });
        const s = concat(initial, view.changes$).subscribe(sub);
        return () => {
          s.unsubscribe();
          queries.release(entry);
        };
      }), 'changes$');
    },

    row$(source, key, opts) {
      const q = compileQuery<any>(source, opts?.where);
      const k = q.toKey(key);
      return guarded(
        client.table$(source, opts).pipe(
          map((rows) => rows.get(k)),
          distinctUntilChanged(),
        ),
        'row$',
      );
    },

    call(reducer: string, args: unknown, opts?: CallOptions<QuerySource>) {
      // The module's name (`send_chat`) works as well as the bindings' accessor (`sendChat`).
      const handle = calls.call(accessor(canonical(reducer)), args, opts);
      const optimistic = opts?.optimistic;
      if (optimistic && !closed) {
        const table = compileQuery<any>(optimistic.table).table.accessorName;
        let settled = false;
        handle.subscribe({ complete: () => (settled = true) });
        if (!settled) {
          const predict = optimistic.predict as PendingMutation<RowKey, any>['predict'];
          const mutation: PendingMutation<RowKey, any> = {
            type: 'pending',
            id: handle.id,
            // A throwing prediction is rolled back (reconcile) and reported as the app's error.
            predict: (rows) => {
              try {
                return predict(rows);
              } catch (e) {
                const err = callbackFailed('predict', e);
                errorsSubject.next(err);
                throw err;
              }
            },
          };
          optimisticTable.set(handle.id, table);
          const log = logFor(table);
          log.pending.push(mutation);
          log.events.next(mutation);
        }
      }
      return handle;
    },

    reconnectNow() {
      if (!closed) triggers.next('now');
    },

    async signOut() {
      if (closed) return;
      await ready;
      currentToken = undefined;
      identityHex = undefined;
      calls.stopDrain();
      calls.rejectQueuedTransient(() => new ConnectionLostError('Signed out before the call was sent.', { reason: 'reconnect' }));
      if (storage) await storage.signOut().catch((e) => errorsSubject.next(toStorageError('signOut', e)));
      triggers.next('restart');
    },

    async close() {
      if (closed) return;
      closed = true;
      onEvent({ type: 'closed', at: Date.now() });
      lifecycleSub?.unsubscribe();
      triggers.complete();
      await ready;
      await calls.close();
      for (const log of optimisticLogs.values()) log.events.complete();
      if (receiptsEntry) queries.release(receiptsEntry);
      queries.close();
      flushPersist();
      for (const s of storageSubs) s.unsubscribe();
      if (storage) {
        await storage.snapshots.flush();
        if (ownsStorage) await storage.close();
        else await storage.lease?.stop();
      }
      for (const s of [statusSubject, phaseSubject, progressSubject, errorSubject] as Subject<unknown>[]) s.complete();
      identitySubject.complete();
      metrics.complete();
    },
  };
  return client;
}
