/**
 * The view of a module that client code generation needs, read from the raw
 * V10 description a module's `__describe_module__` returns: canonical and
 * accessor names, the declared (named) types, and every type use classified
 * the way SpacetimeDB's validator classifies it for client code (special
 * types such as `Identity` and `Option` recognised by shape; references to
 * declared types kept as references).
 */
import type { AlgebraicType } from 'spacetimedb';
import { decodeRawModuleDef, type RawSection } from '../host/rawModuleDef.ts';
import { pascalCase, snakeCase } from './names.ts';

export type Primitive =
  | 'bool' | 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64' | 'i128' | 'u128' | 'i256' | 'u256' | 'f32' | 'f64';

/** A type as client code uses it. */
export type TypeUse =
  | { readonly kind: 'Unit' | 'Never' | 'Identity' | 'ConnectionId' | 'Timestamp' | 'TimeDuration' | 'ScheduleAt' | 'Uuid' | 'String' }
  | { readonly kind: 'Primitive'; readonly prim: Primitive }
  | { readonly kind: 'Option'; readonly inner: TypeUse }
  | { readonly kind: 'Result'; readonly ok: TypeUse; readonly err: TypeUse }
  | { readonly kind: 'Array'; readonly elem: TypeUse }
  | { readonly kind: 'Ref'; readonly ref: number };

export type Field = readonly [name: string, ty: TypeUse];

export type TypeDefinition =
  | { readonly kind: 'Product'; readonly elements: readonly Field[] }
  | { readonly kind: 'Sum'; readonly variants: readonly Field[] }
  | { readonly kind: 'PlainEnum'; readonly variants: readonly string[] };

export interface NamedType {
  readonly scope: readonly string[];
  readonly name: string;
  readonly ref: number;
}

export interface CodegenIndex {
  readonly name: string;
  /** Absent for indexes the module library generated itself (the generator skips those). */
  readonly accessor: string | undefined;
  readonly columns: readonly number[];
}

export interface CodegenTable {
  /** Canonical (wire and SQL) name. */
  readonly name: string;
  /** The module's own name for it. */
  readonly accessor: string;
  readonly productRef: number;
  readonly primaryKey: number | undefined;
  /** Canonical column names. */
  readonly columnNames: readonly string[];
  readonly indexes: readonly CodegenIndex[];
  readonly constraints: readonly { readonly name: string; readonly columns: readonly number[] }[];
  readonly isPublic: boolean;
  readonly isEvent: boolean;
}

export interface CodegenFunction {
  readonly name: string;
  readonly accessor: string;
  /** Parameters under their canonical names. */
  readonly params: readonly Field[];
  readonly isPrivate: boolean;
  readonly lifecycle: 'Init' | 'OnConnect' | 'OnDisconnect' | undefined;
}

export interface CodegenProcedure extends CodegenFunction {
  readonly returnType: TypeUse;
}

export interface CodegenSchema {
  readonly typespace: readonly AlgebraicType[];
  readonly types: readonly NamedType[];
  readonly definitions: ReadonlyMap<number, TypeDefinition>;
  readonly tables: readonly CodegenTable[];
  readonly views: readonly CodegenTable[];
  readonly reducers: readonly CodegenFunction[];
  readonly procedures: readonly CodegenProcedure[];
  /** Namespaces of submodules, which this generator does not emit (named in its warning). */
  readonly submodules: readonly string[];
}

/** The module cannot be turned into client code (a type the generator cannot express). */
export class CodegenError extends Error {
  override readonly name = 'CodegenError';
}

const PRIMS: Record<string, Primitive> = {
  Bool: 'bool', I8: 'i8', U8: 'u8', I16: 'i16', U16: 'u16', I32: 'i32', U32: 'u32', I64: 'i64', U64: 'u64',
  I128: 'i128', U128: 'u128', I256: 'i256', U256: 'u256', F32: 'f32', F64: 'f64',
};

type Elem = { name: string | undefined; algebraicType: AlgebraicType };

function single(ty: AlgebraicType, name: string, tag: string): boolean {
  if (ty.tag !== 'Product') return false;
  const els = ty.value.elements as Elem[];
  return els.length === 1 && els[0].name === name && els[0].algebraicType.tag === tag;
}

function sumOf(ty: AlgebraicType, names: [string, string]): [AlgebraicType, AlgebraicType] | undefined {
  if (ty.tag !== 'Sum') return undefined;
  const vs = ty.value.variants as Elem[];
  if (vs.length !== 2 || vs[0].name !== names[0] || vs[1].name !== names[1]) return undefined;
  return [vs[0].algebraicType, vs[1].algebraicType];
}

const isUnitType = (ty: AlgebraicType) => ty.tag === 'Product' && ty.value.elements.length === 0;

function sections(all: RawSection[], tag: string): any[] {
  return all.filter((s) => s.tag === tag).flatMap((s) => (Array.isArray(s.value) ? s.value : [s.value]));
}

/** Read a module description (`__describe_module__` bytes) for code generation. */
export function codegenSchema(bytes: Uint8Array): CodegenSchema {
  const raw = decodeRawModuleDef(bytes);
  const typespace: AlgebraicType[] = sections(raw, 'Typespace').flatMap((t) => t.types);
  const policy = (sections(raw, 'CaseConversionPolicy')[0] as { tag: string } | undefined)?.tag ?? 'SnakeCase';
  const convert = (n: string) => (policy === 'None' ? n : snakeCase(n));
  const typeCase = (n: string) => (policy === 'None' ? n : pascalCase(n));
  const explicit = { Table: new Map<string, string>(), Function: new Map<string, string>(), Index: new Map<string, string>() };
  for (const names of sections(raw, 'ExplicitNames')) {
    for (const e of names.entries as { tag: keyof typeof explicit; value: { sourceName: string; canonicalName: string } }[]) {
      explicit[e.tag]?.set(e.value.sourceName, e.value.canonicalName);
    }
  }
  const tableName = (s: string) => explicit.Table.get(s) ?? convert(s);
  const functionName = (s: string) => explicit.Function.get(s) ?? convert(s);

  const types: NamedType[] = sections(raw, 'Types').map((t) => ({
    scope: (t.sourceName.scope as string[]).map(typeCase),
    name: typeCase(t.sourceName.sourceName),
    ref: t.ty,
  }));
  const declared = new Set(types.map((t) => t.ref));

  const useOf = (ty: AlgebraicType, seen: ReadonlySet<number> = new Set()): TypeUse => {
    if (single(ty, '__connection_id__', 'U128')) return { kind: 'ConnectionId' };
    if (single(ty, '__identity__', 'U256')) return { kind: 'Identity' };
    if (single(ty, '__timestamp_micros_since_unix_epoch__', 'I64')) return { kind: 'Timestamp' };
    if (single(ty, '__time_duration_micros__', 'I64')) return { kind: 'TimeDuration' };
    if (single(ty, '__uuid__', 'U128')) return { kind: 'Uuid' };
    if (isUnitType(ty)) return { kind: 'Unit' };
    if (ty.tag === 'Sum' && ty.value.variants.length === 0) return { kind: 'Never' };
    const opt = sumOf(ty, ['some', 'none']);
    if (opt && isUnitType(opt[1])) return { kind: 'Option', inner: useOf(opt[0], seen) };
    const res = sumOf(ty, ['ok', 'err']);
    if (res) return { kind: 'Result', ok: useOf(res[0], seen), err: useOf(res[1], seen) };
    const sched = sumOf(ty, ['Interval', 'Time']);
    if (sched && useOf(sched[0]).kind === 'TimeDuration' && useOf(sched[1]).kind === 'Timestamp') return { kind: 'ScheduleAt' };
    switch (ty.tag) {
      case 'Ref': {
        if (declared.has(ty.value)) return { kind: 'Ref', ref: ty.value };
        const target = typespace[ty.value];
        if (!target) throw new CodegenError(`type reference ${ty.value} is out of range`);
        if (seen.has(ty.value)) throw new CodegenError(`type reference ${ty.value} is recursive without a name`);
        return useOf(target, new Set([...seen, ty.value]));
      }
      case 'Array':
        return { kind: 'Array', elem: useOf(ty.value, seen) };
      case 'String':
        return { kind: 'String' };
      case 'Product':
      case 'Sum':
        throw new CodegenError(`an unnamed ${ty.tag.toLowerCase()} type is used in place of a named type; declare it with t.object()/t.enum()`);
      default: {
        const prim = PRIMS[ty.tag];
        if (!prim) throw new CodegenError(`unknown algebraic type ${ty.tag}`);
        return { kind: 'Primitive', prim };
      }
    }
  };

  const fieldsOf = (elements: Elem[], what: string): Field[] =>
    elements.map((e, i) => {
      if (!e.name) throw new CodegenError(`${what}: element ${i} has no name`);
      return [e.name, useOf(e.algebraicType)] as const;
    });

  const definitions = new Map<number, TypeDefinition>();
  for (const t of types) {
    const ty = typespace[t.ref];
    const what = `type ${t.name}`;
    if (ty?.tag === 'Product') definitions.set(t.ref, { kind: 'Product', elements: fieldsOf(ty.value.elements as Elem[], what) });
    else if (ty?.tag === 'Sum') {
      const variants = fieldsOf(ty.value.variants as Elem[], what);
      definitions.set(
        t.ref,
        variants.every(([, u]) => u.kind === 'Unit')
          ? { kind: 'PlainEnum', variants: variants.map(([n]) => n) }
          : { kind: 'Sum', variants },
      );
    } else throw new CodegenError(`${what} is neither a product nor a sum type`);
  }

  const rowElements = (ref: number, what: string): Elem[] => {
    const ty = typespace[ref];
    if (ty?.tag !== 'Product') throw new CodegenError(`${what}: row type ${ref} is not a product type`);
    return ty.value.elements as Elem[];
  };

  const tables: CodegenTable[] = sections(raw, 'Tables').map((t): CodegenTable => {
    const name = tableName(t.sourceName);
    const elements = rowElements(t.productTypeRef, `table ${t.sourceName}`);
    const columnNames = elements.map((e) => convert(e.name ?? ''));
    const colsName = (cols: readonly number[]) => cols.map((c) => columnNames[c] ?? `col_${c}`).join('_');
    return {
      name,
      accessor: t.sourceName,
      productRef: t.productTypeRef,
      primaryKey: t.primaryKey.length === 1 ? t.primaryKey[0] : undefined,
      columnNames,
      indexes: t.indexes.map((ix: any): CodegenIndex => {
        const algo = ix.algorithm as { tag: 'BTree' | 'Hash' | 'Direct'; value: number[] | number };
        const cols = typeof algo.value === 'number' ? [algo.value] : [...algo.value];
        const generated = `${name}_${colsName(cols)}_idx_${algo.tag === 'BTree' ? 'btree' : algo.tag.toLowerCase()}`;
        return {
          name: (ix.sourceName !== undefined && explicit.Index.get(ix.sourceName)) || generated,
          accessor: ix.accessorName,
          columns: cols,
        };
      }),
      constraints: t.constraints
        .filter((c: any) => c.data.tag === 'Unique')
        .map((c: any) => ({ name: `${name}_${colsName(c.data.value.columns)}_key`, columns: [...c.data.value.columns] })),
      isPublic: t.tableAccess.tag === 'Public',
      isEvent: t.isEvent,
    };
  });

  const viewKeys = new Map<string, string[]>();
  for (const pk of sections(raw, 'ViewPrimaryKeys')) viewKeys.set(pk.viewSourceName, pk.columns);
  const views: CodegenTable[] = sections(raw, 'Views').map((v): CodegenTable => {
    const rt = v.returnType as AlgebraicType;
    let ref: number | undefined;
    if (rt.tag === 'Array' && rt.value.tag === 'Ref') ref = rt.value.value;
    const opt = sumOf(rt, ['some', 'none']);
    if (opt && opt[0].tag === 'Ref') ref = opt[0].value;
    if (rt.tag === 'Ref') ref = rt.value; // a query view returns its row type
    if (ref === undefined) throw new CodegenError(`view ${v.sourceName}: return type is not rows of a named product type`);
    const elements = rowElements(ref, `view ${v.sourceName}`);
    const keyCols = (viewKeys.get(v.sourceName) ?? []).map((c) => elements.findIndex((e) => e.name === c));
    return {
      name: functionName(v.sourceName),
      accessor: v.sourceName,
      productRef: ref,
      primaryKey: keyCols.length === 1 && keyCols[0] >= 0 ? keyCols[0] : undefined,
      columnNames: elements.map((e) => convert(e.name ?? '')),
      indexes: [],
      constraints: [],
      isPublic: v.isPublic,
      isEvent: false,
    };
  });

  const lifecycles = new Map<string, CodegenFunction['lifecycle']>();
  for (const lc of sections(raw, 'LifeCycleReducers')) lifecycles.set(lc.functionName, lc.lifecycleSpec.tag);
  const scheduled = new Set(sections(raw, 'Schedules').map((s) => s.functionName as string));
  const paramsOf = (elements: Elem[], what: string): Field[] =>
    elements.map((e, i) => {
      if (!e.name) throw new CodegenError(`${what}: parameter ${i} has no name`);
      return [convert(e.name), useOf(e.algebraicType)] as const;
    });

  const reducers: CodegenFunction[] = sections(raw, 'Reducers').map((r): CodegenFunction => {
    const lifecycle = lifecycles.get(r.sourceName);
    return {
      name: functionName(r.sourceName),
      accessor: r.sourceName,
      params: paramsOf(r.params.elements, `reducer ${r.sourceName}`),
      isPrivate: r.visibility.tag === 'Private' || lifecycle !== undefined || scheduled.has(r.sourceName),
      lifecycle,
    };
  });
  const procedures: CodegenProcedure[] = sections(raw, 'Procedures').map((p): CodegenProcedure => ({
    name: functionName(p.sourceName),
    accessor: p.sourceName,
    params: paramsOf(p.params.elements, `procedure ${p.sourceName}`),
    returnType: useOf(p.returnType),
    isPrivate: p.visibility.tag === 'Private' || scheduled.has(p.sourceName),
    lifecycle: undefined,
  }));

  return {
    typespace,
    types,
    definitions,
    tables,
    views,
    reducers,
    procedures,
    submodules: sections(raw, 'Submodules').map((s) => s.namespace as string),
  };
}
