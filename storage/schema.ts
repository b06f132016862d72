/**
 * What the storage needs to know about the bindings, and the schema
 * fingerprint that tells one app version's bindings from the next.
 *
 * {@link StorageModule} is the part of the bindings' `REMOTE_MODULE` the
 * storage reads (generated bindings expose it as
 * `DbConnection.builder().remoteModule`): tables with their row types and
 * primary-key metadata, reducers with their parameter types.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { AlgebraicType as AlgebraicTypeT, ProductType as ProductTypeT } from 'spacetimedb';
import { productCodec, toHex, type ProductCodec, type Typespace } from './codec.ts';
import type { StorageModule } from '../streams/bindings.ts';

export { moduleFromBindings, type StorageModule } from '../streams/bindings.ts';

/** The stored description of one app version's bindings. */
export interface SchemaRecord {
  /** Hash over every table's row type and every reducer's parameters. */
  fingerprint: string;
  /** Per table (canonical name): its row type and that type's hash. */
  tables: Record<string, { hash: string; rowType: ProductTypeT }>;
  /** Per reducer (canonical name): its parameter type and that type's hash. */
  reducers: Record<string, { hash: string; paramsType: ProductTypeT }>;
}

/** JSON with object keys sorted, so equal types always give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function hash(text: string): string {
  return toHex(sha256(new TextEncoder().encode(text))).slice(0, 32);
}

/** Resolve `Ref`s so a type stored on its own can be decoded later without the typespace. */
function inline(ty: AlgebraicTypeT, typespace: Typespace | undefined, depth = 0): AlgebraicTypeT {
  if (depth > 64) throw new Error('type nesting too deep (a recursive type cannot be stored inline)');
  switch (ty.tag) {
    case 'Ref': {
      const resolved = typespace?.types[ty.value];
      if (!resolved) throw new Error(`type ref ${ty.value} without a typespace`);
      return inline(resolved, typespace, depth + 1);
    }
    case 'Product':
      return {
        tag: 'Product',
        value: { elements: ty.value.elements.map(e => ({ name: e.name, algebraicType: inline(e.algebraicType, typespace, depth + 1) })) },
      };
    case 'Sum':
      return {
        tag: 'Sum',
        value: { variants: ty.value.variants.map(v => ({ name: v.name, algebraicType: inline(v.algebraicType, typespace, depth + 1) })) },
      };
    case 'Array':
      return { tag: 'Array', value: inline(ty.value, typespace, depth + 1) };
    default:
      return ty;
  }
}

function inlineProduct(ty: ProductTypeT, typespace: Typespace | undefined): ProductTypeT {
  const out = inline({ tag: 'Product', value: ty }, typespace);
  return (out as { tag: 'Product'; value: ProductTypeT }).value;
}

/** Describe the bindings: the fingerprint and per-table / per-reducer hashes. */
export function describeSchema(module: StorageModule): SchemaRecord {
  const tables: SchemaRecord['tables'] = {};
  for (const table of Object.values(module.tables)) {
    const rowType = inlineProduct(table.rowType, module.typespace);
    tables[table.sourceName] = { hash: hash(canonical(rowType)), rowType };
  }
  const reducers: SchemaRecord['reducers'] = {};
  for (const reducer of module.reducers) {
    const paramsType = inlineProduct(reducer.paramsType, module.typespace);
    reducers[reducer.name] = { hash: hash(canonical(paramsType)), paramsType };
  }
  const summary = {
    tables: Object.fromEntries(Object.entries(tables).map(([n, t]) => [n, t.hash])),
    reducers: Object.fromEntries(Object.entries(reducers).map(([n, r]) => [n, r.hash])),
  };
  return { fingerprint: hash(canonical(summary)), tables, reducers };
}

/** How two schema descriptions differ. */
export interface SchemaDiff {
  changed: boolean;
  /** Tables whose row type changed or that are gone: their snapshots are stale. */
  staleTables: string[];
  /** Reducers whose parameters changed or that are gone: their queued entries need a migrator. */
  changedReducers: string[];
}

export function diffSchemas(previous: SchemaRecord | undefined, current: SchemaRecord): SchemaDiff {
  if (!previous) return { changed: false, staleTables: [], changedReducers: [] };
  const staleTables = Object.keys(previous.tables).filter(n => current.tables[n]?.hash !== previous.tables[n].hash);
  const changedReducers = Object.keys(previous.reducers).filter(n => current.reducers[n]?.hash !== previous.reducers[n].hash);
  return { changed: previous.fingerprint !== current.fingerprint, staleTables, changedReducers };
}

/** Codecs for every table and reducer of a module, built once. */
export class ModuleCodecs {
  readonly schema: SchemaRecord;
  private readonly rows = new Map<string, { codec: ProductCodec; pk?: { name: string; type: AlgebraicTypeT } }>();
  private readonly args = new Map<string, ProductCodec>();

  constructor(readonly module: StorageModule) {
    this.schema = describeSchema(module);
    for (const table of Object.values(module.tables)) {
      const rowType = this.schema.tables[table.sourceName].rowType;
      const pkName = Object.entries(table.columns ?? {}).find(([, c]) => c.columnMetadata?.isPrimaryKey)?.[0];
      const pkElement = pkName ? rowType.elements.find(e => e.name === pkName) : undefined;
      this.rows.set(table.sourceName, {
        codec: productCodec(rowType),
        pk: pkElement ? { name: pkName!, type: pkElement.algebraicType } : undefined,
      });
    }
    for (const reducer of module.reducers) {
      this.args.set(reducer.name, productCodec(this.schema.reducers[reducer.name].paramsType));
    }
  }

  /** The row codec and primary key of a table (canonical name), or undefined. */
  table(name: string) {
    return this.rows.get(name);
  }

  /** The argument codec of a reducer (canonical name), or undefined. */
  reducer(name: string): ProductCodec | undefined {
    return this.args.get(name);
  }
}
