/**
 * What the compiler knows about column types: which SQL values a column
 * accepts, how its decoded value turns into a comparable JS primitive, and
 * how SpacetimeDB spells the type in error messages.
 */
import type { AlgebraicType } from 'spacetimedb';

/**
 * The comparable kinds of column. SpacetimeDB compares bools, integers,
 * floats, strings, byte arrays, identities, connection ids and timestamps
 * (its `op_supports_type`); UUIDs are added because the SDK's query builder
 * emits UUID literals. Every other type (sums, options, other products and
 * arrays, `TimeDuration`) takes no comparison at all.
 */
export type Kind =
  | 'bool'
  | 'int' // ≤ 32 bits: JS number
  | 'bigint' // 64, 128, 256 bits: JS bigint
  | 'f32'
  | 'f64'
  | 'string'
  | 'bytes'
  | 'identity'
  | 'connectionId'
  | 'timestamp'
  | 'uuid';

/** A value every comparison works on with `===`, `<`, … (strings need {@link compareStrings}). */
export type Primitive = number | bigint | string | boolean;

const SPECIAL_PRODUCTS: Record<string, Kind | 'duration'> = {
  __identity__: 'identity',
  __connection_id__: 'connectionId',
  __timestamp_micros_since_unix_epoch__: 'timestamp',
  __uuid__: 'uuid',
  __time_duration_micros__: 'duration',
};

/** Integer bounds per type tag (inclusive). */
export const INT_BOUNDS: Record<string, readonly [bigint, bigint]> = {
  I8: [-(2n ** 7n), 2n ** 7n - 1n],
  U8: [0n, 2n ** 8n - 1n],
  I16: [-(2n ** 15n), 2n ** 15n - 1n],
  U16: [0n, 2n ** 16n - 1n],
  I32: [-(2n ** 31n), 2n ** 31n - 1n],
  U32: [0n, 2n ** 32n - 1n],
  I64: [-(2n ** 63n), 2n ** 63n - 1n],
  U64: [0n, 2n ** 64n - 1n],
  I128: [-(2n ** 127n), 2n ** 127n - 1n],
  U128: [0n, 2n ** 128n - 1n],
  I256: [-(2n ** 255n), 2n ** 255n - 1n],
  U256: [0n, 2n ** 256n - 1n],
};

/** The comparable kind of a type, or `undefined` when it takes no comparison. */
export function kindOf(ty: AlgebraicType): Kind | undefined {
  switch (ty.tag) {
    case 'Bool':
      return 'bool';
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32':
      return 'int';
    case 'I64':
    case 'U64':
    case 'I128':
    case 'U128':
    case 'I256':
    case 'U256':
      return 'bigint';
    case 'F32':
      return 'f32';
    case 'F64':
      return 'f64';
    case 'String':
      return 'string';
    case 'Array':
      return ty.value.tag === 'U8' ? 'bytes' : undefined;
    case 'Product': {
      const els = ty.value.elements;
      if (els.length !== 1 || !els[0].name) return undefined;
      const special = SPECIAL_PRODUCTS[els[0].name];
      return special === 'duration' ? undefined : special;
    }
    default:
      return undefined;
  }
}

const latin1 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

/**
 * Byte strings compare as latin1 strings: one char per byte, so `===` is byte
 * equality and `<` is lexicographic byte order.
 */
export const bytesToPrimitive = latin1;

/** Turns a decoded column value of this kind into its comparable primitive. */
export function primitiveGetter(kind: Kind, field: string): (row: Readonly<Record<string, unknown>>) => Primitive {
  switch (kind) {
    case 'bytes':
      return (row) => latin1(row[field] as Uint8Array);
    case 'identity':
      return (row) => (row[field] as { __identity__: bigint }).__identity__;
    case 'connectionId':
      return (row) => (row[field] as { __connection_id__: bigint }).__connection_id__;
    case 'timestamp':
      return (row) =>
        (row[field] as { __timestamp_micros_since_unix_epoch__: bigint }).__timestamp_micros_since_unix_epoch__;
    case 'uuid':
      return (row) => (row[field] as { __uuid__: bigint }).__uuid__;
    default:
      return (row) => row[field] as Primitive;
  }
}

/**
 * Orders strings by code point, as SpacetimeDB (UTF-8 byte order) does. JS
 * `<` compares UTF-16 units, which disagrees only when a surrogate meets a
 * unit at or above U+E000.
 */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys && (xs ? y >= 0xe000 : x >= 0xe000)) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** Structural type equality (join columns and column-to-column comparisons need it). */
export function sameType(a: AlgebraicType, b: AlgebraicType): boolean {
  if (a.tag !== b.tag) return false;
  switch (a.tag) {
    case 'Array':
      return sameType(a.value, (b as typeof a).value);
    case 'Ref':
      return a.value === (b as typeof a).value;
    case 'Product':
    case 'Sum': {
      const xs = a.tag === 'Product' ? a.value.elements : a.value.variants;
      const ys = b.tag === 'Product' ? b.value.elements : (b as typeof a & { tag: 'Sum' }).value.variants;
      return xs.length === ys.length && xs.every((x, i) => x.name === ys[i].name && sameType(x.algebraicType, ys[i].algebraicType));
    }
    default:
      return true;
  }
}

/** SpacetimeDB-like spelling of a type for error messages. */
export function formatType(ty: AlgebraicType): string {
  switch (ty.tag) {
    case 'Array':
      return `Array<${formatType(ty.value)}>`;
    case 'Ref':
      return `Ref(${ty.value})`;
    case 'Product': {
      const els = ty.value.elements;
      if (els.length === 1 && els[0].name && SPECIAL_PRODUCTS[els[0].name]) {
        return {
          identity: 'Identity',
          connectionId: 'ConnectionId',
          timestamp: 'Timestamp',
          uuid: 'Uuid',
          duration: 'TimeDuration',
        }[SPECIAL_PRODUCTS[els[0].name] as string]!;
      }
      return `(${els.map((e) => `${e.name ?? '_'}: ${formatType(e.algebraicType)}`).join(', ')})`;
    }
    case 'Sum': {
      const vs = ty.value.variants;
      if (vs.length === 2 && vs[0].name === 'some' && vs[1].name === 'none') {
        return `Option<${formatType(vs[0].algebraicType)}>`;
      }
      return `(${vs.map((v) => `${v.name ?? '_'}: ${formatType(v.algebraicType)}`).join(' | ')})`;
    }
    default:
      return ty.tag;
  }
}
