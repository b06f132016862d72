/**
 * A stream's bounded history of published patches, for spectators that
 * reconnect with the last version they saw.
 *
 * @module
 */
import type { DeltaOperation } from '../operators/jsonPatchDelta.ts';
import type { KeyType } from './protocol.ts';

/** One published transaction. */
export interface HistoryEntry {
  readonly from: string;
  readonly version: string;
  readonly ops: readonly DeltaOperation[];
  /** Key types first seen in this transaction. */
  readonly keys: Record<string, KeyType> | undefined;
  /** Serialized size of `ops` (what it costs to keep and to send). */
  readonly bytes: number;
}

/** Patches from a version to the head, folded into one. */
export interface Catchup {
  readonly from: string;
  readonly version: string;
  readonly n: number;
  readonly ops: readonly DeltaOperation[];
  readonly keys: Record<string, KeyType> | undefined;
  readonly bytes: number;
}

/** Limits of a {@link History}. */
export interface HistoryLimits {
  /** Most entries kept. @default 1000 */
  maxEntries: number;
  /** Most bytes of operations kept. @default 4 MiB */
  maxBytes: number;
}

/**
 * The last published transactions, oldest first, within an entry count and a
 * byte budget. `base` is the version the oldest kept entry starts from.
 */
export class History {
  #entries: HistoryEntry[] = [];
  #start = 0;
  #bytes = 0;
  #base: string;

  constructor(base: string, private readonly limits: HistoryLimits) {
    this.#base = base;
  }

  get head(): string {
    return this.#entries.length > this.#start ? this.#entries[this.#entries.length - 1].version : this.#base;
  }

  get length(): number {
    return this.#entries.length - this.#start;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(entry: HistoryEntry): void {
    this.#entries.push(entry);
    this.#bytes += entry.bytes;
    while (this.length > 0 && (this.length > this.limits.maxEntries || this.#bytes > this.limits.maxBytes)) {
      const dropped = this.#entries[this.#start++];
      this.#bytes -= dropped.bytes;
      this.#base = dropped.version;
    }
    if (this.#start > 1024 && this.#start * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#start);
      this.#start = 0;
    }
  }

  /**
   * The patches from `since` to the head, folded into one operation list, or
   * `undefined` when `since` is not in the kept history (or folding would
   * exceed `maxBytes`). A version seen more than once (the document returned
   * to an earlier content) resolves to its latest occurrence. `since` equal
   * to the head yields an empty catch-up.
   */
  since(since: string, maxBytes = Infinity): Catchup | undefined {
    let i = this.#entries.length - 1;
    while (i >= this.#start && this.#entries[i].version !== since) i--;
    if (i < this.#start && this.#base !== since) return undefined;
    const first = i < this.#start ? this.#start : i + 1;
    const ops: DeltaOperation[] = [];
    let keys: Record<string, KeyType> | undefined;
    let bytes = 0;
    for (let j = first; j < this.#entries.length; j++) {
      const e = this.#entries[j];
      bytes += e.bytes;
      if (bytes > maxBytes) return undefined;
      for (const op of e.ops) ops.push(op);
      if (e.keys) keys = { ...keys, ...e.keys };
    }
    return { from: since, version: this.head, n: this.#entries.length - first, ops, keys, bytes };
  }
}
