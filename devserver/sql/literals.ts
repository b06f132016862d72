/**
 * Literal coercion. Like SpacetimeDB, a literal has no type of its own: its
 * source text is parsed as the type of the column it is compared with, so
 * `'42'` works for a `u32` and `0x…` or `'c200…'` for an `Identity`. Booleans
 * are the exception and only meet `Bool` columns.
 */
import type { AlgebraicType, Identity } from 'spacetimedb';
import { SqlError } from './errors.ts';
import type { Literal } from './parse.ts';
import { bytesToPrimitive, formatType, INT_BOUNDS, type Kind, type Primitive } from './types.ts';

/** The literal as it was written, for error messages. */
export function literalText(lit: Literal): string {
  switch (lit.kind) {
    case 'bool':
      return lit.value ? 'TRUE' : 'FALSE';
    case 'number':
      return lit.text;
    case 'string':
      return `'${lit.value.replace(/'/g, "''")}'`;
    case 'hex':
      return `0x${lit.digits}`;
    case 'sender':
      return ':sender';
  }
}

/**
 * Coerces `lit` to the comparable primitive of a column of type `ty`
 * (of comparable kind `kind`). Throws a {@link SqlError} naming the literal,
 * the type and the column when it does not fit.
 */
export function coerceLiteral(lit: Literal, kind: Kind, ty: AlgebraicType, column: string, sender: Identity): Primitive {
  const fail = (why?: string) =>
    new SqlError(
      `the literal ${literalText(lit)} cannot be parsed as type ${formatType(ty)} (column ${column})${why ? `: ${why}` : ''}`,
      lit.pos,
    );
  if (lit.kind === 'bool') {
    if (kind !== 'bool') {
      throw new SqlError(`type mismatch: column ${column} has type ${formatType(ty)}, the literal ${literalText(lit)} is Bool`, lit.pos);
    }
    return lit.value;
  }
  if (lit.kind === 'sender') {
    if (kind !== 'identity') {
      throw new SqlError(`type mismatch: column ${column} has type ${formatType(ty)}, :sender is an Identity`, lit.pos);
    }
    return sender.__identity__;
  }
  const text = lit.kind === 'number' ? lit.text : lit.kind === 'string' ? lit.value : lit.digits;
  switch (kind) {
    case 'bool':
      throw fail('use TRUE or FALSE');
    case 'int':
    case 'bigint': {
      const n = parseInteger(text);
      if (n === undefined) throw fail('not an integer');
      const [min, max] = INT_BOUNDS[ty.tag];
      if (n < min || n > max) throw fail('out of range');
      return kind === 'int' ? Number(n) : n;
    }
    case 'f32':
    case 'f64': {
      if (!DECIMAL.test(text)) throw fail('not a number');
      const x = kind === 'f32' ? Math.fround(Number(text)) : Number(text);
      if (!Number.isFinite(x)) throw fail('out of range');
      return x;
    }
    case 'string':
      return text;
    case 'bytes': {
      const hex = stripHexPrefix(text, lit);
      if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) {
        if (lit.kind === 'string' && /^\{"0":/.test(text)) {
          throw fail('byte arrays take hex (0x… or X\'…\'); this looks like the JSON the SDK query builder renders for a Uint8Array, which SpacetimeDB rejects too');
        }
        throw fail('expected an even number of hex digits');
      }
      return bytesToPrimitive(Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16)));
    }
    case 'identity':
      return parseFixedHex(stripHexPrefix(text, lit), 64) ?? throwError(fail('expected 64 hex digits'));
    case 'connectionId':
      return parseFixedHex(stripHexPrefix(text, lit), 32) ?? throwError(fail('expected 32 hex digits'));
    case 'uuid': {
      const dashed = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text);
      const hex = dashed ? text.replace(/-/g, '') : stripHexPrefix(text, lit);
      return parseFixedHex(hex, 32) ?? throwError(fail('expected 32 hex digits or a dashed UUID'));
    }
    case 'timestamp': {
      if (lit.kind !== 'string') throw fail('timestamps are written as RFC 3339 strings');
      return parseTimestampMicros(text) ?? throwError(fail('expected an RFC 3339 timestamp like 2025-01-31T12:00:00.000000Z'));
    }
  }
}

const throwError = (e: Error): never => {
  throw e;
};

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Exact decimal → bigint (`1e3` and `2.0` are integers, `2.5` is not). */
export function parseInteger(text: string): bigint | undefined {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign, whole, frac = '', expText = '0'] = m;
  let digits = whole + frac;
  let exp = Number(expText) - frac.length;
  if (exp < 0) {
    const dropped = digits.slice(digits.length + exp);
    if (/[^0]/.test(dropped)) return undefined;
    digits = digits.slice(0, digits.length + exp);
    exp = 0;
  }
  // Past 10^80 nothing fits even a u256; refuse before building a huge bigint.
  if (digits.replace(/^0+/, '').length + exp > 80) return 2n ** 300n * (sign === '-' ? -1n : 1n);
  const n = BigInt(digits || '0') * 10n ** BigInt(exp);
  return sign === '-' ? -n : n;
}

/** A string literal may carry the `0x` prefix a hex literal loses in the tokenizer. */
function stripHexPrefix(text: string, lit: Literal): string {
  return lit.kind === 'string' && /^0[xX]/.test(text) ? text.slice(2) : text;
}

/** Big-endian hex of exactly `digits` digits, as `Identity.toHexString()` writes it. */
function parseFixedHex(hex: string, digits: number): bigint | undefined {
  return hex.length === digits && /^[0-9a-fA-F]+$/.test(hex) ? BigInt(`0x${hex}`) : undefined;
}

/**
 * RFC 3339 → microseconds since the Unix epoch, keeping sub-millisecond digits
 * (`Date.parse` would drop them): `2025-01-31T12:00:00.123456Z`, `…+02:00`.
 */
export function parseTimestampMicros(text: string): bigint | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', , sign, oh, om] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // unlike Date.UTC, keeps years 0–99 as written
  if (date.getUTCDate() !== day) return undefined; // 2025-02-30
  const ms = date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000;
  const offsetMinutes = sign ? (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) : 0;
  const micros = BigInt(ms - offsetMinutes * 60_000) * 1000n + BigInt((frac + '000000').slice(0, 6));
  return micros;
}
