/**
 * SpacetimeDB's JSON encoding of typed values ("SATS JSON"), as its HTTP API
 * speaks it: products as arrays (values) or objects (typed definitions),
 * sums as `{"Variant": payload}`, options as `{"some": x}` / `{"none": []}`,
 * the unit value as `[]`, byte arrays as hex strings, integers up to 128 bits
 * as JSON numbers of any size, 256-bit ones as `"0x…"` strings.
 */
import { Identity, ConnectionId, type AlgebraicType } from 'spacetimedb';
import { INT_BOUNDS } from './sql/types.ts';

type Types = readonly AlgebraicType[];

/** A JSON value could not be read as the type asked for. */
export class SatsJsonError extends Error {
  override readonly name = 'SatsJsonError';
  constructor(
    message: string,
    readonly info: { readonly path: string },
  ) {
    super(path(info.path, message));
  }
}

const path = (p: string, m: string) => (p ? `${p}: ${m}` : m);

function resolve(ty: AlgebraicType, types: Types): AlgebraicType {
  let t = ty;
  for (let i = 0; t.tag === 'Ref' && i < 64; i++) t = types[t.value];
  return t;
}

function isOption(ty: AlgebraicType & { tag: 'Sum' }): boolean {
  const v = ty.value.variants;
  return v.length === 2 && v[0].name === 'some' && v[1].name === 'none';
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export interface ToJsonOptions {
  /** Products as objects with snake_case keys (typed definitions) instead of arrays (row values). @default false */
  readonly named?: boolean;
}

/** JSON text of `value` of type `ty` (text, so 64- to 256-bit integers keep every digit). */
export function toSatsJson(ty: AlgebraicType, value: unknown, types: Types = [], opts: ToJsonOptions = {}): string {
  const t = resolve(ty, types);
  switch (t.tag) {
    case 'Product': {
      const els = t.value.elements;
      if (els.length === 0) return '[]';
      const v = value as Record<string, unknown>;
      if (opts.named) {
        return `{${els.map((e) => `${JSON.stringify(snake(e.name ?? ''))}:${toSatsJson(e.algebraicType, v[e.name ?? ''], types, opts)}`).join(',')}}`;
      }
      return `[${els.map((e) => toSatsJson(e.algebraicType, v[e.name ?? ''], types, opts)).join(',')}]`;
    }
    case 'Sum': {
      if (isOption(t)) {
        return value === undefined || value === null
          ? '{"none":[]}'
          : `{"some":${toSatsJson(t.value.variants[0].algebraicType, value, types, opts)}}`;
      }
      const v = value as { tag: string; value: unknown };
      const variant = t.value.variants.find((x) => x.name === v.tag);
      if (!variant) throw new SatsJsonError(`unknown variant ${v.tag}`, { path: '' });
      return `{${JSON.stringify(v.tag)}:${toSatsJson(variant.algebraicType, v.value, types, opts)}}`;
    }
    case 'Array': {
      const el = resolve(t.value, types);
      if (el.tag === 'U8') return JSON.stringify(Buffer.from(value as Uint8Array).toString('hex'));
      return `[${(value as unknown[]).map((x) => toSatsJson(t.value, x, types, opts)).join(',')}]`;
    }
    case 'String':
      return JSON.stringify(value);
    case 'Bool':
      return value ? 'true' : 'false';
    case 'F32':
    case 'F64':
      return Number.isFinite(value as number) ? String(value) : 'null';
    case 'U256':
    case 'I256': {
      // 256-bit integers travel as "0x"-prefixed hex strings without leading zeros (SpacetimeDB's JSON for them).
      const n = BigInt(value as bigint);
      return JSON.stringify(n < 0n ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`);
    }
    default:
      // Other integers: JSON numbers, every digit kept.
      return String(value);
  }
}

/** Marks a number literal kept as text by {@link parseJsonKeepingNumbers}. */
const NUM = '\u0000n:';

/**
 * `JSON.parse`, except that every number is kept as its source text (a
 * string starting with a private marker) so 64-bit and wider integers lose
 * no digits. @throws {SyntaxError}
 */
export function parseJsonKeepingNumbers(text: string): unknown {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) throw new SyntaxError(`invalid number at position ${i}`);
      out += JSON.stringify(NUM + m[0]);
      i += m[0].length;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out);
}

function describe(json: unknown): string {
  if (typeof json === 'string' && json.startsWith(NUM)) return `the number ${json.slice(NUM.length)}`;
  if (typeof json === 'string') return `the string ${JSON.stringify(json)}`;
  if (Array.isArray(json)) return 'an array';
  if (json === null) return 'null';
  return typeof json === 'object' ? 'an object' : String(json);
}

/**
 * The value of type `ty` that a SATS JSON value (parsed by
 * {@link parseJsonKeepingNumbers}) stands for, in the shape the SDK's
 * serializers take. Products may be given as arrays (by position) or objects
 * (by name); identities and connection ids also as hex strings.
 * @throws {SatsJsonError}
 */
export function fromSatsJson(ty: AlgebraicType, json: unknown, types: Types = [], at = ''): unknown {
  const t = resolve(ty, types);
  const fail = (what: string): never => {
    throw new SatsJsonError(`expected ${what}, found ${describe(json)}`, { path: at });
  };
  switch (t.tag) {
    case 'Product': {
      const els = t.value.elements;
      const only = els.length === 1 ? els[0].name : undefined;
      if (typeof json === 'string' && !json.startsWith(NUM) && (only === '__identity__' || only === '__connection_id__')) {
        try {
          return only === '__identity__' ? Identity.fromString(json) : ConnectionId.fromString(json);
        } catch {
          fail(only === '__identity__' ? 'an identity (64 hex digits)' : 'a connection id (32 hex digits)');
        }
      }
      const out: Record<string, unknown> = {};
      const special = (o: Record<string, unknown>) =>
        only === '__identity__' ? new Identity(o.__identity__ as bigint) : only === '__connection_id__' ? new ConnectionId(o.__connection_id__ as bigint) : o;
      if (Array.isArray(json)) {
        if (json.length !== els.length) fail(`an array of ${els.length} element${els.length === 1 ? '' : 's'}`);
        els.forEach((e, i) => (out[e.name ?? String(i)] = fromSatsJson(e.algebraicType, json[i], types, `${at}[${i}]`)));
        return special(out);
      }
      if (json && typeof json === 'object') {
        const given = json as Record<string, unknown>;
        const known = new Set(els.flatMap((e) => [e.name ?? '', snake(e.name ?? '')]));
        for (const k of Object.keys(given)) if (!known.has(k)) throw new SatsJsonError(`unknown field ${JSON.stringify(k)}`, { path: at });
        for (const e of els) {
          const name = e.name ?? '';
          const v = name in given ? given[name] : given[snake(name)];
          if (v === undefined) throw new SatsJsonError(`missing field ${JSON.stringify(name)}`, { path: at });
          out[name] = fromSatsJson(e.algebraicType, v, types, at ? `${at}.${name}` : name);
        }
        return special(out);
      }
      return fail(els.length === 0 ? '[]' : 'an array or an object');
    }
    case 'Sum': {
      if (!json || typeof json !== 'object' || Array.isArray(json) || Object.keys(json).length !== 1) {
        return fail(`an object with one key, the variant (${t.value.variants.map((v) => v.name).join(', ')})`);
      }
      const [tag, payload] = Object.entries(json as Record<string, unknown>)[0];
      const variant = t.value.variants.find((v) => v.name === tag);
      if (!variant) throw new SatsJsonError(`unknown variant ${JSON.stringify(tag)}`, { path: at });
      const value = fromSatsJson(variant.algebraicType, payload, types, `${at}.${tag}`);
      if (isOption(t)) return tag === 'some' ? value : undefined;
      return { tag, value };
    }
    case 'Array': {
      const el = resolve(t.value, types);
      if (el.tag === 'U8' && typeof json === 'string' && !json.startsWith(NUM)) {
        if (!/^([0-9a-fA-F]{2})*$/.test(json)) fail('bytes as a hex string');
        return new Uint8Array(Buffer.from(json, 'hex'));
      }
      if (!Array.isArray(json)) return fail('an array');
      const items = json.map((x, i) => fromSatsJson(t.value, x, types, `${at}[${i}]`));
      return el.tag === 'U8' ? new Uint8Array(items as number[]) : items;
    }
    case 'String':
      if (typeof json !== 'string' || json.startsWith(NUM)) return fail('a string');
      return json;
    case 'Bool':
      if (typeof json !== 'boolean') return fail('a boolean');
      return json;
    case 'F32':
    case 'F64':
      if (typeof json !== 'string' || !json.startsWith(NUM)) return fail('a number');
      return Number(json.slice(NUM.length));
    default: {
      const range = INT_BOUNDS[t.tag];
      if (!range) return fail(`a value of type ${t.tag}`);
      let n: bigint;
      if (typeof json === 'string' && json.startsWith(NUM) && /^-?\d+$/.test(json.slice(NUM.length))) n = BigInt(json.slice(NUM.length));
      else if (typeof json === 'string' && /^-?(\d+|0x[0-9a-fA-F]+)$/.test(json)) n = json.startsWith('-') ? -BigInt(json.slice(1)) : BigInt(json);
      else return fail(`an integer (${t.tag.toLowerCase()})`);
      if (n < range[0] || n > range[1]) throw new SatsJsonError(`${n} is out of range for ${t.tag.toLowerCase()}`, { path: at });
      return ['I64', 'U64', 'I128', 'U128', 'I256', 'U256'].includes(t.tag) ? n : Number(n);
    }
  }
}
