/**
 * A read-only map that shows `base` with a small set of overrides on top —
 * replaced rows, added rows and deletions — without copying `base`. Reading
 * costs O(1); `size` costs O(overrides). The overrides map stays live: later
 * changes to it show through, which is what a rebase of several pending
 * predictions needs.
 */
export const DELETED: unique symbol = Symbol('deleted');

export class OverlayMap<K, V> implements ReadonlyMap<K, V> {
  constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly overrides: ReadonlyMap<K, V | typeof DELETED>,
  ) {}

  get(key: K): V | undefined {
    const o = this.overrides.get(key);
    if (o === DELETED) return undefined;
    return o !== undefined || this.overrides.has(key) ? (o as V) : this.base.get(key);
  }

  has(key: K): boolean {
    if (this.overrides.has(key)) return this.overrides.get(key) !== DELETED;
    return this.base.has(key);
  }

  get size(): number {
    let n = this.base.size;
    for (const [k, v] of this.overrides) {
      const inBase = this.base.has(k);
      if (v === DELETED) {
        if (inBase) n--;
      } else if (!inBase) {
        n++;
      }
    }
    return n;
  }

  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.base) {
      if (!this.overrides.has(k)) yield [k, v];
      else {
        const o = this.overrides.get(k)!;
        if (o !== DELETED) yield [k, o as V];
      }
    }
    for (const [k, o] of this.overrides) if (o !== DELETED && !this.base.has(k)) yield [k, o as V];
  }

  *keys(): MapIterator<K> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }
}
