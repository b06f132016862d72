import jsonpatch from 'fast-json-patch';
import { Observable, type OperatorFunction } from 'rxjs';
import { DeltaEncodingError } from './errors.ts';
import { escapeKey, isTag, plainJson, type JsonCodec, type JsonValue } from './jsonCodec.ts';

/** One RFC 6902 operation as emitted by {@link jsonPatchDelta}. */
export type DeltaOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: JsonValue }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'replace'; readonly path: string; readonly value: JsonValue };

/** Configuration of {@link jsonPatchDelta}. */
export interface JsonPatchDeltaConfig<K> {
  /**
   * Turns a row key into the first reference token of the paths (before
   * RFC 6901 escaping). Must be injective over the keys of one table.
   * @default strings as they are, numbers and bigints via `String`, `Identity`/`ConnectionId` via `toHexString()`
   */
  keyToString?: (key: K) => string;
  /**
   * How row values become JSON. Give `applyDelta` the same codec.
   * @default plainJson — JSON plus bigint, bytes, `undefined` and non-finite numbers (`stdb-rx` itself defaults to `spacetimeJson`, which adds the SpacetimeDB types)
   */
  codec?: JsonCodec;
}

/** The default {@link JsonPatchDeltaConfig.keyToString}. */
export function defaultKeyToString(key: unknown): string {
  switch (typeof key) {
    case 'string':
      return key;
    case 'number':
    case 'bigint':
      return String(key);
    case 'object':
      if (key !== null && typeof (key as { toHexString?: unknown }).toHexString === 'function') {
        return (key as { toHexString(): string }).toHexString();
      }
  }
  throw new DeltaEncodingError('No default string form for this key; pass keyToString', { path: '', value: key });
}

/**
 * Describes each step of a stream of keyed snapshots as RFC 6902 JSON Patch operations.
 *
 * ```
 * snapshots: --a-------b-------c--
 * jsonPatchDelta()
 * result:    --x-------y-------z--
 *
 * a = Map { "p1" → { hp: 10, name: "Ann" } }
 * b = Map { "p1" → { hp: 7,  name: "Ann" }, "a/b" → { hp: 1n } }
 * c = Map { "a/b" → { hp: 1n } }          (same row object as in b)
 * x = [ { op: "add",     path: "/p1",    value: { hp: 10, name: "Ann" } } ]
 * y = [ { op: "replace", path: "/p1/hp", value: 7 },
 *       { op: "add",     path: "/a~1b",  value: { hp: { $bigint: "1" } } } ]
 * z = [ { op: "remove",  path: "/p1" } ]
 * ```
 *
 * The document the operations apply to is one JSON object per snapshot: row
 * key → encoded row. The first snapshot is described as additions to an empty
 * document. A new row is one `add /<key>`, a deleted row one
 * `remove /<key>`, and a changed row one `add`/`remove`/`replace` per changed
 * field, `/<key>/<field>` (whole field values, found with fast-json-patch's
 * `compare`). Keys and field names are escaped per RFC 6901. Values JSON
 * cannot hold use the tagged encoding of `operators/jsonCodec.ts` (`codec`). A row whose
 * object is the same reference as in the previous snapshot is skipped without
 * being encoded or diffed, so the work per step beyond one reference check
 * per row is proportional to the changed rows. Every snapshot yields one array,
 * empty when nothing changed, so the output lines up with the input.
 *
 * ## Example
 * ```ts
 * import { of } from 'rxjs';
 * import { jsonPatchDelta } from 'stdb-rx/operators';
 *
 * const ann = { hp: 10, name: 'Ann' };
 * of(new Map([['p1', ann]]), new Map([['p1', { ...ann, hp: 7 }]]), new Map())
 *   .pipe(jsonPatchDelta())
 *   .subscribe((ops) => console.log(JSON.stringify(ops)));
 * // Logs:
 * // [{"op":"add","path":"/p1","value":{"hp":10,"name":"Ann"}}]
 * // [{"op":"replace","path":"/p1/hp","value":7}]
 * // [{"op":"remove","path":"/p1"}]
 * ```
 *
 * @param config Optional key formatting and value codec.
 * @returns A function from snapshots to the operations turning each snapshot into the next.
 */
export function jsonPatchDelta<K, R>(
  config: JsonPatchDeltaConfig<K> = {},
): OperatorFunction<ReadonlyMap<K, R>, readonly DeltaOperation[]> {
  const { keyToString = defaultKeyToString, codec = plainJson } = config;
  return (source) =>
    new Observable<readonly DeltaOperation[]>((subscriber) => {
      let previous: ReadonlyMap<K, R> = new Map();
      /** Encoded rows of `previous`, by key. */
      const encoded = new Map<K, JsonValue>();
      return source.subscribe({
        next: (snapshot) => {
          let ops: DeltaOperation[];
          try {
            ops = snapshot === previous ? [] : step(previous, snapshot, encoded, keyToString, codec);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          previous = snapshot;
          subscriber.next(ops);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}

function step<K, R>(
  previous: ReadonlyMap<K, R>,
  next: ReadonlyMap<K, R>,
  encoded: Map<K, JsonValue>,
  keyToString: (key: K) => string,
  codec: JsonCodec,
): DeltaOperation[] {
  const ops: DeltaOperation[] = [];
  // Encode everything first so that a DeltaEncodingError leaves the state untouched.
  const updates: Array<[K, JsonValue]> = [];
  let added = 0;
  for (const [key, row] of next) {
    const had = previous.has(key);
    if (had && previous.get(key) === row) continue;
    const path = `/${escapeKey(keyToString(key))}`;
    const value = codec.encode(row, path);
    if (had) {
      diffRow(path, encoded.get(key)!, value, ops);
    } else {
      ops.push({ op: 'add', path, value });
      added++;
    }
    updates.push([key, value]);
  }
  const removed: K[] = [];
  // |next| = |previous| + added - removed: only scan for removals when there are some.
  if (next.size !== previous.size + added) {
    for (const key of previous.keys()) {
      if (!next.has(key)) {
        ops.push({ op: 'remove', path: `/${escapeKey(keyToString(key))}` });
        removed.push(key);
      }
    }
  }
  for (const [key, value] of updates) encoded.set(key, value);
  for (const key of removed) encoded.delete(key);
  return ops;
}

function isFieldObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !isTag(value);
}

/** Appends the field-level operations turning encoded row `a` into `b`. */
function diffRow(path: string, a: JsonValue, b: JsonValue, ops: DeltaOperation[]): void {
  if (!isFieldObject(a) || !isFieldObject(b)) {
    if (JSON.stringify(a) !== JSON.stringify(b)) ops.push({ op: 'replace', path, value: b });
    return;
  }
  const patch = jsonpatch.compare(a, b);
  if (patch.length === 0) return;
  const changed = new Set<string>();
  for (const op of patch) changed.add(op.path.slice(1).split('/', 1)[0]);
  for (const field of Object.keys(b)) {
    const token = escapeKey(field);
    if (!changed.has(token)) continue;
    ops.push({ op: Object.prototype.hasOwnProperty.call(a, field) ? 'replace' : 'add', path: `${path}/${token}`, value: b[field] });
  }
  for (const field of Object.keys(a)) {
    if (!Object.prototype.hasOwnProperty.call(b, field)) ops.push({ op: 'remove', path: `${path}/${escapeKey(field)}` });
  }
}
