/**
 * One live query's materialised rows: a {@link SnapshotMap} from row key to
 * the SDK's own row objects, updated per transaction (in place: the newest
 * snapshot is a table the view edits, older ones keep what they had as
 * diffs). A query without `WHERE` on a primary-keyed table has no table of
 * its own: its newest snapshot is the SDK's cache, read in place (see
 * `cacheMirror.ts`), and its row events only become change objects.
 *
 * - Incoming row events (`insert`/`update`/`delete` from the SDK cache) are
 *   coalesced per key into the transaction's pending changes; `flush()` applies
 *   them in one batch and emits one snapshot and one change batch. The work is
 *   proportional to the rows that changed.
 * - `syncFrom(rows)` replaces the state with what the server says now (after
 *   the query's `SubscribeApplied`, first time or after a reconnect) and emits
 *   only the difference: changed rows as updates, vanished rows as deletes,
 *   unchanged rows nothing (their objects are swapped silently for the new
 *   connection's, so snapshots keep sharing rows with the SDK cache).
 *
 * @module
 */
import { BehaviorSubject, Subject } from 'rxjs';
import { deepEqual } from 'spacetimedb';
import type { MapKey } from './persistentMap.ts';
import type { CacheMirror, MirrorFollower } from './cacheMirror.ts';
import { SnapshotMap, deferredEntries, editSnapshot } from './snapshotMap.ts';

export type RowKey = MapKey;

/** One row's change within a transaction, relative to this query's rows. */
export interface RowChange<Row> {
  readonly op: 'insert' | 'update' | 'delete';
  readonly key: RowKey;
  readonly oldRow: Row | undefined;
  readonly newRow: Row | undefined;
}

/**
 * Make a change object as the views do, one per changed row: a plain object
 * (the prototype is `Object.prototype`, the own properties those of a
 * literal), made with `new`. V8 notes where object literals are made and,
 * once most objects from one place outlive their first collection (a change
 * object lives as long as the snapshot before it), makes that place's
 * objects straight in the old generation, several times slower per object
 * in a loop over a thousand rows. Objects made by a constructor are not
 * placed that way. Measured on the stream benchmark's transactions: the loop
 * that makes them took 0.07–0.14 ms with literals, 0.02–0.04 ms made with
 * `new`.
 *
 * A first sync's inserts (and a new `changes$` subscriber's first batch,
 * made the same way) are the exception and stay literals: thousands made in
 * one loop, all alive until the sync has been emitted, where the old
 * generation measured faster. `benchmarks/initial.ts 50`, the whole-table
 * sync's objects made each way in turn: 1.057× and 1.062× the raw SDK (CPU)
 * with literals, 1.158× and 1.174× with the constructor.
 *
 * One change object is kept for the process's life (`CacheMirror.#shapes`,
 * streams/cacheMirror.ts), so that V8 keeps this shape and the code
 * optimized for it when every other change object has been collected.
 */
export const Change = function Change<Row>(this: { -readonly [P in keyof RowChange<Row>]: RowChange<Row>[P] }, op: RowChange<Row>['op'], key: RowKey, oldRow: Row | undefined, newRow: Row | undefined) {
  this.op = op;
  this.key = key;
  this.oldRow = oldRow;
  this.newRow = newRow;
} as unknown as new <Row>(op: RowChange<Row>['op'], key: RowKey, oldRow: Row | undefined, newRow: Row | undefined) => RowChange<Row>;
Change.prototype = Object.prototype;

/** How the view reads a table's rows. */
export interface ViewShape<Row> {
  /** The row's key (primary key as the SDK maps it, else its BSATN bytes). */
  keyOf(row: Row): RowKey;
  /** Client-side copy of the subscription's `WHERE`. */
  matches(row: Row): boolean;
  /** True when the query has no `WHERE` (`matches` accepts every row): the hot paths then skip calling it. */
  readonly everyRow?: boolean;
  /**
   * True when `keyOf` is the table's primary key: the SDK then reports each
   * key at most once per transaction, which lets row events skip the
   * per-key coalescing (see {@link TableView.event}).
   */
  readonly primaryKeyed?: boolean;
  /**
   * Whether two rows of the table hold the same values (column by column,
   * without a generic deep comparison). Used on re-sync to tell unchanged
   * rows. @default a deep comparison
   */
  same?(a: Row, b: Row): boolean;
}

/** A pending change; its fields are filled in as the transaction goes, and it is emitted as is. */
interface Pending<Row> {
  op: RowChange<Row>['op'];
  readonly key: RowKey;
  /** The row before the transaction. */
  readonly oldRow: Row | undefined;
  /** The row after it so far. */
  newRow: Row | undefined;
}

/** A sync's rows as an array (`rows` may be a function that reads them: called only when they are needed). */
function listOf<Row>(rows: Iterable<Row> | (() => readonly Row[])): readonly Row[] {
  if (typeof rows === 'function') return rows();
  return Array.isArray(rows) ? (rows as readonly Row[]) : [...rows];
}

export class TableView<Row> implements MirrorFollower {
  #state: SnapshotMap<RowKey, Row> = SnapshotMap.empty();
  /** Per key: the row before the transaction and after it so far (the object is the emitted change). */
  #pending = new Map<RowKey, Pending<Row>>();
  /** A first sync built in one pass, applied at the next flush (dissolved into `#pending` if anything else comes first). */
  #staged: { state: SnapshotMap<RowKey, Row>; changes: RowChange<Row>[] } | undefined;
  /**
   * Row events of the current transaction, in arrival order, for primary-keyed
   * tables: `#evKeys[i]` becomes `#evRows[i]` (`undefined`: removed), for
   * `i < #evCount`. Applied at the flush in one get-and-set pass; the arrays
   * keep their capacity from one transaction to the next (emptied slots hold
   * `undefined`, so no row outlives its transaction here).
   */
  #evKeys: (RowKey | undefined)[] = [];
  #evRows: (Row | undefined)[] = [];
  #evCount = 0;
  /**
   * Set while the state is the SDK cache's own rows, read in place (see
   * `cacheMirror.ts`): the snapshots are the mirror's versions, and row
   * events only become change objects (`#outerChanges`), with no table write.
   */
  #mirror: CacheMirror<Row> | undefined;
  #outerChanges: RowChange<Row>[] = [];
  /** The view took the current transaction from the mirror ({@link take}); its change objects are still to be collected from it. */
  #taken = false;
  #dirty = false;
  #everSynced = false;
  readonly #snapshots = new BehaviorSubject<SnapshotMap<RowKey, Row> | undefined>(undefined);
  readonly #changes = new Subject<readonly RowChange<Row>[]>();
  /** Whether the view follows the current connection (its query is applied on it). */
  live = false;

  constructor(readonly shape: ViewShape<Row>, private readonly markDirty: (view: TableView<Row>) => void) {}

  /** Snapshots: `undefined` until the first sync, then one per transaction that changed this query's rows. */
  get snapshots$() {
    return this.#snapshots.asObservable();
  }

  get changes$() {
    return this.#changes.asObservable();
  }

  get state(): SnapshotMap<RowKey, Row> {
    return this.#state;
  }

  /** Rows once the changes not yet flushed are applied (what the next snapshot will hold). */
  sizeAfterFlush(): number {
    if (this.#staged) return this.#staged.state.size;
    if (this.#mirror !== undefined) return (this.#mirror.head ?? this.#state).size;
    this.#drainEvents();
    let n = this.#state.size;
    for (const p of this.#pending.values()) n += (p.newRow === undefined ? 0 : 1) - (p.oldRow === undefined ? 0 : 1);
    return n;
  }

  get everSynced(): boolean {
    return this.#everSynced;
  }

  /** Whether `row` is one of this query's rows (no call for a query without `WHERE`). */
  #keeps(row: Row): boolean {
    return this.shape.everyRow === true || this.shape.matches(row);
  }

  #mark(): void {
    if (this.#dirty) return;
    this.#dirty = true;
    this.markDirty(this);
  }

  /** Move row events not yet flushed into `#pending` (before anything that reads or writes it). */
  #drainEvents(): void {
    const n = this.#evCount;
    if (n === 0) return;
    const keys = this.#evKeys;
    const rows = this.#evRows;
    this.#evKeys = [];
    this.#evRows = [];
    this.#evCount = 0;
    for (let i = 0; i < n; i++) this.#record(keys[i]!, rows[i]);
  }

  /**
   * A row event of a primary-keyed table ({@link ViewShape.primaryKeyed}):
   * the row now stored under `key`, or `undefined` for a delete. The caller
   * flushes between transactions (the SDK reports a key at most once per
   * transaction), so events are only appended here and compared with the
   * state once, at the flush. Not called while {@link changesTaken}.
   */
  event(key: RowKey, row: Row | undefined, oldRow?: Row): void {
    if (!this.live) return;
    if (this.#mirror !== undefined) {
      this.#outerEvent(key, row, oldRow);
      return;
    }
    if (row !== undefined && !this.#keeps(row)) row = undefined;
    if (this.#staged !== undefined || this.#pending.size !== 0 || this.#adopted.length !== 0) {
      if (this.#staged) this.#unstage();
      this.#drainEvents();
      if (this.#current(key) !== row) this.#record(key, row);
      return;
    }
    const i = this.#evCount++;
    this.#evKeys[i] = key;
    this.#evRows[i] = row;
    if (!this.#dirty) {
      this.#dirty = true;
      this.markDirty(this);
    }
  }

  /**
   * A row event while the state follows the SDK cache (every row kept; the
   * cache changed already). `oldRow`: the SDK's row before an update; a
   * delete's old row is read from the state (the SDK reports the row the
   * server sent, not the one it held).
   */
  #outerEvent(key: RowKey, row: Row | undefined, oldRow: Row | undefined): void {
    if (this.#staged) this.#applyStaged();
    const before = row === undefined ? this.#state.get(key) : oldRow;
    if (before === row) return;
    this.#outerChanges.push(new Change<Row>(row === undefined ? 'delete' : before === undefined ? 'insert' : 'update', key, before, row));
    this.#mark();
  }

  /**
   * Whether the row events of the transaction being received can be left
   * out: its changes are the mirror's ({@link take}; the caller skips
   * calling {@link event} then).
   */
  get changesTaken(): boolean {
    return this.#mirror !== undefined && this.#mirror.handedOver;
  }

  /**
   * The transaction being received is an updates-only change of the cache
   * the view follows: its change objects are the mirror's
   * ({@link CacheMirror.taken}, read at the flush), and its row events bring
   * nothing new. False when the view does not follow (it will not read them).
   */
  take(): boolean {
    if (!this.live || this.#mirror === undefined) return false;
    if (this.#staged) this.#applyStaged();
    this.#taken = true;
    this.#mark();
    return true;
  }

  /**
   * Stop following the SDK cache: the changes received since the last flush
   * go to `#pending` (the state, a version of the cache's rows, is edited
   * into a table of the view's own at the next flush).
   */
  #leaveMirror(): void {
    const mirror = this.#mirror;
    if (mirror === undefined) return;
    this.#collectTaken();
    this.#mirror = undefined;
    mirror.unfollow(this);
    const changes = this.#outerChanges;
    this.#outerChanges = [];
    for (const c of changes) {
      const p = this.#pending.get(c.key);
      if (p) p.newRow = c.newRow;
      else this.#pending.set(c.key, new Change<Row>('update', c.key, c.oldRow, c.newRow));
    }
    if (changes.length > 0) this.#mark();
  }

  /** The mirror's change objects of a change the view took ({@link take}) join the changes to emit. */
  #collectTaken(): void {
    if (!this.#taken) return;
    this.#taken = false;
    const taken = this.#mirror!.taken();
    if (taken.length > 0) this.#outerChanges = this.#outerChanges.length === 0 ? taken : this.#outerChanges.concat(taken);
  }

  /** Emit a staged sync now (before a change that follows it). */
  #applyStaged(): void {
    const staged = this.#staged!;
    this.#staged = undefined;
    this.#state = staged.state;
    if (staged.changes.length > 0 || this.#snapshots.value === undefined) this.#snapshots.next(this.#state);
    if (staged.changes.length > 0) this.#changes.next(staged.changes);
  }

  #unstage(): void {
    const staged = this.#staged;
    if (!staged) return;
    this.#staged = undefined;
    for (const c of staged.changes) this.#pending.set(c.key, c as Pending<Row>);
  }

  #current(key: RowKey): Row | undefined {
    const p = this.#pending.get(key);
    return p ? p.newRow : this.#state.get(key);
  }

  #record(key: RowKey, after: Row | undefined): void {
    const p = this.#pending.get(key);
    if (p) p.newRow = after;
    else {
      const before = this.#state.get(key);
      if (before === after) return;
      this.#pending.set(key, new Change<Row>('update', key, before, after));
    }
    this.#mark();
  }

  /**
   * A row event of the table. `key`, if given, is the row's key (computed by
   * another view of the table); the key used is returned, so one row event
   * computes it once for all views (`undefined` if not needed).
   */
  insert(row: Row, key?: RowKey): RowKey | undefined {
    if (!this.live || !this.#keeps(row)) return key;
    this.#leaveMirror();
    this.#drainEvents();
    if (this.#staged) this.#unstage();
    if (key === undefined) key = this.shape.keyOf(row);
    if (this.#current(key) !== row) this.#record(key, row);
    return key;
  }

  /** See {@link insert}. */
  delete(row: Row, key?: RowKey): RowKey | undefined {
    if (!this.live) return key;
    this.#leaveMirror();
    this.#drainEvents();
    if (this.#staged) this.#unstage();
    if (key === undefined) key = this.shape.keyOf(row);
    if (this.#current(key) !== undefined) this.#record(key, undefined);
    return key;
  }

  update(oldRow: Row, newRow: Row): void {
    if (!this.live) return;
    this.#leaveMirror();
    this.#drainEvents();
    const newKey = this.shape.keyOf(newRow);
    const oldKey = this.shape.keyOf(oldRow);
    if (oldKey === newKey) {
      this.updateSameKey(oldRow, newRow, newKey);
      return;
    }
    if (this.#staged) this.#unstage();
    if (this.#keeps(newRow)) {
      if (this.#current(oldKey) !== undefined) this.#record(oldKey, undefined);
      if (this.#current(newKey) !== newRow) this.#record(newKey, newRow);
      return;
    }
    if (this.#current(oldKey) !== undefined) this.#record(oldKey, undefined);
    if (this.#current(newKey) !== undefined) this.#record(newKey, undefined);
  }

  /**
   * An update that keeps the row's key (the SDK's updates: same primary key),
   * so the key is computed once, from `newRow`, or given (see {@link insert}).
   */
  updateSameKey(oldRow: Row, newRow: Row, key?: RowKey): RowKey | undefined {
    if (!this.live) return key;
    this.#leaveMirror();
    this.#drainEvents();
    if (this.#staged) this.#unstage();
    if (key === undefined) key = this.shape.keyOf(newRow);
    if (!this.#keeps(newRow)) {
      if (this.#current(key) !== undefined) this.#record(key, undefined);
      return key;
    }
    // The common case: one pending lookup, one state lookup at most.
    const p = this.#pending.get(key);
    if (p) {
      if (p.newRow === newRow) return key;
      p.newRow = newRow;
    } else {
      const before = this.#state.get(key);
      if (before === newRow) return key;
      this.#pending.set(key, new Change<Row>('update', key, before, newRow));
    }
    this.#mark();
    return key;
  }

  /**
   * Replace the state with `rows` (the SDK cache's rows of this table right
   * after the query was applied); emits the difference at the next flush.
   * `rows` may be a function that reads them, called only if they are
   * needed: a first sync over `mirror` reads the cache itself.
   */
  syncFrom(rows: Iterable<Row> | (() => readonly Row[]), mirror?: CacheMirror<Row>): void {
    this.live = true;
    if (this.#staged) this.#unstage();
    this.#drainEvents();
    this.#leaveMirror();
    // The SDK cache's rows are this query's rows when it keeps every row of a primary-keyed table (keyed as the view keys them).
    const outer = mirror !== undefined && this.shape.primaryKeyed === true && this.shape.everyRow === true && mirror.keysAgree() ? mirror.head : undefined;
    if (this.#pending.size === 0 && this.#adopted.length === 0) {
      let done: boolean;
      if (this.#state.size === 0) {
        // Into an empty view over the cache, every row is an insert read off the cache itself.
        if (outer !== undefined) {
          const inserts = mirror!.inserts();
          done = this.#stage(outer, inserts.length, inserts);
        } else done = this.#firstSync(listOf(rows));
      } else done = this.#resync(listOf(rows), outer);
      if (done) {
        if (outer !== undefined) {
          this.#mirror = mirror;
          mirror!.follow(this);
        }
        return;
      }
    }
    const seen = new Set<RowKey>();
    let silent = false;
    for (const row of listOf(rows)) {
      if (!this.#keeps(row)) continue;
      const key = this.shape.keyOf(row);
      seen.add(key);
      const cur = this.#current(key);
      if (cur === row) continue;
      if (cur !== undefined && (this.shape.same ?? deepEqual)(cur, row)) {
        // Unchanged: adopt the new connection's object without emitting.
        this.#adopt(key, row);
        silent = true;
        continue;
      }
      this.#record(key, row);
    }
    for (const key of this.#state.keys()) if (!seen.has(key) && this.#current(key) !== undefined) this.#record(key, undefined);
    for (const [key, p] of this.#pending) if (!seen.has(key) && p.newRow !== undefined) this.#record(key, undefined);
    const first = !this.#everSynced;
    this.#everSynced = true;
    if (first || silent) {
      this.#dirty = false;
      this.#mark();
    }
  }

  /**
   * Sync into an empty view: every row is an insert, so the snapshot is the
   * rows' keys and the rows themselves (the SDK's array when the filter keeps
   * every row), deferred, instead of a pending entry and a table write per
   * row. False (and nothing done) if two rows share a key; the general path
   * handles that.
   */
  #firstSync(list: readonly Row[]): boolean {
    const n = list.length;
    const keys: RowKey[] = new Array(n);
    const changes: RowChange<Row>[] = new Array(n);
    // The snapshot's values are `list` itself unless the filter drops a row.
    let values: Row[] | undefined;
    let j = 0;
    for (let i = 0; i < n; i++) {
      const row = list[i];
      if (!this.#keeps(row)) {
        values ??= list.slice(0, i);
        continue;
      }
      const key = this.shape.keyOf(row);
      keys[j] = key;
      // A first sync's change objects are literals (see Change).
      changes[j++] = { op: 'insert', key, oldRow: undefined, newRow: row };
      values?.push(row);
    }
    keys.length = changes.length = j;
    return this.#stage(this.#snapshotOf(keys, values ?? list), j, changes);
  }

  /**
   * Stage a sync's snapshot and changes for the next flush. False (nothing
   * done) if the snapshot has fewer than `rows` entries: two rows shared a key.
   */
  #stage(state: SnapshotMap<RowKey, Row>, rows: number, changes: RowChange<Row>[]): boolean {
    if (state.size !== rows) return false;
    this.#staged = { state, changes };
    this.#everSynced = true;
    this.#dirty = false;
    this.#mark();
    return true;
  }

  /**
   * The snapshot of a sync's rows. Rows of a primary-keyed table come from the
   * SDK cache, keyed as the cache keys them, so their keys are distinct: the
   * map is then built on first use (deferred, see {@link SnapshotMap.of}), not
   * on the emission path. Otherwise it is built now (and a duplicate key
   * shows as a smaller size).
   */
  #snapshotOf(keys: readonly RowKey[], values: readonly Row[]): SnapshotMap<RowKey, Row> {
    return SnapshotMap.of(keys, values, this.shape.primaryKeyed === true);
  }

  /**
   * Sync a view that has rows and nothing pending (a reconnect): the new
   * snapshot is the new rows, deferred, as a first sync does, so the rows
   * shared with the new connection's cache cost no table write each. Per row:
   * the old row — at the same position of the old snapshot's arrays while
   * those are still deferred (the server sends a table's rows in the same
   * order), else one lookup — and, when the objects differ, a column-wise
   * `===` comparison ({@link ViewShape.same}; the SDK keeps neither the
   * encoded bytes nor a hash of a primary-keyed row to compare instead). Only
   * changed, new and vanished rows become changes. False (nothing done) if
   * two rows share a key.
   */
  #resync(list: readonly Row[], outer: SnapshotMap<RowKey, Row> | undefined): boolean {
    const old = this.#state;
    const same = this.shape.same ?? deepEqual;
    const n = list.length;
    const keys: RowKey[] = new Array(n);
    let values: Row[] | undefined;
    const changes: RowChange<Row>[] = [];
    let kept = 0;
    // The old rows, while still the arrays of the last sync (nothing looked a
    // key up or changed them since) or the lost connection's cache (a view
    // that read it in place), are walked side by side with the new ones, in
    // that order: the server sends a table's rows in its storage order, and
    // the SDK's cache keeps them in the order they arrived, which moves only
    // the rows written since to the end. An old row skipped over on the way
    // to the next new row's key waits in `passed` for its own row; what is
    // left there and after the walk has vanished. So the old snapshot is
    // never built into a table, nor looked up once per row.
    const prior = deferredEntries(old);
    const priorKeys = prior?.keys;
    const priorValues = prior?.values;
    const priorLength = priorKeys?.length ?? 0;
    let p = 0;
    let passed: Map<RowKey, Row> | undefined;
    let j = 0;
    for (let i = 0; i < n; i++) {
      const row = list[i];
      if (!this.#keeps(row)) {
        values ??= list.slice(0, i);
        continue;
      }
      const key = this.shape.keyOf(row);
      values?.push(row);
      keys[j++] = key;
      let before: Row | undefined;
      if (priorKeys === undefined) before = old.get(key);
      else if (p < priorLength && priorKeys[p] === key) before = priorValues![p++];
      else if ((before = passed?.get(key)) !== undefined) passed!.delete(key);
      else {
        while (p < priorLength) {
          const k = priorKeys[p];
          const v = priorValues![p++];
          if (k === key) {
            before = v;
            break;
          }
          (passed ??= new Map()).set(k, v);
        }
      }
      if (before === undefined) changes.push(new Change<Row>('insert', key, undefined, row));
      else {
        kept++;
        if (before !== row && !same(before, row)) changes.push(new Change<Row>('update', key, before, row));
      }
    }
    keys.length = j;
    const state = outer ?? this.#snapshotOf(keys, values ?? list);
    if (state.size !== keys.length) return false;
    if (kept !== old.size) {
      if (priorKeys !== undefined) {
        if (passed !== undefined) for (const [key, row] of passed) changes.push(new Change<Row>('delete', key, row, undefined));
        for (; p < priorLength; p++) changes.push(new Change<Row>('delete', priorKeys[p], priorValues![p], undefined));
      } else for (const [key, row] of old) if (!state.has(key)) changes.push(new Change<Row>('delete', key, row, undefined));
    }
    return this.#stage(state, keys.length, changes);
  }

  #adopted: [RowKey, Row][] = [];
  #adopt(key: RowKey, row: Row) {
    const p = this.#pending.get(key);
    if (p) p.newRow = row;
    else this.#adopted.push([key, row]);
  }

  /**
   * Show rows from the offline cache before any connection: they become the
   * state (emitted at the next flush), and the first `syncFrom` then emits
   * only what differs from them. Ignored once the view has synced.
   */
  seed(rows: Iterable<Row>): void {
    if (this.#everSynced || this.live) return;
    this.#drainEvents();
    this.#leaveMirror();
    for (const row of rows) {
      if (!this.#keeps(row)) continue;
      this.#record(this.shape.keyOf(row), row);
    }
    this.#everSynced = true;
    this.#dirty = false;
    this.#mark();
  }

  /** The connection went away: stop following it; keep the rows. */
  suspend(): void {
    this.live = false;
    // The view lets go of the mirror, whose hooks belong to that connection; once its last
    // view has gone, the snapshots read a copy of the lost cache (see CacheMirror.unfollow).
    this.#leaveMirror();
  }

  /** Apply the pending transaction; emit one snapshot and one change batch if anything changed. */
  flush(): void {
    this.#dirty = false;
    this.#collectTaken();
    if (this.#staged) {
      // A re-sync that changed nothing swaps in the new connection's row objects silently.
      this.#applyStaged();
      if (this.#outerChanges.length === 0) return;
    }
    if (this.#mirror !== undefined) {
      if (this.#flushOuter()) return;
      this.#leaveMirror();
    }
    if (this.#evCount !== 0) {
      if (this.#pending.size !== 0 || this.#adopted.length !== 0) this.#drainEvents();
      else {
        this.#flushEvents();
        return;
      }
    }
    const adopted = this.#adopted;
    this.#adopted = [];
    if (this.#pending.size === 0 && adopted.length === 0) {
      if (this.#everSynced && this.#snapshots.value === undefined) this.#snapshots.next(this.#state);
      return;
    }
    const changes: RowChange<Row>[] = [];
    const pending = this.#pending;
    this.#pending = new Map();
    const m = editSnapshot(this.#state);
    for (const [key, row] of adopted) m.swap(key, row);
    for (const p of pending.values()) {
      const { oldRow, newRow } = p;
      if (oldRow === newRow) continue;
      m.swap(p.key, newRow);
      p.op = newRow === undefined ? 'delete' : oldRow === undefined ? 'insert' : 'update';
      changes.push(p);
    }
    this.#state = m.commit();
    if (changes.length > 0 || this.#snapshots.value === undefined) {
      this.#snapshots.next(this.#state);
      if (changes.length > 0) this.#changes.next(changes);
    }
  }

  /**
   * Emit the changes received while following the SDK cache: the snapshot is
   * the cache's newest version, nothing is written. False (nothing done) if
   * the mirror has stopped (the cache no longer looks as expected).
   */
  #flushOuter(): boolean {
    const head = this.#mirror!.head;
    if (head === undefined) return false;
    const changes = this.#outerChanges;
    this.#state = head;
    if (changes.length > 0) {
      this.#outerChanges = [];
      this.#snapshots.next(head);
      this.#changes.next(changes);
    } else if (this.#snapshots.value === undefined && this.#everSynced) this.#snapshots.next(head);
    return true;
  }

  /**
   * Apply row events in one get-and-set per row on the newest snapshot's map
   * (in place). The change objects `changes$` hands out are the only per-row
   * allocation, and they double as the previous snapshot's diff (its values
   * for the keys changed), so nothing else is recorded per row.
   */
  #flushEvents(): void {
    const n = this.#evCount;
    const keys = this.#evKeys;
    const rows = this.#evRows;
    this.#evCount = 0;
    const changes: RowChange<Row>[] = new Array(n);
    let j = 0;
    const m = editSnapshot(this.#state);
    for (let i = 0; i < n; i++) {
      const row = rows[i];
      const key = keys[i]!;
      const before = m.put(key, row);
      if (before === row) continue;
      changes[j++] = new Change<Row>(row === undefined ? 'delete' : before === undefined ? 'insert' : 'update', key, before, row);
    }
    changes.length = j;
    keys.fill(undefined, 0, n);
    rows.fill(undefined, 0, n);
    this.#state = m.commit(changes);
    if (j > 0 || this.#snapshots.value === undefined) {
      this.#snapshots.next(this.#state);
      if (j > 0) this.#changes.next(changes);
    }
  }

  /** End both streams. */
  complete(error?: Error): void {
    // A view that is gone no longer follows the connection (nor the SDK cache's mirror).
    this.suspend();
    if (error) {
      this.#snapshots.error(error);
      this.#changes.error(error);
    } else {
      this.#snapshots.complete();
      this.#changes.complete();
    }
  }
}
