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
 * will be known. When the operations are updates only (the i-th insert and
 * the i-th delete share a row id: what a reducer that changes rows in place
 * sends), the SDK's update callbacks that follow carry them
 * ({@link CacheMirror.note}), so nothing is read; otherwise it reads them,
 * one map read per operation. The outer map then advances to a new newest
 * version with those rows as the older one's diff. No table write per row is
 * left.
 *
 * An updates-only change also makes the change objects of the views that
 * follow the mirror ({@link MirrorFollower}). Each view is told once, right
 * after the change, that its changes come from the mirror, and leaves the
 * row callbacks that follow to the notes; the mirror turns the notes into
 * the diff and the change objects in one pass, when the first of the views
 * flushes. Per row that is two array writes in the callback and one object
 * at the flush, instead of a trip through every view. It needs the caller
 * to have begun the transaction before the change (its `before` says so);
 * otherwise, and for any other change, the views take their changes from
 * the row callbacks.
 *
 * Three things end an outer map's run, and each costs one copy of the rows:
 * an iteration over it still open when the cache is about to change; diffs
 * recorded since it began outnumbering four times the rows (the same bound
 * as a view's own tables: a version kept forever holds no more); and the
 * last view's leaving the mirror ({@link CacheMirror.unfollow}: its query
 * dropped, or the connection lost), after which no one reads a newer
 * version and a lost connection's cache is not kept alive. The map is then
 * frozen (its versions read the copy from then on) and the next reader
 * starts a new one over the live cache.
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
import { Change, type RowChange, type RowKey } from './tableView.ts';
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

/** An SDK operation as the mirror reads it (checked as it goes). */
interface Operation {
  readonly type?: unknown;
  readonly rowId?: unknown;
}

/** A view that reads the cache through the mirror and takes a transaction's changes from it (see the module comment). */
export interface MirrorFollower {
  /**
   * The transaction being applied is an updates-only one: its changes are the
   * mirror's ({@link CacheMirror.taken}), and the row callbacks that follow
   * bring nothing new. True when the follower will read them, once, at its
   * flush.
   */
  take(): boolean;
}

/**
 * Runs before each change of the cache, with the SDK's event context. True
 * when the caller has begun that transaction, so its followers may be told
 * of it before the SDK's row callbacks come.
 */
export type BeforeChange = (ctx: unknown) => boolean | void;

const mirrors = new WeakMap<object, CacheMirror<any>>();

export class CacheMirror<Row> {
  readonly #rows: Map<unknown, Pair>;
  readonly #table: CacheRows<Row>;
  /** The newest version of the current outer map (none until a view asks, and after a freeze). */
  #head: SnapshotMap<RowKey, Row> | undefined;
  /** Taken before the change being applied. */
  #diff: unknown[] | undefined;
  /**
   * An updates-only change, applied and not yet linked: `[oldRow, newRow, …]`
   * from the SDK's update callbacks ({@link note}), which follow it. Sized
   * for every update up front: no growth per row.
   */
  #notes: unknown[] | undefined;
  /** Entries of `#notes` written. */
  #noted = 0;
  /** The change objects of the last updates-only change, made from its notes (the same array for every follower). */
  #taken: RowChange<Row>[] = [];
  /**
   * Followers still to read {@link taken}. The last one's read lets go of
   * the change objects, and with them of the rows the change replaced: a
   * table's last transaction is not kept alive until its next one.
   */
  #readers = 0;
  /** The views that take an updates-only change's objects from the mirror (usually one). */
  #followers: MirrorFollower[] = [];
  /** The followers are to be told, once the change is done, that they take this one's objects. */
  #handing = false;
  /** They were told so for the cache's last change: its row callbacks bring them nothing. */
  #handed = false;
  /** The cache did not look as expected at a change: no outer map any more. */
  #broken = false;
  #before: BeforeChange;

  private constructor(
    rows: Map<unknown, Pair>,
    /** A row's key: the SDK's row id (its primary key as the SDK maps it). */
    readonly keyOf: (row: Row) => RowKey,
    before: BeforeChange,
  ) {
    this.#rows = rows;
    this.#table = new CacheRows<Row>(rows);
    this.#before = before;
  }

  /**
   * One mirror and one change object kept for the process's life. V8 frees
   * an object shape once no object has it, and with it the optimized code
   * that expects the shape: when a client closed and a full collection took
   * its last mirrors and change objects, `note` and the `Change` constructor
   * ran unoptimized again until V8 recompiled them, ten times each in one
   * `--only stream` run of the benchmark (`node --trace-deopt`, reason
   * "weak objects"), and not once with these two kept.
   */
  static readonly #shapes: readonly object[] = [new CacheMirror<unknown>(new Map(), () => 0, () => false), new Change<unknown>('insert', undefined as unknown as RowKey, undefined, undefined)];

  /**
   * The mirror of `table` (an SDK table cache), installed on first call.
   * `keyOf` gives a row's key (the SDK's row id); `before(ctx)` runs before
   * each change of the cache (see {@link BeforeChange}; a later call
   * replaces it). `undefined` when the cache does not have the shape the
   * mirror relies on.
   */
  static of<Row>(table: object, keyOf: (row: Row) => RowKey, before: BeforeChange): CacheMirror<Row> | undefined {
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
      const begun = mirror.#before(ctx) === true;
      mirror.#capture(operations, begun);
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
  inserts(): RowChange<Row>[] {
    const rows = this.#rows;
    const out: RowChange<Row>[] = new Array(rows.size);
    let i = 0;
    rows.forEach((p, k) => {
      // Literals, not Change: see there.
      out[i++] = { op: 'insert', key: k as RowKey, oldRow: undefined, newRow: p[0] as Row };
    });
    return out;
  }

  /** From now on `view` takes the changes of updates-only transactions from the mirror ({@link MirrorFollower}). */
  follow(view: MirrorFollower): void {
    if (!this.#followers.includes(view)) this.#followers = [...this.#followers, view];
  }

  /**
   * `view` no longer follows the mirror (its query dropped, or its
   * connection lost). With no follower left, nothing will read a newer
   * version of the outer map: its versions go on reading a copy of the cache
   * as two arrays in its order (what a re-sync walks), rather than the map
   * advancing, and a lost connection's cache is not kept alive by them.
   */
  unfollow(view: MirrorFollower): void {
    if (!this.#followers.includes(view)) return;
    this.#followers = this.#followers.filter((f) => f !== view);
    if (this.#followers.length > 0 || this.#broken) return;
    this.#settle();
    if (this.#head !== undefined) this.#freeze(this.#head);
  }

  /**
   * Whether the followers take the change objects of the cache's last
   * change from the mirror ({@link MirrorFollower.take}): true from that
   * change on until the next, so its row callbacks are theirs to skip.
   */
  get handedOver(): boolean {
    return this.#handed;
  }

  /**
   * An update callback of the change being applied: `oldRow` became
   * `newRow`, noted if the change is an updates-only one. True when it was
   * also handed over ({@link handedOver}): the followers need nothing more
   * from the callback.
   */
  note(oldRow: unknown, newRow: unknown): boolean {
    const notes = this.#notes;
    if (notes === undefined) return false;
    notes[this.#noted++] = oldRow;
    notes[this.#noted++] = newRow;
    return this.#handed;
  }

  /** The change objects of the last updates-only change (see {@link MirrorFollower.take}); read once by each follower's flush. */
  taken(): RowChange<Row>[] {
    this.#settle();
    const taken = this.#taken;
    if (this.#readers > 0 && --this.#readers === 0) this.#taken = [];
    return taken;
  }

  /**
   * Link the updates-only change whose rows came from the callbacks (they are
   * all in by the time anything reads): in one pass, the notes become the
   * older version's diff (in place: `[key, oldRow, …]`) and the change objects.
   */
  #settle(): void {
    const notes = this.#notes;
    if (notes === undefined) return;
    this.#notes = undefined;
    const n = this.#noted;
    // Fewer callbacks than updates (the SDK skips a row it finds inconsistent): the unused end goes.
    if (n < notes.length) notes.length = n;
    const keyOf = this.keyOf;
    const changes: RowChange<Row>[] = new Array(n >> 1);
    let c = 0;
    for (let i = 0; i < n; i += 2) {
      const oldRow = notes[i] as Row;
      const newRow = notes[i + 1] as Row;
      const key = keyOf(newRow);
      notes[i] = key;
      notes[i + 1] = oldRow;
      if (oldRow !== newRow) changes[c++] = new Change<Row>('update', key, oldRow, newRow);
    }
    changes.length = c;
    this.#taken = changes;
    if (this.#head !== undefined) this.#head = advanceOuter(this.#head, notes);
  }

  /**
   * Whether `ops` (the SDK's: a table's inserts, then its deletes) are updates
   * only: the i-th insert and the i-th delete have the same row id, for every
   * i. The SDK then reports each as an update callback carrying the row it
   * replaced, so nothing needs reading before the change. (Identity checks
   * only: no map lookup.)
   */
  #updatesOnly(ops: readonly Operation[]): boolean {
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

  #capture(operations: unknown, begun: boolean): void {
    this.#settle();
    this.#handed = false;
    let head = this.#head;
    const followers = this.#followers;
    if (head === undefined && followers.length === 0) return;
    const ops = operations as readonly Operation[];
    if (!Array.isArray(ops) || (ops.length > 0 && (typeof ops[0] !== 'object' || ops[0] === null || !('rowId' in ops[0])))) {
      this.#broken = true;
      if (head !== undefined) this.#freeze(head);
      return;
    }
    if (ops.length === 0) return;
    if (head !== undefined) {
      const status = outerStatus(head);
      if (status.readers > 0 || status.recorded > 4 * this.#rows.size + 1024) {
        this.#freeze(head);
        head = undefined;
      }
    }
    // Followers take the change objects from the notes only if the caller has begun the transaction.
    const taking = begun && followers.length > 0;
    if ((taking || head !== undefined) && this.#updatesOnly(ops)) {
      this.#notes = new Array(ops.length);
      this.#noted = 0;
      this.#taken = [];
      this.#readers = 0;
      this.#handing = taking;
      return;
    }
    if (head === undefined) return;
    const rows = this.#rows;
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

  /** After the change: the outer map's new newest version (a diff read before it), and the followers told of an updates-only change. */
  #advance(): void {
    const diff = this.#diff;
    if (diff !== undefined) {
      this.#diff = undefined;
      this.#head = advanceOuter(this.#head!, diff);
    }
    if (this.#handing) {
      this.#handing = false;
      this.#handed = true;
      let readers = 0;
      for (const f of this.#followers) if (f.take()) readers++;
      this.#readers = readers;
    }
  }

  /** Keep the current outer map's versions as they are, on a copy; the next reader starts a new one. */
  #freeze(head: SnapshotMap<RowKey, Row>): void {
    const { keys, values } = this.#table.arrays();
    freezeOuter(head, new ArrayRows<Row>(keys, values));
    this.#head = undefined;
  }
}
