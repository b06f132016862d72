/**
 * The snapshots a table view emits: immutable `ReadonlyMap`s whose newest
 * version reads and writes one hash table in place.
 *
 * A view only ever edits its newest snapshot, and consumers almost only read
 * the newest one. So the newest version (the *head*) is a mutable table
 * ({@link KeyTable}) shared by nobody else, and an edit changes it in place —
 * one probe per changed row, no node copies, no garbage that survives the
 * transaction. The version the edit started from does not change for its
 * holders: it keeps, as its *diff*, the value it had for each key the edit
 * touched (the "rerooting" or "diff array" technique of persistent arrays).
 * A view hands over its change objects (`{ key, oldRow }`, what `changes$`
 * emits) as that diff, so nothing more is allocated per row.
 *
 * - The head answers `get`/`has`/iteration straight from the table.
 * - An older version answers from its diffs: on its first read after newer
 *   edits it folds the diffs between itself and the head into one small
 *   `Map` of its own values that differ from the head's (work proportional
 *   to the rows changed since, never to the table), and looks up there
 *   first. The fold is kept, so older versions behind it read through it.
 * - Memory stays bounded for a version kept forever: once the diffs recorded
 *   since the table was last copied outnumber four times its entries, the
 *   next edit copies the table and continues on the copy; the versions
 *   before keep the old table, frozen, and at most that many diffs. That
 *   copy costs one table per that many changed rows: O(1) per change.
 * - An iteration that is still open when the head is edited (an iterator
 *   taken and not finished) sees no change either: the edit then copies the
 *   table first.
 * - A first snapshot can be *deferred*: two arrays of keys and values (e.g.
 *   the rows of a subscription, keyed by their primary key), turned into the
 *   table on the first lookup or edit (iteration reads the arrays), so
 *   handing it on costs nothing per row.
 * - A map can be *outer*: its newest version reads a table somebody else
 *   keeps and changes (the SDK's cache, see `cacheMirror.ts`), who records
 *   the replaced values as the older version's diff before each change
 *   ({@link advanceOuter}), or freezes the map on a copy
 *   ({@link freezeOuter}). An edit of an outer map starts a table of its
 *   own.
 * - Keys that are all bigints are stored as numbers where a double holds
 *   them exactly (`u64` ids, the common primary key): V8 and the table hash a
 *   number far faster than a bigint. Such a map takes only bigint keys.
 *
 * Values are never `undefined` (it means "absent" throughout).
 *
 * @module
 */
import { KeyTable } from './keyTable.ts';

/** In a diff: the key was absent in that version. */
const ABSENT: unique symbol = Symbol('absent');
type Was<V> = V | typeof ABSENT;

/**
 * How a store keys its `Map`: `plain` — the keys themselves; `bigint` — every
 * key is a bigint, and those a double holds exactly are stored as numbers
 * (V8 hashes a number about twice as fast as a bigint, and `u64` primary keys
 * are the common case); `open` — empty and not decided yet: the first key
 * put decides.
 */
type KeyMode = 'plain' | 'bigint' | 'open';

/** The `Map` key of `key` in a `bigint` store. */
function packBig(key: bigint): unknown {
  const n = Number(key);
  return Number.isSafeInteger(n) ? n : key;
}

/** A key as stored (`undefined`: not a key such a store can hold). */
function pack(mode: KeyMode, key: unknown): unknown {
  if (mode !== 'bigint') return key;
  return typeof key === 'bigint' ? packBig(key) : undefined;
}

/** A stored key as the user's key. */
function unpack(mode: KeyMode, key: unknown): unknown {
  return mode === 'bigint' && typeof key === 'number' ? BigInt(key) : key;
}

/**
 * A table kept by somebody else (the SDK's cache, see `cacheMirror.ts`),
 * read in place by the newest version of an *outer* map. Its owner changes
 * it, never the map's editors; before each change the owner records, for
 * the map's older versions, the values it is about to replace.
 */
export interface OuterTable<V> {
  get(key: unknown): V | undefined;
  readonly size: number;
  entries(): Iterator<[unknown, V]>;
  /** The entries as two arrays, in the order `entries()` gives them. */
  arrays(): { keys: unknown[]; values: V[] };
}

/** What the versions of one `Map` share. */
interface Store<K, V> {
  /** How `map` is keyed (fixed once decided: the diffs and deltas of the store's versions are keyed the same way). */
  mode: KeyMode;
  /** The head's contents (undefined while deferred), keyed as `mode` says; an {@link OuterTable} in an outer store. */
  map: KeyTable<V> | OuterTable<V> | undefined;
  /** `map` is an {@link OuterTable}: never edited here (an edit starts a store of its own, a copy). */
  outer: boolean;
  /** Times the outer table was swapped for a frozen copy (0 or 1): an iteration paused across it goes on in the copy. */
  frozen: number;
  /** Deferred contents: distinct keys and their values, for the first use to build `map` from. */
  keys: readonly K[] | undefined;
  values: readonly V[] | undefined;
  /** The newest version (the one `map` holds). Once the store is left for a copy, it never changes again. */
  head: SnapshotMap<K, V>;
  /** Iterations over `map` started and not finished: an edit must not change `map` under them. */
  readers: number;
  /** Key/value pairs recorded in diffs since this store began. */
  recorded: number;
  editing: boolean;
}

function contents<K, V>(s: Store<K, V>): KeyTable<V> | OuterTable<V> {
  let m = s.map;
  if (m === undefined) {
    if (s.mode === 'bigint') {
      // Deferred contents are `bigint` on the word of their first key (see `SnapshotMap.of`): checked here, as they are packed.
      let other = false;
      m = KeyTable.of(s.keys!, s.values!, (k) => (typeof k === 'bigint' ? packBig(k) : ((other = true), k)));
      if (other) {
        s.mode = 'plain';
        m = KeyTable.of(s.keys!, s.values!);
      }
    } else m = KeyTable.of(s.keys!, s.values!);
    s.map = m;
    s.keys = s.values = undefined;
  }
  return m;
}

/**
 * The head contents' entries. An outer table frozen while the iteration is
 * paused (its owner does so before changing it under an open iteration) is
 * left for its copy, which holds the same entries in the same order: the
 * iteration goes on there from the same position.
 */
function* headEntries<K, V>(s: Store<K, V>): Generator<[unknown, V], void, undefined> {
  const map = contents(s);
  if (!s.outer) {
    yield* (map as KeyTable<V>).entries();
    return;
  }
  const frozen = s.frozen;
  const it = map.entries();
  let seen = 0;
  for (;;) {
    if (s.frozen !== frozen) {
      const rest = contents(s).entries();
      for (let i = 0; i < seen; i++) rest.next();
      for (let r = rest.next(); !r.done; r = rest.next()) yield r.value;
      return;
    }
    const r = it.next();
    if (r.done) return;
    seen++;
    yield r.value;
  }
}

/** One changed key and its value before an edit (a view's change objects have this shape). */
export interface KeyChange<K, V> {
  readonly key: K;
  readonly oldRow: V | undefined;
}

/** An edit of the newest snapshot: see {@link editSnapshot}. */
export interface SnapshotEditor<K, V> {
  /** The value now (edits so far included). */
  get(key: K): V | undefined;
  /**
   * Set `key` to `value` (`undefined` removes it); returns the value it had
   * (`undefined`: absent). The edit records the old value for older readers.
   */
  swap(key: K, value: V | undefined): V | undefined;
  /**
   * As {@link swap}, but records nothing: the caller hands the old values to
   * {@link commit} instead (every key it changed, first change first).
   */
  put(key: K, value: V | undefined): V | undefined;
  /** Entries now. */
  readonly size: number;
  /**
   * End the edit: the new newest snapshot, or the same one if nothing
   * changed. `changes`: the old values of the keys changed with
   * {@link put} (the array is kept, unchanged, as part of the diff). The
   * editor is unusable afterwards.
   */
  commit(changes?: readonly KeyChange<K, V>[]): SnapshotMap<K, V>;
}

/** Internal entry points (the view's, not the public API's): set in the class's static block. */
let beginEdit: <K, V>(v: SnapshotMap<K, V>) => SnapshotEditor<K, V>;
let outerOf: <K, V>(table: OuterTable<V>) => SnapshotMap<K, V>;
let outerAdvance: <K, V>(head: SnapshotMap<K, V>, diff: unknown[] | undefined) => SnapshotMap<K, V>;
let outerFreeze: <K, V>(head: SnapshotMap<K, V>, copy: OuterTable<V>) => void;
let outerState: <K, V>(v: SnapshotMap<K, V>) => OuterStatus;
let deferredOf: <K, V>(v: SnapshotMap<K, V>) => { readonly keys: readonly K[]; readonly values: readonly V[] } | undefined;

/**
 * An immutable `ReadonlyMap` (see the module notes). Built with
 * {@link SnapshotMap.empty} / {@link SnapshotMap.of}; newer versions come from
 * {@link editSnapshot}.
 */
export class SnapshotMap<K, V> implements ReadonlyMap<K, V> {
  /** A new empty map (each has its own store: editing one never touches another). */
  static empty<K, V>(): SnapshotMap<K, V> {
    return SnapshotMap.of<K, V>([], [], true);
  }

  /**
   * The map of `keys` → `values`. With `distinct` (the caller knows no key
   * repeats, e.g. the primary keys of one table) it is built on first use:
   * until then it is the two arrays, which must not change afterwards.
   * Otherwise it is built now, and a repeated key keeps its last value.
   */
  static of<K, V>(keys: readonly K[], values: readonly V[], distinct: boolean): SnapshotMap<K, V> {
    if (values.length !== keys.length) throw new RangeError('SnapshotMap.of: keys and values differ in length');
    // Decided by the first key, and confirmed when the contents are built (nothing reads them keyed before).
    const mode: KeyMode = keys.length === 0 ? 'open' : typeof keys[0] === 'bigint' ? 'bigint' : 'plain';
    const store: Store<K, V> = { mode, map: undefined, outer: false, frozen: 0, keys, values, head: undefined as unknown as SnapshotMap<K, V>, readers: 0, recorded: 0, editing: false };
    const size = distinct ? keys.length : contents(store).size;
    const v = new SnapshotMap<K, V>(store, size);
    store.head = v;
    return v;
  }

  static {
    beginEdit = <K, V>(v: SnapshotMap<K, V>): SnapshotEditor<K, V> => v.#edit();
    outerOf = <K, V>(table: OuterTable<V>) => {
      const store: Store<K, V> = { mode: 'plain', map: table, outer: true, frozen: 0, keys: undefined, values: undefined, head: undefined as unknown as SnapshotMap<K, V>, readers: 0, recorded: 0, editing: false };
      const v = new SnapshotMap<K, V>(store, table.size);
      store.head = v;
      return v;
    };
    outerAdvance = <K, V>(head: SnapshotMap<K, V>, diff: unknown[] | undefined) => {
      const s = head.#store;
      if (!s.outer || s.head !== head) throw new Error('SnapshotMap: only the newest version of an outer map advances');
      return SnapshotMap.link(head, s, (s.map as OuterTable<V>).size, diff, undefined);
    };
    outerFreeze = <K, V>(head: SnapshotMap<K, V>, copy: OuterTable<V>) => {
      const s = head.#store;
      if (!s.outer || s.head !== head) throw new Error('SnapshotMap: only the newest version of an outer map is frozen');
      s.map = copy;
      s.frozen++;
    };
    outerState = <K, V>(v: SnapshotMap<K, V>) => {
      const s = v.#store;
      return { outer: s.outer, readers: s.readers, recorded: s.recorded };
    };
    deferredOf = <K, V>(v: SnapshotMap<K, V>) => {
      const s = v.#store;
      if (s.head !== v) return undefined;
      if (s.map === undefined) return { keys: s.keys!, values: s.values! };
      return s.outer ? ((s.map as OuterTable<V>).arrays() as { keys: K[]; values: V[] }) : undefined;
    };
  }

  readonly size: number;
  #store: Store<K, V>;
  /** Set when this version stops being the head: the version it was edited into… */
  #next: SnapshotMap<K, V> | undefined;
  /** …and its values for the keys that edit touched: `[key, value here or ABSENT, …]`, first touch first… */
  #diff: unknown[] | undefined;
  /** …and/or as change objects (`oldRow` undefined: absent here), after `#diff`. */
  #changes: readonly KeyChange<K, V>[] | undefined;
  /** Once read as an older version: its values that differ from those of `#base` (a newer version), keyed as the store's map. */
  #delta: Map<unknown, Was<V>> | undefined;
  #base: SnapshotMap<K, V> | undefined;

  private constructor(store: Store<K, V>, size: number) {
    this.#store = store;
    this.size = size;
  }

  /** This version's values that differ from the head's (`undefined` when this is the head). */
  #deltaToHead(): Map<unknown, Was<V>> | undefined {
    const store = this.#store;
    const head = store.head;
    if (head === this) return undefined;
    let d = this.#delta;
    let w: SnapshotMap<K, V> = d === undefined ? this : this.#base!;
    if (w === head) return d;
    if (d === undefined) d = new Map();
    while (w !== head) {
      const folded = w === this ? undefined : w.#delta;
      if (folded !== undefined) {
        for (const [k, x] of folded) if (!d.has(k)) d.set(k, x);
        w = w.#base!;
      } else {
        const diff = w.#diff;
        if (diff !== undefined) {
          for (let i = 0; i < diff.length; i += 2) {
            const k = diff[i];
            if (!d.has(k)) d.set(k, diff[i + 1] as Was<V>);
          }
        }
        const changes = w.#changes;
        if (changes !== undefined) {
          const mode = store.mode;
          for (let i = 0; i < changes.length; i++) {
            const c = changes[i];
            const k = pack(mode, c.key);
            if (!d.has(k)) d.set(k, c.oldRow === undefined ? ABSENT : c.oldRow);
          }
        }
        w = w.#next!;
      }
    }
    this.#delta = d;
    this.#base = head;
    // Versions behind this one now read through `#delta`; the chain is no longer needed from here.
    this.#next = undefined;
    this.#diff = undefined;
    this.#changes = undefined;
    return d;
  }

  get(key: K): V | undefined {
    const s = this.#store;
    // Build deferred contents first: that settles how keys are packed.
    if (s.map === undefined) contents(s);
    const k = pack(s.mode, key);
    if (k === undefined) return undefined;
    if (s.head !== this) {
      const x = this.#deltaToHead()!.get(k);
      if (x !== undefined) return x === ABSENT ? undefined : x;
    }
    return contents(s).get(k);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): MapIterator<[K, V]> {
    const s = this.#store;
    if (s.map === undefined && s.head === this) {
      // Deferred: iterate the arrays themselves (they never change), building nothing.
      const keys = s.keys!;
      const values = s.values!;
      for (let i = 0; i < keys.length; i++) yield [keys[i], values[i]];
      return;
    }
    const shared = this.#deltaToHead();
    // Later folds may add to the delta: iterate a copy of it, as it is now.
    const d = shared === undefined || shared.size === 0 ? undefined : new Map(shared);
    const mode = s.mode;
    s.readers++;
    try {
      if (d === undefined) {
        for (const [k, v] of headEntries(s)) yield [unpack(mode, k) as K, v];
      } else {
        for (const [k, v] of headEntries(s)) {
          const x = d.get(k);
          if (x === undefined) yield [unpack(mode, k) as K, v];
          else if (x !== ABSENT) yield [unpack(mode, k) as K, x];
        }
        for (const [k, x] of d) if (x !== ABSENT && contents(s).get(k) === undefined) yield [unpack(mode, k) as K, x];
      }
    } finally {
      s.readers--;
    }
  }

  *keys(): MapIterator<K> {
    for (const e of this.entries()) yield e[0];
  }

  *values(): MapIterator<V> {
    for (const e of this.entries()) yield e[1];
  }

  forEach(callbackfn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: any): void {
    for (const [k, v] of this.entries()) callbackfn.call(thisArg, v, k, this);
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'SnapshotMap';
  }

  #edit(): SnapshotEditor<K, V> {
    let s = this.#store;
    // Any version of an outer map can be edited: the edit starts a table of its own anyway.
    if (s.head !== this && !s.outer) throw new Error('SnapshotMap: only the newest version can be edited');
    if (s.editing) throw new Error('SnapshotMap: an edit of this version is already open');
    const current = contents(s);
    let map: KeyTable<V>;
    // Leave this store (frozen from now on, with `this` as its head) for a copy when an
    // iteration over it is open, or when the diffs kept for older versions have grown past
    // four times the table: that bounds what a version kept forever holds. An empty map
    // starts afresh too, so the first key put decides how the new store is keyed. An outer
    // store is never edited: the edit goes to a table of its own, built from the outer one
    // (the outer store's owner goes on keeping `this` as it is).
    const copied = s.outer || s.readers > 0 || s.recorded > 4 * current.size + 1024 || (current.size === 0 && s.mode !== 'open');
    if (copied) {
      let mode: KeyMode = current.size === 0 ? 'open' : s.mode;
      if (s.outer) {
        const keys: unknown[] = [];
        const values: V[] = [];
        for (const [k, v] of this.entries()) {
          keys.push(k);
          values.push(v);
        }
        mode = keys.length === 0 ? 'open' : typeof keys[0] === 'bigint' ? 'bigint' : 'plain';
        const fresh: Store<K, V> = { mode, map: undefined, outer: false, frozen: 0, keys: keys as K[], values, head: this, readers: 0, recorded: 0, editing: false };
        map = contents(fresh) as KeyTable<V>;
        mode = fresh.mode;
      } else map = (current as KeyTable<V>).clone();
      s = { mode, map, outer: false, frozen: 0, keys: undefined, values: undefined, head: this, readers: 0, recorded: 0, editing: false };
    } else map = current as KeyTable<V>;
    s.editing = true;
    return new Editor<K, V>(this, s, map, copied);
  }

  /** @internal Make `next` (of `store`) the head after `from`, which keeps `diff`/`changes`. */
  static link<K, V>(from: SnapshotMap<K, V>, store: Store<K, V>, size: number, diff: unknown[] | undefined, changes: readonly KeyChange<K, V>[] | undefined): SnapshotMap<K, V> {
    const next = new SnapshotMap<K, V>(store, size);
    if (from.#store === store) {
      from.#next = next;
      from.#diff = diff;
      from.#changes = changes;
      store.recorded += (diff === undefined ? 0 : diff.length >> 1) + (changes === undefined ? 0 : changes.length);
    }
    store.head = next;
    return next;
  }

}

class Editor<K, V> implements SnapshotEditor<K, V> {
  #from: SnapshotMap<K, V>;
  #store: Store<K, V>;
  #map: KeyTable<V>;
  /** The edit writes into a copy of the map: `#from` keeps the original, so nothing is recorded. */
  #copied: boolean;
  #diff: unknown[] | undefined;
  #open = true;
  #changed = false;
  size: number;

  constructor(from: SnapshotMap<K, V>, store: Store<K, V>, map: KeyTable<V>, copied: boolean) {
    this.#from = from;
    this.#store = store;
    this.#map = map;
    this.#copied = copied;
    this.size = from.size;
  }

  get(key: K): V | undefined {
    const k = pack(this.#store.mode, key);
    return k === undefined ? undefined : this.#map.get(k);
  }

  /** The key as the map stores it (deciding an open store's keying). */
  #pack(key: K): unknown {
    const store = this.#store;
    let mode = store.mode;
    if (mode === 'open') mode = store.mode = typeof key === 'bigint' ? 'bigint' : 'plain';
    if (mode === 'plain') return key;
    if (typeof key !== 'bigint') throw new TypeError('SnapshotMap: a map keyed by bigints takes only bigint keys');
    return packBig(key);
  }

  put(key: K, value: V | undefined): V | undefined {
    // The common case first: a bigint-keyed map and a key a double holds exactly.
    if (this.#store.mode === 'bigint' && typeof key === 'bigint') {
      const n = Number(key);
      if (Number.isSafeInteger(n)) {
        if (!this.#open) throw new Error('SnapshotMap: editor used after commit');
        return this.#count(this.#map.swapInt(n, value), value);
      }
    }
    return this.#put(this.#pack(key), value);
  }

  #put(k: unknown, value: V | undefined): V | undefined {
    if (!this.#open) throw new Error('SnapshotMap: editor used after commit');
    return this.#count(this.#map.swap(k, value), value);
  }

  /** Keep `size` and the changed flag after a swap of `before` for `value`; returns `before`. */
  #count(before: V | undefined, value: V | undefined): V | undefined {
    if (before === value) return before;
    if (value === undefined) this.size--;
    else if (before === undefined) this.size++;
    this.#changed = true;
    return before;
  }

  swap(key: K, value: V | undefined): V | undefined {
    const k = this.#pack(key);
    const before = this.#put(k, value);
    if (before !== value && !this.#copied) (this.#diff ??= []).push(k, before === undefined ? ABSENT : before);
    return before;
  }

  commit(changes?: readonly KeyChange<K, V>[]): SnapshotMap<K, V> {
    if (!this.#open) throw new Error('SnapshotMap: editor committed twice');
    this.#open = false;
    this.#store.editing = false;
    if (!this.#copied && !this.#changed) return this.#from;
    return SnapshotMap.link(this.#from, this.#store, this.size, this.#diff, changes !== undefined && changes.length > 0 ? changes : undefined);
  }
}

/**
 * Start an edit of `v`, which must be the newest version of its map (a
 * view's current state). Until `commit()`, `v` must not be read (the edit
 * changes it in place); afterwards it again reads as it was.
 */
export function editSnapshot<K, V>(v: SnapshotMap<K, V>): SnapshotEditor<K, V> {
  return beginEdit(v);
}

/**
 * The entries of `v` as two arrays in its own order, when that order is
 * worth walking side by side with the rows of a re-sync: a deferred map's
 * arrays (see {@link SnapshotMap.of}) not used yet, or the newest version of
 * an outer map (read out of its table, in the table's order). Else
 * `undefined`.
 */
export function deferredEntries<K, V>(v: SnapshotMap<K, V>): { readonly keys: readonly K[]; readonly values: readonly V[] } | undefined {
  return deferredOf(v);
}

/**
 * In a diff handed to {@link advanceOuter}: the key was absent before the
 * change.
 */
export const ABSENT_BEFORE: unknown = ABSENT;

/**
 * A map whose newest version reads `table` in place (an *outer* map). Its
 * owner changes `table` and keeps the versions right: before each change it
 * records the values about to be replaced and calls {@link advanceOuter}
 * after it; or, first, {@link freezeOuter}. Editing a version of it
 * ({@link editSnapshot}) starts a table of its own, a copy.
 */
export function outerSnapshot<K, V>(table: OuterTable<V>): SnapshotMap<K, V> {
  return outerOf(table);
}

/**
 * The outer table of `head` (the newest version) has changed: the new newest
 * version. `diff`: `[key, value before or ABSENT_BEFORE, …]` for every key the
 * change touched (repeats allowed: the first one counts), recorded before it.
 */
export function advanceOuter<K, V>(head: SnapshotMap<K, V>, diff: unknown[] | undefined): SnapshotMap<K, V> {
  return outerAdvance(head, diff);
}

/**
 * Before the outer table of `head` (the newest version) changes: from now on
 * `head` and its older versions read `copy` (the same entries, in the same
 * order) instead, and the map is no longer advanced; the owner starts
 * another one ({@link outerSnapshot}) for what follows.
 */
export function freezeOuter<K, V>(head: SnapshotMap<K, V>, copy: OuterTable<V>): void {
  outerFreeze(head, copy);
}

/** See {@link outerStatus}. */
export interface OuterStatus {
  /** The map reads an {@link OuterTable} (or its frozen copy). */
  readonly outer: boolean;
  /** Iterations open over the map's versions. */
  readonly readers: number;
  /** Key/value pairs recorded in its versions' diffs. */
  readonly recorded: number;
}

/** What the owner of an outer map weighs before a change (any map answers). */
export function outerStatus<K, V>(v: SnapshotMap<K, V>): OuterStatus {
  return outerState(v);
}
