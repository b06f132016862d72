/**
 * The reversible JSON encoding of row values used by {@link jsonPatchDelta}
 * and {@link applyDelta}. Pure functions, no streams, and no knowledge of any
 * database: kinds of values the encoding does not know are added by the
 * caller as an extension table ({@link TaggedType}s passed to
 * {@link jsonCodec}).
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
 * | an instance an extension claims         | `{ "<its tag>": <what it encodes> }`       |
 * | a plain object whose only key starts with `$` | `{ "$object": { …its encoded entries } }` |
 *
 * The last row keeps the encoding unambiguous: a user object that looks like a
 * tag is wrapped, so decoding never mistakes data for a tag. Arrays and plain
 * objects are encoded element by element. Anything else (functions, symbols,
 * `Map`, `Date`, instances of classes no extension claims, the property name
 * `__proto__`) raises a {@link DeltaEncodingError}.
 *
 * The SpacetimeDB types (`Identity`, `ConnectionId`, `Timestamp`,
 * `TimeDuration`) are such an extension; it lives with the client
 * (`streams/spacetimeJson.ts`, exported from `stdb-rx` as `spacetimeJson`),
 * so this folder never imports the SDK.
 *
 * @module
 */
import { DeltaEncodingError } from './errors.ts';

/** A JSON value, as carried by the delta operations. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * One kind of value the built-in encoding does not know, written as the
 * tagged object `{ [tag]: encode(value) }`. Only objects that are neither
 * arrays, plain objects nor `Uint8Array`s are offered to {@link TaggedType.is}.
 *
 * ```ts
 * const dates: TaggedType<Date> = {
 *   tag: '$date',
 *   is: (v): v is Date => v instanceof Date,
 *   encode: (d) => d.toISOString(),
 *   decode: (body) => new Date(body as string),
 * };
 * snapshots$.pipe(jsonPatchDelta({ codec: jsonCodec([dates]) }));
 * ```
 */
export interface TaggedType<T = unknown> {
  /** The key of the tagged object: `$` followed by a name the built-in tags do not use. */
  readonly tag: string;
  /** True for the values this entry encodes. The first entry that claims a value wins. */
  is(value: object): value is T & object;
  /** The body of the tagged object. */
  encode(value: T): JsonValue;
  /** Rebuilds the value from a body; throws on a malformed one (reported as a {@link DeltaEncodingError}). */
  decode(body: JsonValue): T;
}

/** An encoding of row values as JSON and back, built by {@link jsonCodec}. */
export interface JsonCodec {
  /**
   * Encodes a row value as JSON.
   * @param value The value to encode.
   * @param path JSON Pointer of the value, for error messages.
   * @returns Its JSON encoding (a fresh structure; `value` is not modified).
   * @throws {DeltaEncodingError} For values without an encoding.
   */
  encode(value: unknown, path?: string): JsonValue;
  /**
   * Decodes what {@link JsonCodec.encode} produced.
   * @param json An encoded value.
   * @param path JSON Pointer of the value, for error messages.
   * @returns The original value: a structurally equal copy, with `Uint8Array`s
   *   and the extensions' values rebuilt as instances.
   * @throws {DeltaEncodingError} For an unknown or malformed tag.
   */
  decode(json: JsonValue, path?: string): unknown;
}

const BUILT_IN_TAGS = new Set(['$bigint', '$number', '$undefined', '$bytes', '$object']);

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
 * Builds the codec for the built-in encoding plus `extensions`.
 *
 * @param extensions Extra tagged types, tried in order for class instances.
 * @returns The codec; pass it as `codec` to {@link jsonPatchDelta} and {@link applyDelta}.
 * @throws {TypeError} For a tag that does not start with `$`, is built in, or is given twice.
 */
export function jsonCodec(extensions: readonly TaggedType<any>[] = []): JsonCodec {
  const byTag = new Map<string, TaggedType<unknown>>();
  for (const ext of extensions) {
    if (!ext.tag.startsWith('$') || ext.tag.length < 2) throw new TypeError(`A tag starts with '$' and names something: '${ext.tag}'`);
    if (BUILT_IN_TAGS.has(ext.tag) || byTag.has(ext.tag)) throw new TypeError(`Tag '${ext.tag}' is already taken`);
    byTag.set(ext.tag, ext);
  }
  const list = [...byTag.values()];

  const encode = (value: unknown, path = ''): JsonValue => {
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
          for (let i = 0; i < value.length; i++) out[i] = encode(value[i], `${path}/${i}`);
          return out;
        }
        if (value instanceof Uint8Array) return tag('$bytes', bytesToBase64(value));
        if (isPlainObject(value)) {
          const out: { [key: string]: JsonValue } = {};
          let count = 0;
          let only = '';
          for (const k of Object.keys(value)) {
            if (k === '__proto__') throw new DeltaEncodingError("Property name '__proto__' cannot be encoded", { path, value });
            out[k] = encode((value as Record<string, unknown>)[k], `${path}/${escapeKey(k)}`);
            only = k;
            count++;
          }
          return count === 1 && only.startsWith('$') ? tag('$object', out) : out;
        }
        for (const ext of list) if (ext.is(value)) return tag(ext.tag, ext.encode(value));
        const name = (value.constructor as { name?: string } | undefined)?.name ?? 'object';
        throw new DeltaEncodingError(`A ${name} instance cannot be encoded as JSON`, { path, value });
      }
      default:
        throw new DeltaEncodingError(`A ${typeof value} cannot be encoded as JSON`, { path, value });
    }
  };

  const decode = (json: JsonValue, path = ''): unknown => {
    if (json === null || typeof json !== 'object') return json;
    if (Array.isArray(json)) return json.map((item, i) => decode(item, `${path}/${i}`));
    if (isTag(json)) return decodeTag(json, path);
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(json)) out[k] = decode(json[k], `${path}/${escapeKey(k)}`);
    return out;
  };

  const decodeTag = (json: { [key: string]: JsonValue }, path: string): unknown => {
    const [[name, body]] = Object.entries(json);
    const fail = (): never => {
      throw new DeltaEncodingError(`Malformed tagged value ${name}`, { path, value: json });
    };
    const str = () => (typeof body === 'string' ? body : fail());
    switch (name) {
      case '$bigint': {
        const s = str();
        return /^-?[0-9]+$/.test(s) ? BigInt(s) : fail();
      }
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
      case '$object': {
        if (body === null || typeof body !== 'object' || Array.isArray(body)) return fail();
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(body)) out[k] = decode(body[k], `${path}/$object/${escapeKey(k)}`);
        return out;
      }
    }
    const ext = byTag.get(name);
    if (!ext) return fail();
    try {
      return ext.decode(body);
    } catch {
      return fail();
    }
  };

  return { encode, decode };
}

/** The built-in encoding alone: what the operators use unless given a `codec`. */
export const plainJson: JsonCodec = /* @__PURE__ */ jsonCodec();

/** {@link plainJson}'s `encode`. */
export function encodeValue(value: unknown, path = ''): JsonValue {
  return plainJson.encode(value, path);
}

/** {@link plainJson}'s `decode`. */
export function decodeValue(json: JsonValue, path = ''): unknown {
  return plainJson.decode(json, path);
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
