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
 * Bulk changes go through {@link PersistentMap.withMutations}, which edits
 * nodes created during the batch in place (the "transient" technique of
 * Clojure and Immutable.js) and freezes the result when the batch ends.
 *
 * @module
 */

export type MapKey = number | string | boolean | bigint;

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;
const MAX_DEPTH = 7; // 7 * 5 = 35 bits > 32-bit hashes

/** Edit token: nodes carrying the current batch's token may be mutated in place. */
type Edit = object | null;

interface Leaf<V> {
  readonly kind: 0;
  hash: number;
  key: MapKey;
  value: V;
}

interface Branch<V> {
  readonly kind: 1;
  edit: Edit;
  bitmap: number;
  children: Node<V>[];
}

interface Collision<V> {
  readonly kind: 2;
  edit: Edit;
  hash: number;
  leaves: Leaf<V>[];
}

type Node<V> = Leaf<V> | Branch<V> | Collision<V>;

/** 32-bit hash of a key. Strings: FNV-1a; numbers: integer mix or string hash; bigints: folded 32-bit words. */
export function hashKey(key: MapKey): number {
  switch (typeof key) {
    case 'string':
      return hashString(key);
    case 'number':
      if (Number.isInteger(key) && key >= -0x80000000 && key <= 0x7fffffff) return mix(key | 0);
      return hashString(String(key)) ^ 0x5bd1e995;
    case 'bigint': {
      let h = 0x27d4eb2d;
      let v = key < 0n ? -key : key;
      if (v === 0n) return mix(h);
      while (v > 0n) {
        h = mix(h ^ Number(v & 0xffffffffn));
        v >>= 32n;
      }
      return key < 0n ? ~h : h;
    }
    case 'boolean':
      return key ? 0x3c6ef372 : 0x1b873593;
  }
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

function fragment(hash: number, shift: number): number {
  return (hash >>> shift) & MASK;
}

/** Result flags threaded through set/remove without allocating. */
interface Change {
  added: boolean;
  removed: boolean;
  replaced: boolean;
}

function leaf<V>(hash: number, key: MapKey, value: V): Leaf<V> {
  return { kind: 0, hash, key, value };
}

function mergeLeaves<V>(edit: Edit, shift: number, a: Leaf<V>, b: Leaf<V>): Node<V> {
  if (a.hash === b.hash || shift >= MAX_DEPTH * BITS) {
    return { kind: 2, edit, hash: a.hash, leaves: [a, b] };
  }
  const fa = fragment(a.hash, shift);
  const fb = fragment(b.hash, shift);
  if (fa === fb) {
    return { kind: 1, edit, bitmap: 1 << fa, children: [mergeLeaves(edit, shift + BITS, a, b)] };
  }
  return { kind: 1, edit, bitmap: (1 << fa) | (1 << fb), children: fa < fb ? [a, b] : [b, a] };
}

function setNode<V>(node: Node<V> | undefined, edit: Edit, shift: number, hash: number, key: MapKey, value: V, ch: Change): Node<V> {
  if (node === undefined) {
    ch.added = true;
    return leaf(hash, key, value);
  }
  switch (node.kind) {
    case 0: {
      if (node.key === key) {
        if (node.value === value) return node;
        ch.replaced = true;
        return leaf(hash, key, value);
      }
      ch.added = true;
      return mergeLeaves(edit, shift, node, leaf(hash, key, value));
    }
    case 2: {
      if (node.hash !== hash && shift < MAX_DEPTH * BITS) {
        // Push the collision node down one level next to the new leaf.
        ch.added = true;
        const fa = fragment(node.hash, shift);
        const fb = fragment(hash, shift);
        const nl = leaf(hash, key, value);
        if (fa === fb) {
          return { kind: 1, edit, bitmap: 1 << fa, children: [setNode(node, edit, shift + BITS, hash, key, value, { added: false, removed: false, replaced: false })] };
        }
        return { kind: 1, edit, bitmap: (1 << fa) | (1 << fb), children: fa < fb ? [node, nl] : [nl, node] };
      }
      const idx = node.leaves.findIndex((l) => l.key === key);
      if (idx >= 0 && node.leaves[idx].value === value) return node;
      const target = node.edit !== null && node.edit === edit ? node : { kind: 2 as const, edit, hash: node.hash, leaves: node.leaves.slice() };
      if (idx >= 0) {
        ch.replaced = true;
        target.leaves[idx] = leaf(hash, key, value);
      } else {
        ch.added = true;
        target.leaves.push(leaf(hash, key, value));
      }
      return target;
    }
    case 1: {
      const bit = 1 << fragment(hash, shift);
      const idx = popcount(node.bitmap & (bit - 1));
      const exists = (node.bitmap & bit) !== 0;
      const child = exists ? node.children[idx] : undefined;
      const next = setNode(child, edit, shift + BITS, hash, key, value, ch);
      if (next === child) return node;
      const target = node.edit !== null && node.edit === edit ? node : { kind: 1 as const, edit, bitmap: node.bitmap, children: node.children.slice() };
      if (exists) target.children[idx] = next;
      else {
        target.children.splice(idx, 0, next);
        target.bitmap |= bit;
      }
      return target;
    }
  }
}

function removeNode<V>(node: Node<V>, edit: Edit, shift: number, hash: number, key: MapKey, ch: Change): Node<V> | undefined {
  switch (node.kind) {
    case 0:
      if (node.key !== key) return node;
      ch.removed = true;
      return undefined;
    case 2: {
      const idx = node.leaves.findIndex((l) => l.key === key);
      if (idx < 0) return node;
      ch.removed = true;
      if (node.leaves.length === 2) return node.leaves[1 - idx];
      const target = node.edit !== null && node.edit === edit ? node : { kind: 2 as const, edit, hash: node.hash, leaves: node.leaves.slice() };
      target.leaves.splice(idx, 1);
      return target;
    }
    case 1: {
      const bit = 1 << fragment(hash, shift);
      if ((node.bitmap & bit) === 0) return node;
      const idx = popcount(node.bitmap & (bit - 1));
      const child = node.children[idx];
      const next = removeNode(child, edit, shift + BITS, hash, key, ch);
      if (next === child) return node;
      if (next === undefined && node.children.length === 1) return undefined;
      // Collapse a branch left with a single leaf so lookups stay short.
      if (next === undefined && node.children.length === 2) {
        const other = node.children[1 - idx];
        if (other.kind !== 1) return other;
      }
      if (next !== undefined && next.kind !== 1 && node.children.length === 1) return next;
      const target = node.edit !== null && node.edit === edit ? node : { kind: 1 as const, edit, bitmap: node.bitmap, children: node.children.slice() };
      if (next === undefined) {
        target.children.splice(idx, 1);
        target.bitmap &= ~bit;
      } else target.children[idx] = next;
      return target;
    }
  }
}

function getNode<V>(node: Node<V> | undefined, hash: number, key: MapKey): Leaf<V> | undefined {
  let shift = 0;
  while (node !== undefined) {
    switch (node.kind) {
      case 0:
        return node.key === key ? node : undefined;
      case 2:
        return node.leaves.find((l) => l.key === key);
      case 1: {
        const bit = 1 << fragment(hash, shift);
        if ((node.bitmap & bit) === 0) return undefined;
        node = node.children[popcount(node.bitmap & (bit - 1))];
        shift += BITS;
      }
    }
  }
  return undefined;
}

function* iterate<V>(node: Node<V> | undefined): Generator<Leaf<V>, void, undefined> {
  if (node === undefined) return;
  switch (node.kind) {
    case 0:
      yield node;
      return;
    case 2:
      yield* node.leaves;
      return;
    case 1:
      for (const c of node.children) yield* iterate(c);
  }
}

function forEachLeaf<V>(node: Node<V> | undefined, fn: (l: Leaf<V>) => void): void {
  if (node === undefined) return;
  if (node.kind === 0) fn(node);
  else if (node.kind === 2) for (const l of node.leaves) fn(l);
  else for (const c of node.children) forEachLeaf(c, fn);
}

/** A mutable view handed to {@link PersistentMap.withMutations}; valid only inside the callback. */
export interface MapMutator<K extends MapKey, V> {
  set(key: K, value: V): void;
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
    return PersistentMap.empty<K, V>().withMutations((m) => {
      for (const [k, v] of entries) m.set(k, v);
    });
  }

  readonly #root: Node<V> | undefined;
  readonly size: number;

  private constructor(root: Node<V> | undefined, size: number) {
    this.#root = root;
    this.size = size;
  }

  get(key: K): V | undefined {
    return getNode(this.#root, hashKey(key), key)?.value;
  }

  has(key: K): boolean {
    return getNode(this.#root, hashKey(key), key) !== undefined;
  }

  set(key: K, value: V): PersistentMap<K, V> {
    const ch: Change = { added: false, removed: false, replaced: false };
    const root = setNode(this.#root, null, 0, hashKey(key), key, value, ch);
    if (root === this.#root) return this;
    return new PersistentMap(root, this.size + (ch.added ? 1 : 0));
  }

  delete(key: K): PersistentMap<K, V> {
    if (this.#root === undefined) return this;
    const ch: Change = { added: false, removed: false, replaced: false };
    const root = removeNode(this.#root, null, 0, hashKey(key), key, ch);
    if (!ch.removed) return this;
    return root === undefined ? PersistentMap.empty() : new PersistentMap(root, this.size - 1);
  }

  /**
   * Apply many changes at once. Nodes created during the batch are edited in
   * place; nodes shared with `this` (or any other map) are copied first, so
   * `this` is never changed.
   */
  withMutations(fn: (m: MapMutator<K, V>) => void): PersistentMap<K, V> {
    const edit = {};
    let root = this.#root;
    let size = this.size;
    let open = true;
    const check = () => {
      if (!open) throw new Error('PersistentMap mutator used after withMutations returned');
    };
    const mutator: MapMutator<K, V> = {
      set(key, value) {
        check();
        const ch: Change = { added: false, removed: false, replaced: false };
        root = setNode(root, edit, 0, hashKey(key), key, value, ch);
        if (ch.added) size++;
      },
      delete(key) {
        check();
        if (root === undefined) return false;
        const ch: Change = { added: false, removed: false, replaced: false };
        root = removeNode(root, edit, 0, hashKey(key), key, ch);
        if (ch.removed) size--;
        return ch.removed;
      },
      get: (key) => getNode(root, hashKey(key), key)?.value,
      has: (key) => getNode(root, hashKey(key), key) !== undefined,
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
    freeze(root, edit);
    return root === undefined ? PersistentMap.empty() : new PersistentMap(root, size);
  }

  forEach(callbackfn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: any): void {
    forEachLeaf(this.#root, (l) => callbackfn.call(thisArg, l.value, l.key as K, this));
  }

  *entries(): MapIterator<[K, V]> {
    for (const l of iterate(this.#root)) yield [l.key as K, l.value];
  }

  *keys(): MapIterator<K> {
    for (const l of iterate(this.#root)) yield l.key as K;
  }

  *values(): MapIterator<V> {
    for (const l of iterate(this.#root)) yield l.value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  get [Symbol.toStringTag](): string {
    return 'PersistentMap';
  }
}

/** Clear the batch's edit token from the nodes it created, so later batches copy them. */
function freeze<V>(node: Node<V> | undefined, edit: Edit): void {
  if (node === undefined || node.kind === 0 || node.edit !== edit) return;
  node.edit = null;
  if (node.kind === 1) for (const c of node.children) freeze(c, edit);
}
