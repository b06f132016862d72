/**
 * Turns a decoded `RawModuleDefV10` into the description the dev server works
 * with: tables with canonical (wire/SQL) names, resolved column types,
 * indexes, constraints and sequences; reducers with their ids and lifecycle.
 *
 * Canonical names follow SpacetimeDB's validation of V10 modules: an explicit
 * name wins, otherwise the module's case-conversion policy (default
 * snake_case) is applied to tables, columns and reducers; index names are
 * the module's own source names.
 */
import type { AlgebraicType } from 'spacetimedb';
import type { ColumnInfo, TableInfo } from '../types.ts';
import { loadModule, type SysFunctions } from './bundle.ts';
import { decodeRawModuleDef, ModuleDefError, type RawProductType, type RawSection } from './rawModuleDef.ts';

export { ModuleDefError };

export interface IndexDesc {
  /** Index id as the module sees it (`index_id_from_name`). */
  readonly id: number;
  /** The name the module looks the index up by. */
  readonly sourceName: string;
  readonly accessorName: string | undefined;
  readonly columns: readonly number[];
  readonly algorithm: 'btree' | 'hash' | 'direct';
  /** True when a unique constraint covers exactly these columns. */
  readonly unique: boolean;
}

export interface SequenceDesc {
  readonly column: number;
  readonly start: bigint;
  readonly min: bigint;
  readonly max: bigint;
  readonly increment: bigint;
}

export interface TableDesc extends TableInfo {
  /** Table id as the module sees it (`table_id_from_name`). */
  readonly id: number;
  /** The module's own name for the table (its accessor). */
  readonly sourceName: string;
  /** The row type as the module declares it (may contain `Ref`s into `typespace`). */
  readonly rowType: AlgebraicType & { tag: 'Product' };
  readonly indexes: readonly IndexDesc[];
  /** Column sets of the unique constraints (the primary key's among them). */
  readonly uniques: readonly (readonly number[])[];
  readonly sequences: readonly SequenceDesc[];
}

export type Lifecycle = 'init' | 'onConnect' | 'onDisconnect';

export interface ParamDesc {
  readonly name: string;
  readonly type: AlgebraicType;
}

export interface ReducerDesc {
  /** Reducer id as the module's `__call_reducer__` takes it. */
  readonly id: number;
  /** Canonical name: what clients call. */
  readonly name: string;
  readonly sourceName: string;
  /** Parameters as declared: a product type that may contain `Ref`s. */
  readonly paramsType: AlgebraicType & { tag: 'Product' };
  /** Parameters with canonical names and resolved types. */
  readonly params: readonly ParamDesc[];
  readonly lifecycle: Lifecycle | undefined;
  /** Lifecycle and private reducers cannot be called by clients. */
  readonly clientCallable: boolean;
}

export interface ProcedureDesc {
  /** Procedure id as the module's `__call_procedure__` takes it. */
  readonly id: number;
  /** Canonical name: what clients call. */
  readonly name: string;
  readonly sourceName: string;
  /** Parameters as declared: a product type that may contain `Ref`s. */
  readonly paramsType: AlgebraicType & { tag: 'Product' };
  readonly returnType: AlgebraicType;
  readonly clientCallable: boolean;
}

/** A scheduled table: each row is a timer that calls `functionName` with the row. */
export interface ScheduleDesc {
  /** Canonical name of the scheduled table. */
  readonly table: string;
  /** Canonical name of the reducer or procedure it calls. */
  readonly functionName: string;
  readonly kind: 'reducer' | 'procedure';
  /** Column holding the `ScheduleAt`. */
  readonly scheduleAtColumn: number;
  /** Column holding the row's id (the table's primary key). */
  readonly idColumn: number;
}

/** An HTTP route a module declares (served by SpacetimeDB under `/v1/database/:name/route/…`). */
export interface HttpRouteDesc {
  readonly handler: string;
  readonly method: string;
  readonly path: string;
}

export interface ModuleDescription {
  readonly tables: readonly TableDesc[];
  readonly reducers: readonly ReducerDesc[];
  readonly procedures: readonly ProcedureDesc[];
  readonly views: readonly string[];
  readonly httpHandlers: readonly string[];
  readonly httpRoutes: readonly HttpRouteDesc[];
  readonly schedules: readonly ScheduleDesc[];
  /** Namespaces of the submodules mounted into this module (nested ones as `outer.inner`). */
  readonly submodules: readonly string[];
  /** Section kinds the module declares that the dev server decodes but does not act on. */
  readonly ignoredSections: readonly string[];
  readonly typespace: { readonly types: readonly AlgebraicType[] };
  readonly casePolicy: 'None' | 'SnakeCase';
  /** The module's client visibility filters (row-level security), as SQL. */
  readonly rowLevelSecurity: readonly string[];
  /** Views (`spacetimedb.view` / `anonymousView`), with the table shape clients see. */
  readonly viewDefs: readonly ViewDesc[];
}

/** A view as clients see it: a read-only table whose rows a module function computes. */
export interface ViewDesc extends TableInfo {
  readonly sourceName: string;
  /** Index among the module's views of its kind (`__call_view__` / `__call_view_anon__` take it). */
  readonly fnIndex: number;
  /** Anonymous views return the same rows to every caller; the others see `ctx.sender`. */
  readonly isAnonymous: boolean;
  /** The view's row type, every `Ref` resolved. */
  readonly rowType: AlgebraicType & { tag: 'Product' };
  /** The view's parameters (a view with parameters cannot be subscribed to). */
  readonly paramCount: number;
}

/**
 * snake_case as SpacetimeDB's validator produces it: words split at
 * `_ - space`, lower→upper, letter↔digit and acronym boundaries, lowercased,
 * joined with `_`.
 */
export function toSnakeCase(name: string): string {
  const words: string[] = [];
  for (const chunk of name.split(/[_\-\s]+/)) {
    if (!chunk) continue;
    let word = '';
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      const prev = chunk[i - 1];
      const next = chunk[i + 1];
      if (word && prev !== undefined) {
        const boundary =
          (isLower(prev) && isUpper(c)) ||
          (isDigit(prev) !== isDigit(c) && (isLetter(prev) || isLetter(c))) ||
          (isUpper(prev) && isUpper(c) && next !== undefined && isLower(next));
        if (boundary) {
          words.push(word);
          word = '';
        }
      }
      word += c;
    }
    if (word) words.push(word);
  }
  return words.map((w) => w.toLowerCase()).join('_');
}

const isLower = (c: string) => c >= 'a' && c <= 'z';
const isUpper = (c: string) => c >= 'A' && c <= 'Z';
const isDigit = (c: string) => c >= '0' && c <= '9';
const isLetter = (c: string) => isLower(c) || isUpper(c);

/** Replace every `Ref` in `ty` by the type it points at. */
export function resolveType(ty: AlgebraicType, types: readonly AlgebraicType[], depth = 0): AlgebraicType {
  if (depth > 64) throw new ModuleDefError('recursive type in module typespace');
  switch (ty.tag) {
    case 'Ref': {
      const target = types[ty.value];
      if (!target) throw new ModuleDefError(`type reference ${ty.value} is out of range`);
      return resolveType(target, types, depth + 1);
    }
    case 'Product':
      return {
        tag: 'Product',
        value: {
          elements: ty.value.elements.map((e) => ({ name: e.name, algebraicType: resolveType(e.algebraicType, types, depth + 1) })),
        },
      };
    case 'Sum':
      return {
        tag: 'Sum',
        value: {
          variants: ty.value.variants.map((v) => ({ name: v.name, algebraicType: resolveType(v.algebraicType, types, depth + 1) })),
        },
      };
    case 'Array':
      return { tag: 'Array', value: resolveType(ty.value, types, depth + 1) };
    default:
      return ty;
  }
}

function sectionsOf(sections: RawSection[], tag: string): any[] {
  return sections.filter((s) => s.tag === tag).flatMap((s) => (Array.isArray(s.value) ? s.value : [s.value]));
}

/** Add `offset` to every `Ref` in `ty` (a submodule's types move into the merged typespace). */
function shiftRefs(ty: AlgebraicType, offset: number): AlgebraicType {
  switch (ty.tag) {
    case 'Ref':
      return { tag: 'Ref', value: ty.value + offset };
    case 'Product':
      return {
        tag: 'Product',
        value: { elements: ty.value.elements.map((e) => ({ name: e.name, algebraicType: shiftRefs(e.algebraicType, offset) })) },
      };
    case 'Sum':
      return {
        tag: 'Sum',
        value: { variants: ty.value.variants.map((v) => ({ name: v.name, algebraicType: shiftRefs(v.algebraicType, offset) })) },
      };
    case 'Array':
      return { tag: 'Array', value: shiftRefs(ty.value, offset) };
    default:
      return ty;
  }
}

/** Everything collected while walking a module and its submodules. */
interface Collected {
  readonly types: AlgebraicType[];
  readonly tables: TableDesc[];
  readonly reducers: ReducerDesc[];
  readonly procedures: ProcedureDesc[];
  readonly views: string[];
  readonly httpHandlers: string[];
  readonly httpRoutes: HttpRouteDesc[];
  readonly schedules: ScheduleDesc[];
  readonly submodules: string[];
  readonly rowLevelSecurity: string[];
  readonly viewDefs: ViewDesc[];
  readonly ignored: Set<string>;
  nextIndexId: number;
}

/** Sections the dev server decodes and acts on elsewhere, or that need no action. */
const HANDLED_SECTIONS = new Set([
  'Typespace',
  'Types',
  'Tables',
  'Reducers',
  'Procedures',
  'Views',
  'Schedules',
  'LifeCycleReducers',
  'CaseConversionPolicy',
  'ExplicitNames',
  'HttpHandlers',
  'HttpRoutes',
  'ViewPrimaryKeys',
  'Submodules',
  'RowLevelSecurity',
]);

/**
 * Build the dev server's description from a module's `__describe_module__`
 * bytes. Submodules are mounted as SpacetimeDB mounts them: their tables,
 * reducers and procedures are named `namespace.name` (the module looks its
 * tables up by `namespace.sourceName`), their ids follow the root module's in
 * depth-first order (the order the module library dispatches them), and their
 * types are appended to one merged typespace.
 */
export function describeModule(bytes: Uint8Array): ModuleDescription {
  const sections = decodeRawModuleDef(bytes);
  const out: Collected = {
    types: [],
    tables: [],
    reducers: [],
    procedures: [],
    views: [],
    httpHandlers: [],
    httpRoutes: [],
    schedules: [],
    submodules: [],
    rowLevelSecurity: [],
    viewDefs: [],
    ignored: new Set(),
    nextIndexId: 1,
  };
  const casePolicy = describeInto(sections, '', out);
  return {
    tables: out.tables,
    reducers: out.reducers,
    procedures: out.procedures,
    views: out.views,
    httpHandlers: out.httpHandlers,
    httpRoutes: out.httpRoutes,
    schedules: out.schedules,
    submodules: out.submodules,
    rowLevelSecurity: out.rowLevelSecurity,
    viewDefs: out.viewDefs,
    ignoredSections: [...out.ignored],
    typespace: { types: out.types },
    casePolicy,
  };
}

function describeInto(sections: RawSection[], prefix: string, out: Collected): 'None' | 'SnakeCase' {
  for (const s of sections) {
    // The module library writes some sections even when empty.
    const empty = Array.isArray(s.value) && s.value.length === 0;
    if (!HANDLED_SECTIONS.has(s.tag) && !empty) out.ignored.add(s.tag);
  }
  const offset = out.types.length;
  for (const ts of sectionsOf(sections, 'Typespace')) {
    for (const ty of ts.types as AlgebraicType[]) out.types.push(offset === 0 ? ty : shiftRefs(ty, offset));
  }
  const types = out.types;
  const shift = <T extends AlgebraicType>(ty: T): T => (offset === 0 ? ty : (shiftRefs(ty, offset) as T));
  const policyValue = sectionsOf(sections, 'CaseConversionPolicy')[0] as { tag: 'None' | 'SnakeCase' } | undefined;
  const casePolicy = policyValue?.tag ?? 'SnakeCase';
  const convert = (n: string) => (casePolicy === 'SnakeCase' ? toSnakeCase(n) : n);

  const explicitTables = new Map<string, string>();
  const explicitFunctions = new Map<string, string>();
  for (const names of sectionsOf(sections, 'ExplicitNames')) {
    for (const entry of names.entries as { tag: string; value: { sourceName: string; canonicalName: string } }[]) {
      if (entry.tag === 'Table') explicitTables.set(entry.value.sourceName, entry.value.canonicalName);
      if (entry.tag === 'Function') explicitFunctions.set(entry.value.sourceName, entry.value.canonicalName);
    }
  }
  const functionName = (source: string) => prefix + (explicitFunctions.get(source) ?? convert(source));

  const tableBase = out.tables.length;
  const ownTables = sectionsOf(sections, 'Tables').map((raw, i): TableDesc => {
    const rowType = types[offset + raw.productTypeRef];
    if (!rowType || rowType.tag !== 'Product') {
      throw new ModuleDefError(`table ${prefix}${raw.sourceName}: row type ${raw.productTypeRef} is not a product type`);
    }
    const columns: ColumnInfo[] = rowType.value.elements.map((e, index) => {
      if (!e.name) throw new ModuleDefError(`table ${prefix}${raw.sourceName}: column ${index} has no name`);
      return { index, name: convert(e.name), field: e.name, type: resolveType(e.algebraicType, types) };
    });
    const uniques: number[][] = raw.constraints
      .filter((c: any) => c.data.tag === 'Unique')
      .map((c: any) => [...c.data.value.columns]);
    const sameSet = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x) => b.includes(x));
    const indexes: IndexDesc[] = raw.indexes.map((ix: any): IndexDesc => {
      const algo = ix.algorithm as { tag: 'BTree' | 'Hash' | 'Direct'; value: number[] | number };
      const cols = typeof algo.value === 'number' ? [algo.value] : [...algo.value];
      const sourceName: string =
        ix.sourceName ?? `${raw.sourceName}_${cols.map((c) => columns[c]?.field).join('_')}_idx_${algo.tag.toLowerCase()}`;
      return {
        id: out.nextIndexId++,
        sourceName: prefix + sourceName,
        accessorName: ix.accessorName,
        columns: cols,
        algorithm: algo.tag === 'BTree' ? 'btree' : algo.tag === 'Hash' ? 'hash' : 'direct',
        unique: uniques.some((u) => sameSet(u, cols)),
      };
    });
    const sequences: SequenceDesc[] = raw.sequences.map((s: any): SequenceDesc => {
      const increment = BigInt(s.increment);
      return {
        column: s.column,
        increment: increment === 0n ? 1n : increment,
        start: s.start ?? s.minValue ?? 1n,
        min: s.minValue ?? 1n,
        max: s.maxValue ?? maxForType(columns[s.column]?.type),
      };
    });
    return {
      id: tableBase + i + 1,
      name: prefix + (explicitTables.get(raw.sourceName) ?? convert(raw.sourceName)),
      sourceName: prefix + raw.sourceName,
      columns,
      primaryKey: [...raw.primaryKey],
      indexedColumns: new Set(indexes.filter((x) => x.columns.length === 1).map((x) => x.columns[0])),
      isPublic: raw.tableAccess.tag === 'Public',
      isEvent: raw.isEvent,
      rowType: rowType as AlgebraicType & { tag: 'Product' },
      indexes,
      uniques,
      sequences,
    };
  });
  out.tables.push(...ownTables);

  const lifecycleOf = new Map<string, Lifecycle>();
  for (const lc of sectionsOf(sections, 'LifeCycleReducers')) {
    if (prefix) throw new ModuleDefError(`submodule ${prefix.slice(0, -1)} declares a lifecycle reducer (${lc.functionName}); only the root module may`);
    const spec = lc.lifecycleSpec.tag as 'Init' | 'OnConnect' | 'OnDisconnect';
    lifecycleOf.set(lc.functionName, spec === 'Init' ? 'init' : spec === 'OnConnect' ? 'onConnect' : 'onDisconnect');
  }

  const reducerBase = out.reducers.length;
  const ownReducers = sectionsOf(sections, 'Reducers').map((raw, i): ReducerDesc => {
    const paramsType = shift({ tag: 'Product', value: raw.params as RawProductType } as AlgebraicType & { tag: 'Product' });
    const lifecycle = lifecycleOf.get(raw.sourceName);
    return {
      id: reducerBase + i,
      name: functionName(raw.sourceName),
      sourceName: prefix + raw.sourceName,
      paramsType,
      params: paramsType.value.elements.map((e, i) => ({
        name: e.name ? convert(e.name) : `arg${i}`,
        type: resolveType(e.algebraicType, types),
      })),
      lifecycle,
      clientCallable: lifecycle === undefined && raw.visibility.tag === 'ClientCallable',
    };
  });
  out.reducers.push(...ownReducers);

  const procedureBase = out.procedures.length;
  const ownProcedures = sectionsOf(sections, 'Procedures').map(
    (raw, i): ProcedureDesc => ({
      id: procedureBase + i,
      name: functionName(raw.sourceName),
      sourceName: prefix + raw.sourceName,
      paramsType: shift({ tag: 'Product', value: raw.params as RawProductType } as AlgebraicType & { tag: 'Product' }),
      returnType: shift(raw.returnType as AlgebraicType),
      clientCallable: raw.visibility.tag === 'ClientCallable',
    }),
  );
  out.procedures.push(...ownProcedures);

  for (const s of sectionsOf(sections, 'Schedules')) {
    const table = ownTables.find((t) => t.sourceName === prefix + s.tableName);
    if (!table) throw new ModuleDefError(`schedule ${s.sourceName ?? s.tableName}: no table ${prefix}${s.tableName}`);
    const reducer = ownReducers.find((r) => r.sourceName === prefix + s.functionName);
    const procedure = ownProcedures.find((p) => p.sourceName === prefix + s.functionName);
    if (!reducer && !procedure) {
      throw new ModuleDefError(`scheduled table ${table.name}: no reducer or procedure ${prefix}${s.functionName}`);
    }
    if (table.primaryKey.length !== 1) {
      throw new ModuleDefError(`scheduled table ${table.name} needs a single-column primary key (its schedule id)`);
    }
    out.schedules.push({
      table: table.name,
      functionName: (reducer ?? procedure)!.name,
      kind: reducer ? 'reducer' : 'procedure',
      scheduleAtColumn: s.scheduleAtCol,
      idColumn: table.primaryKey[0],
    });
  }

  for (const v of sectionsOf(sections, 'Views')) out.views.push(prefix + v.sourceName);
  // Visibility filters and view definitions are read for the root module; a submodule's are listed as not run.
  if (prefix === '') {
    out.rowLevelSecurity.push(...sectionsOf(sections, 'RowLevelSecurity').map((r) => r.sql as string));
    out.viewDefs.push(...describeViews(sections, types, (n) => explicitFunctions.get(n) ?? convert(n), convert));
  } else {
    if (sectionsOf(sections, 'RowLevelSecurity').length > 0) out.ignored.add(`RowLevelSecurity (submodule ${prefix.slice(0, -1)})`);
    if (sectionsOf(sections, 'Views').length > 0) out.ignored.add(`Views (submodule ${prefix.slice(0, -1)})`);
  }
  for (const h of sectionsOf(sections, 'HttpHandlers')) out.httpHandlers.push(prefix + h.sourceName);
  for (const r of sectionsOf(sections, 'HttpRoutes')) {
    const method = r.method.tag === 'Any' ? 'any' : r.method.value.tag === 'Extension' ? r.method.value.value : r.method.value.tag.toUpperCase();
    out.httpRoutes.push({ handler: prefix + r.handlerFunction, method, path: r.path });
  }

  for (const sub of sectionsOf(sections, 'Submodules')) {
    const ns = `${prefix}${sub.namespace}`;
    out.submodules.push(ns);
    describeInto(sub.module.sections as RawSection[], `${ns}.`, out);
  }
  return casePolicy;
}

function describeViews(
  sections: RawSection[],
  types: readonly AlgebraicType[],
  viewName: (source: string) => string,
  convert: (n: string) => string,
): ViewDesc[] {
  const pks = new Map<string, string[]>();
  for (const pk of sectionsOf(sections, 'ViewPrimaryKeys')) pks.set(pk.viewSourceName, pk.columns);
  return sectionsOf(sections, 'Views').map((raw): ViewDesc => {
    const ret = resolveType(raw.returnType as AlgebraicType, types);
    // Views return an array of rows or an optional row.
    const row = ret.tag === 'Array' ? ret.value : ret.tag === 'Sum' ? ret.value.variants[0]?.algebraicType : undefined;
    if (!row || row.tag !== 'Product') {
      throw new ModuleDefError(`view ${raw.sourceName}: returns neither an array of rows nor an optional row`);
    }
    const columns: ColumnInfo[] = row.value.elements.map((e, index) => {
      if (!e.name) throw new ModuleDefError(`view ${raw.sourceName}: column ${index} has no name`);
      return { index, name: convert(e.name), field: e.name, type: e.algebraicType };
    });
    const pk = (pks.get(raw.sourceName) ?? []).map((c) => columns.findIndex((col) => col.field === c || col.name === c)).filter((i) => i >= 0);
    return {
      name: viewName(raw.sourceName),
      sourceName: raw.sourceName,
      fnIndex: raw.index,
      isAnonymous: raw.isAnonymous,
      rowType: row as AlgebraicType & { tag: 'Product' },
      paramCount: (raw.params as RawProductType).elements.length,
      columns,
      primaryKey: pk,
      indexedColumns: new Set(),
      isPublic: raw.isPublic,
      isEvent: false,
    };
  });
}

function maxForType(ty: AlgebraicType | undefined): bigint {
  switch (ty?.tag) {
    case 'I8':
      return 0x7fn;
    case 'U8':
      return 0xffn;
    case 'I16':
      return 0x7fffn;
    case 'U16':
      return 0xffffn;
    case 'I32':
      return 0x7fffffffn;
    case 'U32':
      return 0xffffffffn;
    case 'I64':
      return (1n << 63n) - 1n;
    case 'U64':
      return (1n << 64n) - 1n;
    case 'I128':
      return (1n << 127n) - 1n;
    case 'U128':
      return (1n << 128n) - 1n;
    case 'I256':
      return (1n << 255n) - 1n;
    default:
      return (1n << 256n) - 1n;
  }
}

/**
 * Load the module at `path` only to read its description (no datastore, no
 * reducers run): used to check generated bindings against their module.
 */
export async function loadModuleDef(path: string): Promise<ModuleDescription> {
  const refuse = () => {
    throw new Error('the module was loaded only to be described');
  };
  const sys: SysFunctions = new Proxy({}, { get: () => refuse });
  const loaded = await loadModule(path, sys);
  try {
    return describeModule(loaded.run(() => loaded.hooks.__describe_module__()));
  } finally {
    loaded.dispose();
  }
}
