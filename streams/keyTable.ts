/**
 * The mutable key → value table behind the newest table snapshot
 * ({@link SnapshotMap}): an open-addressing hash table for integer keys (a
 * table's primary keys, as numbers) with a native `Map` beside it for any
 * other key.
 *
 * Integer keys live in one plain array of numbers (unboxed by V8, 8 bytes
 * each, on the JS heap) and their values in another of the same length (linear probing, at most three quarters full, deletions
 * shift the following entries back so no tombstones accumulate). That is
 * about half the memory of a native `Map` of the same entries (which keeps a
 * hash chain and an insertion-ordered entry list), a lookup is a hash and
 * usually one probe, and a copy is two array copies.
 *
 * Values are never `undefined` (an empty slot). Iteration order is
 * unspecified.
 *
 * @module
 */

const MIN_CAPACITY = 8;

/** Mixes an integer's bits into a well-spread 32-bit hash (the finaliser of MurmurHash3). */
function hashInt(n: number): number {
  let h = n | 0;
  if (h !== n) h ^= Math.floor(n / 4294967296) * 0x9e3779b1;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Whether `key` goes into the integer part (safe integers; `-0` as `0`, as `Map` does). */
function isInt(key: unknown): key is number {
  return typeof key === 'number' && Number.isSafeInteger(key);
}

export class KeyTable<V> {
  #keys: number[];
  #values: (V | undefined)[];
  #mask: number;
  /** Entries in the integer part. */
  #count = 0;
  /** Every other key. */
  #other: Map<unknown, V> | undefined;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap * 0.75 < capacity) cap *= 2;
    this.#keys = new Array<number>(cap).fill(0);
    this.#values = new Array(cap).fill(undefined);
    this.#mask = cap - 1;
  }

  /** A table of `keys` → `values` (a repeated key keeps its last value). */
  static of<V>(keys: readonly unknown[], values: readonly V[], pack: (key: unknown) => unknown = (k) => k): KeyTable<V> {
    const t = new KeyTable<V>(keys.length);
    for (let i = 0; i < keys.length; i++) t.set(pack(keys[i]), values[i]);
    return t;
  }

  get size(): number {
    return this.#count + (this.#other?.size ?? 0);
  }

  get(key: unknown): V | undefined {
    if (!isInt(key)) return this.#other?.get(key);
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = values[i];
      if (v === undefined || keys[i] === key) return v;
      i = (i + 1) & mask;
    }
  }

  has(key: unknown): boolean {
    return this.get(key) !== undefined;
  }

  set(key: unknown, value: V): this {
    if (!isInt(key)) {
      (this.#other ??= new Map()).set(key, value);
      return this;
    }
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = values[i];
      if (v === undefined) break;
      if (keys[i] === key) {
        values[i] = value;
        return this;
      }
      i = (i + 1) & mask;
    }
    keys[i] = key === 0 ? 0 : key;
    values[i] = value;
    if (++this.#count > (mask + 1) * 0.75) this.#grow();
    return this;
  }

  /**
   * Set `key` to `value`, or remove it when `value` is `undefined`, in one
   * probe; returns the value it had (`undefined`: absent).
   */
  swap(key: unknown, value: V | undefined): V | undefined {
    if (!isInt(key)) {
      const other = this.#other;
      const before = other?.get(key);
      if (value !== undefined) (this.#other ??= new Map()).set(key, value);
      else if (before !== undefined) other!.delete(key);
      return before;
    }
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = values[i];
      if (v === undefined) break;
      if (keys[i] === key) {
        if (value === undefined) this.delete(key);
        else values[i] = value;
        return v;
      }
      i = (i + 1) & mask;
    }
    if (value !== undefined) {
      keys[i] = key === 0 ? 0 : key;
      values[i] = value;
      if (++this.#count > (mask + 1) * 0.75) this.#grow();
    }
    return undefined;
  }

  delete(key: unknown): boolean {
    if (!isInt(key)) return this.#other?.delete(key) ?? false;
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = values[i];
      if (v === undefined) return false;
      if (keys[i] === key) break;
      i = (i + 1) & mask;
    }
    // Shift back the entries after the hole that probed past it (no tombstones).
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (values[j] === undefined) break;
      const home = hashInt(keys[j]) & mask;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        keys[hole] = keys[j];
        values[hole] = values[j];
        hole = j;
      }
    }
    values[hole] = undefined;
    keys[hole] = 0;
    this.#count--;
    return true;
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    const cap = (this.#mask + 1) * 2;
    const nk = new Array<number>(cap).fill(0);
    const nv: (V | undefined)[] = new Array(cap).fill(undefined);
    const mask = cap - 1;
    for (let s = 0; s < values.length; s++) {
      const v = values[s];
      if (v === undefined) continue;
      const k = keys[s];
      let i = hashInt(k) & mask;
      while (nv[i] !== undefined) i = (i + 1) & mask;
      nk[i] = k;
      nv[i] = v;
    }
    this.#keys = nk;
    this.#values = nv;
    this.#mask = mask;
  }

  /** An independent copy. */
  clone(): KeyTable<V> {
    const t = new KeyTable<V>(0);
    t.#keys = this.#keys.slice();
    t.#values = this.#values.slice();
    t.#mask = this.#mask;
    t.#count = this.#count;
    t.#other = this.#other === undefined ? undefined : new Map(this.#other);
    return t;
  }

  /** Entries as stored keys (the caller unpacks them). */
  *entries(): Generator<[unknown, V], void, undefined> {
    const keys = this.#keys;
    const values = this.#values;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== undefined) yield [keys[i], v];
    }
    if (this.#other !== undefined) yield* this.#other;
  }
}
