/**
 * Downstream: rows from the server to the game. The live queries, the
 * streams a game subscribes to (`optimistic$`, `changes$`), and the offline
 * cache — seeded into new views, fed from `transaction$` one transaction at a
 * time (the cache itself coalesces and throttles the writes).
 *
 * @module
 */
import { BehaviorSubject, EMPTY, Observable, concat, defer, filter, map, of, type SchedulerLike, type Subscription } from 'rxjs';
import { reconcile, type ReconcileConfig, type ReconciledView } from '../../operators/index.ts';
import { LiveQueries, type LiveQuery } from '../../streams/liveQueries.ts';
import type { CompiledQuery } from '../../streams/query.ts';
import type { RowChange, RowKey } from '../../streams/tableView.ts';
import type { Storage } from '../../storage/openStorage.ts';
import type { OptimisticState } from './optimistic.ts';

export interface DownstreamOptions {
  readonly graceMs: number;
  readonly scheduler: SchedulerLike;
  readonly log: (message: () => string) => void;
  readonly optimistic: OptimisticState;
  readonly reconcile: ReconcileConfig<RowKey, any> | undefined;
  /** Whether the client is closed (new subscribers complete at once). */
  readonly closed: () => boolean;
}

/** The offline cache as the client uses it. */
export interface CacheFeed {
  readonly snapshots: Storage['snapshots'];
  /** Rows loaded at start, per table (accessor name), to seed views with until the server's rows of the table arrive. */
  readonly loaded: ReadonlyMap<string, readonly any[]>;
  /** Whether a table's (accessor name) rows are cached. */
  readonly persists: (table: string) => boolean;
  /** The module's name of a table (accessor name), the cache's key. */
  readonly sourceName: (table: string) => string;
}

export class Downstream {
  readonly queries: LiveQueries;
  /** Rows were shown (from the cache or the server). */
  readonly shown$ = new BehaviorSubject(false);
  /** The cache's rows loaded at start, per table, until the server has sent that table's rows. */
  #loaded = new Map<string, readonly any[]>();
  readonly #subs: Subscription[] = [];

  constructor(private readonly options: DownstreamOptions) {
    this.queries = new LiveQueries({ graceMs: options.graceMs, scheduler: options.scheduler, log: options.log });
    this.#subs.push(this.queries.created$.subscribe((entry) => this.#seed(entry)));
  }

  /** Start the offline cache: seed the views from its rows, then keep it up to date. */
  useCache(cache: CacheFeed): void {
    this.#loaded = new Map(cache.loaded);
    for (const entry of this.queries.entries) this.#seed(entry);
    const { snapshots, persists, sourceName } = cache;
    this.queries.recordChanges(persists);
    this.#subs.push(
      this.queries.transaction$.subscribe(({ changes }) => {
        for (const b of changes) snapshots.write(sourceName(b.table), b);
      }),
      this.queries.applied$.subscribe(({ table, rows }) => {
        // The server's rows replace the start's: they are not shown again, nor kept.
        this.#loaded.delete(table);
        if (persists(table)) snapshots.replace(sourceName(table), rows as Record<string, unknown>[]);
      }),
    );
  }

  /** Tables (accessor names) some live query follows. */
  followedTables(): Set<string> {
    return new Set([...this.queries.entries].map((e) => e.query.table.accessorName));
  }

  #seed(entry: LiveQuery): void {
    const rows = this.#loaded.get(entry.query.table.accessorName);
    if (!rows || entry.view.everSynced) return;
    entry.view.seed(rows);
    this.shown$.next(true);
  }

  /** A table's rows with pending predictions applied (`reconcile`'s view), one emission per transaction. */
  optimistic$(q: CompiledQuery<any>): Observable<ReconciledView<RowKey, any>> {
    return new Observable<ReconciledView<RowKey, any>>((sub) => {
      if (this.options.closed()) {
        sub.complete();
        return;
      }
      const entry = this.queries.acquire(q);
      const s = entry.view.snapshots$
        .pipe(
          filter((m) => m !== undefined),
          reconcile<RowKey, any>(this.options.optimistic.mutations$(q.table.accessorName), this.options.reconcile),
          this.queries.coalesceFlush(),
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
        this.queries.release(entry);
      };
    });
  }

  /** Change batches, one per transaction; the first holds the current rows as inserts. */
  changes$(q: CompiledQuery<any>): Observable<readonly RowChange<any>[]> {
    return new Observable<readonly RowChange<any>[]>((sub) => {
      if (this.options.closed()) {
        sub.complete();
        return;
      }
      const entry = this.queries.acquire(q);
      const view = entry.view;
      const initial = defer(() => {
        if (!view.everSynced || view.state.size === 0) return EMPTY;
        const rows: RowChange<any>[] = [];
        // Literals, as a first sync's (see Change in streams/tableView.ts).
        for (const [key, row] of view.state) rows.push({ op: 'insert', key, oldRow: undefined, newRow: row });
        return of(rows as readonly RowChange<any>[]);
      });
      const s = concat(initial, view.changes$).subscribe(sub);
      return () => {
        s.unsubscribe();
        this.queries.release(entry);
      };
    });
  }

  close(): void {
    this.queries.close();
    for (const s of this.#subs) s.unsubscribe();
    this.shown$.complete();
  }
}
