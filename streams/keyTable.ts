/**
 * The mutable key → value table behind the newest table snapshot
 * ({@link SnapshotMap}): an open-addressing hash table for integer keys (a
 * table's primary keys, as numbers) with a native `Map` beside it for any
 * other key.
 *
 * Integer entries live in one plain array, key and value side by side
 * (`[k0, v0, k1, v1, …]`, so a probe touches one cache line), probed
 * linearly from a home slot that keeps runs of consecutive keys together
 * (see `hashInt`), at most three quarters full; a deletion shifts the following
 * entries back, so no tombstones accumulate. That is about half the memory
 * of a native `Map` of the same entries (which keeps a hash chain and an
 * insertion-ordered entry list), a lookup is a hash and usually one probe,
 * and a copy is one array copy.
 *
 * Values are never `undefined` (an empty slot). Iteration order is
 * unspecified.
 *
 * @module
 */

const MIN_CAPACITY = 8;

/**
 * The home slot of an integer key, before masking: keys that differ only in
 * their lowest three bits (runs of eight, e.g. consecutive ids) get
 * consecutive slots — one cache line for the eight entries — and each run of
 * eight is placed by a well-spread 32-bit hash of the rest (the finaliser of
 * MurmurHash3). A transaction touching a range of ids then probes the table
 * mostly in sequence; keys without such locality spread as a plain hash
 * spreads them.
 */
function hashInt(n: number): number {
  let h = n | 0;
  if (h !== n) h ^= Math.floor(n / 4294967296) * 0x9e3779b1;
  const low = h & 7;
  h >>>= 3;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) << 3) | low;
}

/** Whether `key` goes into the integer part (safe integers; `-0` as `0`, as `Map` does). */
function isInt(key: unknown): key is number {
  return typeof key === 'number' && Number.isSafeInteger(key);
}

export class KeyTable<V> {
  /** `[key, value]` per slot; a slot is empty when its value is `undefined`. */
  #slots: unknown[];
  /** Slots − 1 (slots are a power of two). */
  #mask: number;
  /** Entries in the integer part. */
  #count = 0;
  /** Every other key. */
  #other: Map<unknown, V> | undefined;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap * 0.75 < capacity) cap *= 2;
    this.#slots = new Array(2 * cap).fill(undefined);
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
    const slots = this.#slots;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = slots[2 * i + 1];
      if (v === undefined || slots[2 * i] === key) return v as V | undefined;
      i = (i + 1) & mask;
    }
  }

  has(key: unknown): boolean {
    return this.get(key) !== undefined;
  }

  set(key: unknown, value: V): this {
    this.swap(key, value);
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
    // -0 is stored as 0, as `Map` does.
    return this.swapInt(key === 0 ? 0 : key, value);
  }

  /** {@link swap} for a key known to be a safe integer (not `-0`). */
  swapInt(key: number, value: V | undefined): V | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      const v = slots[2 * i + 1];
      if (v === undefined) break;
      if (slots[2 * i] === key) {
        if (value === undefined) this.#removeAt(i);
        else slots[2 * i + 1] = value;
        return v as V;
      }
      i = (i + 1) & mask;
    }
    if (value !== undefined) {
      slots[2 * i] = key;
      slots[2 * i + 1] = value;
      if (++this.#count > (mask + 1) * 0.75) this.#grow();
    }
    return undefined;
  }

  delete(key: unknown): boolean {
    if (!isInt(key)) return this.#other?.delete(key) ?? false;
    const slots = this.#slots;
    const mask = this.#mask;
    let i = hashInt(key) & mask;
    for (;;) {
      if (slots[2 * i + 1] === undefined) return false;
      if (slots[2 * i] === key) break;
      i = (i + 1) & mask;
    }
    this.#removeAt(i);
    return true;
  }

  /** Empty slot `i`, shifting back the entries after it that probed past it (no tombstones). */
  #removeAt(i: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (slots[2 * j + 1] === undefined) break;
      const home = hashInt(slots[2 * j] as number) & mask;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      if (hole <= j ? home <= hole || home > j : home <= hole && home > j) {
        slots[2 * hole] = slots[2 * j];
        slots[2 * hole + 1] = slots[2 * j + 1];
        hole = j;
      }
    }
    slots[2 * hole] = undefined;
    slots[2 * hole + 1] = undefined;
    this.#count--;
  }

  #grow(): void {
    const old = this.#slots;
    const cap = (this.#mask + 1) * 2;
    const slots: unknown[] = new Array(2 * cap).fill(undefined);
    const mask = cap - 1;
    for (let s = 0; s < old.length; s += 2) {
      const v = old[s + 1];
      if (v === undefined) continue;
      const k = old[s] as number;
      let i = hashInt(k) & mask;
      while (slots[2 * i + 1] !== undefined) i = (i + 1) & mask;
      slots[2 * i] = k;
      slots[2 * i + 1] = v;
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  /** An independent copy. */
  clone(): KeyTable<V> {
    const t = new KeyTable<V>(0);
    t.#slots = this.#slots.slice();
    t.#mask = this.#mask;
    t.#count = this.#count;
    t.#other = this.#other === undefined ? undefined : new Map(this.#other);
    return t;
  }

  /** Entries as stored keys (the caller unpacks them). */
  *entries(): Generator<[unknown, V], void, undefined> {
    const slots = this.#slots;
    for (let s = 0; s < slots.length; s += 2) {
      const v = slots[s + 1];
      if (v !== undefined) yield [slots[s], v as V];
    }
    if (this.#other !== undefined) yield* this.#other;
  }
}
