/**
 * The module's receipts table, as the client follows it: which table, the
 * subscription (this identity's receipts only), and the mutation ids it
 * holds now — the calls that took effect, whatever became of their answers.
 *
 * @module
 */
import { compileRawQuery, type CompiledQuery, type TableRefLike } from '../../streams/query.ts';
import type { ConnectionLike } from '../../streams/liveQueries.ts';
import type { ReceiptsOptions } from './options.ts';

export interface Receipts {
  /** The receipts table's accessor name. */
  readonly accessor: string;
  /** The subscription to keep while the client has storage. */
  readonly query: CompiledQuery<any>;
  /** The mutation ids of this identity's receipts in the connection's cache. */
  ids(conn: ConnectionLike): string[];
}

/** A table of the bindings' module description, as the SDK keeps it. */
type TableDef = { sourceName: string; accessorName: string; columns?: Record<string, any> };

/**
 * The receipts to follow, or `undefined` when there are none (`false`, or
 * the bindings have no `mutation_receipt` table and none was named).
 * `identityHex` is read whenever a row is tested: receipts are per identity.
 */
export function resolveReceipts(option: ReceiptsOptions | false | undefined, tables: Record<string, TableDef> | undefined, identityHex: () => string | undefined): Receipts | undefined {
  if (option === false) return undefined;
  const r = option ?? {};
  let table: Pick<TableRefLike, 'tableDef' | 'sourceName' | 'accessorName'> | undefined;
  if (r.table) table = 'tableDef' in r.table ? (r.table as TableRefLike) : (r.table as { table: TableRefLike }).table;
  else {
    const def = Object.values(tables ?? {}).find((t) => t?.sourceName === 'mutation_receipt');
    // A table of the module description is what a table reference calls its `tableDef`.
    if (def?.columns) table = { sourceName: def.sourceName, accessorName: def.accessorName, tableDef: def as unknown as TableRefLike['tableDef'] };
  }
  if (!table) {
    if (option) throw new TypeError('createSyncClient: `receipts.table` is not a table reference from the bindings.');
    return undefined;
  }
  const idColumn = r.mutationIdColumn ?? 'mutationId';
  const senderColumn = r.senderColumn ?? 'sender';
  const senderSql = table.tableDef.columns[senderColumn]?.columnMetadata?.name ?? senderColumn;
  const sql = r.query ?? `SELECT * FROM "${table.sourceName}" WHERE "${table.sourceName}"."${senderSql}" = :sender`;
  const mine = (row: any) => {
    const hex = identityHex();
    return hex !== undefined && row?.[senderColumn]?.toHexString?.() === hex;
  };
  const accessor = table.accessorName;
  return {
    accessor,
    query: compileRawQuery<any>(table, sql, mine),
    ids(conn) {
      const ids: string[] = [];
      const t = conn.db[accessor];
      if (!t) return ids;
      for (const row of t.iter()) if (mine(row) && typeof row[idColumn] === 'string') ids.push(row[idColumn]);
      return ids;
    },
  };
}
