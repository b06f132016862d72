/**
 * Compiles subscription SQL against the module's tables: resolves names,
 * checks types, coerces literals once, and turns the WHERE clause into
 * closures over decoded rows (`StoredRow.value`), split by which table each
 * conjunct reads so evaluation can filter each side before pairing rows.
 */
import type { Identity } from 'spacetimedb';
import type { ColumnInfo, TableInfo } from '../types.ts';
import { SqlError } from './errors.ts';
import { coerceLiteral, literalText } from './literals.ts';
import { parseSql, type CmpOp, type ColumnRef, type Literal, type Operand, type Predicate, type SelectStmt, type TableRef } from './parse.ts';
import { compareStrings, formatType, kindOf, primitiveGetter, sameType, type Kind, type Primitive } from './types.ts';

/** A decoded row, keyed by `ColumnInfo.field`. */
export type RowValue = Readonly<Record<string, unknown>>;
/** A condition on one row. */
export type RowFilter = (row: RowValue) => boolean;
/** A condition on a returned-table row and an other-table row together. */
export type PairFilter = (row: RowValue, other: RowValue) => boolean;

/** What the compiler needs from the module host. */
export interface CompileContext {
  /** The table with this canonical name, if any. */
  resolveTable(name: string): TableInfo | undefined;
  /** Every table, for `SELECT * FROM *`. */
  allTables(): readonly TableInfo[];
  /** The subscriber, the value of `:sender`. */
  readonly sender: Identity;
  /** Let the query read private tables (the database owner, a view's own query). @default false */
  readonly allowPrivate?: boolean;
}

/** The join half of a compiled `SELECT a.* FROM a JOIN b ON a.x = b.y`. */
export interface CompiledJoin {
  /** The other table: its rows decide which returned rows appear, and how often. */
  readonly table: TableInfo;
  /** The join column of the returned table. */
  readonly column: ColumnInfo;
  /** The join column of the other table (same type as {@link column}). */
  readonly otherColumn: ColumnInfo;
  /** The comparable join key of a returned-table row (`===` means "joins"). */
  readonly key: (row: RowValue) => Primitive;
  /** The comparable join key of an other-table row. */
  readonly otherKey: (row: RowValue) => Primitive;
  /** WHERE conjuncts that read only the other table. */
  readonly otherFilter: RowFilter;
  /** WHERE conjuncts that read both tables. */
  readonly pairFilter: PairFilter;
}

/** One compiled subscription query. */
export interface CompiledQuery {
  /** The SQL it was compiled from (one table's `SELECT *` for a `FROM *` expansion). */
  readonly sql: string;
  /** The table whose rows the query returns. */
  readonly table: TableInfo;
  /** Present for a join. */
  readonly join?: CompiledJoin;
  /** WHERE conjuncts that read only the returned table (all of them without a join). */
  readonly rowFilter: RowFilter;
  /** Whether the query mentions `:sender`, so its result depends on the subscriber. */
  readonly usesSender: boolean;
  /** Canonical names of the tables whose changes can change the result. */
  readonly tables: readonly string[];
}

/**
 * Parses and compiles one subscription query. `SELECT * FROM *` yields one
 * query per public table; everything else yields exactly one.
 *
 * @throws {SqlError} for syntax outside the subset, unknown or private
 * tables, unknown columns, type mismatches and unindexed joins.
 */
export function compileQuery(sql: string, ctx: CompileContext): CompiledQuery[] {
  const stmt = parseSql(sql);
  if (stmt.from === '*') {
    if (stmt.projection.table !== undefined) {
      throw new SqlError(`unsupported: SELECT ${stmt.projection.table}.* FROM *`, stmt.projection.pos);
    }
    if (stmt.where) throw new SqlError('unsupported: WHERE with FROM *');
    return ctx
      .allTables()
      .filter((t) => t.isPublic)
      .map((table) => ({
        sql: `SELECT * FROM ${quoteIdent(table.name)}`,
        table,
        rowFilter: TRUE,
        usesSender: false,
        tables: [table.name],
      }));
  }
  return [new Compiler(stmt, sql, ctx).compile()];
}

const TRUE: RowFilter = () => true;

/**
 * A table lookup by canonical name or by the module's own (source) name, as
 * SpacetimeDB resolves names in SQL (a view's query builder writes source names).
 */
export function tableResolver(tables: readonly (TableInfo & { sourceName?: string })[]): (name: string) => TableInfo | undefined {
  const byName = new Map<string, TableInfo>();
  for (const t of tables) if (t.sourceName !== undefined) byName.set(t.sourceName, t);
  for (const t of tables) byName.set(t.name, t);
  return (name) => byName.get(name);
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Side 0 is the returned table, side 1 the other table of a join. */
type Side = 0 | 1;

interface Scope {
  readonly table: TableInfo;
  readonly side: Side;
  readonly columns: ReadonlyMap<string, ColumnInfo>;
}

interface ResolvedColumn {
  readonly column: ColumnInfo;
  readonly scope: Scope;
  readonly kind: Kind | undefined;
  /** `"alias"."column"` as written, for messages. */
  readonly label: string;
}

/**
 * A compiled condition. `sides` is a bit set of the sides it reads (bit 0:
 * returned table, bit 1: other table); a condition reading one side ignores
 * the other argument. `constant` is set when it does not depend on rows.
 */
interface Cond {
  readonly fn: PairFilter;
  readonly sides: number;
  readonly constant?: boolean;
}

const constant = (value: boolean): Cond => ({ fn: value ? () => true : () => false, sides: 0, constant: value });

class Compiler {
  private readonly scopes = new Map<string, Scope>();
  private readonly joined: boolean;
  private usesSender = false;

  constructor(
    private readonly stmt: SelectStmt,
    private readonly sql: string,
    private readonly ctx: CompileContext,
  ) {
    this.joined = stmt.join !== undefined;
  }

  compile(): CompiledQuery {
    const { stmt } = this;
    const from = stmt.from as TableRef;
    const fromTable = this.table(from);
    const joinTable = stmt.join ? this.table(stmt.join.table) : undefined;

    // The projected table is side 0.
    let returned: TableRef = from;
    if (stmt.projection.table !== undefined) {
      const q = stmt.projection.table;
      if (q === from.alias) returned = from;
      else if (stmt.join && q === stmt.join.table.alias) returned = stmt.join.table;
      else throw new SqlError(`unknown table "${q}"`, stmt.projection.pos);
    } else if (stmt.join) {
      throw new SqlError(
        `unsupported: SELECT * with a join; a subscription returns one table's rows: SELECT ${from.alias}.* or SELECT ${stmt.join.table.alias}.*`,
        stmt.projection.pos,
      );
    }
    const returnedTable = returned === from ? fromTable : joinTable!;
    this.addScope(returned, returnedTable, 0);
    if (stmt.join) {
      const other = returned === from ? stmt.join.table : from;
      if (other.alias === returned.alias) {
        throw new SqlError(`duplicate table alias "${other.alias}"; give each side of a self-join its own alias`, stmt.join.table.pos);
      }
      this.addScope(other, returned === from ? joinTable! : fromTable, 1);
    }

    const conjuncts = stmt.where ? this.conjuncts(stmt.where) : [];
    const pick = (wanted: (sides: number) => boolean): PairFilter => andAll(conjuncts.filter((c) => wanted(c.sides)));
    // Constant conjuncts (sides 0) go with the returned row.
    const rowPair = pick((s) => (s & 2) === 0);
    const rowFilter: RowFilter = (row) => rowPair(row, row);

    if (!stmt.join) {
      return { sql: this.sql, table: returnedTable, rowFilter, usesSender: this.usesSender, tables: [returnedTable.name] };
    }
    const otherPair = pick((s) => s === 2);
    const join = this.joinSpec(returnedTable, stmt.join.on);
    return {
      sql: this.sql,
      table: returnedTable,
      join: {
        ...join,
        otherFilter: (row) => otherPair(row, row),
        pairFilter: pick((s) => s === 3),
      },
      rowFilter,
      usesSender: this.usesSender,
      tables: [...new Set([returnedTable.name, join.table.name])],
    };
  }

  private table(ref: TableRef): TableInfo {
    const table = this.ctx.resolveTable(ref.name);
    if (!table) throw new SqlError(`unknown table "${ref.name}"`, ref.pos);
    if (!table.isPublic && !this.ctx.allowPrivate) throw new SqlError(`table "${ref.name}" is private`, ref.pos);
    return table;
  }

  private addScope(ref: TableRef, table: TableInfo, side: Side): void {
    // A column is found by its canonical name or by the module's own name for it, as in SpacetimeDB.
    const columns = new Map(table.columns.map((c) => [c.field, c]));
    for (const c of table.columns) columns.set(c.name, c);
    this.scopes.set(ref.alias, { table, side, columns });
  }

  private resolve(ref: ColumnRef): ResolvedColumn {
    let scope: Scope | undefined;
    if (ref.table === undefined) {
      if (this.joined) {
        throw new SqlError(`unqualified column "${ref.column}": names must be qualified when using joins`, ref.pos);
      }
      scope = [...this.scopes.values()][0];
    } else {
      scope = this.scopes.get(ref.table);
      if (!scope) throw new SqlError(`unknown table "${ref.table}"`, ref.pos);
    }
    const column = scope.columns.get(ref.column);
    if (!column) throw new SqlError(`unknown column "${ref.column}" on table "${scope.table.name}"`, ref.pos);
    const label = ref.table === undefined ? `"${ref.column}"` : `"${ref.table}"."${ref.column}"`;
    return { column, scope, kind: kindOf(column.type), label };
  }

  private joinSpec(returned: TableInfo, on: NonNullable<SelectStmt['join']>['on']) {
    for (const ref of [on.left, on.right]) {
      if (ref.table === undefined) {
        throw new SqlError(`unqualified column "${ref.column}": names must be qualified when using joins`, ref.pos);
      }
    }
    const l = this.resolve(on.left);
    const r = this.resolve(on.right);
    if (l.scope.side === r.scope.side) {
      throw new SqlError('the join condition must compare a column of each joined table', on.pos);
    }
    const [mine, theirs] = l.scope.side === 0 ? [l, r] : [r, l];
    if (!sameType(mine.column.type, theirs.column.type)) {
      throw new SqlError(
        `join columns must have the same type: ${mine.label} is ${formatType(mine.column.type)}, ${theirs.label} is ${formatType(theirs.column.type)}`,
        on.pos,
      );
    }
    if (!mine.kind) {
      throw new SqlError(`unsupported: joining on ${mine.label} of type ${formatType(mine.column.type)}`, on.pos);
    }
    const other = theirs.scope.table;
    if (other.isEvent) {
      throw new SqlError(`event tables cannot be used as the lookup table in subscription joins ("${other.name}")`, on.pos);
    }
    const mineIndexed = returned.indexedColumns.has(mine.column.index);
    const theirsIndexed = other.indexedColumns.has(theirs.column.index);
    if (!theirsIndexed && (!mineIndexed || returned.isEvent)) {
      throw new SqlError(
        `Subscriptions require indexes on join columns: neither ${mine.label} nor ${theirs.label} is indexed` +
          (returned.isEvent ? ` (${theirs.label} must be, as "${returned.name}" is an event table)` : ''),
        on.pos,
      );
    }
    return {
      table: other,
      column: mine.column,
      otherColumn: theirs.column,
      key: primitiveGetter(mine.kind, mine.column.field),
      otherKey: primitiveGetter(mine.kind, theirs.column.field),
    };
  }

  // ------------------------------------------------------------ predicates

  /** The top-level AND chain, compiled conjunct by conjunct. */
  private conjuncts(p: Predicate): Cond[] {
    if (p.kind === 'and') return [...this.conjuncts(p.left), ...this.conjuncts(p.right)];
    const c = this.cond(p);
    return c.constant === true ? [] : [c];
  }

  private cond(p: Predicate): Cond {
    switch (p.kind) {
      case 'and':
      case 'or': {
        const a = this.cond(p.left);
        const b = this.cond(p.right);
        const isAnd = p.kind === 'and';
        // Fold constants: TRUE AND x = x, FALSE OR x = x, …
        for (const [k, other] of [
          [a, b],
          [b, a],
        ]) {
          if (k.constant !== undefined) return k.constant === isAnd ? other : k;
        }
        const [f, g] = [a.fn, b.fn];
        return { fn: isAnd ? (x, y) => f(x, y) && g(x, y) : (x, y) => f(x, y) || g(x, y), sides: a.sides | b.sides };
      }
      case 'bare':
        return this.bare(p.operand);
      case 'cmp':
        return this.comparison(p.op, p.left, p.right, p.pos);
    }
  }

  /** `WHERE t.flag` or `WHERE TRUE`. */
  private bare(o: Operand): Cond {
    if (o.kind === 'bool') return constant(o.value);
    if (o.kind !== 'column') {
      throw new SqlError(`expected a condition, found the literal ${literalText(o)}`, o.pos);
    }
    const col = this.resolve(o);
    if (col.kind !== 'bool') {
      throw new SqlError(`expected a condition, found column ${col.label} of type ${formatType(col.column.type)}`, o.pos);
    }
    return this.comparison('=', o, { kind: 'bool', value: true, pos: o.pos }, o.pos);
  }

  private comparison(op: CmpOp, left: Operand, right: Operand, pos: number): Cond {
    if (left.kind !== 'column' && right.kind !== 'column') {
      if (left.kind === 'bool' && right.kind === 'bool') return constant(compare(op, left.value, right.value, false));
      throw new SqlError(`cannot resolve the type of ${literalText(left)} ${op} ${literalText(right)}: compare a column with a literal`, pos);
    }
    // Column on the left from here on.
    if (left.kind !== 'column') return this.comparison(FLIP[op], right, left, pos);
    const l = this.resolve(left);
    if (!l.kind) {
      throw new SqlError(`unsupported: comparing ${l.label} of type ${formatType(l.column.type)} (no ${op} on this type)`, left.pos);
    }
    const get = this.getter(l);
    const isString = l.kind === 'string';
    const lSide = 1 << l.scope.side;
    if (right.kind === 'column') {
      const r = this.resolve(right);
      if (!sameType(l.column.type, r.column.type)) {
        throw new SqlError(
          `type mismatch: ${l.label} is ${formatType(l.column.type)}, ${r.label} is ${formatType(r.column.type)}`,
          pos,
        );
      }
      const getR = this.getter(r);
      return { fn: comparator(op, isString, get, getR), sides: lSide | (1 << r.scope.side) };
    }
    if (right.kind === 'sender') this.usesSender = true;
    const value = coerceLiteral(right as Literal, l.kind, l.column.type, l.label, this.ctx.sender);
    return { fn: literalComparator(op, isString, get, value), sides: lSide };
  }

  /** A getter of the column's primitive from the pair `(returned row, other row)`. */
  private getter(c: ResolvedColumn): (a: RowValue, b: RowValue) => Primitive {
    const get = primitiveGetter(c.kind!, c.column.field);
    return c.scope.side === 0 ? (a) => get(a) : (_a, b) => get(b);
  }
}

const FLIP: Record<CmpOp, CmpOp> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

function compare(op: CmpOp, x: Primitive, y: Primitive, isString: boolean): boolean {
  if (isString && op !== '=' && op !== '!=') {
    const c = compareStrings(x as string, y as string);
    return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : c >= 0;
  }
  switch (op) {
    case '=':
      return x === y;
    case '!=':
      return x !== y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

type Getter = (a: RowValue, b: RowValue) => Primitive;

/** Column op constant, one closure per operator so the hot path has no switch. */
function literalComparator(op: CmpOp, isString: boolean, get: Getter, c: Primitive): PairFilter {
  if (isString && op !== '=' && op !== '!=') return (a, b) => compare(op, get(a, b), c, true);
  switch (op) {
    case '=':
      return (a, b) => get(a, b) === c;
    case '!=':
      return (a, b) => get(a, b) !== c;
    case '<':
      return (a, b) => get(a, b) < c;
    case '<=':
      return (a, b) => get(a, b) <= c;
    case '>':
      return (a, b) => get(a, b) > c;
    case '>=':
      return (a, b) => get(a, b) >= c;
  }
}

function comparator(op: CmpOp, isString: boolean, get: Getter, getR: Getter): PairFilter {
  return (a, b) => compare(op, get(a, b), getR(a, b), isString);
}

function andAll(conds: readonly Cond[]): PairFilter {
  if (conds.length === 0) return () => true;
  if (conds.some((c) => c.constant === false)) return () => false;
  return conds.map((c) => c.fn).reduce((f, g) => (a, b) => f(a, b) && g(a, b));
}
