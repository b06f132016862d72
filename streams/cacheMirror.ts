/**
 * The newest snapshot of a whole-table query, read in place from the SDK's
 * client cache instead of a table of stdb-rx's own.
 *
 * A query without `WHERE` over a table with a primary key holds exactly the
 * rows the SDK caches for that table, keyed as the SDK keys them. Keeping a
 * second table of the same rows cost a write per changed row on every
 * transaction (and, after each sync, a build of the whole table). So such a
 * view's newest snapshot is an *outer* {@link SnapshotMap} over the cache's
 * `rows` map, and its older snapshots keep, as diffs, the values each
 * change replaced.
 *
 * Those diffs must be taken before the SDK changes its cache, and the SDK
 * changes it in one place: its table cache's `applyOperations(operations,
 * ctx)`, called once per table and transaction, before any row callback. The
 * mirror wraps that function on the cache object. Before the original runs
 * it (1) lets the caller end the previous transaction, whose snapshot must
 * not see this one's rows, and (2) makes sure the rows the change replaces
 * will be known: when the operations are updates only (the i-th insert and
 * the i-th delete share a row id), the SDK's update callbacks that follow
 * carry them ({@link CacheMirror.note}), so nothing is read; otherwise it
 * reads them, one map read per operation. The outer map then advances to a
 * new newest version with those rows as the older one's diff. No table
 * write per row is left.
 *
 * Three things end an outer map's run, and each costs one copy of the rows:
 * an iteration over it still open when the cache is about to change; diffs
 * recorded since it began outnumbering four times the rows (the same bound
 * as a view's own tables: a version kept forever holds no more); and the
 * loss of the connection ({@link CacheMirror.release}), after which the lost
 * cache is not kept alive. The map is then frozen (its versions read the
 * copy from then on) and the next reader starts a new one over the live
 * cache.
 *
 * The SDK's cache is private in its type declarations, so all of this is
 * checked at run time (`rows` a `Map` of `[row, refCount]` pairs as large as
 * `count()` says; `applyOperations` a function; each operation's `rowId`);
 * anything else leaves the views on tables of their own.
 * docs/protocol.md ("What the client relies on") lists it.
 *
 * @module
 */
import { KeyTable } from './keyTable.ts';
import { ABSENT_BEFORE, advanceOuter, freezeOuter, outerSnapshot, outerStatus, type OuterTable, type SnapshotMap } from './snapshotMap.ts';
import type { RowKey } from './tableView.ts';
import { sdkRowMap, type CachedPair as Pair } from './cacheRows.ts';

/** The SDK cache's rows, read in place. */
class CacheRows<Row> implements OuterTable<Row> {
  constructor(private readonly rows: Map<unknown, Pair>) {}
  get(key: unknown): Row | undefined {
    const p = this.rows.get(key);
    return p === undefined ? undefined : (p[0] as Row);
  }
  get size(): number {
    return this.rows.size;
  }
  *entries(): Generator<[unknown, Row], void, undefined> {
    for (const [k, p] of this.rows) yield [k, p[0] as Row];
  }
  arrays(): { keys: unknown[]; values: Row[] } {
    const keys: unknown[] = new Array(this.rows.size);
    const values: Row[] = new Array(this.rows.size);
    let i = 0;
    this.rows.forEach((p, k) => {
      keys[i] = k;
      values[i++] = p[0] as Row;
    });
    return { keys, values };
  }
}

/**
 * A copy of the cache's rows as they were when an outer map was frozen: two
 * arrays in the cache's order (so an iteration open at the freeze goes on
 * from the same position, and a re-sync after a lost connection walks them
 * side by side with the new rows). The index for lookups is built on the
 * first one.
 */
class ArrayRows<Row> implements OuterTable<Row> {
  #index: KeyTable<Row> | undefined;
  /** The keys are bigints (a table's keys all have its primary key's type): indexed as numbers where a double holds them. */
  readonly #bigint: boolean;
  constructor(
    private readonly keys: unknown[],
    private readonly values: Row[],
  ) {
    this.#bigint = typeof keys[0] === 'bigint';
  }
  get(key: unknown): Row | undefined {
    this.#index ??= KeyTable.of(this.keys, this.values, this.#bigint ? packBig : undefined);
    return this.#index.get(this.#bigint ? packBig(key) : key);
  }
  get size(): number {
    return this.keys.length;
  }
  *entries(): Generator<[unknown, Row], void, undefined> {
    for (let i = 0; i < this.keys.length; i++) yield [this.keys[i], this.values[i]];
  }
  arrays(): { keys: unknown[]; values: Row[] } {
    return { keys: this.keys, values: this.values };
  }
}

/** A bigint a double holds exactly, as that number; anything else as it is. */
function packBig(key: unknown): unknown {
  if (typeof key !== 'bigint') return key;
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : key;
}

/** The SDK table cache's function that changes its rows (checked at run time). */
interface Applies {
  applyOperations?(operations: readonly { rowId: unknown }[], ctx: unknown): unknown;
}

const mirrors = new WeakMap<object, CacheMirror<any>>();

export class CacheMirror<Row> {
  readonly #rows: Map<unknown, Pair>;
  readonly #table: CacheRows<Row>;
  /** The newest version of the current outer map (none until a view asks, and after a freeze). */
  #head: SnapshotMap<RowKey, Row> | undefined;
  /** Taken before the change being applied. */
  #diff: unknown[] | undefined;
  /**
   * A change of updates only, applied and not yet linked: the old rows come
   * from the SDK's update callbacks ({@link note}), which follow it.
   */
  #filling: unknown[] | undefined;
  /** Entries of `#filling` written (it is sized for every update up front: no growth per row). */
  #filled = 0;
  /** The cache did not look as expected at a change: no outer map any more. */
  #broken = false;
  #before: (ctx: unknown) => void;

  private constructor(
    rows: Map<unknown, Pair>,
    /** A row's key: the SDK's row id (its primary key as the SDK maps it). */
    readonly keyOf: (row: Row) => RowKey,
    before: (ctx: unknown) => void,
  ) {
    this.#rows = rows;
    this.#table = new CacheRows<Row>(rows);
    this.#before = before;
  }

  /**
   * The mirror of `table` (an SDK table cache), installed on first call.
   * `keyOf` gives a row's key (the SDK's row id); `before(ctx)` runs before
   * each change of the cache, with the SDK's event context (a later call
   * replaces it). `undefined` when the cache does not have the shape the
   * mirror relies on.
   */
  static of<Row>(table: object, keyOf: (row: Row) => RowKey, before: (ctx: unknown) => void): CacheMirror<Row> | undefined {
    const existing = mirrors.get(table);
    if (existing) {
      existing.#before = before;
      return existing.#broken ? undefined : existing;
    }
    const t = table as Applies;
    const original = t.applyOperations;
    const rows = sdkRowMap(table);
    if (typeof original !== 'function' || rows === undefined) return undefined;
    const mirror = new CacheMirror<Row>(rows, keyOf, before);
    t.applyOperations = function (this: unknown, operations, ctx) {
      mirror.#before(ctx);
      mirror.#capture(operations);
      try {
        return original.call(this, operations, ctx);
      } finally {
        mirror.#advance();
      }
    };
    mirrors.set(table, mirror);
    return mirror;
  }

  /** The newest snapshot of the cache's rows (`undefined` once the cache stopped looking as expected). */
  get head(): SnapshotMap<RowKey, Row> | undefined {
    if (this.#broken) return undefined;
    this.#settle();
    return (this.#head ??= outerSnapshot<RowKey, Row>(this.#table));
  }

  /**
   * Whether the cache keys its rows as `keyOf` does (checked on its first
   * row): what a view that reads the cache in place relies on. A view of a
   * cache that does not keeps a table of its own.
   */
  keysAgree(): boolean {
    const first = this.#rows.entries().next();
    return first.done === true || this.keyOf(first.value[1][0] as Row) === first.value[0];
  }

  /**
   * Every cached row as an insert, keyed by the cache's own keys (a view's
   * first sync over the cache): one pass over the cache, no array of rows
   * and no key computed per row.
   */
  inserts(): { op: 'insert'; key: RowKey; oldRow: undefined; newRow: Row }[] {
    const rows = this.#rows;
    const out: { op: 'insert'; key: RowKey; oldRow: undefined; newRow: Row }[] = new Array(rows.size);
    let i = 0;
    rows.forEach((p, k) => {
      out[i++] = { op: 'insert', key: k as RowKey, oldRow: undefined, newRow: p[0] as Row };
    });
    return out;
  }

  /** Whether the SDK's update callbacks now being made are to be {@link note}d. */
  get filling(): boolean {
    return this.#filling !== undefined;
  }

  /** An update callback of the change being applied: `key` held `oldRow` before it. */
  note(key: unknown, oldRow: unknown): void {
    const f = this.#filling;
    if (f === undefined) return;
    f[this.#filled++] = key;
    f[this.#filled++] = oldRow;
  }

  /** Link the change whose old rows came from the callbacks (they are all in by the time anything reads). */
  #settle(): void {
    const diff = this.#filling;
    if (diff === undefined) return;
    this.#filling = undefined;
    // Fewer callbacks than updates (the SDK skips a row it finds inconsistent): the unused end goes.
    if (this.#filled < diff.length) diff.length = this.#filled;
    this.#head = advanceOuter(this.#head!, diff);
  }

  /**
   * Whether `ops` (the SDK's: a table's inserts, then its deletes) are updates
   * only: the i-th insert and the i-th delete have the same row id, for every
   * i. The SDK then reports each as an update callback carrying the row it
   * replaced, so nothing needs reading before the change. (Identity checks
   * only: no map lookup.)
   */
  #updatesOnly(ops: readonly { type?: unknown; rowId?: unknown }[]): boolean {
    const n = ops.length;
    if (n % 2 !== 0) return false;
    const half = n / 2;
    for (let i = 0; i < half; i++) {
      const a = ops[i];
      const b = ops[half + i];
      if (a.type !== 'insert' || b.type !== 'delete' || a.rowId !== b.rowId) return false;
    }
    return true;
  }

  #capture(operations: unknown): void {
    this.#settle();
    const head = this.#head;
    if (head === undefined) return;
    const rows = this.#rows;
    const ops = operations as readonly { rowId?: unknown }[];
    if (!Array.isArray(ops) || (ops.length > 0 && (typeof ops[0] !== 'object' || ops[0] === null || !('rowId' in ops[0])))) {
      this.#broken = true;
      this.#freeze(head);
      return;
    }
    if (ops.length === 0) return;
    const status = outerStatus(head);
    if (status.readers > 0 || status.recorded > 4 * rows.size + 1024) {
      this.#freeze(head);
      return;
    }
    if (this.#updatesOnly(ops)) {
      this.#filling = new Array(ops.length);
      this.#filled = 0;
      return;
    }
    const diff: unknown[] = new Array(2 * ops.length);
    let j = 0;
    for (let i = 0; i < ops.length; i++) {
      const id = ops[i].rowId;
      const p = rows.get(id);
      diff[j++] = id;
      diff[j++] = p === undefined ? ABSENT_BEFORE : p[0];
    }
    this.#diff = diff;
  }

  #advance(): void {
    const diff = this.#diff;
    if (diff === undefined) return;
    this.#diff = undefined;
    this.#head = advanceOuter(this.#head!, diff);
  }

  /**
   * The connection is gone: the current outer map's versions go on reading a
   * copy of the cache as two arrays in its order (what a re-sync walks), so
   * the lost connection's cache is not kept alive by them.
   */
  release(): void {
    if (this.#broken) return;
    this.#settle();
    if (this.#head !== undefined) this.#freeze(this.#head);
  }

  /** Keep the current outer map's versions as they are, on a copy; the next reader starts a new one. */
  #freeze(head: SnapshotMap<RowKey, Row>): void {
    const { keys, values } = this.#table.arrays();
    freezeOuter(head, new ArrayRows<Row>(keys, values));
    this.#head = undefined;
  }
}
