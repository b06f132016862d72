/**
 * Query sets of connected clients, and what a committed transaction means for
 * each of them. A transaction's effect on one query is computed once (per
 * distinct query, or per subscriber for `:sender` queries) and its row lists
 * built once, however many clients share the query.
 */
import type { Identity } from 'spacetimedb';
import type { ChangeSet, DataSource, StoredRow, TableInfo } from './types.ts';
import { compileQuery, type CompiledQuery } from './sql/compile.ts';
import { deltaRows, initialRows } from './sql/evaluate.ts';
import { buildRowList } from './protocol/rows.ts';
import type { BsatnRowList, QueryRows, QuerySetUpdate, TableUpdate } from './protocol/messages.ts';

/** A compiled query together with the key under which its results can be shared. */
export interface BoundQuery {
  readonly query: CompiledQuery;
  /** Equal for two subscriptions whose results are always equal. */
  readonly shareKey: string;
}

export interface QuerySet {
  readonly id: number;
  readonly queries: readonly BoundQuery[];
}

/** Compile a client's query strings (all or nothing). Throws `SqlError`. */
export function compileQuerySet(
  queryStrings: readonly string[],
  sender: Identity,
  tables: readonly TableInfo[],
): BoundQuery[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const ctx = { resolveTable: (n: string) => byName.get(n), allTables: () => tables, sender };
  const out: BoundQuery[] = [];
  for (const sql of queryStrings) {
    for (const query of compileQuery(sql, ctx)) {
      out.push({ query, shareKey: query.usesSender ? `${query.sql}\u0000${sender.toHexString()}` : query.sql });
    }
  }
  return out;
}

/** The rows a query set returns now: one row list per query (a row in two queries appears twice). */
export function querySetRows(queries: readonly BoundQuery[], source: DataSource): QueryRows {
  return {
    tables: queries.map((q) => ({
      table: q.query.table.name,
      rows: buildRowList(q.query.table.isEvent ? [] : initialRows(q.query, source).map((r) => r.bytes)),
    })),
  };
}

interface QueryDelta {
  readonly inserts: BsatnRowList;
  readonly deletes: BsatnRowList;
  readonly empty: boolean;
}

/**
 * The effect of one committed transaction, computed lazily per shared query
 * and memoised for every subscriber.
 */
export class TransactionEffects {
  readonly #memo = new Map<string, QueryDelta>();

  constructor(
    readonly changes: ChangeSet,
    readonly source: DataSource,
  ) {}

  #delta(q: BoundQuery): QueryDelta {
    let d = this.#memo.get(q.shareKey);
    if (!d) {
      const touched = q.query.tables.some((t) => this.changes.has(t));
      if (!touched) {
        d = EMPTY_DELTA;
      } else {
        const { inserts, deletes } = deltaRows(q.query, this.changes, this.source);
        d = {
          inserts: buildRowList(inserts.map((r: StoredRow) => r.bytes)),
          deletes: buildRowList(deletes.map((r: StoredRow) => r.bytes)),
          empty: inserts.length === 0 && deletes.length === 0,
        };
      }
      this.#memo.set(q.shareKey, d);
    }
    return d;
  }

  /** The update for one query set, or `undefined` when the transaction did not change it. */
  querySetUpdate(set: QuerySet): QuerySetUpdate | undefined {
    const tables: TableUpdate[] = [];
    const byTable = new Map<string, TableUpdate>();
    for (const q of set.queries) {
      const d = this.#delta(q);
      if (d.empty) continue;
      const name = q.query.table.name;
      let tu = byTable.get(name);
      if (!tu) {
        tu = { tableName: name, rows: [] };
        byTable.set(name, tu);
        tables.push(tu);
      }
      tu.rows.push(
        q.query.table.isEvent
          ? { tag: 'EventTable', value: { events: d.inserts } }
          : { tag: 'PersistentTable', value: { inserts: d.inserts, deletes: d.deletes } },
      );
    }
    return tables.length > 0 ? { querySetId: { id: set.id }, tables } : undefined;
  }
}

const EMPTY_LIST: BsatnRowList = buildRowList([]);
const EMPTY_DELTA: QueryDelta = { inserts: EMPTY_LIST, deletes: EMPTY_LIST, empty: true };
