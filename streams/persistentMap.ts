/**
 * An immutable hash array mapped trie (HAMT) that implements `ReadonlyMap`.
 *
 * Table snapshots are built on it: every transaction produces a new map that
 * shares all untouched structure with the previous one, so the work per
 * transaction is proportional to the rows that changed (O(log₃₂ n) per row),
 * never to the size of the table. Values are stored by reference, so a
 * snapshot holds the very row objects the SDK cache holds.
 *
 * Keys are the primitives the SDK uses as row ids (`number | string |
 * boolean | bigint`), compared with `===`.
 *
 * Layout (as Clojure's `BitmapIndexedNode`): a branch keeps its entries
 * inline in one array, two slots per entry — `key, value` for a row, or
 * `undefined, childNode` for a subtree — so a row costs two array slots and
 * no object of its own. Hashes are not stored; they are recomputed (cheaply)
 * when two keys must be split into a new level.
 *
 * Bulk changes go through {@link PersistentMap.withMutations}: nodes created
 * during the batch carry the batch's edit token and are edited in place (the
 * "transient" technique of Clojure and Immutable.js); nodes from earlier
 * versions are copied on first write. Every batch has a fresh token and the
 * mutator refuses to work once the batch has returned, so nothing needs to be
 * "frozen" afterwards: no later batch can own those nodes.
 * {@link PersistentMap.build} builds a whole map in one pass (no per-key
 * descent), for first snapshots.
 *
 * @module
 */

export type MapKey = number | string | boolean | bigint;

const BITS = 5;
const MASK = (1 << BITS) - 1;
/** Branch levels consume shifts 0, 5, …, 30: 32 bits in all. Below that, equal hashes share a collision node. */
const MAX_SHIFT = 30;

/** Edit token: nodes carrying the current batch's token may be mutated in place. */
type Edit = object | null;

/**
 * A node is one array: `[bitmap, edit, k0, v0, k1, v1, …]` for a branch,
 * `[hash, edit, k0, v0, …]` for a collision node (keys with one hash). In a
 * branch a pair `undefined, branch` or `COLL, collisionNode` is a subtree.
 * One array per node (no wrapper object), sized exactly.
 */
type Node = unknown[];
const COLL: unique symbol = Symbol('collision');
const HEAD = 2;

const TWO_32 = 4294967296;

/**
 * 32-bit hash of a key. Strings: FNV-1a; integers that fit a double exactly
 * (numbers and bigints alike, without BigInt arithmetic): their two 32-bit
 * words, mixed; other numbers and large bigints: the hash of their string.
 * A bigint and a number never compare `===`, so sharing a hash is harmless.
 */
export function hashKey(key: MapKey): number {
  switch (typeof key) {
    case 'string':
      return hashString(key);
    case 'number':
      if ((key | 0) === key) return mix(key);
      return hashNumber(key);
    case 'bigint': {
      const n = Number(key);
      if ((n | 0) === n) return mix(n);
      if (Number.isSafeInteger(n)) return hashNumber(n);
      return hashString(key.toString(36)) ^ 0x27d4eb2d;
    }
    case 'boolean':
      return key ? 0x3c6ef372 : 0x1b873593;
  }
}

function hashNumber(n: number): number {
  if (Number.isSafeInteger(n)) {
    const hi = Math.floor(n / TWO_32);
    return mix(mix(n - hi * TWO_32) ^ hi);
  }
  return hashString(String(n)) ^ 0x5bd1e995;
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) | 0;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** What the last set/remove did (module state: the operations are synchronous and never re-enter). */
let added = false;
let removed = false;
/** The value the last set replaced or the last remove took out (`undefined` if none). */
let previous: unknown = undefined;

/** A node the batch may edit in place: `n` itself if the batch created it, else a copy. */
function editable(n: Node, edit: Edit): Node {
  if (edit !== null && n[1] === edit) return n;
  const c = n.slice();
  c[1] = edit;
  return c;
}

/** A copy of `n` (tagged `edit`) with `k, v` inserted at `i`, sized exactly. */
function inserted(n: Node, edit: Edit, head: number, i: number, k: unknown, v: unknown): Node {
  const len = n.length;
  const c = new Array(len + 2);
  c[0] = head;
  c[1] = edit;
  for (let j = HEAD; j < i; j++) c[j] = n[j];
  c[i] = k;
  c[i + 1] = v;
  for (let j = i; j < len; j++) c[j + 2] = n[j];
  return c;
}

/** A copy of `n` (tagged `edit`) without the pair at `i`, sized exactly. */
function withoutPair(n: Node, edit: Edit, head: number, i: number): Node {
  const len = n.length;
  const c = new Array(len - 2);
  c[0] = head;
  c[1] = edit;
  for (let j = HEAD; j < i; j++) c[j] = n[j];
  for (let j = i + 2; j < len; j++) c[j - 2] = n[j];
  return c;
}

/** Write into `t` at `i` a subtree holding two entries whose keys differ, at level `shift`. */
function putPair(t: Node, i: number, edit: Edit, shift: number, h1: number, k1: unknown, v1: unknown, h2: number, k2: unknown, v2: unknown): void {
  if (h1 === h2 || shift > MAX_SHIFT) {
    t[i] = COLL;
    t[i + 1] = [h1, edit, k1, v1, k2, v2];
    return;
  }
  const f1 = (h1 >>> shift) & MASK;
  const f2 = (h2 >>> shift) & MASK;
  t[i] = undefined;
  if (f1 === f2) {
    const sub: Node = [1 << f1, edit, undefined, undefined];
    putPair(sub, HEAD, edit, shift + BITS, h1, k1, v1, h2, k2, v2);
    t[i + 1] = sub;
  } else t[i + 1] = f1 < f2 ? [(1 << f1) | (1 << f2), edit, k1, v1, k2, v2] : [(1 << f1) | (1 << f2), edit, k2, v2, k1, v1];
}

/** Set in a collision node whose hash is `hash`. */
function setInCollision(n: Node, edit: Edit, key: MapKey, value: unknown): Node {
  for (let i = HEAD; i < n.length; i += 2) {
    if (n[i] === key) {
      previous = n[i + 1];
      if (previous === value) return n;
      const t = editable(n, edit);
      t[i + 1] = value;
      return t;
    }
  }
  added = true;
  return inserted(n, edit, n[0] as number, n.length, key, value);
}

function setIn(n: Node, edit: Edit, shift: number, hash: number, key: MapKey, value: unknown): Node {
  const bits = n[0] as number;
  const bit = 1 << ((hash >>> shift) & MASK);
  const i = HEAD + 2 * popcount(bits & (bit - 1));
  if ((bits & bit) === 0) {
    added = true;
    return inserted(n, edit, bits | bit, i, key, value);
  }
  const k = n[i];
  if (k === undefined || k === COLL) {
    const child = n[i + 1] as Node;
    let next: Node;
    let mark: unknown = k;
    if (k === undefined) next = setIn(child, edit, shift + BITS, hash, key, value);
    else if (child[0] === hash) next = setInCollision(child, edit, key, value);
    else {
      // A different hash reached a collision node above the last level: give it a branch.
      next = setIn([1 << (((child[0] as number) >>> (shift + BITS)) & MASK), edit, COLL, child], edit, shift + BITS, hash, key, value);
      mark = undefined;
    }
    if (next === child) return n;
    const t = editable(n, edit);
    t[i] = mark;
    t[i + 1] = next;
    return t;
  }
  if (k === key) {
    previous = n[i + 1];
    if (previous === value) return n;
    const t = editable(n, edit);
    t[i + 1] = value;
    return t;
  }
  added = true;
  const t = editable(n, edit);
  putPair(t, i, edit, shift + BITS, hashKey(k as MapKey), k, n[i + 1], hash, key, value);
  return t;
}

/** Remove `key` from a branch; returns the same node when absent, `undefined` when it became empty. */
function removeIn(n: Node, edit: Edit, shift: number, hash: number, key: MapKey): Node | undefined {
  const bits = n[0] as number;
  const bit = 1 << ((hash >>> shift) & MASK);
  if ((bits & bit) === 0) return n;
  const i = HEAD + 2 * popcount(bits & (bit - 1));
  const k = n[i];
  if (k === undefined || k === COLL) {
    const child = n[i + 1] as Node;
    let next: Node | undefined;
    if (k === undefined) next = removeIn(child, edit, shift + BITS, hash, key);
    else {
      next = child;
      for (let j = HEAD; j < child.length; j += 2) {
        if (child[j] === key) {
          removed = true;
          previous = child[j + 1];
          next = withoutPair(child, edit, child[0] as number, j);
          break;
        }
      }
    }
    if (next === child) return n;
    if (next === undefined) return bits === bit ? undefined : withoutPair(n, edit, bits & ~bit, i);
    const t = editable(n, edit);
    // A subtree left with one row is inlined, so lookups stay short.
    if (next.length === HEAD + 2 && next[HEAD] !== undefined && next[HEAD] !== COLL) {
      t[i] = next[HEAD];
      t[i + 1] = next[HEAD + 1];
    } else t[i + 1] = next;
    return t;
  }
  if (k !== key) return n;
  removed = true;
  previous = n[i + 1];
  return bits === bit ? undefined : withoutPair(n, edit, bits & ~bit, i);
}

const ABSENT: unique symbol = Symbol('absent');

function getIn(n: Node | undefined, hash: number, key: MapKey): unknown {
  if (n === undefined) return ABSENT;
  let shift = 0;
  for (;;) {
    const bits = n[0] as number;
    const bit = 1 << ((hash >>> shift) & MASK);
    if ((bits & bit) === 0) return ABSENT;
    const i = HEAD + 2 * popcount(bits & (bit - 1));
    const k = n[i];
    if (k === undefined) {
      n = n[i + 1] as Node;
      shift += BITS;
    } else if (k === COLL) {
      const c = n[i + 1] as Node;
      for (let j = HEAD; j < c.length; j += 2) if (c[j] === key) return c[j + 1];
      return ABSENT;
    } else return k === key ? n[i + 1] : ABSENT;
  }
}

function forEachIn(n: Node, fn: (key: MapKey, value: unknown) => void): void {
  for (let i = HEAD; i < n.length; i += 2) {
    const k = n[i];
    if (k === undefined || k === COLL) forEachIn(n[i + 1] as Node, fn);
    else fn(k as MapKey, n[i + 1]);
  }
}

/** Depth-first walk without recursive generators (one frame per level, not per entry). */
function* walk(root: Node | undefined): Generator<[MapKey, unknown], void, undefined> {
  if (root === undefined) return;
  const nodes: Node[] = [root];
  const pos: number[] = [HEAD];
  let d = 0;
  while (d >= 0) {
    const n = nodes[d];
    const i = pos[d];
    if (i >= n.length) {
      d--;
      continue;
    }
    pos[d] = i + 2;
    const k = n[i];
    if (k === undefined || k === COLL) {
      d++;
      nodes[d] = n[i + 1] as Node;
      pos[d] = HEAD;
    } else yield [k as MapKey, n[i + 1]];
  }
}

/** Scratch counters of {@link buildInto}, one per level (a level's counts are done with before the next level runs). */
const COUNTS = Array.from({ length: MAX_SHIFT / BITS + 2 }, () => new Uint32Array(33));

/**
 * Write into `out` at `at` the entries `idx[from..to)` (indices into
 * keys/values/hashes), all sharing the hash fragments above `shift`, as one
 * pair: inline if a single key, else a subtree. Later duplicates of a key
 * win. `tmp` is scratch space as long as `idx`.
 */
function buildInto(out: Node, at: number, shift: number, keys: readonly MapKey[], values: readonly unknown[], hashes: Int32Array, idx: Uint32Array, tmp: Uint32Array, from: number, to: number): void {
  if (to - from === 1) {
    out[at] = keys[idx[from]];
    out[at + 1] = values[idx[from]];
    return;
  }
  const h0 = hashes[idx[from]];
  let same = true;
  for (let j = from + 1; j < to; j++) {
    if (hashes[idx[j]] !== h0) {
      same = false;
      break;
    }
  }
  if (same || shift > MAX_SHIFT) {
    const pairs: unknown[] = [];
    for (let j = from; j < to; j++) {
      const e = idx[j];
      let found = -1;
      for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === keys[e]) found = i;
      if (found >= 0) pairs[found + 1] = values[e];
      else pairs.push(keys[e], values[e]);
    }
    if (pairs.length === 2) {
      out[at] = pairs[0];
      out[at + 1] = pairs[1];
    } else {
      out[at] = COLL;
      out[at + 1] = [h0, null, ...pairs];
    }
    return;
  }
  // Counting sort of the range by this level's fragment (one scratch counter array per level).
  const counts = COUNTS[shift / BITS];
  counts.fill(0);
  for (let j = from; j < to; j++) counts[((hashes[idx[j]] >>> shift) & MASK) + 1]++;
  let bits = 0;
  let width = 0;
  for (let f = 0; f < 32; f++) {
    if (counts[f + 1] !== 0) {
      bits |= 1 << f;
      width++;
    }
    counts[f + 1] += counts[f];
  }
  for (let j = from; j < to; j++) {
    const f = (hashes[idx[j]] >>> shift) & MASK;
    tmp[from + counts[f]++] = idx[j];
  }
  for (let j = from; j < to; j++) idx[j] = tmp[j];
  const n: Node = new Array(HEAD + 2 * width);
  n[0] = bits;
  n[1] = null;
  let j = from;
  let i = HEAD;
  while (j < to) {
    const f = (hashes[idx[j]] >>> shift) & MASK;
    let end = j + 1;
    while (end < to && ((hashes[idx[end]] >>> shift) & MASK) === f) end++;
    buildInto(n, i, shift + BITS, keys, values, hashes, idx, tmp, j, end);
    i += 2;
    j = end;
  }
  out[at] = undefined;
  out[at + 1] = n;
}

/** The trie of `keys` → `values` (at least one entry); later duplicates win. */
function buildRoot(keys: readonly MapKey[], values: readonly unknown[]): Node {
  const n = keys.length;
  const hashes = new Int32Array(n);
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    hashes[i] = hashKey(keys[i]);
    idx[i] = i;
  }
  const holder: Node = [0, null, undefined, undefined];
  buildInto(holder, HEAD, 0, keys, values, hashes, idx, new Uint32Array(n), 0, n);
  // The root is always a branch: one key, or keys that all share a hash, get one around them.
  return holder[HEAD] === undefined ? (holder[HEAD + 1] as Node) : [1 << (hashes[0] & MASK), null, holder[HEAD], holder[HEAD + 1]];
}

/** A mutable view handed to {@link PersistentMap.withMutations}; valid only inside the callback. */
export interface MapMutator<K extends MapKey, V> {
  set(key: K, value: V): void;
  /**
   * Get and set in one descent: `value` replaces the key's value (`undefined`
   * removes the key); returns the value it had (`undefined` if absent).
   */
  swap(key: K, value: V | undefined): V | undefined;
  delete(key: K): boolean;
  get(key: K): V | undefined;
  has(key: K): boolean;
  readonly size: number;
}

/**
 * An immutable `ReadonlyMap`. `set`/`delete` return a new map (or the same
 * one when nothing changed); the receiver never changes.
 */
export class PersistentMap<K extends MapKey, V> implements ReadonlyMap<K, V> {
  static #empty = new PersistentMap<any, any>(undefined, 0);

  /** The empty map. */
  static empty<K extends MapKey, V>(): PersistentMap<K, V> {
    return PersistentMap.#empty;
  }

  /** Build from entries in one batch. */
  static from<K extends MapKey, V>(entries: Iterable<readonly [K, V]>): PersistentMap<K, V> {
    const keys: K[] = [];
    const values: V[] = [];
    for (const [k, v] of entries) {
      keys.push(k);
      values.push(v);
    }
    return PersistentMap.build(keys, values);
  }

  /**
   * Build from parallel arrays of keys and values in one pass: entries are
   * sorted into place by their hash fragments, level by level, so no entry is
   * inserted into (or copied with) a growing node. Later duplicates win.
   */
  static build<K extends MapKey, V>(keys: readonly K[], values: readonly V[]): PersistentMap<K, V> {
    if (values.length !== keys.length) throw new RangeError('PersistentMap.build: keys and values differ in length');
    if (keys.length === 0) return PersistentMap.empty();
    const root = buildRoot(keys, values);
    let size = 0;
    forEachIn(root, () => size++);
    return new PersistentMap(root, size);
  }

  /**
   * A map of `keys` (which must be distinct — the caller knows, e.g. the
   * primary keys of one table) to `values`, built on first use: the first
   * lookup, iteration or change builds it as {@link build} does. Until then
   * it is the two arrays, so handing on a first snapshot costs nothing per
   * row. The arrays must not change afterwards.
   */
  static deferred<K extends MapKey, V>(keys: readonly K[], values: readonly V[]): PersistentMap<K, V> {
    if (values.length !== keys.length) throw new RangeError('PersistentMap.deferred: keys and values differ in length');
    if (keys.length === 0) return PersistentMap.empty();
    const m = new PersistentMap<K, V>(undefined, keys.length);
    m.#pending = { keys, values };
    return m;
  }

  #root: Node | undefined;
  /** Entries not built into the trie yet (see {@link deferred}). */
  #pending: { keys: readonly MapKey[]; values: readonly unknown[] } | undefined;
  readonly size: number;

  private constructor(root: Node | undefined, size: number) {
    this.#root = root;
    this.size = size;
  }

  /** The trie, built now if it was deferred. */
  #node(): Node | undefined {
    const p = this.#pending;
    if (p !== undefined) {
      this.#pending = undefined;
      this.#root = buildRoot(p.keys, p.values);
    }
    return this.#root;
  }

  get(key: K): V | undefined {
    const v = getIn(this.#node(), hashKey(key), key);
    return v === ABSENT ? undefined : (v as V);
  }

  has(key: K): boolean {
    return getIn(this.#node(), hashKey(key), key) !== ABSENT;
  }

  set(key: K, value: V): PersistentMap<K, V> {
    const hash = hashKey(key);
    added = false;
    this.#node();
    const root = this.#root === undefined ? ((added = true), [1 << (hash & MASK), null, key, value]) : setIn(this.#root, null, 0, hash, key, value);
    if (root === this.#root) return this;
    return new PersistentMap(root, this.size + (added ? 1 : 0));
  }

  delete(key: K): PersistentMap<K, V> {
    const from = this.#node();
    if (from === undefined) return this;
    removed = false;
    const root = removeIn(from, null, 0, hashKey(key), key);
    if (!removed) return this;
    return root === undefined ? PersistentMap.empty() : new PersistentMap(root, this.size - 1);
  }

  /**
   * Apply many changes at once. Nodes created during the batch are edited in
   * place; nodes shared with `this` (or any other map) are copied first, so
   * `this` is never changed.
   */
  withMutations(fn: (m: MapMutator<K, V>) => void): PersistentMap<K, V> {
    const edit = {};
    let root = this.#node();
    let size = this.size;
    let open = true;
    const check = () => {
      if (!open) throw new Error('PersistentMap mutator used after withMutations returned');
    };
    const mutator: MapMutator<K, V> = {
      set(key, value) {
        check();
        const hash = hashKey(key);
        if (root === undefined) {
          root = [1 << (hash & MASK), edit, key, value];
          size++;
          return;
        }
        added = false;
        root = setIn(root, edit, 0, hash, key, value);
        if (added) size++;
      },
      swap(key, value) {
        check();
        previous = undefined;
        const hash = hashKey(key);
        if (value === undefined) {
          if (root === undefined) return undefined;
          removed = false;
          root = removeIn(root, edit, 0, hash, key);
          if (removed) size--;
        } else if (root === undefined) {
          root = [1 << (hash & MASK), edit, key, value];
          size++;
        } else {
          added = false;
          root = setIn(root, edit, 0, hash, key, value);
          if (added) size++;
        }
        const p = previous as V | undefined;
        previous = undefined;
        return p;
      },
      delete(key) {
        check();
        if (root === undefined) return false;
        removed = false;
        root = removeIn(root, edit, 0, hashKey(key), key);
        if (removed) size--;
        return removed;
      },
      get(key) {
        const v = getIn(root, hashKey(key), key);
        return v === ABSENT ? undefined : (v as V);
      },
      has: (key) => getIn(root, hashKey(key), key) !== ABSENT,
      get size() {
        return size;
      },
    };
    try {
      fn(mutator);
    } finally {
      open = false;
    }
    if (root === this.#root) return this;
    // No freeze pass: `edit` dies with this call (the mutator refuses further
    // use), so no later batch can edit the nodes it tagged.
    return root === undefined ? PersistentMap.empty() : new PersistentMap(root, size);
  }

  forEach(callbackfn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: any): void {
    const root = this.#node();
    if (root !== undefined) forEachIn(root, (k, v) => callbackfn.call(thisArg, v as V, k as K, this));
  }

  *entries(): MapIterator<[K, V]> {
    for (const e of walk(this.#node())) yield e as [K, V];
  }

  *keys(): MapIterator<K> {
    for (const [k] of walk(this.#node())) yield k as K;
  }

  *values(): MapIterator<V> {
    for (const e of walk(this.#node())) yield e[1] as V;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'PersistentMap';
  }
}
