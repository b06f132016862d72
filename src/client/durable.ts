/**
 * Durable set-up (with storage only): open the storage (or take the one the
 * app opened), restore the session token and the cached rows, hand the
 * outbox to the call queue, follow the module's receipts, start the drain
 * lease, and run the migration phases once per client after its first sync.
 * The client never loads the storage code itself: the app passes it in.
 *
 * @module
 */
import { BehaviorSubject, Subject, type Subscription } from 'rxjs';
import type { Identity } from 'spacetimedb';
import type { MigrationProgress } from '../../storage/migrations.ts';
import type { Storage } from '../../storage/openStorage.ts';
import { cacheRows } from '../../streams/cacheRows.ts';
import { ReceiptsNotFoundError } from '../../streams/errors.ts';
import type { ConnectionLike, LiveQuery } from '../../streams/liveQueries.ts';
import type { Logger } from '../../streams/logger.ts';
import type { StorageModule } from '../../streams/bindings.ts';
import { MigrationError, StorageError, toStorageError } from '../../streams/storageErrors.ts';
import type { SyncStatus } from '../../streams/status.ts';
import type { Downstream } from './downstream.ts';
import type { ClientStorageOptions, ReceiptsOptions } from './options.ts';
import type { Receipts } from './receipts.ts';
import type { Reporter } from './report.ts';
import type { Upstream } from './upstream.ts';

/** What the app passed as `storage`. */
export type StorageOption = Storage | Promise<Storage> | ClientStorageOptions;

export function isStorage(x: unknown): x is Storage {
  return typeof x === 'object' && x !== null && 'outbox' in x && 'snapshots' in x && 'migrations' in x;
}

export interface DurableOptions {
  readonly storage: StorageOption;
  /** Opens the storage from `ClientStorageOptions` (server, database and module from the client). */
  readonly defaults: { readonly server: string; readonly database: string; readonly module: StorageModule | undefined; readonly reducers: ClientStorageOptions['reducers'] };
  readonly persistTables: boolean;
  readonly persistToken: boolean;
  readonly receipts: Receipts | undefined;
  /** The `receipts` option as given (`undefined`: warn when receipts are expected but missing). */
  readonly receiptsOption: ReceiptsOptions | false | undefined;
  readonly mutationIdParam: string;
  readonly downstream: Downstream;
  readonly upstream: Upstream;
  readonly reporter: Reporter;
  readonly log: Logger;
  /** A saved session token, for when the app gave none. */
  readonly restoreToken: (token: string) => void;
  /** Whether the client was closed meanwhile. */
  readonly closed: () => boolean;
}

export class Durable {
  /** The storage, once open. */
  storage: Storage | undefined;
  /** Where calls and cached rows are kept. */
  readonly mode$ = new BehaviorSubject<SyncStatus['storage']>('durable');
  /** Progress of a migration phase while one runs. */
  readonly migration$ = new Subject<MigrationProgress>();
  /** Resolves once the storage is open and its token and rows are loaded (or it failed). */
  readonly ready: Promise<void>;
  #owns = false;
  #migrated = false;
  #check: Awaited<ReturnType<Storage['migrations']['check']>> | undefined;
  #receiptsEntry: LiveQuery | undefined;
  readonly #subs: Subscription[] = [];

  constructor(private readonly o: DurableOptions) {
    this.ready = this.#start()
      .catch((e) => o.reporter.report(e instanceof StorageError ? e : toStorageError('open', e)));
  }

  async #open(): Promise<Storage> {
    const opt = this.o.storage;
    if (isStorage(opt)) return opt;
    if (opt instanceof Promise) return await opt;
    const { open, ...rest } = opt;
    const { module, server, database, reducers } = this.o.defaults;
    if (!module) throw new TypeError('createSyncClient: cannot open storage: the builder has no module description');
    this.#owns = true;
    return open({ server, database, module, reducers, ...rest });
  }

  async #start(): Promise<void> {
    const { reporter, log, downstream, upstream, receipts } = this.o;
    let st: Storage;
    try {
      st = await this.#open();
    } catch (e) {
      const err = e instanceof StorageError ? e : toStorageError('open', e);
      reporter.report(err);
      log.log('warn', `storage unavailable, calls are kept in memory: ${err.message}`);
      this.mode$.next('none');
      return;
    }
    this.storage = st;
    this.#subs.push(
      st.errors$.subscribe((e) => reporter.report(e)),
      st.mode$.subscribe((m) => this.mode$.next(m)),
    );
    try {
      this.#check = await st.migrations.check();
    } catch (e) {
      reporter.report(toStorageError('migrations.check', e));
    }
    if (this.o.persistToken) {
      const saved = await st.tokens.session().catch(() => undefined);
      if (saved) {
        this.o.restoreToken(saved.token);
        if (saved.identity) await st.outbox.setIdentity(saved.identity).catch(() => undefined);
      }
    }
    const tables = this.o.defaults.module?.tables;
    if (this.o.persistTables && tables) {
      const loaded = new Map<string, readonly any[]>();
      for (const [accessor, t] of Object.entries(tables)) {
        if (accessor === receipts?.accessor) continue;
        const { rows } = await st.snapshots.load(t.sourceName).catch(() => ({ rows: [] as any[] }));
        if (rows.length) loaded.set(accessor, rows);
      }
      downstream.useCache({ snapshots: st.snapshots, loaded, persists: (t) => t !== receipts?.accessor, sourceName: (t) => tables[t]?.sourceName ?? t });
    }
    if (this.o.closed()) return;
    upstream.useDurable(st);
    if (receipts) this.#receiptsEntry = downstream.queries.acquire(receipts.query);
    else if (this.o.receiptsOption === undefined) this.#warnNoReceipts(st);
    if (st.lease) {
      st.lease.start();
      this.#subs.push(
        st.lease.held$.subscribe((held) => {
          if (held) upstream.drain();
          else upstream.calls.stopDrain();
        }),
      );
    }
  }

  /** No silent degrade of exactly-once: say which reducers expected receipts, and how to configure them. */
  #warnNoReceipts(st: Storage): void {
    const expecting = (this.o.defaults.module?.reducers ?? []).filter((r) => st.outbox.takesMutationId(r.name)).map((r) => r.accessorName ?? r.name);
    if (expecting.length === 0) return;
    const warning = new ReceiptsNotFoundError(
      `${expecting.join(', ')} take${expecting.length === 1 ? 's' : ''} a ${this.o.mutationIdParam} but the bindings have no \`mutation_receipt\` table: calls lost in flight are not resolved from receipts after a reconnect. ` +
        'Pass `receipts: { table: tables.<yourReceipts> }` to createSyncClient (or name the module\'s table `mutation_receipt`), or `receipts: false` if this is intended.',
      { reducers: expecting, table: 'mutation_receipt' },
    );
    this.o.log.log('warn', warning.message);
    this.o.reporter.report(warning);
  }

  /** Logged in: the outbox drains this identity's entries only (others' wait, quarantined); the token is kept. */
  loggedIn(identity: Identity, token: string): Promise<void> {
    const st = this.storage;
    if (!st) return Promise.resolve();
    if (this.o.persistToken) void st.tokens.set(token, identity).catch((e) => this.o.reporter.report(toStorageError('tokens.set', e)));
    return st.outbox.setIdentity(identity).then(
      () => undefined,
      (e) => this.o.reporter.report(toStorageError('outbox.setIdentity', e)),
    );
  }

  /** The migration phases, once per client, after the first sync when the bindings' fingerprint changed. */
  async migrate(conn: ConnectionLike, enter: (phase: 'migration-download' | 'migration-upload') => void): Promise<void> {
    const st = this.storage;
    if (!st || this.#migrated) return;
    this.#migrated = true;
    const { reporter, log } = this.o;
    const debug = (m: () => string) => log.log('debug', m);
    try {
      const check = this.#check ?? (await st.migrations.check());
      if (check.changed) {
        const onProgress = (p: MigrationProgress) => this.migration$.next(p);
        enter('migration-download');
        const discarded = await st.migrations.discardStaleSnapshots({ onProgress });
        debug(() => `migration: discarded cached rows of ${discarded.join(', ') || 'no table'}`);
        // Resync the cache from what this connection just received.
        if (this.o.persistTables) {
          const tables = this.o.defaults.module?.tables;
          for (const accessor of this.o.downstream.followedTables()) {
            const t = conn.db[accessor];
            if (t) st.snapshots.replace(tables?.[accessor]?.sourceName ?? accessor, cacheRows(t));
          }
        }
        enter('migration-upload');
        const result = await st.migrations.migrateOutbox({ onProgress });
        for (const q of result.quarantined) reporter.report(new MigrationError(q.reducer, q.quarantine?.message ?? `${q.reducer}: entry ${q.id} could not be migrated; it is quarantined`));
        debug(() => `migration: ${result.migrated.length} migrated, ${result.carried.length} carried, ${result.quarantined.length} quarantined, ${result.dropped.length} dropped`);
      }
      await st.migrations.commit();
    } catch (e) {
      reporter.report(toStorageError('migrations', e));
    }
  }

  /** Sign-out: clear the stored token and the outbox's identity. */
  async signOut(): Promise<void> {
    await this.storage?.signOut().catch((e) => this.o.reporter.report(toStorageError('signOut', e)));
  }

  /** Stop following receipts and the lease; flush the cache; close the storage if the client opened it. */
  async close(): Promise<void> {
    if (this.#receiptsEntry) this.o.downstream.queries.release(this.#receiptsEntry);
    for (const s of this.#subs) s.unsubscribe();
    const st = this.storage;
    if (st) {
      await st.snapshots.flush();
      if (this.#owns) await st.close();
      else await st.lease?.stop();
    }
    this.mode$.complete();
    this.migration$.complete();
  }
}
