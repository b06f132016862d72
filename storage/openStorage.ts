/**
 * One call that opens everything the client plugs in for one (server,
 * database): outbox, drain lease, snapshot cache, token store, migrations.
 * It never rejects because of IndexedDB: when the database cannot be
 * opened (private mode, no IndexedDB, an upgrade blocked too long) the
 * storage starts in memory, reports why on `errors$`, and says so on
 * `mode$`.
 */
import { type Observable } from 'rxjs';
import type { DurableQueue } from '../streams/durableQueue.ts';
import { systemClock, systemTimers, type Clock, type Timers } from './clock.ts';
import { StdbRxDB, databaseName, type DexieFactory } from './db.ts';
import { DexieStore } from './dexieStore.ts';
import { StorageClosedError, StorageUnavailableError, StorageUpgradeBlockedError, toStorageError, type StorageError } from './errors.ts';
import { FailoverStore } from './failover.ts';
import { StoreLease, WebLocksLease, browserLocks, type DrainLease } from './lease.ts';
import { Migrations, type Migrator } from './migrations.ts';
import { Outbox, type ReducerPolicy } from './outbox.ts';
import { outboxQueue, type ReducerNames } from './outboxQueue.ts';
import { ModuleCodecs, type StorageModule } from './schema.ts';
import { SnapshotCache } from './snapshotCache.ts';
import type { StorageMode } from './store.ts';
import { TokenStore } from './tokenStore.ts';

export interface StorageOptions {
  /** Server URI (one database per server and database name). */
  server: string;
  /** SpacetimeDB database name. */
  database: string;
  /** The bindings' module description (`DbConnection.builder().remoteModule`). */
  module: StorageModule;
  /** IndexedDB factory. @default globalThis.indexedDB */
  indexedDB?: DexieFactory['indexedDB'];
  /** @default globalThis.IDBKeyRange */
  IDBKeyRange?: DexieFactory['IDBKeyRange'];
  /** Start in memory without touching IndexedDB. @default false */
  memory?: boolean;
  clock?: Clock;
  timers?: Timers;
  /** Per-reducer offline policy, receipts and priority, by canonical name. */
  reducers?: Record<string, ReducerPolicy>;
  /** @default 'mutationId' */
  mutationIdParam?: string;
  /** @default crypto.randomUUID */
  newId?: () => string;
  /** See {@link OutboxOptions.adoptUnowned}. @default true */
  adoptUnowned?: boolean;
  /** See {@link OutboxOptions.outcomeTtlMs}. @default 86_400_000 (one day) */
  outcomeTtlMs?: number;
  /**
   * Which drain lease: Web Locks where available (`'auto'`), the database
   * lease row (`'store'`), a given one, or none (single-tab apps).
   * @default 'auto'
   */
  lease?: 'auto' | 'web-locks' | 'store' | 'none' | DrainLease;
  /** Lease row lifetime without renewal. @default 10_000 */
  leaseTtlMs?: number;
  /** Snapshot write throttle: the longest a received row waits to be written (the client also writes at once when its connection is lost). @default 1000 */
  snapshotThrottleMs?: number;
  /** Per-reducer migrators (by the old reducer name). */
  migrators?: Record<string, Migrator>;
  /** Give up on an open that stays blocked this long, and run in memory. @default 10_000 */
  openTimeoutMs?: number;
  /** Called with every storage failure (as well as `errors$`). */
  onError?: (error: StorageError) => void;
  /** Called on the Dexie instance before it opens (add-ons, middleware). */
  configureDexie?: (db: StdbRxDB) => void;
}

export interface Storage {
  readonly outbox: Outbox;
  readonly lease: DrainLease | undefined;
  readonly snapshots: SnapshotCache;
  readonly tokens: TokenStore;
  readonly migrations: Migrations;
  /**
   * The outbox as the sync client's call queue sees it (what
   * `createSyncClient` drains). `names` maps the bindings' reducer
   * accessors to the module's names. @default names used as they are
   */
  callQueue(names?: ReducerNames): DurableQueue;
  /** `'durable'` or, after a failure, `'memory'`. */
  readonly mode$: Observable<StorageMode>;
  readonly mode: StorageMode;
  /** Storage failures (the latest few are replayed to late subscribers). */
  readonly errors$: Observable<StorageError>;
  /** The Dexie database, while durable (for inspection and tests). */
  readonly db: StdbRxDB | undefined;
  /** Clear the token and the current identity: the outbox then sends nothing until the next sign-in. */
  signOut(): Promise<void>;
  /** Flush snapshots, give up the lease, close the database. */
  close(): Promise<void>;
}

/** `reported`: the error already went out through `report`. */
type OpenResult = { db: StdbRxDB } | { error: StorageError; reported?: boolean };

async function openDexie(options: StorageOptions, timers: Timers, report: (e: StorageError) => void): Promise<OpenResult> {
  const indexedDB = options.indexedDB ?? (globalThis as { indexedDB?: DexieFactory['indexedDB'] }).indexedDB;
  const keyRange = options.IDBKeyRange ?? (globalThis as { IDBKeyRange?: DexieFactory['IDBKeyRange'] }).IDBKeyRange;
  if (!indexedDB || !keyRange) return { error: new StorageUnavailableError('open', new Error('no IndexedDB in this environment')) };
  let db: StdbRxDB;
  try {
    db = new StdbRxDB(databaseName(options.server, options.database), { indexedDB, IDBKeyRange: keyRange });
    options.configureDexie?.(db);
  } catch (error) {
    return { error: toStorageError('open', error) };
  }
  let cancel: (() => void) | undefined;
  const blocked = new Promise<OpenResult>(resolve => {
    db.on('blocked', event => {
      if (cancel) return;
      // Tell the app now (it may ask the user to close other tabs); give up after the timeout.
      const error = new StorageUpgradeBlockedError('open', event);
      report(error);
      cancel = timers.setTimeout(() => resolve({ error, reported: true }), options.openTimeoutMs ?? 10_000);
    });
  });
  const opened = db.open().then(
    (): OpenResult => ({ db }),
    (error: unknown): OpenResult => ({ error: toStorageError('open', error) }),
  );
  const result = await Promise.race([opened, blocked]);
  cancel?.();
  if ('error' in result) {
    // A blocked open may still complete later: make sure it does not linger.
    db.close();
  }
  return result;
}

/** Open the storage of one (server, database). Never rejects because of IndexedDB. */
export async function openStorage(options: StorageOptions): Promise<Storage> {
  const clock = options.clock ?? systemClock;
  const timers = options.timers ?? systemTimers;
  const codecs = new ModuleCodecs(options.module);

  // Failures during the open reach onError at once and errors$ (replayed) once it exists.
  const early: StorageError[] = [];
  const reportEarly = (e: StorageError) => {
    early.push(e);
    options.onError?.(e);
  };

  let db: StdbRxDB | undefined;
  if (!options.memory) {
    const result = await openDexie(options, timers, reportEarly);
    if ('db' in result) db = result.db;
    else if (result.reported) early.push(result.error);
    else reportEarly(result.error);
  }
  const store = new FailoverStore(db ? new DexieStore(db) : null, options.onError);
  for (const e of new Set(early)) store.replay(e);

  if (db) {
    // Another tab upgrades or deletes the database. Keep the connection open
    // long enough to copy the outbox into memory (returning false stops
    // Dexie's default immediate close); degrade() closes it afterwards, which
    // lets the other tab proceed.
    db.on('versionchange', () => {
      store.report(new StorageClosedError('versionchange', new Error('another tab is upgrading or deleting the database')));
      void store.degrade();
      return false;
    });
  }

  let lease: DrainLease | undefined;
  const leaseName = `${databaseName(options.server, options.database)}:drain`;
  const choice = options.lease ?? 'auto';
  if (typeof choice === 'object') lease = choice;
  else if (choice !== 'none') {
    const locks = browserLocks();
    if ((choice === 'auto' || choice === 'web-locks') && locks) lease = new WebLocksLease(locks, leaseName);
    else if (choice === 'web-locks') throw new TypeError('lease: "web-locks" asked for, but navigator.locks is not available');
    else lease = new StoreLease({ store, clock, timers, ttlMs: options.leaseTtlMs });
  }

  const outbox = new Outbox({
    store,
    codecs,
    clock,
    reducers: options.reducers,
    mutationIdParam: options.mutationIdParam,
    newId: options.newId,
    adoptUnowned: options.adoptUnowned,
    outcomeTtlMs: options.outcomeTtlMs,
    lease,
  });
  const snapshots = new SnapshotCache({ store, codecs, clock, timers, throttleMs: options.snapshotThrottleMs, report: e => store.report(e) });
  const tokens = new TokenStore(store, clock);
  const migrations = new Migrations({ store, codecs, migrators: options.migrators, mutationIdParam: options.mutationIdParam, clock });
  await migrations.remember();

  const storage: Storage = {
    outbox,
    lease,
    snapshots,
    tokens,
    migrations,
    callQueue: names => outboxQueue(outbox, names),
    mode$: store.mode$,
    get mode() {
      return store.kind;
    },
    errors$: store.errors$,
    get db() {
      return store.kind === 'durable' ? db : undefined;
    },
    async signOut() {
      await tokens.clear();
      await outbox.setIdentity(null);
    },
    async close() {
      await snapshots.close();
      await lease?.stop();
      store.close();
    },
  };
  return storage;
}
