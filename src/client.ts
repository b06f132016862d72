/**
 * `createSyncClient`: the object a game uses, wired from the parts in
 * `src/client/`: a connect attempt (`session.ts`) supervised with retries,
 * live queries and the offline cache (`downstream.ts`), calls
 * (`upstream.ts`), optimistic state (`optimistic.ts`), storage, token and
 * migrations (`durable.ts`), receipts (`receipts.ts`), and the status derived
 * from the lifecycle (`status.ts`). Errors reach the game through one
 * reporter (`report.ts`).
 *
 * Data flows one way: SDK → streams → operators → game.
 *
 * @module
 */
import { BehaviorSubject, NEVER, Observable, Subject, asyncScheduler, distinctUntilChanged, filter, from, fromEvent, map, merge, of, switchMap, tap, type Subscription } from 'rxjs';
import { setGlobalLogLevel, type Identity } from 'spacetimedb';
import { moduleFromBindings, type StorageModule } from '../streams/bindings.ts';
import { AuthError, CallbackError } from '../streams/errors.ts';
import { supervise, type Trigger } from '../streams/lifecycle.ts';
import type { ConnectionLike, SyncProgress } from '../streams/liveQueries.ts';
import { createLogger } from '../streams/logger.ts';
import { MetricsRecorder } from '../streams/metrics.ts';
import { compileQuery, type QuerySource } from '../streams/query.ts';
import { probeQuery } from '../streams/socketAdapter.ts';
import { ReducerCatalogue } from '../streams/reducers.ts';
import type { LifecycleEvent, Phase, SyncStatus } from '../streams/status.ts';
import type { OutboxState } from '../storage/outbox.ts';
import { Downstream } from './client/downstream.ts';
import { Durable, isStorage } from './client/durable.ts';
import { OptimisticState, type Predict } from './client/optimistic.ts';
import { mergeRetry, type AnyConnection, type CallOptions, type SyncClient, type SyncClientOptions } from './client/options.ts';
import { resolveReceipts } from './client/receipts.ts';
import { createReporter } from './client/report.ts';
import { createSessions } from './client/session.ts';
import { derivePhase, deriveStatus } from './client/status.ts';
import { Upstream } from './client/upstream.ts';

export { mergeRetry } from './client/options.ts';
export type {
  SyncClient,
  SyncClientOptions,
  TokenProvider,
  TokenRequest,
  HeartbeatOptions,
  TableQueryOptions,
  WhereOf,
  RowOf,
  CallOptions,
  Optimistic,
  ClientStorageOptions,
  ReceiptsOptions,
} from './client/options.ts';

/** What the bindings' builder knows of the module (the SDK keeps it in a field of the builder). */
function moduleDescription(builder: unknown): { tables: Record<string, any>; reducers: readonly any[] } | undefined {
  return (builder as { remoteModule?: { tables: Record<string, any>; reducers: readonly any[] } }).remoteModule;
}

/** Browser events as triggers. A `window` that is no EventTarget (some hosts alias it to Node's global) means none. */
function environmentTriggers(events: EventTarget | null | undefined): Observable<Trigger> {
  const win = (globalThis as { window?: EventTarget }).window;
  const target = events === undefined ? (typeof win?.addEventListener === 'function' ? win : null) : events;
  if (!target) return NEVER;
  return merge(
    fromEvent(target, 'online').pipe(map(() => 'online' as const)),
    fromEvent(target, 'offline').pipe(map(() => 'offline' as const)),
    fromEvent(target, 'pageshow').pipe(map(() => 'resume' as const)),
    fromEvent(target, 'resume').pipe(map(() => 'resume' as const)),
    fromEvent(target, 'visibilitychange').pipe(
      filter(() => (globalThis as { document?: { visibilityState?: string } }).document?.visibilityState !== 'hidden'),
      map(() => 'resume' as const),
    ),
  );
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
  const scheduler = options.scheduler ?? asyncScheduler;
  const log = createLogger(options.logger);
  const debug = (m: () => string) => log.log('debug', m);
  setGlobalLogLevel(options.sdkLogLevel ?? 'warn');

  // What the bindings say: names, types (for checking arguments), wire table names.
  const remoteModule = moduleDescription(probeBuilder);
  let bindings: StorageModule | undefined;
  let catalogue: ReducerCatalogue | undefined;
  const storageOption = options.storage;
  if (storageOption && typeof storageOption === 'object' && !(storageOption instanceof Promise) && !isStorage(storageOption) && typeof (storageOption as { open?: unknown }).open !== 'function') {
    throw new TypeError("createSyncClient: `storage` options need `open: openStorage` (import { openStorage } from 'stdb-rx/storage').");
  }
  if (storageOption && isStorage(storageOption) && options.reducers) {
    throw new TypeError('createSyncClient: `reducers` policies belong to openStorage when an opened storage is passed.');
  }
  const mutationIdParam = (storageOption && !isStorage(storageOption) && !(storageOption instanceof Promise) ? storageOption.mutationIdParam : undefined) ?? 'mutationId';
  try {
    if (remoteModule) bindings = moduleFromBindings({ tables: remoteModule.tables, reducers: remoteModule.reducers });
    if (bindings) catalogue = new ReducerCatalogue(bindings.reducers, { mutationIdParam });
  } catch (e) {
    log.log('warn', `cannot read the bindings' types; reducer arguments are not checked: ${(e as Error).message}`);
  }
  // A policy for a reducer the bindings lack is the caller's mistake: thrown here.
  if (catalogue && options.reducers && !isStorage(storageOption)) catalogue = catalogue.withPolicies(options.reducers);
  const knownTables = bindings ? new Set(Object.values(bindings.tables).map((t) => t.sourceName)) : undefined;
  // A valid query that answers with no rows: nothing for a real server to log as an error.
  const probe = probeQuery(knownTables ?? []);
  const heartbeat = options.heartbeat === false ? undefined : { interval: 1_500, timeout: 1_000, maxTimeout: 10_000, ...options.heartbeat };

  let closed = false;
  const reporter = createReporter(log);
  const metrics = new MetricsRecorder();
  const optimistic = new OptimisticState(reporter);
  const downstream = new Downstream({ graceMs: options.unsubscribeGraceMs ?? 1000, scheduler, log: debug, optimistic, reconcile: options.reconcile, closed: () => closed });
  const { queries } = downstream;
  let durableSettled: () => void = () => {};
  const upstream = new Upstream({
    catalogue,
    transaction$: queries.transaction$,
    durableReady: storageOption ? new Promise<void>((resolve) => (durableSettled = resolve)) : undefined,
    metrics,
    reporter,
    optimistic,
    log: debug,
  });
  queries.errors$.subscribe((e) => {
    log.log('warn', `subscription error on ${e.info.table}: ${e.message}`);
    reporter.report(e);
  });

  // Tokens: the app's, a provider's, or the one the server minted (kept for every reconnect: same identity).
  const provider = typeof options.token === 'function' ? options.token : undefined;
  let currentToken: string | undefined = typeof options.token === 'string' ? options.token : undefined;
  let identityHex: string | undefined;
  const identitySubject = new BehaviorSubject<Identity | undefined>(undefined);

  const receipts = storageOption ? resolveReceipts(options.receipts, remoteModule?.tables, () => identityHex) : undefined;
  const durable = storageOption
    ? new Durable({
        storage: storageOption,
        defaults: { server: String(options.uri ?? probeBuilder.getUri()), database: options.database ?? probeBuilder.getModuleName()!, module: bindings, reducers: options.reducers },
        persistTables: options.persistTables ?? true,
        persistToken: (options.persistToken ?? true) && options.token === undefined,
        receipts,
        receiptsOption: options.receipts,
        mutationIdParam,
        downstream,
        upstream,
        reporter,
        log,
        restoreToken: (token) => {
          if (!provider && currentToken === undefined) currentToken = token;
        },
        closed: () => closed,
      })
    : undefined;
  const ready: Promise<void> = durable ? durable.ready.finally(durableSettled) : Promise.resolve();

  const sessions = createSessions<C>({
    connect: options,
    connectTimeout: options.connectTimeout ?? 15_000,
    heartbeat: heartbeat && { ...heartbeat, query: heartbeat.query ?? probe },
    probeQuery: probe,
    knownTables,
    scheduler,
    log,
    metrics,
    queries,
    reporter,
    tokens: { forConnect: () => (provider ? provider({ reason: 'connect' }) : currentToken), refresh: provider && (() => provider({ reason: 'refused' })) },
    closing: () => closed,
    hooks: {
      loggedIn: (_conn, identity, token) => {
        if (!provider) currentToken = token;
        identityHex = identity.toHexString();
        if (identitySubject.value?.toHexString() !== identityHex) identitySubject.next(identity);
        try {
          options.onToken?.(token, identity);
        } catch (e) {
          reporter.report(reporter.callbackFailed('onToken', e));
        }
        return durable?.loggedIn(identity, token) ?? Promise.resolve();
      },
      beforeLive: (conn, enter) => durable?.migrate(conn as unknown as ConnectionLike, enter) ?? Promise.resolve(),
      live: (conn) => {
        upstream.live(conn, () => receipts?.ids(conn as unknown as ConnectionLike) ?? []);
        reporter.wentLive();
      },
      ended: (reason, cause) => {
        upstream.ended(reason, cause);
        // No row changes until a connection is back: write the cache's pending rows now, not after
        // the throttle, so a reload while offline starts from everything the player last saw.
        void durable?.storage?.snapshots.flush();
      },
    },
  });

  // --- The lifecycle: one stream of events, from which status and phase derive.
  const triggers = new Subject<Trigger>();
  const events = new Subject<LifecycleEvent>();
  // Both start with a value at once: the subscriptions below fill them synchronously.
  const statusSubject = new BehaviorSubject<SyncStatus>(null as never);
  const phaseSubject = new BehaviorSubject<Phase>('connect');
  const progressSubject = new BehaviorSubject<SyncProgress>({ applied: 0, total: 0, rows: 0 });
  const subs: Subscription[] = [
    deriveStatus({ events, shown: downstream.shown$, storage: durable?.mode$ ?? of('none' as const) }, Date.now()).subscribe((s) => statusSubject.next(s)),
    derivePhase(events).subscribe((p) => phaseSubject.next(p)),
    queries.progress$.subscribe((p) => progressSubject.next(p)),
  ];
  if (durable) subs.push(durable.migration$.subscribe((migration) => progressSubject.next({ ...progressSubject.value, migration })));

  const onEvent = (e: LifecycleEvent) => {
    // Errors get their player-facing text before the status shows them.
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') reporter.present(e.error);
    events.next(e);
    // After the status went live: rows shown while live are not stale, so this changes nothing the game sees.
    if (e.type === 'synced') downstream.shown$.next(true);
    const online = statusSubject.value.state === 'live';
    durable?.storage?.outbox.setOnline(online);
    upstream.online = online;
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') {
      reporter.report(e.error);
      if (e.type === 'failed') log.log('error', `stopped: ${e.error.message}`);
    }
    if (e.type === 'retry-scheduled') log.log('info', `reconnect attempt ${e.attempt} in ${Math.round(e.delay)} ms`);
    if (e.type === 'synced' && !closed) upstream.drain();
  };

  const lifecycle$ = supervise({
    session: sessions.session,
    retry,
    isFatal: (e) => e instanceof AuthError || e instanceof CallbackError,
    triggers: merge(triggers, environmentTriggers(options.events)),
    checkLiveness: sessions.checkLiveness,
    scheduler,
  });
  let lifecycleSub: Subscription | undefined;
  void ready.then(() => {
    if (!closed) lifecycleSub = lifecycle$.subscribe(onEvent);
  });

  const guarded = reporter.guarded;
  const client: SyncClient<C> = {
    status$: guarded(statusSubject, 'status$'),
    phase$: guarded(phaseSubject, 'phase$'),
    identity$: guarded(identitySubject.pipe(filter((i): i is Identity => i !== undefined)), 'identity$'),
    syncProgress$: guarded(progressSubject, 'syncProgress$'),
    errors$: guarded(reporter.errors$, 'errors$'),
    metrics$: guarded(metrics.metrics$, 'metrics$'),
    get status() {
      return statusSubject.value;
    },
    get connection() {
      return sessions.connection;
    },
    get identity() {
      return identitySubject.value;
    },
    get storage() {
      return durable?.storage;
    },
    ready,
    outbox$: guarded(
      from(ready).pipe(
        switchMap(() =>
          durable?.storage
            ? durable.storage.outbox.outbox$
            : upstream.calls.transient$.pipe(map((c): OutboxState => ({ pending: [], queued: c.queued, sent: c.sent, rejected: [], quarantined: [] }))),
        ),
      ),
      'outbox$',
    ),

    optimistic$(source, opts) {
      return guarded(downstream.optimistic$(compileQuery<any>(source, opts?.where)), 'optimistic$');
    },

    table$(source, opts) {
      return guarded(client.optimistic$(source, opts).pipe(map((v) => v.rows)), 'table$');
    },

    changes$(source, opts) {
      return guarded(downstream.changes$(compileQuery<any>(source, opts?.where)), 'changes$');
    },

    row$(source, key, opts) {
      const k = compileQuery<any>(source, opts?.where).toKey(key);
      return guarded(
        client.table$(source, opts).pipe(
          map((rows) => rows.get(k)),
          distinctUntilChanged(),
        ),
        'row$',
      );
    },

    call(reducer: string, args: unknown, opts?: CallOptions<QuerySource>) {
      const handle = upstream.call(reducer, args, opts);
      const prediction = opts?.optimistic;
      if (prediction && !closed) optimistic.add(handle, compileQuery<any>(prediction.table).table.accessorName, prediction.predict as Predict);
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
      upstream.stop();
      await durable?.signOut();
      triggers.next('restart');
    },

    async close() {
      if (closed) return;
      closed = true;
      onEvent({ type: 'closed', at: Date.now() });
      lifecycleSub?.unsubscribe();
      triggers.complete();
      await ready;
      await upstream.close();
      optimistic.close();
      downstream.close();
      await durable?.close();
      for (const s of subs) s.unsubscribe();
      for (const s of [statusSubject, phaseSubject, progressSubject, events] as Subject<unknown>[]) s.complete();
      reporter.complete();
      identitySubject.complete();
      metrics.complete();
    },
  };
  return client;
}
