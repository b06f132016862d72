/**
 * Ordering and equality of decoded SpacetimeDB values (as the SDK's
 * deserializers produce them), by their algebraic type — the order a BTree
 * index keeps. Integers and special types (Identity, Timestamp, …) compare
 * numerically, strings by code point, sums by tag then payload, products and
 * arrays lexicographically.
 */
import type { AlgebraicType } from 'spacetimedb';

export type Comparator = (a: any, b: any) => number;

const cmpPrimitive: Comparator = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const cmpString: Comparator = (a: string, b: string) => {
  if (a === b) return 0;
  // Compare by code point (UTF-8 byte order), not by UTF-16 unit.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length < 0 ? -1 : a.length === b.length ? 0 : 1;
};

const cmpFloat: Comparator = (a: number, b: number) => {
  // Total order: NaN sorts last, like Rust's total_cmp for positive NaN.
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : 1;
  if (Number.isNaN(b)) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
};

function isOptionType(ty: AlgebraicType & { tag: 'Sum' }): boolean {
  const v = ty.value.variants;
  return v.length === 2 && v[0].name === 'some' && v[1].name === 'none';
}

/** Build a comparator for values of the (fully resolved) type `ty`. */
export function makeComparator(ty: AlgebraicType): Comparator {
  switch (ty.tag) {
    case 'Bool':
      return (a: boolean, b: boolean) => (a === b ? 0 : a ? 1 : -1);
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32':
    case 'I64':
    case 'U64':
    case 'I128':
    case 'U128':
    case 'I256':
    case 'U256':
      return cmpPrimitive;
    case 'F32':
    case 'F64':
      return cmpFloat;
    case 'String':
      return cmpString as Comparator;
    case 'Array': {
      const el = makeComparator(ty.value);
      return (a: ArrayLike<unknown>, b: ArrayLike<unknown>) => {
        const n = Math.min(a.length, b.length);
        for (let i = 0; i < n; i++) {
          const c = el(a[i], b[i]);
          if (c !== 0) return c;
        }
        return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
      };
    }
    case 'Product': {
      const fields = ty.value.elements.map((e) => ({ name: e.name!, cmp: makeComparator(e.algebraicType) }));
      return (a: Record<string, unknown>, b: Record<string, unknown>) => {
        for (const f of fields) {
          const c = f.cmp(a[f.name], b[f.name]);
          if (c !== 0) return c;
        }
        return 0;
      };
    }
    case 'Sum': {
      if (isOptionType(ty)) {
        // The SDK decodes options as the value or `undefined`; none sorts after some.
        const inner = makeComparator(ty.value.variants[0].algebraicType);
        return (a, b) => {
          if (a === undefined) return b === undefined ? 0 : 1;
          if (b === undefined) return -1;
          return inner(a, b);
        };
      }
      const vs = ty.value.variants;
      if (vs.length === 2 && vs[0].name === 'ok' && vs[1].name === 'err') {
        // The SDK decodes results as `{ ok }` or `{ err }`; ok sorts first.
        const ok = makeComparator(vs[0].algebraicType);
        const err = makeComparator(vs[1].algebraicType);
        return (a: Record<string, unknown>, b: Record<string, unknown>) => {
          const aOk = 'ok' in a;
          const bOk = 'ok' in b;
          if (aOk !== bOk) return aOk ? -1 : 1;
          return aOk ? ok(a.ok, b.ok) : err(a.err, b.err);
        };
      }
      const variants = vs.map((v) => ({ name: v.name!, cmp: makeComparator(v.algebraicType) }));
      const tagIndex = new Map(variants.map((v, i) => [v.name, i]));
      return (a: { tag: string; value: unknown }, b: { tag: string; value: unknown }) => {
        const ia = tagIndex.get(a.tag)!;
        const ib = tagIndex.get(b.tag)!;
        if (ia !== ib) return ia < ib ? -1 : 1;
        return variants[ia].cmp(a.value, b.value);
      };
    }
    case 'Ref':
      throw new TypeError('makeComparator needs a resolved type (found a Ref)');
  }
}
