/**
 * The registry of live queries: one server subscription per distinct query
 * SQL, shared by every observer of it (reference-counted, released after a
 * grace period), and re-established on every new connection.
 *
 * It owns the per-connection glue between the SDK and the {@link TableView}s:
 * it registers the SDK cache's row callbacks once per table, routes them to
 * the views of that table, and flushes the views at transaction boundaries —
 * when the SDK event id changes, once the SDK has finished a frame, and
 * before the SDK applies a new transaction to a table whose whole-table
 * views read its cache in place (`cacheMirror.ts`) — so every transaction
 * yields exactly one emission per affected query.
 *
 * What the rest of the client needs from the server's updates leaves through
 * streams, never callbacks: {@link LiveQueries.transaction$} (one emission
 * per transaction: its SDK event and, for the tables asked for with
 * {@link LiveQueries.recordChanges}, its row changes), `applied$` (a query's
 * rows once the server applied it), `created$` (a new view, e.g. to seed it
 * from the offline cache), `progress$` and `errors$`.
 *
 * @module
 */
import { BehaviorSubject, Observable, Subject, asyncScheduler, type MonoTypeOperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { SubscriptionError } from './errors.ts';
import { CacheMirror } from './cacheMirror.ts';
import { cacheRows } from './cacheRows.ts';
import type { CompiledQuery } from './query.ts';
import { TableView, type RowKey } from './tableView.ts';

/** The parts of a `DbConnection` the registry uses. */
export interface ConnectionLike {
  readonly db: Record<string, TableCacheLike>;
  subscriptionBuilder(): SubscriptionBuilderLike;
}

export interface TableCacheLike {
  iter(): Iterable<any>;
  /** Rows in the cache (the SDK answers with a bigint). */
  count?(): bigint | number;
  onInsert(cb: (ctx: any, row: any) => void): void;
  onDelete(cb: (ctx: any, row: any) => void): void;
  onUpdate?(cb: (ctx: any, oldRow: any, newRow: any) => void): void;
  removeOnInsert(cb: (ctx: any, row: any) => void): void;
  removeOnDelete(cb: (ctx: any, row: any) => void): void;
  removeOnUpdate?(cb: (ctx: any, oldRow: any, newRow: any) => void): void;
}

export interface SubscriptionBuilderLike {
  onApplied(cb: (ctx: any) => void): SubscriptionBuilderLike;
  onError(cb: (ctx: any) => void): SubscriptionBuilderLike;
  subscribe(sql: string | string[]): SubscriptionHandleLike;
}

export interface SubscriptionHandleLike {
  unsubscribe(): void;
  isActive(): boolean;
  isEnded(): boolean;
}

/** One shared query. */
export class LiveQuery<Row = any> {
  refCount = 0;
  handle: SubscriptionHandleLike | undefined;
  /** Applied on the current connection. */
  applied = false;
  released = false;
  grace: Subscription | undefined;
  error: SubscriptionError | undefined;
  constructor(readonly query: CompiledQuery<Row>, readonly view: TableView<Row>) {}
}

/** Progress of the initial sync of a connection. */
export interface SyncProgress {
  /** Query sets applied on this connection (or failed). */
  readonly applied: number;
  /** Query sets subscribed when the connection came up. */
  readonly total: number;
  /** Rows received in the applied sets (rows of the views after sync). */
  readonly rows: number;
  /** Progress of a storage migration phase, while one runs (see `phase$`). */
  readonly migration?: { readonly phase: 'migration-download' | 'migration-upload'; readonly done: number; readonly total: number; readonly item?: string };
}

export interface LiveQueriesOptions {
  /** Grace period before a query nobody observes is unsubscribed. @default 1000 */
  graceMs?: number;
  scheduler?: SchedulerLike;
  onError?: (error: SubscriptionError) => void;
  onProgress?: (progress: SyncProgress) => void;
  log?: (message: () => string) => void;
}

/**
 * One transaction from the server, emitted once, inside the flush that ends
 * it (before its views emit: see {@link LiveQueries.flushing}), so whatever
 * a subscriber changes in answer lands in the same emission as its rows.
 */
export interface Transaction {
  /** The SDK event (`Reducer` events carry the call's arguments object); `undefined` for row changes without one. */
  readonly event: any;
  /** The row changes of the tables asked for with {@link LiveQueries.recordChanges}, in order; the arrays are the subscribers' to keep. */
  readonly changes: readonly TableChangeBatch[];
}

/** A query applied by the server: the SDK cache's rows of its table (accessor name) now. */
export interface TableApplied {
  readonly table: string;
  readonly rows: readonly any[];
}

/**
 * One table's row changes, in order, for the offline cache: apply `deletes`,
 * then `inserts`. A transaction's changes of one table are one batch unless a
 * row was deleted after another was inserted (then a new batch starts, so the
 * order of changes per row is kept).
 */
export interface TableChangeBatch {
  readonly table: string;
  readonly inserts: any[];
  readonly deletes: any[];
}

interface TableCallbacks {
  insert: (ctx: any, row: any) => void;
  del: (ctx: any, row: any) => void;
  update: (ctx: any, o: any, n: any) => void;
  /** Whether this table's changes are recorded for {@link LiveQueries.transaction$} (one read per row event). */
  record: boolean;
  /** Rows are keyed by the primary key: row events go to {@link TableView.event}. */
  pk: boolean;
  /** The SDK cache's rows read in place, for whole-table views of a primary-keyed table (see `cacheMirror.ts`). */
  mirror: CacheMirror<any> | undefined;
}

interface Attachment {
  readonly conn: ConnectionLike;
  readonly tables: Map<string, TableCallbacks>;
  readonly initial: Set<LiveQuery>;
  readonly onSynced: () => void;
  synced: boolean;
  applied: number;
  rows: number;
  detached: boolean;
}

export class LiveQueries {
  readonly #entries = new Map<string, LiveQuery>();
  /**
   * Per table (accessor name): its live queries. The holder stays, its list
   * is replaced (never changed) on every add or drop: a table's row
   * callbacks keep the holder and iterate a plain array, with no lookup.
   */
  readonly #byTable = new Map<string, { list: readonly LiveQuery[] }>();

  readonly #dirty = new Set<TableView<any>>();
  #flushScheduled = false;
  #lastEventId: string | undefined;
  /**
   * The view synced by the latest `onApplied`. The SDK fills its cache,
   * calls `onApplied`, then reports that same event's rows as inserts: those
   * are already in the view (its sync read the cache), so the view skips
   * them. Set by `onApplied`, taken by the next event boundary.
   */
  #echo: TableView<any> | undefined;
  /** The view skipping the current event's row callbacks (see {@link #echo}). */
  #skip: TableView<any> | undefined;
  #att: Attachment | undefined;
  readonly #graceMs: number;
  readonly #scheduler: SchedulerLike;
  #closed = false;
  #wants: ((table: string) => boolean) | undefined;
  /** The event of the transaction being received (until the flush that ends it). */
  #event: any;
  /** Its row changes so far, for the recorded tables; the last batch is the one being filled. */
  #changes: TableChangeBatch[] = [];
  readonly #transaction = new Subject<Transaction>();
  readonly #applied = new Subject<TableApplied>();
  readonly #created = new Subject<LiveQuery>();
  readonly #errors = new Subject<SubscriptionError>();
  readonly #progress$ = new BehaviorSubject<SyncProgress>({ applied: 0, total: 0, rows: 0 });

  /** One emission per transaction, inside the flush that ends it (see {@link Transaction}). */
  readonly transaction$: Observable<Transaction> = this.#transaction.asObservable();
  /** A query was applied by the server (its table's rows, e.g. to replace the offline cache's). */
  readonly applied$: Observable<TableApplied> = this.#applied.asObservable();
  /** A view was created, synchronously inside `acquire` (e.g. to seed it from the offline cache). */
  readonly created$: Observable<LiveQuery> = this.#created.asObservable();
  /** Subscriptions the server refused; the query's streams end with the same error. */
  readonly errors$: Observable<SubscriptionError> = this.#errors.asObservable();
  /** Initial sync progress of the current connection; replays the latest. */
  readonly progress$: Observable<SyncProgress> = this.#progress$.asObservable();

  constructor(private readonly options: LiveQueriesOptions = {}) {
    this.#graceMs = options.graceMs ?? 1000;
    this.#scheduler = options.scheduler ?? asyncScheduler;
  }

  /**
   * Record the row changes of the tables (accessor names) `wants` accepts in
   * each {@link Transaction} (for the offline cache); `undefined` records
   * none. Unrecorded tables' row events cost nothing extra.
   */
  recordChanges(wants: ((table: string) => boolean) | undefined): void {
    this.flush();
    this.#wants = wants;
    const att = this.#att;
    if (att) for (const [name, cbs] of att.tables) cbs.record = wants?.(name) ?? false;
  }

  /** The batch the next change of `table` goes into: the last one, unless it is of another table or (for a delete) already has inserts. */
  #batch(table: string, deleting: boolean): TableChangeBatch {
    const changes = this.#changes;
    const last = changes.length > 0 ? changes[changes.length - 1] : undefined;
    if (last && last.table === table && !(deleting && last.inserts.length > 0)) return last;
    const batch: TableChangeBatch = { table, inserts: [], deletes: [] };
    changes.push(batch);
    if (changes.length === 1) this.requestFlush();
    return batch;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Every live query (for seeding and re-persisting their rows). */
  get entries(): Iterable<LiveQuery> {
    return this.#entries.values();
  }

  /** Take a reference to the query (creating and subscribing it if new). */
  acquire<Row>(query: CompiledQuery<Row>): LiveQuery<Row> {
    if (this.#closed) throw new Error('The sync client is closed.');
    let entry = this.#entries.get(query.key) as LiveQuery<Row> | undefined;
    if (!entry || entry.released) {
      entry = new LiveQuery(query, new TableView<Row>(query, (v) => this.#markDirty(v)));
      this.#entries.set(query.key, entry);
      const views = this.#viewsOf(query.table.accessorName);
      views.list = [...views.list, entry];
      this.#created.next(entry);
      if (this.#att && !this.#att.detached) this.#subscribe(this.#att, entry);
    }
    entry.refCount++;
    entry.grace?.unsubscribe();
    entry.grace = undefined;
    return entry;
  }

  /** Drop a reference; the last one unsubscribes after the grace period. */
  release(entry: LiveQuery): void {
    entry.refCount--;
    if (entry.refCount > 0 || entry.released) return;
    entry.grace?.unsubscribe();
    entry.grace = this.#scheduler.schedule(() => {
      entry.grace = undefined;
      if (entry.refCount === 0) this.#drop(entry);
    }, this.#graceMs);
  }

  #drop(entry: LiveQuery, error?: SubscriptionError): void {
    entry.released = true;
    if (this.#entries.get(entry.query.key) === entry) this.#entries.delete(entry.query.key);
    const views = this.#byTable.get(entry.query.table.accessorName);
    if (views?.list.includes(entry)) views.list = views.list.filter((e) => e !== entry);
    this.#dirty.delete(entry.view);
    const h = entry.handle;
    entry.handle = undefined;
    if (h && h.isActive() && !h.isEnded()) {
      try {
        h.unsubscribe();
      } catch {
        /* already unsubscribed */
      }
    }
    entry.view.complete(error);
    this.options.log?.(() => `unsubscribed ${entry.query.table.accessorName} (${entry.query.sql})`);
    // A query released while the connection was syncing no longer holds the sync up.
    if (this.#att && !this.#att.detached) this.#checkSynced(this.#att);
  }

  /** Follow a new connection: register row callbacks and subscribe every live query. `onSynced` fires once all are applied. */
  attach(conn: ConnectionLike, onSynced: () => void): void {
    this.detach();
    this.#lastEventId = undefined;
    const att: Attachment = { conn, tables: new Map(), initial: new Set(this.#entries.values()), onSynced, synced: false, applied: 0, rows: 0, detached: false };
    this.#att = att;
    this.#progress(att);
    for (const entry of this.#entries.values()) this.#subscribe(att, entry);
    this.#checkSynced(att);
  }

  /** The connection is gone: views keep their rows and stop following. */
  detach(): void {
    const att = this.#att;
    if (!att) return;
    this.#echo = this.#skip = undefined;
    att.detached = true;
    this.#att = undefined;
    this.flush();
    for (const [name, cbs] of att.tables) {
      const t = att.conn.db[name];
      t.removeOnInsert(cbs.insert);
      t.removeOnDelete(cbs.del);
      t.removeOnUpdate?.(cbs.update);
    }
    for (const entry of this.#entries.values()) {
      entry.applied = false;
      entry.handle = undefined;
      entry.view.suspend();
    }
  }

  #progress(att: Attachment) {
    this.#progress$.next({ applied: att.applied, total: att.initial.size, rows: att.rows });
  }

  #checkSynced(att: Attachment) {
    if (att.synced || att.detached) return;
    for (const e of att.initial) if (!e.applied && !e.released && !e.error) return;
    att.synced = true;
    att.onSynced();
  }

  #ensureTable(att: Attachment, accessorName: string, primaryKeyed: boolean, keyOf: (row: any) => RowKey) {
    if (att.tables.has(accessorName)) return;
    const table = att.conn.db[accessorName];
    if (!table) throw new TypeError(`The connection has no table '${accessorName}': are the bindings and the table reference from the same module?`);
    const boundary = (ctx: any) => {
      const id: string | undefined = ctx?.event?.id;
      if (id !== undefined && id !== this.#lastEventId) {
        this.flush();
        this.#lastEventId = id;
        this.#skip = ctx.event.tag === 'SubscribeApplied' ? this.#echo : undefined;
        this.#echo = undefined;
        this.#event = ctx.event;
        this.requestFlush();
      }
    };
    const holder = this.#viewsOf(accessorName);
    /**
     * A row event of a primary-keyed table, to every live view but `skip`:
     * `value` is the row now under the key of `keyRow` (`undefined`: gone).
     * The key is computed once and shared by the views (they key rows alike).
     */
    const pkEvent = (views: readonly LiveQuery[], keyRow: any, value: any, oldRow: any, skip: TableView<any> | undefined): RowKey | undefined => {
      let key: RowKey | undefined;
      for (let i = 0; i < views.length; i++) {
        const v = views[i].view;
        if (!v.live || v === skip || v.changesTaken) continue;
        if (key === undefined) key = v.shape.keyOf(keyRow);
        v.event(key, value, oldRow);
      }
      return key;
    };
    const onInsert = (ctx: any, row: any) => {
      if (att.detached) return;
      boundary(ctx);
      const views = holder.list;
      if (views.length !== 0) {
        let key: RowKey | undefined;
        if (cbs.pk) pkEvent(views, row, row, undefined, this.#skip);
        else for (let i = 0; i < views.length; i++) if (views[i].view !== this.#skip) key = views[i].view.insert(row, key);
      }
      if (cbs.record) this.#batch(accessorName, false).inserts.push(row);
    };
    const onDelete = (ctx: any, row: any) => {
      if (att.detached) return;
      boundary(ctx);
      const views = holder.list;
      if (views.length !== 0) {
        let key: RowKey | undefined;
        if (cbs.pk) pkEvent(views, row, undefined, undefined, undefined);
        else for (let i = 0; i < views.length; i++) key = views[i].view.delete(row, key);
      }
      if (cbs.record) this.#batch(accessorName, true).deletes.push(row);
    };
    const onUpdate = (ctx: any, oldRow: any, newRow: any) => {
      if (att.detached) return;
      // The mirror notes the rows of an updates-only change (see CacheMirror.note). When it
      // handed the change over and the table's only view is its follower, that is all: the
      // transaction began before the change, and the view takes its changes from the notes.
      const mirror = cbs.mirror;
      if (mirror !== undefined && mirror.note(oldRow, newRow) && holder.list.length === 1 && !cbs.record) return;
      boundary(ctx);
      // The SDK reports an update only for a row whose primary key stays the same.
      const views = holder.list;
      if (views.length !== 0) {
        let key: RowKey | undefined;
        if (cbs.pk) pkEvent(views, newRow, newRow, oldRow, undefined);
        else for (let i = 0; i < views.length; i++) key = views[i].view.updateSameKey(oldRow, newRow, key);
      }
      // Same key: writing the new row replaces the old one in the cache, no delete needed.
      if (cbs.record) this.#batch(accessorName, false).inserts.push(newRow);
    };
    // What the SDK calls are one-line forwarders: small enough for V8 to inline into the SDK's
    // emitter, which then calls the handlers with their arguments as they are (no spread).
    const cbs: TableCallbacks = {
      insert: (ctx: any, row: any) => onInsert(ctx, row),
      del: (ctx: any, row: any) => onDelete(ctx, row),
      update: (ctx: any, oldRow: any, newRow: any) => onUpdate(ctx, oldRow, newRow),
      record: this.#wants?.(accessorName) ?? false,
      pk: primaryKeyed,
      // Before the SDK changes the cache for a new transaction, the previous one ends: its
      // snapshots read the cache as it was (the SDK applies a frame's transactions one by one).
      // The new one begins there too, so the mirror may hand its changes over before the row
      // callbacks come; except a subscription's rows, whose `onApplied` (which decides what
      // their callbacks skip) comes between the change and the callbacks.
      mirror: primaryKeyed
        ? CacheMirror.of(table, keyOf, (ctx: any) => {
            const event = ctx?.event;
            const id: string | undefined = event?.id;
            if (att.detached || id === undefined) return false;
            if (event.tag !== 'SubscribeApplied') {
              boundary(ctx);
              return true;
            }
            if (id !== this.#lastEventId) this.flush();
            return false;
          })
        : undefined,
    };
    table.onInsert(cbs.insert);
    table.onDelete(cbs.del);
    table.onUpdate?.(cbs.update);
    att.tables.set(accessorName, cbs);
  }

  #subscribe(att: Attachment, entry: LiveQuery) {
    const { query } = entry;
    this.#ensureTable(att, query.table.accessorName, query.primaryKeyed === true, query.keyOf);
    entry.applied = false;
    let handle: SubscriptionHandleLike | undefined = undefined;
    handle = entry.handle = att.conn
      .subscriptionBuilder()
      .onApplied(() => {
        if (att.detached) return;
        if (entry.released) {
          // Released before the server answered: unsubscribe now that it is valid.
          if (handle && !handle.isEnded()) handle.unsubscribe();
          this.#checkSynced(att);
          return;
        }
        this.flush();
        entry.applied = true;
        // The rows as an array only for what needs one: a view over the cache reads the cache itself.
        let rows: any[] | undefined;
        const rowsOf = () => (rows ??= cacheRows(att.conn.db[query.table.accessorName]));
        entry.view.syncFrom(rowsOf, att.tables.get(query.table.accessorName)?.mirror);
        this.#echo = entry.view;
        if (this.#applied.observed) this.#applied.next({ table: query.table.accessorName, rows: rowsOf() });
        if (att.initial.has(entry)) {
          att.applied++;
          att.rows += entry.view.sizeAfterFlush();
          this.#progress(att);
        }
        this.options.log?.(() => `applied ${query.table.accessorName} (${query.sql})`);
        this.#checkSynced(att);
      })
      .onError((ctx: any) => {
        if (att.detached) return;
        const cause = ctx?.event instanceof Error ? ctx.event : undefined;
        const error = new SubscriptionError(`Subscription failed: ${cause?.message ?? 'unknown error'}`, { sql: [query.sql], table: query.table.accessorName }, { cause });
        entry.error = error;
        this.#errors.next(error);
        if (att.initial.has(entry)) {
          att.applied++;
          this.#progress(att);
        }
        this.#drop(entry, error);
        this.#checkSynced(att);
      })
      .subscribe(query.sql);
    this.options.log?.(() => `subscribing ${query.table.accessorName}: ${query.sql}`);
  }

  /** The holder of a table's live queries (created empty on first use). */
  #viewsOf(table: string): { list: readonly LiveQuery[] } {
    let holder = this.#byTable.get(table);
    if (!holder) this.#byTable.set(table, (holder = { list: [] }));
    return holder;
  }

  #markDirty(view: TableView<any>) {
    this.#dirty.add(view);
    this.requestFlush();
  }

  /** A frame is being handed to the SDK ({@link frameStarted}): what it changes is flushed when it ends. */
  #inFrame = false;

  /**
   * The socket adapter is handing a frame to the SDK: a flush asked for
   * until {@link frameEnded} waits for it instead of a microtask (one less
   * task per transaction on the way from the socket to the streams).
   */
  frameStarted(): void {
    this.#inFrame = true;
  }

  /** The SDK has processed the frame: flush what it changed. */
  frameEnded(): void {
    this.#inFrame = false;
    this.flush();
  }

  /** Flush at the end of the current task (microtask), or of the frame being processed. */
  requestFlush(): void {
    if (!this.#flushScheduled && !this.#inFrame) {
      this.#flushScheduled = true;
      queueMicrotask(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
  }

  readonly #flushed = new Subject<void>();
  #flushDepth = 0;

  /** True while a flush runs: emissions made now belong to one transaction. */
  get flushing(): boolean {
    return this.#flushDepth > 0;
  }

  /** End the transaction being received: emit it on `transaction$`, then every view's pending changes. */
  flush(): void {
    const event = this.#event;
    const changes = this.#changes;
    const ended = event !== undefined || changes.length > 0;
    if (this.#dirty.size === 0 && !ended) return;
    this.#flushDepth++;
    try {
      if (ended) {
        this.#event = undefined;
        this.#changes = [];
        this.#transaction.next({ event, changes });
      }
      const views = [...this.#dirty];
      this.#dirty.clear();
      for (const v of views) v.flush();
    } finally {
      this.#flushDepth--;
    }
    if (this.#flushDepth === 0) this.#flushed.next();
  }

  /**
   * Hold the values a stream emits during a flush and pass on only the last
   * one when the flush ends, so a transaction that both confirms a call and
   * changes rows yields one emission.
   */
  coalesceFlush<T>(): MonoTypeOperatorFunction<T> {
    return (source) =>
      new Observable<T>((subscriber) => {
        let held: { value: T } | undefined;
        const release = () => {
          if (!held) return;
          const { value } = held;
          held = undefined;
          subscriber.next(value);
        };
        const gate = this.#flushed.subscribe(release);
        const sub = source.subscribe({
          next: (value) => {
            if (this.flushing) held = { value };
            else subscriber.next(value);
          },
          error: (e) => subscriber.error(e),
          complete: () => {
            release();
            subscriber.complete();
          },
        });
        return () => {
          gate.unsubscribe();
          sub.unsubscribe();
        };
      });
  }

  /** End everything: unsubscribe nothing on the server (the connection is going away), complete every view. */
  close(): void {
    this.#closed = true;
    this.detach();
    for (const entry of [...this.#entries.values()]) {
      entry.grace?.unsubscribe();
      entry.grace = undefined;
      entry.released = true;
      entry.view.complete();
    }
    this.#entries.clear();
    this.#byTable.clear();
    this.#dirty.clear();
    this.#flushed.complete();
    for (const s of [this.#transaction, this.#applied, this.#created, this.#errors, this.#progress$] as Subject<unknown>[]) s.complete();
  }
}
