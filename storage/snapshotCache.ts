/**
 * Last-known rows of subscribed tables, for a cold start without network.
 *
 * The client hands every table change to {@link SnapshotCache.write} (or a
 * whole fresh set to {@link SnapshotCache.replace}); both return at once
 * and do no I/O. Changes are coalesced per row key and written after
 * `throttleMs` in one Dexie transaction — off the emission path, however
 * fast the table changes. One write is in flight at a time: changes that
 * arrive while it runs coalesce into the next, so a slow disk costs at most
 * one table's worth of pending rows, never a growing queue of batches.
 * {@link SnapshotCache.load} decodes a table's rows at startup with the time
 * they were last received (`asOf`), so the client can show them at once and
 * mark them stale.
 *
 * Rows are stored BSATN-encoded with the table's own row type, so bigint,
 * Identity, Timestamp and every other SpacetimeDB value come back exactly.
 * Each table's rows are keyed by the primary key (the same key the SDK's
 * cache uses), or by the row's bytes when the table has none.
 */
import { AlgebraicType } from 'spacetimedb';
import { systemClock, systemTimers, type Clock, type Timers } from './clock.ts';
import { toHex } from './codec.ts';
import type { TableRecord } from './db.ts';
import { StorageFailedError, type StorageError } from './errors.ts';
import type { ModuleCodecs } from './schema.ts';
import type { Store, TableWrite } from './store.ts';

export type Row = Record<string, unknown>;

/** One table's change, as the SDK reports it. */
export interface TableChanges<R = Row> {
  inserts?: readonly R[];
  deletes?: readonly R[];
}

export interface LoadedTable<R = Row> {
  rows: R[];
  /** Epoch ms when these rows were last received from the server; null when nothing is cached. */
  asOf: number | null;
}

export interface SnapshotCacheOptions {
  store: Store;
  codecs: ModuleCodecs;
  clock?: Clock;
  timers?: Timers;
  /** Delay between the first unflushed change and the write. @default 1000 */
  throttleMs?: number;
  /** Flush at once when this many row changes are pending. @default 10_000 */
  maxPending?: number;
  /** Where rows that cannot be encoded (or decoded) are reported. */
  report?: (error: StorageError) => void;
}

const DELETE = Symbol('delete');

interface PendingTable {
  clear: boolean;
  rows: Map<string, Row | typeof DELETE>;
  lastWriteAt: number;
}

export class SnapshotCache {
  private readonly store: Store;
  private readonly codecs: ModuleCodecs;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly throttleMs: number;
  private readonly maxPending: number;
  private readonly report: (error: StorageError) => void;
  private pending = new Map<string, PendingTable>();
  private pendingCount = 0;
  private cancelTimer: (() => void) | undefined;
  /** The write running now, if any. */
  private writing: Promise<void> | undefined;
  /** The write that takes what is pending now, started when {@link writing} ends. */
  private next: Promise<void> | undefined;

  constructor(options: SnapshotCacheOptions) {
    this.store = options.store;
    this.codecs = options.codecs;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.throttleMs = options.throttleMs ?? 1000;
    this.maxPending = options.maxPending ?? 10_000;
    this.report = options.report ?? (() => {});
  }

  /** Row changes not yet written. */
  get pendingChanges(): number {
    return this.pendingCount;
  }

  private keyOf(table: string, row: Row): string {
    const t = this.codecs.table(table)!;
    if (t.pk) {
      const key = AlgebraicType.intoMapKey(t.pk.type, row[t.pk.name]);
      return `${typeof key === 'bigint' ? 'n' : typeof key === 'number' ? 'f' : typeof key === 'boolean' ? 'b' : 's'}:${String(key)}`;
    }
    return `r:${toHex(t.codec.encode(row))}`;
  }

  private tableFor(table: string): PendingTable | undefined {
    if (!this.codecs.table(table)) {
      this.report(new StorageFailedError(`snapshots.write(${table})`, new Error(`table ${table} is not in the bindings`)));
      return undefined;
    }
    let p = this.pending.get(table);
    if (!p) this.pending.set(table, (p = { clear: false, rows: new Map(), lastWriteAt: 0 }));
    p.lastWriteAt = this.clock.now();
    return p;
  }

  private set(p: PendingTable, table: string, row: Row, value: Row | typeof DELETE): void {
    let key: string;
    try {
      key = this.keyOf(table, row);
    } catch (error) {
      this.report(new StorageFailedError(`snapshots.write(${table})`, error));
      return;
    }
    if (!p.rows.has(key)) this.pendingCount += 1;
    p.rows.set(key, value);
  }

  /** Record a change of a subscribed table (canonical name). Never throws, never waits. */
  write(table: string, changes: TableChanges): void {
    const p = this.tableFor(table);
    if (!p) return;
    for (const row of changes.deletes ?? []) this.set(p, table, row, DELETE);
    for (const row of changes.inserts ?? []) this.set(p, table, row, row);
    this.schedule();
  }

  /** Record a table's complete current rows (after a subscription is applied): older cached rows go. */
  replace(table: string, rows: readonly Row[]): void {
    const p = this.tableFor(table);
    if (!p) return;
    this.pendingCount -= p.rows.size;
    p.rows.clear();
    p.clear = true;
    for (const row of rows) this.set(p, table, row, row);
    this.schedule();
  }

  private schedule(): void {
    if (this.pendingCount >= this.maxPending) {
      void this.flush();
      return;
    }
    if (this.cancelTimer) return;
    this.cancelTimer = this.timers.setTimeout(() => {
      this.cancelTimer = undefined;
      void this.flush();
    }, this.throttleMs);
  }

  /**
   * Write everything pending now, in one transaction; resolves when written.
   * Never rejects. While a write runs, the pending changes wait for it and
   * go in the next one (with whatever else arrives until then).
   */
  flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.next) return this.next; // it has not started: it takes these changes too
    if (!this.writing) return this.startWrite();
    // Batches are written in order, so an older one never lands after a newer one.
    return (this.next = this.writing.then(() => {
      this.next = undefined;
      return this.startWrite();
    }));
  }

  private startWrite(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.pendingCount = 0;
    const w: Promise<void> = this.writeBatch(batch).finally(() => {
      if (this.writing === w) this.writing = undefined;
    });
    this.writing = w;
    return w;
  }

  /** Resolves when every write started so far has ended. */
  private settled(): Promise<void> {
    return this.next ?? this.writing ?? Promise.resolve();
  }

  private async writeBatch(batch: Map<string, PendingTable>): Promise<void> {
    if (batch.size === 0) return;
    const writes: TableWrite[] = [];
    for (const [table, p] of batch) {
      const { codec } = this.codecs.table(table)!;
      const write: TableWrite = {
        table,
        clear: p.clear,
        put: [],
        delete: [],
        asOf: p.lastWriteAt,
        rowTypeHash: this.codecs.schema.tables[table].hash,
      };
      for (const [key, value] of p.rows) {
        if (value === DELETE) {
          write.delete.push(key);
          continue;
        }
        try {
          write.put.push({ table, key, row: codec.encode(value) });
        } catch (error) {
          this.report(new StorageFailedError(`snapshots.encode(${table})`, error));
        }
      }
      writes.push(write);
    }
    try {
      await this.store.rowsApply(writes);
    } catch (error) {
      this.report(new StorageFailedError('snapshots.flush', error));
    }
  }

  /**
   * The cached rows of a table and when they were received. Rows cached
   * under a different row type (an older app version) are not returned.
   */
  async load<R = Row>(table: string): Promise<LoadedTable<R>> {
    const t = this.codecs.table(table);
    if (!t) return { rows: [], asOf: null };
    await this.settled();
    const { rows, meta } = await this.store.rowsLoad(table);
    if (!meta || meta.rowTypeHash !== this.codecs.schema.tables[table].hash) return { rows: [], asOf: null };
    const decoded: R[] = [];
    for (const r of rows) {
      try {
        decoded.push(t.codec.decode(r.row) as R);
      } catch (error) {
        this.report(new StorageFailedError(`snapshots.decode(${table})`, error));
      }
    }
    return { rows: decoded, asOf: meta.asOf };
  }

  /** What is cached, per table. */
  tables(): Promise<TableRecord[]> {
    return this.store.tablesList();
  }

  /** Drop cached rows (pending ones included) of these tables, or all. Returns the tables that had rows. */
  async discard(tables: readonly string[] | 'all' = 'all'): Promise<string[]> {
    for (const t of tables === 'all' ? [...this.pending.keys()] : tables) {
      const p = this.pending.get(t);
      if (p) this.pendingCount -= p.rows.size;
      this.pending.delete(t);
    }
    await this.settled();
    return this.store.rowsDrop(tables);
  }

  /** Flush and stop the timer. */
  close(): Promise<void> {
    return this.flush();
  }
}
