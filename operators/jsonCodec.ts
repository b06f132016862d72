/**
 * The reversible JSON encoding of row values used by {@link jsonPatchDelta}
 * and {@link applyDelta}. Pure functions, no streams.
 *
 * JSON values stand for themselves. Every value JSON cannot hold becomes a
 * *tagged object*, an object with exactly one key starting with `$`:
 *
 * | value                                   | encoding                                   |
 * | --------------------------------------- | ------------------------------------------ |
 * | `bigint` `123n`                         | `{ "$bigint": "123" }`                     |
 * | `NaN`, `Infinity`, `-Infinity`, `-0`    | `{ "$number": "NaN" }` (etc.)              |
 * | `undefined` (e.g. an empty `Option`)    | `{ "$undefined": true }`                   |
 * | `Uint8Array`                            | `{ "$bytes": "<base64>" }`                 |
 * | SpacetimeDB `Identity`                  | `{ "$identity": "<64 hex digits>" }`       |
 * | SpacetimeDB `ConnectionId`              | `{ "$connectionId": "<32 hex digits>" }`   |
 * | SpacetimeDB `Timestamp`                 | `{ "$timestamp": "<µs since epoch>" }`     |
 * | SpacetimeDB `TimeDuration`              | `{ "$timeDuration": "<µs>" }`              |
 * | a plain object whose only key starts with `$` | `{ "$object": { …its encoded entries } }` |
 *
 * The last row keeps the encoding unambiguous: a user object that looks like a
 * tag is wrapped, so decoding never mistakes data for a tag. Arrays and plain
 * objects are encoded element by element. Anything else (functions, symbols,
 * `Map`, `Date`, other class instances, the property name `__proto__`) raises
 * a {@link DeltaEncodingError}.
 *
 * @module
 */
import { ConnectionId, Identity, TimeDuration, Timestamp } from 'spacetimedb';
import { DeltaEncodingError } from './errors.ts';

/** A JSON value, as carried by the delta operations. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** True for an encoded object that is a tag (exactly one key, starting with `$`). */
export function isTag(value: JsonValue): value is { [key: string]: JsonValue } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  let count = 0;
  let first = '';
  for (const k in value) {
    if (count++ === 0) first = k;
    if (count > 1) return false;
  }
  return count === 1 && first.startsWith('$');
}

function tag(name: string, value: JsonValue): JsonValue {
  return { [name]: value };
}

/**
 * Encodes a row value as JSON.
 *
 * @param value The value to encode.
 * @param path JSON Pointer of the value, for error messages.
 * @returns Its JSON encoding (a fresh structure; `value` is not modified).
 * @throws {DeltaEncodingError} For values without an encoding.
 */
export function encodeValue(value: unknown, path = ''): JsonValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return tag('$number', Object.is(value, -0) ? '-0' : String(value));
    case 'bigint':
      return tag('$bigint', value.toString());
    case 'undefined':
      return tag('$undefined', true);
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out: JsonValue[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) out[i] = encodeValue(value[i], `${path}/${i}`);
        return out;
      }
      if (value instanceof Uint8Array) return tag('$bytes', bytesToBase64(value));
      if (isPlainObject(value)) {
        const out: { [key: string]: JsonValue } = {};
        let count = 0;
        let only = '';
        for (const k of Object.keys(value)) {
          if (k === '__proto__') throw new DeltaEncodingError("Property name '__proto__' cannot be encoded", { path, value });
          out[k] = encodeValue((value as Record<string, unknown>)[k], `${path}/${escapeKey(k)}`);
          only = k;
          count++;
        }
        return count === 1 && only.startsWith('$') ? tag('$object', out) : out;
      }
      return encodeSpacetimeValue(value, path);
    }
    default:
      throw new DeltaEncodingError(`A ${typeof value} cannot be encoded as JSON`, { path, value });
  }
}

function encodeSpacetimeValue(value: object, path: string): JsonValue {
  const v = value as Record<string, unknown>;
  if (typeof v.__identity__ === 'bigint') return tag('$identity', v.__identity__.toString(16).padStart(64, '0'));
  if (typeof v.__connection_id__ === 'bigint') return tag('$connectionId', v.__connection_id__.toString(16).padStart(32, '0'));
  if (typeof v.__timestamp_micros_since_unix_epoch__ === 'bigint') {
    return tag('$timestamp', v.__timestamp_micros_since_unix_epoch__.toString());
  }
  if (typeof v.__time_duration_micros__ === 'bigint') return tag('$timeDuration', v.__time_duration_micros__.toString());
  const name = (value.constructor as { name?: string } | undefined)?.name ?? 'object';
  throw new DeltaEncodingError(`A ${name} instance cannot be encoded as JSON`, { path, value });
}

/**
 * Decodes what {@link encodeValue} produced.
 *
 * @param json An encoded value.
 * @param path JSON Pointer of the value, for error messages.
 * @returns The original value: a structurally equal copy, with SpacetimeDB
 *   classes and `Uint8Array`s rebuilt as instances.
 * @throws {DeltaEncodingError} For an unknown or malformed tag.
 */
export function decodeValue(json: JsonValue, path = ''): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map((item, i) => decodeValue(item, `${path}/${i}`));
  if (isTag(json)) return decodeTag(json, path);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(json)) out[k] = decodeValue(json[k], `${path}/${escapeKey(k)}`);
  return out;
}

function decodeTag(json: { [key: string]: JsonValue }, path: string): unknown {
  const [[name, body]] = Object.entries(json);
  const fail = (): never => {
    throw new DeltaEncodingError(`Malformed tagged value ${name}`, { path, value: json });
  };
  const str = () => (typeof body === 'string' ? body : fail());
  const big = (radix: 10 | 16) => {
    const s = str();
    if (!(radix === 16 ? /^[0-9a-f]+$/i : /^-?[0-9]+$/).test(s)) fail();
    return BigInt(radix === 16 ? `0x${s}` : s);
  };
  switch (name) {
    case '$bigint':
      return big(10);
    case '$number': {
      const s = str();
      if (s === '-0') return -0;
      if (s === 'NaN' || s === 'Infinity' || s === '-Infinity') return Number(s);
      return fail();
    }
    case '$undefined':
      return undefined;
    case '$bytes':
      return base64ToBytes(str());
    case '$identity':
      return new Identity(big(16));
    case '$connectionId':
      return new ConnectionId(big(16));
    case '$timestamp':
      return new Timestamp(big(10));
    case '$timeDuration':
      return new TimeDuration(big(10));
    case '$object': {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return fail();
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(body)) out[k] = decodeValue(body[k], `${path}/$object/${escapeKey(k)}`);
      return out;
    }
    default:
      return fail();
  }
}

/** Escapes one JSON Pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapeKey(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Reverses {@link escapeKey}: `~1` → `/`, then `~0` → `~`. */
export function unescapeKey(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
