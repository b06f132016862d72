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
  return {
    type,
    encode(value) {
      const writer = new BinaryWriter(64);
      serialize(writer, value);
      // getBuffer() is a view on the writer's growable buffer: copy it out.
      return writer.getBuffer().slice();
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

const BIG_BITS: Record<string, [bits: bigint, signed: boolean]> = {
  I64: [64n, true],
  U64: [64n, false],
  I128: [128n, true],
  U128: [128n, false],
  I256: [256n, true],
  U256: [256n, false],
};

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
 * Check `value` against `type` the way the SDK's serializer reads it;
 * returns the first mismatch, or `undefined` when the value fits.
 */
export function checkValue(type: AlgebraicTypeT, value: unknown, path: string, typespace?: Typespace): ValueMismatch | undefined {
  let ty = type;
  while (ty.tag === 'Ref') {
    const resolved = typespace?.types[ty.value];
    if (!resolved) return { path, expected: `a value of type ref ${ty.value} (no typespace)`, actual: value };
    ty = resolved;
  }
  const fail = (expected: string): ValueMismatch => ({ path, expected, actual: value });
  switch (ty.tag) {
    case 'Bool':
      return typeof value === 'boolean' ? undefined : fail('a boolean');
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32': {
      const [lo, hi] = INT_RANGES[ty.tag];
      return typeof value === 'number' && Number.isInteger(value) && value >= lo && value <= hi
        ? undefined
        : fail(`an integer ${ty.tag.toLowerCase()} (${lo}..${hi})`);
    }
    case 'I64':
    case 'U64':
    case 'I128':
    case 'U128':
    case 'I256':
    case 'U256': {
      const [bits, signed] = BIG_BITS[ty.tag];
      const lo = signed ? -(1n << (bits - 1n)) : 0n;
      const hi = signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
      return typeof value === 'bigint' && value >= lo && value <= hi ? undefined : fail(`a bigint ${ty.tag.toLowerCase()}`);
    }
    case 'F32':
    case 'F64':
      return typeof value === 'number' ? undefined : fail(`a number (${ty.tag.toLowerCase()})`);
    case 'String':
      return typeof value === 'string' ? undefined : fail('a string');
    case 'Array': {
      if (ty.value.tag === 'U8') return value instanceof Uint8Array ? undefined : fail('a Uint8Array');
      if (!Array.isArray(value)) return fail('an array');
      for (let i = 0; i < value.length; i++) {
        const m = checkValue(ty.value, value[i], `${path}[${i}]`, typespace);
        if (m) return m;
      }
      return undefined;
    }
    case 'Product': {
      const elements = ty.value.elements;
      if (elements.length === 0) return undefined; // unit: the serializer writes nothing
      if (value === null || typeof value !== 'object') {
        const special = elements.length === 1 ? SPECIAL_PRODUCTS[elements[0].name ?? ''] : undefined;
        return fail(special ?? 'an object');
      }
      for (const element of elements) {
        const name = element.name ?? '';
        const field = (value as Record<string, unknown>)[name];
        const special = elements.length === 1 ? SPECIAL_PRODUCTS[name] : undefined;
        const m = checkValue(element.algebraicType, field, special ? path : `${path}.${name}`, typespace);
        if (m) return special ? fail(special) : m;
      }
      return undefined;
    }
    case 'Sum': {
      const variants = ty.value.variants;
      if (isOption(ty)) {
        if (value === undefined || value === null) return undefined;
        return checkValue(variants[0].algebraicType, value, path, typespace);
      }
      if (variants.length === 2 && variants[0].name === 'ok' && variants[1].name === 'err') {
        if (value && typeof value === 'object' && 'ok' in value) {
          return checkValue(variants[0].algebraicType, (value as { ok: unknown }).ok, `${path}.ok`, typespace);
        }
        if (value && typeof value === 'object' && 'err' in value) {
          return checkValue(variants[1].algebraicType, (value as { err: unknown }).err, `${path}.err`, typespace);
        }
        return fail('a result ({ ok } or { err })');
      }
      const names = variants.map(v => v.name);
      const tag = value && typeof value === 'object' ? (value as { tag?: unknown }).tag : undefined;
      const variant = variants.find(v => v.name === tag);
      if (!variant) return fail(`one of the variants { tag: ${names.map(n => JSON.stringify(n)).join(' | ')} }`);
      return checkValue(variant.algebraicType, (value as { value?: unknown }).value, `${path}.value`, typespace);
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
