/**
 * BSATN encoding of reducer arguments and table rows with the bindings' own
 * types, plus the strict value check that runs before encoding.
 *
 * The SDK's serializers are fast and lax: a string where an f64 belongs
 * becomes NaN, a number where a u64 belongs throws an opaque "Cannot mix
 * BigInt" error. The outbox must refuse bad arguments at once with a clear
 * error and never store them, so {@link checkValue} walks the algebraic type
 * first and names the exact path that does not fit.
 */
import {
  BinaryReader,
  BinaryWriter,
  ProductType,
  type AlgebraicType as AlgebraicTypeT,
  type ProductType as ProductTypeT,
} from 'spacetimedb';
import { InvalidArgsError } from './storageErrors.ts';

/** A typespace for `Ref` types (bindings from `spacetime generate` inline their types; modules may not). */
export interface Typespace {
  types: AlgebraicTypeT[];
}

/** Encodes and decodes one product type (a reducer's parameters or a table's row). */
export interface ProductCodec<T = Record<string, unknown>> {
  readonly type: ProductTypeT;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Build a codec from the bindings' product type. */
export function productCodec<T = Record<string, unknown>>(type: ProductTypeT, typespace?: Typespace): ProductCodec<T> {
  const serialize = ProductType.makeSerializer(type, typespace);
  const deserialize = ProductType.makeDeserializer(type, typespace);
  // One writer for every encode (as the SDK keeps one for reducer arguments): a
  // fresh one per call allocated a buffer each time. An encode started inside
  // another (a getter on the value calling back in) gets a writer of its own.
  const shared = new BinaryWriter(64);
  let busy = false;
  return {
    type,
    encode(value) {
      const writer = busy ? new BinaryWriter(64) : shared;
      const outer = !busy;
      busy = true;
      try {
        writer.clear();
        serialize(writer, value);
        // getBuffer() is a view on the writer's growable buffer: copy it out.
        return writer.getBuffer().slice();
      } finally {
        if (outer) busy = false;
      }
    },
    decode(bytes) {
      const reader = new BinaryReader(bytes);
      const value = deserialize(reader) as T;
      if (reader.remaining !== 0) {
        throw new RangeError(`${reader.remaining} trailing bytes after a BSATN value`);
      }
      return value;
    },
  };
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** A mismatch found by {@link checkValue}. */
export interface ValueMismatch {
  path: string;
  expected: string;
  actual: unknown;
}

const INT_RANGES: Record<string, [number, number]> = {
  I8: [-128, 127],
  U8: [0, 255],
  I16: [-32768, 32767],
  U16: [0, 65535],
  I32: [-2147483648, 2147483647],
  U32: [0, 4294967295],
};

/** The bigint types' ranges, computed once (a shift of bigints allocates). */
const BIG_RANGES: Record<string, [lo: bigint, hi: bigint]> = {};
for (const [tag, bits, signed] of [
  ['I64', 64n, true],
  ['U64', 64n, false],
  ['I128', 128n, true],
  ['U128', 128n, false],
  ['I256', 256n, true],
  ['U256', 256n, false],
] as const) {
  BIG_RANGES[tag] = signed ? [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n] : [0n, (1n << bits) - 1n];
}

/** The SDK's special single-field products and what the field holds. */
const SPECIAL_PRODUCTS: Record<string, string> = {
  __identity__: 'an Identity',
  __connection_id__: 'a ConnectionId',
  __timestamp_micros_since_unix_epoch__: 'a Timestamp',
  __time_duration_micros__: 'a TimeDuration',
  __uuid__: 'a Uuid',
};

function isOption(ty: AlgebraicTypeT): boolean {
  return ty.tag === 'Sum' && ty.value.variants.length === 2 && ty.value.variants[0].name === 'some' && ty.value.variants[1].name === 'none';
}

/**
 * A mismatch found below the value checked: the path from there, as
 * segments innermost first (added on the way out, so a value that fits
 * builds no path strings), what was expected and what was found.
 */
interface Found {
  readonly segments: string[];
  readonly expected: string;
  readonly actual: unknown;
}

const found = (expected: string, actual: unknown): Found => ({ segments: [], expected, actual });

/**
 * Check `value` against `type` the way the SDK's serializer reads it;
 * returns the first mismatch, or `undefined` when the value fits.
 */
export function checkValue(type: AlgebraicTypeT, value: unknown, path: string, typespace?: Typespace): ValueMismatch | undefined {
  const f = mismatch(type, value, typespace);
  if (f === undefined) return undefined;
  let at = path;
  for (let i = f.segments.length - 1; i >= 0; i--) at += f.segments[i];
  return { path: at, expected: f.expected, actual: f.actual };
}

function mismatch(type: AlgebraicTypeT, value: unknown, typespace: Typespace | undefined): Found | undefined {
  let ty = type;
  while (ty.tag === 'Ref') {
    const resolved = typespace?.types[ty.value];
    if (!resolved) return found(`a value of type ref ${ty.value} (no typespace)`, value);
    ty = resolved;
  }
  switch (ty.tag) {
    case 'Bool':
      return typeof value === 'boolean' ? undefined : found('a boolean', value);
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32': {
      const [lo, hi] = INT_RANGES[ty.tag];
      return typeof value === 'number' && Number.isInteger(value) && value >= lo && value <= hi
        ? undefined
        : found(`an integer ${ty.tag.toLowerCase()} (${lo}..${hi})`, value);
    }
    case 'I64':
    case 'U64':
    case 'I128':
    case 'U128':
    case 'I256':
    case 'U256': {
      const [lo, hi] = BIG_RANGES[ty.tag];
      return typeof value === 'bigint' && value >= lo && value <= hi ? undefined : found(`a bigint ${ty.tag.toLowerCase()}`, value);
    }
    case 'F32':
    case 'F64':
      return typeof value === 'number' ? undefined : found(`a number (${ty.tag.toLowerCase()})`, value);
    case 'String':
      return typeof value === 'string' ? undefined : found('a string', value);
    case 'Array': {
      if (ty.value.tag === 'U8') return value instanceof Uint8Array ? undefined : found('a Uint8Array', value);
      if (!Array.isArray(value)) return found('an array', value);
      for (let i = 0; i < value.length; i++) {
        const m = mismatch(ty.value, value[i], typespace);
        if (m) return (m.segments.push(`[${i}]`), m);
      }
      return undefined;
    }
    case 'Product': {
      const elements = ty.value.elements;
      if (elements.length === 0) return undefined; // unit: the serializer writes nothing
      if (value === null || typeof value !== 'object') {
        const special = elements.length === 1 ? SPECIAL_PRODUCTS[elements[0].name ?? ''] : undefined;
        return found(special ?? 'an object', value);
      }
      for (let i = 0; i < elements.length; i++) {
        const element = elements[i];
        const name = element.name ?? '';
        const m = mismatch(element.algebraicType, (value as Record<string, unknown>)[name], typespace);
        if (m === undefined) continue;
        const special = elements.length === 1 ? SPECIAL_PRODUCTS[name] : undefined;
        // The SDK's special products (an Identity and the like) are named as a whole.
        return special ? found(special, value) : (m.segments.push(`.${name}`), m);
      }
      return undefined;
    }
    case 'Sum': {
      const variants = ty.value.variants;
      if (isOption(ty)) {
        if (value === undefined || value === null) return undefined;
        return mismatch(variants[0].algebraicType, value, typespace);
      }
      if (variants.length === 2 && variants[0].name === 'ok' && variants[1].name === 'err') {
        if (value && typeof value === 'object' && 'ok' in value) {
          const m = mismatch(variants[0].algebraicType, (value as { ok: unknown }).ok, typespace);
          return m && (m.segments.push('.ok'), m);
        }
        if (value && typeof value === 'object' && 'err' in value) {
          const m = mismatch(variants[1].algebraicType, (value as { err: unknown }).err, typespace);
          return m && (m.segments.push('.err'), m);
        }
        return found('a result ({ ok } or { err })', value);
      }
      const tag = value && typeof value === 'object' ? (value as { tag?: unknown }).tag : undefined;
      let variant: (typeof variants)[number] | undefined;
      for (let i = 0; i < variants.length && variant === undefined; i++) if (variants[i].name === tag) variant = variants[i];
      if (!variant) return found(`one of the variants { tag: ${variants.map(v => JSON.stringify(v.name)).join(' | ')} }`, value);
      const m = mismatch(variant.algebraicType, (value as { value?: unknown }).value, typespace);
      return m && (m.segments.push('.value'), m);
    }
  }
}

/**
 * Check and encode a reducer's arguments; throws {@link InvalidArgsError}
 * naming the first mismatching path (or wrapping a serializer failure).
 */
export function encodeArgs(reducer: string, codec: ProductCodec, args: unknown, typespace?: Typespace): Uint8Array {
  const mismatch = checkValue({ tag: 'Product', value: codec.type }, args, 'args', typespace);
  if (mismatch) throw new InvalidArgsError(reducer, mismatch.path, mismatch.expected, mismatch.actual);
  try {
    return codec.encode(args as Record<string, unknown>);
  } catch (error) {
    throw new InvalidArgsError(reducer, 'args', 'serializable with the bindings\' types', args, error);
  }
}
