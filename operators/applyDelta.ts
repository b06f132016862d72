import jsonpatch from 'fast-json-patch';
import { Observable, type OperatorFunction } from 'rxjs';
import type { Operation } from 'fast-json-patch';
import { plainJson, unescapeKey, type JsonCodec, type JsonValue } from './jsonCodec.ts';
import type { DeltaOperation } from './jsonPatchDelta.ts';

/** Configuration of {@link applyDelta}. */
export interface ApplyDeltaConfig<K> {
  /**
   * Turns the first reference token of a path (already RFC 6901-unescaped)
   * back into a row key — the inverse of `jsonPatchDelta`'s `keyToString`,
   * e.g. `Number`, `BigInt` or `(hex) => new Identity(hex)`.
   * @default (s) => s — keys stay strings
   */
  keyFromString?: (key: string) => K;
  /**
   * How tagged values are decoded: the codec `jsonPatchDelta` encoded with.
   * @default plainJson (`stdb-rx` itself defaults to `spacetimeJson`)
   */
  codec?: JsonCodec;
}

/**
 * Rebuilds keyed snapshots from the operations {@link jsonPatchDelta} emits.
 *
 * ```
 * operations: --x-------y-------z--
 * applyDelta()
 * result:     --a-------b-------c--
 *
 * x = [ { op: "add", path: "/p1", value: { hp: 10 } } ]       a = Map { "p1" → { hp: 10 } }
 * y = [ { op: "replace", path: "/p1/hp", value: 7 } ]           b = Map { "p1" → { hp: 7 } }
 * z = []                                                        c = b (the same Map)
 * ```
 *
 * Starts from an empty table and applies each array of operations with
 * fast-json-patch, then decodes the tagged values (`operators/jsonCodec.ts`, `codec`),
 * so `snapshots$.pipe(jsonPatchDelta(), applyDelta())` emits snapshots deeply
 * equal to the input. Only the rows the operations touch are cloned and
 * decoded; every other row keeps its object from the previous snapshot, and an
 * empty array re-emits the previous snapshot itself. Each emitted snapshot is
 * a new `Map`, never mutated afterwards. Any RFC 6902 operation is accepted
 * (`move`, `copy` and `test` too); a failing one errors the result with
 * fast-json-patch's `JsonPatchError`.
 *
 * ## Example
 * ```ts
 * import { of } from 'rxjs';
 * import { applyDelta } from 'stdb-rx/operators';
 *
 * of(
 *   [{ op: 'add', path: '/1', value: { score: { $bigint: '9007199254740993' } } }],
 *   [{ op: 'remove', path: '/1' }],
 * )
 *   .pipe(applyDelta({ keyFromString: Number }))
 *   .subscribe((rows) => console.log(rows));
 * // Logs:
 * // Map(1) { 1 => { score: 9007199254740993n } }
 * // Map(0) {}
 * ```
 *
 * @param config Optional key parsing and value codec.
 * @returns A function from operation arrays to the snapshots they describe.
 */
export function applyDelta<K = string, R = unknown>(
  config: ApplyDeltaConfig<K> = {},
): OperatorFunction<readonly DeltaOperation[] | readonly Operation[], ReadonlyMap<K, R>> {
  const keyFromString = config.keyFromString ?? ((key: string) => key as unknown as K);
  const codec = config.codec ?? plainJson;
  return (source) =>
    new Observable<ReadonlyMap<K, R>>((subscriber) => {
      let rows: ReadonlyMap<K, R> = new Map();
      /** Encoded rows by their unescaped key token. */
      const docs = new Map<string, JsonValue>();
      /** Row keys by their unescaped key token, so object keys keep their identity. */
      const keys = new Map<string, K>();
      return source.subscribe({
        next: (ops) => {
          if (ops.length > 0) {
            try {
              rows = step(rows, docs, keys, ops as readonly Operation[], keyFromString, codec);
            } catch (err) {
              subscriber.error(err);
              return;
            }
          }
          subscriber.next(rows);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}

function firstToken(pointer: string): string | undefined {
  if (pointer === '') return undefined;
  const end = pointer.indexOf('/', 1);
  return unescapeKey(pointer.slice(1, end === -1 ? undefined : end));
}

function step<K, R>(
  rows: ReadonlyMap<K, R>,
  docs: Map<string, JsonValue>,
  keys: Map<string, K>,
  ops: readonly Operation[],
  keyFromString: (key: string) => K,
  codec: JsonCodec,
): ReadonlyMap<K, R> {
  // Build a document holding only the rows the operations touch.
  let touched = new Set<string>();
  let wholeDocument = false;
  for (const op of ops) {
    for (const pointer of 'from' in op ? [op.path, op.from] : [op.path]) {
      const token = firstToken(pointer);
      if (token === undefined) wholeDocument = true;
      else touched.add(token);
    }
  }
  if (wholeDocument) touched = new Set([...touched, ...docs.keys()]);
  const document: Record<string, JsonValue> = {};
  for (const token of touched) if (docs.has(token)) document[token] = docs.get(token)!;

  // Clones `document` (touched rows only), validates and applies; throws on failure.
  const result = jsonpatch.applyPatch(document, ops as Operation[], true, false).newDocument as Record<string, JsonValue>;
  if (wholeDocument) for (const token of Object.keys(result)) touched.add(token);

  const next = new Map(rows);
  const updates: Array<[string, K, JsonValue | undefined]> = [];
  for (const token of touched) {
    const key = keys.has(token) ? keys.get(token)! : keyFromString(token);
    if (Object.prototype.hasOwnProperty.call(result, token)) {
      next.set(key, codec.decode(result[token], `/${token}`) as R);
      updates.push([token, key, result[token]]);
    } else {
      next.delete(key);
      updates.push([token, key, undefined]);
    }
  }
  for (const [token, key, doc] of updates) {
    if (doc === undefined) {
      docs.delete(token);
      keys.delete(token);
    } else {
      docs.set(token, doc);
      keys.set(token, key);
    }
  }
  return next;
}
