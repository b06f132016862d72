/**
 * Query sets of connected clients, and what a committed transaction means for
 * each of them. A transaction's effect on one query is computed once (per
 * distinct query, or per subscriber for `:sender` queries) and its row lists
 * built once, however many clients share the query.
 */
import { Identity as IdentityClass, type Identity } from 'spacetimedb';
import type { ModuleInstance } from './host/instance.ts';
import type { ChangeSet, DataSource, StoredRow, TableInfo } from './types.ts';
import { compileQuery, tableResolver, type CompiledQuery } from './sql/compile.ts';
import { SqlError } from './sql/errors.ts';
import { RowLevelSecurity, type Visibility } from './rls.ts';
import { ViewError, ViewHost } from './views.ts';
import type { ViewDesc } from './host/moduleDef.ts';
import { deltaRows, initialRows } from './sql/evaluate.ts';
import { buildRowList } from './protocol/rows.ts';
import type { BsatnRowList, QueryRows, QuerySetUpdate, TableUpdate } from './protocol/messages.ts';

/** A compiled query together with the key under which its results can be shared. */
export interface BoundQuery {
  readonly query: CompiledQuery;
  /** Equal for two subscriptions whose results are always equal. */
  readonly shareKey: string;
  /** Present when row-level security or views shape what the subscriber reads. */
  readonly reader?: QueryReader;
}

/** What decides what a subscriber may read: the module's filters, its views, its owner. */
export interface Access {
  readonly rls: RowLevelSecurity;
  readonly views: ViewHost;
  /** The database owner: reads private tables, no visibility filter applies. */
  readonly owner?: Identity;
}

type Bag = Map<string, { row: StoredRow; n: number }>;

/**
 * How one subscriber reads one query when visibility filters or views are
 * involved. `incremental`: the filters depend on each row alone, so a
 * transaction's changes are filtered row by row and evaluated as usual.
 * `recompute`: the result is computed again after every transaction that
 * touches a table it depends on (through a join filter or a view) and
 * compared with the last result sent.
 */
export class QueryReader {
  /** The last result sent (recompute mode). */
  last: Bag | undefined;
  readonly #viewKeys: readonly string[];

  constructor(
    readonly sender: Identity,
    readonly visibility: Visibility,
    readonly views: ViewHost,
    readonly mode: 'incremental' | 'recompute',
    /** Tables whose changes can change the result (recompute mode), views excluded. */
    readonly dependencies: readonly string[],
    readonly viewTables: readonly ViewDesc[],
  ) {
    this.#viewKeys = viewTables.map((v) => views.keyFor(v, sender));
  }

  /** The datastore as this subscriber reads it. */
  source(base: DataSource): DataSource {
    return this.visibility.source(this.views.source(base, this.sender));
  }

  /** Whether a transaction may have changed the result (recompute mode). */
  affected(changes: ChangeSet): boolean {
    return this.dependencies.some((t) => changes.has(t)) || this.#viewKeys.some((k) => this.views.affected(k));
  }
}

function bagOf(rows: readonly StoredRow[]): Bag {
  const bag: Bag = new Map();
  for (const row of rows) {
    const e = bag.get(row.key);
    if (e) e.n++;
    else bag.set(row.key, { row, n: 1 });
  }
  return bag;
}

/** The rows of `q` as its subscriber reads them now. @throws {ViewError} */
function readRows(q: BoundQuery, source: DataSource): StoredRow[] {
  if (q.query.table.isEvent) return [];
  const rows = initialRows(q.query, q.reader ? q.reader.source(source) : source);
  if (q.reader?.mode === 'recompute') q.reader.last = bagOf(rows);
  return rows;
}

/** Bind compiled queries to the visibility filters and views that apply to `sender`. */
function bindAccess(query: CompiledQuery, sender: Identity, access: Access, visibility: Visibility, isOwner: boolean): BoundQuery {
  const viewTables = query.tables.map((t) => access.views.get(t)).filter((v): v is ViewDesc => v !== undefined);
  for (const v of viewTables) {
    if (v.paramCount > 0) throw new SqlError(`view "${v.name}" takes parameters and cannot be queried`);
  }
  const baseTables = query.tables.filter((t) => !access.views.get(t));
  const filtered = visibility.filtersAny(baseTables);
  const perSender =
    query.usesSender || viewTables.some((v) => !v.isAnonymous) || (filtered && visibility.usesSender(baseTables));
  const shareKey = `${query.sql}${perSender ? `\u0000${sender.toHexString()}` : ''}${isOwner ? '\u0000owner' : ''}`;
  if (!filtered && viewTables.length === 0) return { query, shareKey };
  const recompute = viewTables.length > 0 || (!visibility.rowLocal(baseTables) && !query.table.isEvent);
  const reader = new QueryReader(
    sender,
    visibility,
    access.views,
    recompute ? 'recompute' : 'incremental',
    visibility.dependencies(baseTables),
    viewTables,
  );
  return { query, shareKey, reader };
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
  access?: Access,
): BoundQuery[] {
  const all = access ? [...tables, ...access.views.tables] : tables;
  const resolveTable = tableResolver(all);
  const isOwner = access?.owner?.isEqual(sender) ?? false;
  // `SELECT * FROM *` names the tables; views are subscribed to by name.
  const ctx = { resolveTable, allTables: () => tables, sender, allowPrivate: isOwner };
  const visibility = access?.rls.forSender(sender);
  const out: BoundQuery[] = [];
  for (const sql of queryStrings) {
    for (const query of compileQuery(sql, ctx)) {
      if (access && visibility) out.push(bindAccess(query, sender, access, visibility, isOwner));
      else out.push({ query, shareKey: query.usesSender ? `${query.sql}\u0000${sender.toHexString()}` : query.sql });
    }
  }
  return out;
}

/**
 * The rows a query set returns now: one row list per query (a row in two
 * queries appears twice). @throws {ViewError} when a view it reads fails.
 */
export function querySetRows(queries: readonly BoundQuery[], source: DataSource): QueryRows {
  return {
    tables: queries.map((q) => ({
      table: q.query.table.name,
      rows: buildRowList(readRows(q, source).map((r) => r.bytes)),
    })),
  };
}

interface QueryDelta {
  readonly inserts: BsatnRowList;
  readonly deletes: BsatnRowList;
  readonly empty: boolean;
  /** The new result (recompute mode), handed to every subscriber sharing it. */
  readonly after?: Bag;
}

/**
 * The effect of one committed transaction, computed lazily per shared query
 * and memoised for every subscriber.
 */
export class TransactionEffects {
  readonly #memo = new Map<string, QueryDelta>();
  /** Views that failed while their subscribers' results were recomputed (their subscribers keep the last result). */
  readonly errors: ViewError[] = [];

  constructor(
    readonly changes: ChangeSet,
    readonly source: DataSource,
    /** Told of each view failure as it happens. */
    readonly onViewError?: (e: ViewError) => void,
  ) {}

  #delta(q: BoundQuery): QueryDelta {
    let d = this.#memo.get(q.shareKey);
    if (d) {
      if (d.after && q.reader) q.reader.last = d.after;
      return d;
    }
    if (q.reader) {
      d = this.#readerDelta(q, q.reader);
      this.#memo.set(q.shareKey, d);
      return d;
    }
    {
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

  #readerDelta(q: BoundQuery, r: QueryReader): QueryDelta {
    if (r.mode === 'incremental') {
      if (!q.query.tables.some((t) => this.changes.has(t))) return EMPTY_DELTA;
      const { inserts, deletes } = deltaRows(q.query, r.visibility.changes(this.changes, this.source), r.source(this.source));
      return listDelta(inserts, deletes);
    }
    if (!r.affected(this.changes)) return EMPTY_DELTA;
    let after: Bag;
    try {
      after = bagOf(initialRows(q.query, r.source(this.source)));
    } catch (e) {
      if (!(e instanceof ViewError)) throw e;
      this.errors.push(e);
      this.onViewError?.(e);
      return EMPTY_DELTA;
    }
    const before = r.last ?? new Map();
    const inserts: StoredRow[] = [];
    const deletes: StoredRow[] = [];
    for (const [key, a] of after) {
      const n = a.n - (before.get(key)?.n ?? 0);
      for (let i = 0; i < n; i++) inserts.push(a.row);
      for (let i = 0; i < -n; i++) deletes.push(before.get(key)!.row);
    }
    for (const [key, b] of before) {
      if (!after.has(key)) for (let i = 0; i < b.n; i++) deletes.push(b.row);
    }
    r.last = after;
    return { ...listDelta(inserts, deletes), after };
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

function listDelta(inserts: readonly StoredRow[], deletes: readonly StoredRow[]): QueryDelta {
  return {
    inserts: buildRowList(inserts.map((r) => r.bytes)),
    deletes: buildRowList(deletes.map((r) => r.bytes)),
    empty: inserts.length === 0 && deletes.length === 0,
  };
}

const EMPTY_LIST: BsatnRowList = buildRowList([]);
const EMPTY_DELTA: QueryDelta = { inserts: EMPTY_LIST, deletes: EMPTY_LIST, empty: true };

const accessCache = new WeakMap<object, Access>();

/**
 * The access rules of a loaded module (its visibility filters and views),
 * built once per module instance. @throws {RowLevelSecurityError} when its
 * filters are invalid.
 */
export function accessFor(module: ModuleInstance, owner: Identity | undefined): Access {
  let a = accessCache.get(module);
  if (!a) {
    const d = module.description;
    a = { rls: new RowLevelSecurity(d.rowLevelSecurity, d.tables, owner, IdentityClass.zero()), views: new ViewHost(module), owner };
    accessCache.set(module, a);
  }
  return a;
}
