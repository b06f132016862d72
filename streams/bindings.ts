/**
 * What the client and the storage read from generated bindings: tables with
 * their row types and primary-key metadata, reducers with their parameter
 * types (the shape of the bindings' `REMOTE_MODULE`, exposed as
 * `DbConnection.builder().remoteModule`). Reading them needs no storage.
 */
import type { ProductType as ProductTypeT } from 'spacetimedb';
import type { Typespace } from './codec.ts';

/** A table as the bindings describe it. */
export interface StorageTableDef {
  /** Canonical (wire) name, e.g. `game_node`. */
  sourceName: string;
  rowType: ProductTypeT;
  /** Column builders; the one whose `columnMetadata.isPrimaryKey` is set keys the snapshot rows. */
  columns?: Record<string, { columnMetadata?: { isPrimaryKey?: boolean } }>;
}

/** A reducer as the bindings describe it. */
export interface StorageReducerDef {
  /** Canonical (wire) name, e.g. `move_node`. */
  name: string;
  /** The bindings' accessor name, e.g. `moveNode`. */
  accessorName?: string;
  paramsType: ProductTypeT;
}

/** The bindings' module description (`REMOTE_MODULE` has this shape). */
export interface StorageModule {
  tables: Record<string, StorageTableDef>;
  reducers: readonly StorageReducerDef[];
  typespace?: Typespace;
}

/**
 * The storage's module description from what generated bindings export:
 * `tables` (each entry carries `sourceName`, `rowType` and `columns`) and
 * `reducers` (the accessor map, or a list of reducer definitions).
 *
 * ```ts
 * import { tables, reducers } from './module_bindings';
 * const module = moduleFromBindings({ tables, reducers });
 * ```
 */
export function moduleFromBindings(bindings: {
  tables: Record<string, StorageTableDef> | object;
  reducers: Record<string, StorageReducerDef> | readonly StorageReducerDef[] | object;
}): StorageModule {
  const tables: Record<string, StorageTableDef> = {};
  for (const [accessor, table] of Object.entries(bindings.tables as Record<string, StorageTableDef>)) {
    if (!table || typeof table.sourceName !== 'string' || !table.rowType) {
      throw new TypeError(`bindings table ${accessor} has no sourceName/rowType: is this the bindings' tables export?`);
    }
    tables[accessor] = { sourceName: table.sourceName, rowType: table.rowType, columns: table.columns };
  }
  const list = Array.isArray(bindings.reducers)
    ? (bindings.reducers as StorageReducerDef[])
    : Object.values(bindings.reducers as Record<string, StorageReducerDef>);
  for (const r of list) {
    if (!r || typeof r.name !== 'string' || !r.paramsType) {
      throw new TypeError('a bindings reducer has no name/paramsType: is this the bindings\' reducers export?');
    }
  }
  return { tables, reducers: list.map(r => ({ name: r.name, accessorName: r.accessorName, paramsType: r.paramsType })) };
}
