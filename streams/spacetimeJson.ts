/**
 * The SpacetimeDB side of the row encoding the delta operators use: the
 * extension table that writes the SDK's `Identity`, `ConnectionId`,
 * `Timestamp` and `TimeDuration` as tagged JSON and rebuilds them, and the
 * `jsonPatchDelta` / `applyDelta` / `encodeValue` / `decodeValue` the
 * `stdb-rx` entry exports, which use it unless given another `codec`.
 *
 * It lives here, not in `operators/`, because it needs the SDK's classes to
 * decode: the operators stay free of any SpacetimeDB import and take the
 * table as a parameter.
 *
 * | value          | encoding                                 |
 * | -------------- | ---------------------------------------- |
 * | `Identity`     | `{ "$identity": "<64 hex digits>" }`     |
 * | `ConnectionId` | `{ "$connectionId": "<32 hex digits>" }` |
 * | `Timestamp`    | `{ "$timestamp": "<µs since epoch>" }`   |
 * | `TimeDuration` | `{ "$timeDuration": "<µs>" }`            |
 *
 * Values are recognised by the field the SDK keeps them in (`__identity__`
 * and so on), so instances from a second copy of the SDK encode too.
 *
 * @module
 */
import type { OperatorFunction } from 'rxjs';
import type { Operation } from 'fast-json-patch';
import { ConnectionId, Identity, TimeDuration, Timestamp } from 'spacetimedb';
import { applyDelta as applyDeltaWith, type ApplyDeltaConfig } from '../operators/applyDelta.ts';
import { jsonCodec, type JsonCodec, type JsonValue, type TaggedType } from '../operators/jsonCodec.ts';
import { jsonPatchDelta as jsonPatchDeltaWith, type DeltaOperation, type JsonPatchDeltaConfig } from '../operators/jsonPatchDelta.ts';

/** One SpacetimeDB class kept as a bigint in a single field, written as a string in `radix`. */
function bigintField<T extends object>(tag: string, field: string, radix: 10 | 16, digits: number, make: (x: bigint) => T): TaggedType<T> {
  const valid = radix === 16 ? /^[0-9a-f]+$/i : /^-?[0-9]+$/;
  return {
    tag,
    is: (value): value is T => typeof (value as Record<string, unknown>)[field] === 'bigint',
    encode: (value) => ((value as Record<string, unknown>)[field] as bigint).toString(radix).padStart(digits, '0'),
    decode: (body) => {
      if (typeof body !== 'string' || !valid.test(body)) throw new TypeError(`not a ${tag} body`);
      return make(BigInt(radix === 16 ? `0x${body}` : body));
    },
  };
}

/** The SpacetimeDB types as tagged JSON: an extension table for `jsonCodec`. */
export const spacetimeTypes: readonly TaggedType<any>[] = [
  bigintField('$identity', '__identity__', 16, 64, (x) => new Identity(x)),
  bigintField('$connectionId', '__connection_id__', 16, 32, (x) => new ConnectionId(x)),
  bigintField('$timestamp', '__timestamp_micros_since_unix_epoch__', 10, 0, (x) => new Timestamp(x)),
  bigintField('$timeDuration', '__time_duration_micros__', 10, 0, (x) => new TimeDuration(x)),
];

/** The built-in encoding plus the SpacetimeDB types: the default codec of the `stdb-rx` entry. */
export const spacetimeJson: JsonCodec = /* @__PURE__ */ jsonCodec(spacetimeTypes);

/**
 * `jsonPatchDelta` from `stdb-rx/operators`, encoding with {@link spacetimeJson}
 * unless `config.codec` says otherwise. See that operator for the operations it emits.
 */
export function jsonPatchDelta<K, R>(config: JsonPatchDeltaConfig<K> = {}): OperatorFunction<ReadonlyMap<K, R>, readonly DeltaOperation[]> {
  return jsonPatchDeltaWith<K, R>({ ...config, codec: config.codec ?? spacetimeJson });
}

/**
 * `applyDelta` from `stdb-rx/operators`, decoding with {@link spacetimeJson}
 * unless `config.codec` says otherwise.
 */
export function applyDelta<K = string, R = unknown>(
  config: ApplyDeltaConfig<K> = {},
): OperatorFunction<readonly DeltaOperation[] | readonly Operation[], ReadonlyMap<K, R>> {
  return applyDeltaWith<K, R>({ ...config, codec: config.codec ?? spacetimeJson });
}

/** {@link spacetimeJson}'s `encode`: a row value, SpacetimeDB types included, as JSON. */
export function encodeValue(value: unknown, path = ''): JsonValue {
  return spacetimeJson.encode(value, path);
}

/** {@link spacetimeJson}'s `decode`. */
export function decodeValue(json: JsonValue, path = ''): unknown {
  return spacetimeJson.decode(json, path);
}
