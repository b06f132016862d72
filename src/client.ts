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
import { Calls, type CallHandle, type CallOptions as BaseCallOptions, type CallOutbox } from '../streams/calls.ts';
import { AuthError, ConnectionLostError, ProtocolError } from '../streams/errors.ts';
import { supervise, type SessionEvent, type Trigger } from '../streams/lifecycle.ts';
import { LiveQueries, type ConnectionLike, type SyncProgress } from '../streams/liveQueries.ts';
import { createLogger, type Logger, type LoggerOptions } from '../streams/logger.ts';
import { MetricsRecorder, type ClientMetrics } from '../streams/metrics.ts';
import { compileQuery, type QuerySource } from '../streams/query.ts';
import { createSocketAdapter, type SocketAdapter, type WebSocketCtor } from '../streams/socketAdapter.ts';
import { initialStatus, reducePhase, reduceStatus, type ConnectionStatus, type LifecycleEvent, type Phase } from '../streams/status.ts';
import type { RowChange, RowKey } from '../streams/tableView.ts';

type AnyConnection = DbConnectionImpl<any>;

/** Why the token provider is asked for a token. */
export interface TokenRequest {
  /** `connect`: before a connection attempt; `refused`: the server just refused the previous token. */
  readonly reason: 'connect' | 'refused';
}

/** Returns a fresh JWT from an external OIDC provider. */
export type TokenProvider = (request: TokenRequest) => string | Promise<string>;

/** Heartbeat settings; `false` turns the heartbeat off. */
export interface HeartbeatOptions {
  /** Silence (ms) after which a probe is sent. @default 15_000 */
  interval?: number;
  /** Time (ms) allowed for any inbound frame after a probe. @default 10_000 */
  timeout?: number;
  /**
   * The `OneOffQuery` sent as probe; its result is consumed by the socket
   * adapter. Any answer, an error included, proves the connection alive.
   * @default 'SELECT * FROM __stdb_rx_heartbeat__' (an error answer, cheap everywhere)
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
   * Reconnect policy (`retryBackoff`).
   * @default { initialInterval: 500, maxInterval: 30_000, jitter: 'full' }
   */
  retry?: Partial<Omit<RetryBackoffConfig, 'onRetry' | 'resetOnSuccess' | 'scheduler'>>;
  /** @default { interval: 15_000, timeout: 10_000 } */
  heartbeat?: HeartbeatOptions | false;
  /** Time (ms) allowed from starting a connection to `InitialConnection`. @default 15_000 */
  connectTimeout?: number;
  /** @default 'gzip' */
  compression?: 'gzip' | 'brotli' | 'none';
  /** Grace (ms) before a query nobody observes any more is unsubscribed. @default 1000 */
  unsubscribeGraceMs?: number;
  /** Logger or logger options. @default silent (warn when NODE_ENV=development) */
  logger?: LoggerOptions | Logger;
  /** Sets the SDK's own global log level (it logs at `info` by default). @default unchanged */
  sdkLogLevel?: SdkLogLevel;
  /** Where calls wait for a connection. @default in memory */
  outbox?: CallOutbox;
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

/** Options of `table$` / `changes$` / `row$`. */
export interface TableQueryOptions {
  /** Filter with the SDK's query builder: `{ where: r => r.age.gte(18) }`. Becomes subscription SQL. */
  where?: (row: any) => any;
}

type ReducerName<C extends AnyConnection> = Extract<keyof C['reducers'], string>;
type ReducerArgs<C extends AnyConnection, K extends ReducerName<C>> = C['reducers'][K] extends (args: infer A) => any ? A : never;

/** The client a game uses. */
export interface SyncClient<C extends AnyConnection> {
  /** Connection status; replays the current one. Completes on `close()`. */
  readonly status$: Observable<ConnectionStatus>;
  /** Game flow phase; replays the current one. */
  readonly phase$: Observable<Phase>;
  /** The identity, once logged in. */
  readonly identity$: Observable<Identity>;
  /** Initial sync progress of the current connection. */
  readonly syncProgress$: Observable<SyncProgress>;
  /** Recoverable errors (never ending a data stream). */
  readonly errors$: Observable<Error>;
  /** Network metrics. */
  readonly metrics$: Observable<ClientMetrics>;
  /** Current status, synchronously. */
  readonly status: ConnectionStatus;
  /** The current `DbConnection`, while there is one. */
  readonly connection: C | undefined;

  /** Rows of a table (optionally filtered): current rows first, then one snapshot per transaction. */
  table$<Q extends QuerySource>(table: Q, options?: TableQueryOptions): Observable<ReadonlyMap<RowKey, RowOf<Q>>>;
  /** Change batches, one per transaction; the first batch holds the current rows as inserts. */
  changes$<Q extends QuerySource>(table: Q, options?: TableQueryOptions): Observable<readonly RowChange<RowOf<Q>>[]>;
  /**
   * The rows with pending optimistic predictions applied, which keys are
   * pending, and rollback/conflict events (`reconcile`'s view). `table$` emits
   * its `rows`.
   */
  optimistic$<Q extends QuerySource>(table: Q, options?: TableQueryOptions): Observable<ReconciledView<RowKey, RowOf<Q>>>;
  /** One row by primary key (`undefined` while absent). */
  row$<Q extends QuerySource>(table: Q, key: unknown, options?: TableQueryOptions): Observable<RowOf<Q> | undefined>;

  /** Call a reducer (accessor name from the bindings). */
  call<K extends ReducerName<C>, Q extends QuerySource = QuerySource>(reducer: K, args: ReducerArgs<C, K>, options?: CallOptions<Q>): CallHandle;

  /** Skip the retry wait (or leave `offline`) and connect now. */
  reconnectNow(): void;
  /** End everything: socket, timers, calls (rejected), and every stream (completed). */
  close(): Promise<void>;
}

const DEFAULT_RETRY = { initialInterval: 500, maxInterval: 30_000, jitter: 'full' as const };
const DEFAULT_PROBE = 'SELECT * FROM __stdb_rx_heartbeat__';

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
  const hb = options.heartbeat === false ? undefined : { interval: 15_000, timeout: 10_000, query: DEFAULT_PROBE, ...options.heartbeat };
  const connectTimeout = options.connectTimeout ?? 15_000;
  const scheduler = options.scheduler ?? asyncScheduler;
  const log = createLogger(options.logger);
  const debug = (m: () => string) => log.log('debug', m);
  if (options.sdkLogLevel) setGlobalLogLevel(options.sdkLogLevel);

  const provider = typeof options.token === 'function' ? options.token : undefined;
  let currentToken: string | undefined = typeof options.token === 'string' ? options.token : undefined;

  const statusSubject = new BehaviorSubject<ConnectionStatus>(initialStatus(Date.now()));
  const phaseSubject = new BehaviorSubject<Phase>('connect');
  const identitySubject = new BehaviorSubject<Identity | undefined>(undefined);
  const progressSubject = new BehaviorSubject<SyncProgress>({ applied: 0, total: 0, rows: 0 });
  const errorsSubject = new Subject<Error>();
  const triggers = new Subject<Trigger>();
  const metrics = new MetricsRecorder();
  let connection: C | undefined;
  let closed = false;
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
  });

  const calls = new Calls({ outbox: options.outbox, log: debug });
  calls.events$.subscribe((ev) => {
    const table = optimisticTable.get(ev.id);
    if (table !== undefined && ev.status !== 'pending') {
      optimisticTable.delete(ev.id);
      const log = logFor(table);
      log.pending = log.pending.filter((m) => m.id !== ev.id);
      log.events.next(ev.status === 'confirmed' ? { type: 'confirmed', id: ev.id } : { type: 'rejected', id: ev.id, reason: ev.error });
    }
    if (ev.status === 'confirmed') {
      metrics.callConfirmed(ev.latencyMs);
      debug(() => `call ${ev.reducer} confirmed in ${ev.latencyMs.toFixed(1)} ms`);
    } else if (ev.status === 'rejected') {
      metrics.callRejected();
      debug(() => `call ${ev.reducer} rejected: ${ev.error.message}`);
      errorsSubject.next(ev.error);
    }
  });

  /** One connection attempt: emits opened/connected/synced, errors when the connection is lost. */
  const session = (): Observable<SessionEvent> =>
    new Observable<SessionEvent>((sub) => {
      let conn: C | undefined;
      let adapter: SocketAdapter | undefined;
      let ended = false;
      let protocolError: ProtocolError | undefined;
      let closeInfo: { code?: number; reason?: string } = {};
      const subs: Subscription[] = [];
      const activity = new Subject<void>();

      const teardown = (reason: ConnectionLostError['info']['reason'], cause?: unknown) => {
        for (const s of subs) s.unsubscribe();
        queries.detach();
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
          observer: {
            opened: (protocol) => {
              debug(() => `socket open (${protocol})`);
              sub.next({ type: 'opened' });
              if (hb) {
                subs.push(
                  activity
                    .pipe(heartbeat({ interval: hb.interval, timeout: hb.timeout, probe: () => void thisAdapter.probe(hb.query), scheduler }))
                    .subscribe({ error: (e) => fail(e) }),
                );
              }
            },
            frameIn: (f) => {
              metrics.frameIn(f);
              activity.next();
              debug(() => `← ${f.messages.map((m) => m.kind + (m.tableBytes ? `[${[...m.tableBytes].map(([t, n]) => `${t}:${n}B`).join(',')}]` : '')).join(' ')} (${f.wireBytes} B)`);
            },
            frameOut: (f) => {
              metrics.frameOut(f);
              debug(() => `→ ${f.messages.map((m) => (m.reducer ? `${m.kind} ${m.reducer}` : m.kind)).join(' ')}${f.probe ? ' (probe)' : ''} (${f.bytes} B)`);
            },
            probeAnswered: (ms) => metrics.probeAnswered(ms),
            afterFrame: () => queries.flush(),
            closed: (code, reason) => (closeInfo = { code, reason }),
            protocolError: (e) => {
              protocolError = e;
              errorsSubject.next(e);
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
          if (identitySubject.value?.toHexString() !== identity.toHexString()) identitySubject.next(identity);
          options.onToken?.(tok, identity);
          debug(() => `logged in as ${identity.toHexString().slice(0, 16)}…`);
          sub.next({ type: 'connected', identity, token: tok });
          liveCheck = () => thisAdapter.probe(hb?.query ?? DEFAULT_PROBE);
          queries.attach(c as unknown as ConnectionLike, () => {
            if (ended) return;
            metrics.connectionLive();
            calls.setSender((reducer, args) => {
              const fn = (c.reducers as Record<string, (a: unknown) => Promise<void>>)[reducer];
              if (typeof fn !== 'function') return Promise.reject(new Error(`no such reducer in the bindings: ${reducer}`));
              return fn(args);
            });
            sub.next({ type: 'synced' });
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
                  (e) => fail(new AuthError(`The token provider failed: ${(e as Error)?.message ?? e}`, { status: err.info.status, refreshed: true }, { cause: e })),
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
          (e) => fail(new AuthError(`The token provider failed: ${(e as Error)?.message ?? e}`, { refreshed: false }, { cause: e })),
        );

      return () => {
        if (ended) return;
        ended = true;
        teardown(closed ? 'closed' : 'reconnect');
      };
    });

  // Browser events → triggers.
  const target = options.events === undefined ? ((globalThis as { window?: EventTarget }).window ?? null) : options.events;
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
    retry: { ...DEFAULT_RETRY, ...options.retry },
    isFatal: (e) => e instanceof AuthError,
    triggers: merge(triggers, env$),
    checkLiveness: () => liveCheck?.(),
    scheduler,
  });

  const onEvent = (e: LifecycleEvent) => {
    const next = reduceStatus(statusSubject.value, e);
    if (next !== statusSubject.value) statusSubject.next(next);
    const phase = reducePhase(phaseSubject.value, e);
    if (phase !== phaseSubject.value) phaseSubject.next(phase);
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') {
      errorsSubject.next(e.error);
      if (e.type === 'failed') log.log('error', `stopped: ${e.error.message}`);
    }
    if (e.type === 'retry-scheduled') log.log('info', `reconnect attempt ${e.attempt} in ${Math.round(e.delay)} ms`);
  };
  const lifecycleSub = lifecycle$.subscribe(onEvent);

  const closedError = () => new Error('The sync client is closed.');

  const client: SyncClient<C> = {
    status$: statusSubject.asObservable(),
    phase$: phaseSubject.asObservable(),
    identity$: identitySubject.pipe(filter((i): i is Identity => i !== undefined)),
    syncProgress$: progressSubject.asObservable(),
    errors$: errorsSubject.asObservable(),
    metrics$: metrics.metrics$,
    get status() {
      return statusSubject.value;
    },
    get connection() {
      return connection;
    },

    optimistic$(source, opts) {
      const q = compileQuery<any>(source, opts?.where);
      return new Observable<ReconciledView<RowKey, any>>((sub) => {
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
      });
    },

    table$(source, opts) {
      return client.optimistic$(source, opts).pipe(map((v) => v.rows));
    },

    changes$(source, opts) {
      const q = compileQuery<any>(source, opts?.where);
      return new Observable<readonly RowChange<any>[]>((sub) => {
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
      });
    },

    row$(source, key, opts) {
      const q = compileQuery<any>(source, opts?.where);
      const k = q.toKey(key);
      return client.table$(source, opts).pipe(
        map((rows) => rows.get(k)),
        distinctUntilChanged(),
      );
    },

    call(reducer, args, opts) {
      const handle = calls.call(reducer, args, opts);
      const optimistic = opts?.optimistic;
      if (optimistic && !closed) {
        const table = compileQuery<any>(optimistic.table).table.accessorName;
        let settled = false;
        handle.subscribe({ complete: () => (settled = true) });
        if (!settled) {
          const mutation: PendingMutation<RowKey, any> = { type: 'pending', id: handle.id, predict: optimistic.predict as PendingMutation<RowKey, any>['predict'] };
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

    async close() {
      if (closed) return;
      closed = true;
      onEvent({ type: 'closed', at: Date.now() });
      lifecycleSub.unsubscribe();
      triggers.complete();
      await calls.close();
      for (const log of optimisticLogs.values()) log.events.complete();
      queries.close();
      for (const s of [statusSubject, phaseSubject, progressSubject, errorsSubject] as Subject<unknown>[]) s.complete();
      identitySubject.complete();
      metrics.complete();
      void closedError;
    },
  };
  return client;
}
