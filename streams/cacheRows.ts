/**
 * A table's rows in the SDK's client cache, as an array.
 *
 * The SDK's public way to read them is `iter()`, a generator: every row
 * costs a generator resumption and iterator results. For a 10,000-row table
 * that is about 2 ms and 2 MB of garbage, on the path by which a
 * subscription's rows reach the game, and the garbage decides whether a
 * young-generation collection lands inside it. The SDK's cache keeps its
 * rows in a `Map` of `[row, refCount]` pairs (`TableCache.rows`, private in
 * its type declarations only). When a table has exactly that shape — a
 * `Map` as large as `count()` says, every value such a pair — the rows are
 * read from it directly; anything else (another SDK version, a test double)
 * goes through `iter()`. docs/protocol.md ("What the client relies on")
 * has the measurements.
 *
 * @module
 */
import type { TableCacheLike } from './liveQueries.ts';

/** `[row, refCount]`: a value of the SDK cache's row map. */
export type CachedPair = [row: unknown, refCount: number];

/**
 * The SDK cache's row map of `table` (`TableCache.rows`), when it has the
 * shape described above: a `Map` as large as `count()` says whose first
 * value is a `[row, refCount]` pair. `undefined` for anything else.
 */
export function sdkRowMap(table: object): Map<unknown, CachedPair> | undefined {
  const t = table as { rows?: unknown; count?: unknown };
  const map = t.rows;
  if (!(map instanceof Map) || typeof t.count !== 'function' || map.size !== Number((t as { count(): bigint | number }).count())) return undefined;
  for (const p of map.values()) return Array.isArray(p) && p.length === 2 && typeof p[1] === 'number' ? map : undefined;
  return map;
}

export function cacheRows(table: TableCacheLike): any[] {
  const map = sdkRowMap(table);
  if (map !== undefined) {
    const out: any[] = new Array(map.size);
    let n = 0;
    let shaped = true;
    // `forEach`, not `for…of`: no iterator result per row.
    map.forEach((pair) => {
      if (shaped && Array.isArray(pair) && pair.length === 2 && typeof pair[1] === 'number') out[n++] = pair[0];
      else shaped = false;
    });
    if (shaped) return out;
  }
  return [...table.iter()];
}
