/**
 * Turning a table reference from generated bindings (`tables.person`, or
 * `tables.person.where(r => r.age.gte(18))`) into what a live query needs:
 * subscription SQL (rendered by the SDK's query builder), the row key, and a
 * client-side copy of the filter.
 *
 * The client-side filter matters because the SDK keeps one cache per table:
 * when two queries on the same table are live, each view must pick its own
 * rows out of the shared cache.
 *
 * @module
 */
import { AlgebraicType, BinaryWriter, ProductType, deepEqual, type BooleanExpr } from 'spacetimedb';
import type { RowKey, ViewShape } from './tableView.ts';

/** The parts of a generated table reference the client reads (the SDK's `TableRef`). */
export interface TableRefLike {
  readonly sourceName: string;
  readonly accessorName: string;
  readonly tableDef: {
    readonly columns: Record<string, { columnMetadata: { isPrimaryKey?: boolean; name?: string }; typeBuilder: { algebraicType: any } }>;
    readonly rowType: any;
    readonly isEvent?: boolean;
  };
  where(predicate: (row: any) => any): { toSql(): string; whereClause?: BooleanExpr<any> };
  toSql(): string;
}

/** A filtered query from the SDK's builder (`tables.person.where(…)`). */
export interface FromQueryLike {
  readonly table: TableRefLike;
  readonly whereClause?: BooleanExpr<any>;
  toSql(): string;
}

export type QuerySource = TableRefLike | FromQueryLike;

/** Everything the registry needs about one query. */
export interface CompiledQuery<Row> extends ViewShape<Row> {
  readonly key: string;
  readonly sql: string;
  readonly table: TableRefLike;
  /** Convert a user-facing primary key value (e.g. an `Identity`) into the map key. */
  toKey(value: unknown): RowKey;
}

function isFrom(q: QuerySource): q is FromQueryLike {
  return typeof (q as FromQueryLike).table === 'object' && (q as FromQueryLike).table !== null && 'tableDef' in (q as FromQueryLike).table;
}

/** Compile a query source, with an optional extra `where`. */
export function compileQuery<Row>(source: QuerySource, where?: (row: any) => any): CompiledQuery<Row> {
  if (!source || typeof source !== 'object') throw new TypeError('table$: expected a table reference from the generated bindings (e.g. `tables.person`).');
  if ('sourceQuery' in source) throw new TypeError('table$: semijoin queries are not supported; subscribe to each table.');
  const table = isFrom(source) ? source.table : (source as TableRefLike);
  if (!table.tableDef || typeof table.toSql !== 'function') throw new TypeError('table$: expected a table reference from the generated bindings (e.g. `tables.person`).');
  let query: { toSql(): string; whereClause?: BooleanExpr<any> } = source;
  if (where) query = (isFrom(source) ? (source as unknown as TableRefLike) : table).where(where);
  const sql = query.toSql();
  const clause = query.whereClause;

  const { keyOf, toKey, primaryKeyed } = keyFunctions<Row>(table);
  const matches = clause ? (row: Row) => evaluate(clause.data, row as Record<string, unknown>) : matchAll;
  return { key: sql, sql, table, keyOf, toKey, matches, everyRow: clause === undefined, primaryKeyed, same: sameFunction<Row>(table) };
}

/** The filter of a query without `where` (one function for all of them, like the key functions below). */
const matchAll = (): boolean => true;

/** Column types whose values the SDK decodes to primitives (`===` compares them). */
const PRIMITIVE_TAGS = new Set(['Bool', 'I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128', 'I256', 'U256', 'F32', 'F64', 'String']);

/** Whether two values of one column are equal: `===` for primitives (NaN equal to NaN), else the SDK's `deepEqual`. */
function sameValue(x: unknown, y: unknown, primitive: boolean): boolean {
  if (x === y) return true;
  if (primitive) return x !== x && y !== y;
  return deepEqual(x, y);
}

type Columns = Record<string, unknown>;
type ColumnSame = (a: Columns, b: Columns) => boolean;

/**
 * Equality of the column at position i and of the columns after it (`next`),
 * one function literal per position: each one's property reads then only
 * ever see one column name and its call only one next function, so V8 keeps
 * them monomorphic and inlines the chain (a loop over the column names reads
 * every column through one megamorphic site, several times slower).
 */
const COLUMN_SAME: readonly ((name: string, primitive: boolean, next: ColumnSame) => ColumnSame)[] = [
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
  (n, p, next) => (a, b) => sameValue(a[n], b[n], p) && next(a, b),
];

/** Row equality per table definition, shared by every connection for the reason `KEY_FUNCTIONS` gives. */
const SAME_FUNCTIONS = new WeakMap<object, (a: any, b: any) => boolean>();

/**
 * Row equality for one table, column by column: `===` for primitive columns
 * (NaN equal to NaN), the SDK's `deepEqual` only for the others (identities,
 * timestamps, arrays, sums, products).
 */
function sameFunction<Row>(table: Pick<TableRefLike, 'tableDef'>): (a: Row, b: Row) => boolean {
  let same = SAME_FUNCTIONS.get(table.tableDef);
  if (same === undefined) SAME_FUNCTIONS.set(table.tableDef, (same = buildSameFunction(table)));
  return same as (a: Row, b: Row) => boolean;
}

function buildSameFunction<Row>(table: Pick<TableRefLike, 'tableDef'>): (a: Row, b: Row) => boolean {
  const cols = Object.entries(table.tableDef.columns).map(([name, c]) => ({ name, primitive: PRIMITIVE_TAGS.has(c.typeBuilder.algebraicType?.tag) }));
  const rest = cols.slice(COLUMN_SAME.length);
  let chain: ColumnSame = rest.length === 0 ? () => true : (a, b) => rest.every(({ name, primitive }) => sameValue(a[name], b[name], primitive));
  for (let i = Math.min(cols.length, COLUMN_SAME.length) - 1; i >= 0; i--) chain = COLUMN_SAME[i](cols[i].name, cols[i].primitive, chain);
  return chain as unknown as (a: Row, b: Row) => boolean;
}

type KeyFunctions<Row> = { keyOf: (row: Row) => RowKey; toKey: (value: unknown) => RowKey; primaryKeyed: boolean };

/**
 * Key functions per table definition. The bindings' table definitions live as
 * long as the app, so every connection's queries on a table share one `keyOf`:
 * code V8 optimized with it inlined (the mirror's and the views' per-row loops)
 * stays valid when a connection closes and its queries are collected.
 */
const KEY_FUNCTIONS = new WeakMap<object, KeyFunctions<any>>();

/** Row key functions of a table: its primary key as the SDK maps it, else the row's BSATN bytes. */
function keyFunctions<Row>(table: Pick<TableRefLike, 'tableDef'>): KeyFunctions<Row> {
  let fns = KEY_FUNCTIONS.get(table.tableDef) as KeyFunctions<Row> | undefined;
  if (fns === undefined) KEY_FUNCTIONS.set(table.tableDef, (fns = buildKeyFunctions<Row>(table)));
  return fns;
}

function buildKeyFunctions<Row>(table: Pick<TableRefLike, 'tableDef'>): KeyFunctions<Row> {
  const pk = Object.entries(table.tableDef.columns).find(([, c]) => c.columnMetadata.isPrimaryKey);
  let keyOf: (row: Row) => RowKey;
  let toKey: (value: unknown) => RowKey;
  if (pk) {
    const [col, def] = pk;
    const ty = def.typeBuilder.algebraicType;
    // A primitive key is its own map key (what intoMapKey returns for it): read the column, nothing more.
    keyOf = PRIMITIVE_TAGS.has(ty?.tag) ? (row) => (row as Record<string, unknown>)[col] as RowKey : (row) => AlgebraicType.intoMapKey(ty, (row as Record<string, unknown>)[col]);
    toKey = (value) => AlgebraicType.intoMapKey(ty, value);
  } else {
    const serialize = ProductType.makeSerializer(table.tableDef.rowType);
    const writer = new BinaryWriter(64);
    keyOf = (row) => {
      writer.clear();
      serialize(writer, row);
      return writer.toBase64();
    };
    toKey = (value) => (typeof value === 'string' ? value : keyOf(value as Row));
  }
  return { keyOf, toKey, primaryKeyed: pk !== undefined };
}

/**
 * A query given as SQL over one table (e.g. the receipts query with
 * `:sender`), with a client-side filter the caller supplies.
 */
export function compileRawQuery<Row>(table: Pick<TableRefLike, 'tableDef' | 'sourceName' | 'accessorName'>, sql: string, matches: (row: Row) => boolean): CompiledQuery<Row> {
  const { keyOf, toKey, primaryKeyed } = keyFunctions<Row>(table);
  return { key: sql, sql, table: table as TableRefLike, keyOf, toKey, matches, everyRow: false, primaryKeyed, same: sameFunction<Row>(table) };
}

type ExprData = BooleanExpr<any>['data'];
type ValueExpr = { type: 'literal'; value: unknown } | { type: 'column'; column: string };

function comparable(v: unknown): unknown {
  if (v && typeof v === 'object') {
    if (typeof (v as { toHexString?: unknown }).toHexString === 'function') return (v as { toHexString(): string }).toHexString();
    const micros = (v as Record<string, unknown>).__timestamp_micros_since_unix_epoch__;
    if (typeof micros === 'bigint') return micros;
  }
  return v;
}

function value(e: ValueExpr, row: Record<string, unknown>): unknown {
  return comparable(e.type === 'literal' ? e.value : row[e.column]);
}

/** Compare with SQL-ish semantics: a u64 column (bigint) equals the integer literal `3`. */
function compare(a: unknown, b: unknown): number {
  if (typeof a === 'bigint' && typeof b === 'number') {
    if (!Number.isInteger(b)) return Number(a) < b ? -1 : Number(a) > b ? 1 : 0;
    b = BigInt(b);
  } else if (typeof a === 'number' && typeof b === 'bigint') return -compare(b, a);
  if (a === b) return 0;
  if (a === undefined || a === null || b === undefined || b === null) return NaN;
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : NaN;
}

/** Strings compare by code point, like the server's UTF-8 byte order. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

function evaluate(data: ExprData, row: Record<string, unknown>): boolean {
  switch (data.type) {
    case 'and':
      return data.clauses.every((c) => evaluate(c, row));
    case 'or':
      return data.clauses.some((c) => evaluate(c, row));
    case 'not':
      return !evaluate(data.clause, row);
    default: {
      const c = compare(value(data.left as ValueExpr, row), value(data.right as ValueExpr, row));
      switch (data.type) {
        case 'eq':
          return c === 0;
        case 'ne':
          return c !== 0 && !Number.isNaN(c);
        case 'lt':
          return c < 0;
        case 'lte':
          return c <= 0;
        case 'gt':
          return c > 0;
        case 'gte':
          return c >= 0;
      }
    }
  }
  return false;
}
