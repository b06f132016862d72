/**
 * Row-level security: a module's client visibility filters
 * (`spacetimedb.clientVisibilityFilter.sql(...)`), applied to everything a
 * client reads — subscriptions (initial rows and every transaction's
 * updates), one-off queries, both sides of joins, and the HTTP SQL endpoint.
 *
 * The rules follow SpacetimeDB's: a filter is a subscription query returning
 * the rows of one table a client may see; several filters on one table
 * combine as a union; the tables a filter reads (other than its own) are in
 * turn read through their own filters; a cycle of filters is an error; the
 * database owner is exempt.
 */
import type { Identity } from 'spacetimedb';
import type { ChangeSet, DataSource, StoredRow, TableChange, TableInfo } from './types.ts';
import { compileQuery, tableResolver, type CompiledQuery } from './sql/compile.ts';
import { SqlError } from './sql/errors.ts';

/** A module's visibility filters are malformed (the module cannot be hosted safely). */
export class RowLevelSecurityError extends Error {
  override readonly name = 'RowLevelSecurityError';
  constructor(
    message: string,
    readonly info: { readonly sql?: string; readonly table?: string },
  ) {
    super(message);
  }
}

interface Rule {
  readonly sql: string;
  readonly table: string;
  /** Tables the rule reads besides its own. */
  readonly reads: readonly string[];
  readonly usesSender: boolean;
}

/** The visibility filters of one module, checked once at load. */
export class RowLevelSecurity {
  readonly #rules = new Map<string, Rule[]>();
  readonly #tables: readonly TableInfo[];
  readonly #resolve: (name: string) => TableInfo | undefined;
  readonly #owner: Identity | undefined;

  /**
   * @param sqls The module's filters.
   * @param tables The module's tables.
   * @param owner The database owner's identity, which no filter applies to.
   * @param probeSender Any identity: the filters are compiled once with it to check them.
   * @throws {RowLevelSecurityError} when a filter does not compile or the filters form a cycle.
   */
  constructor(sqls: readonly string[], tables: readonly TableInfo[], owner: Identity | undefined, probeSender: Identity) {
    this.#tables = tables;
    this.#resolve = tableResolver(tables);
    this.#owner = owner;
    for (const sql of sqls) {
      let q: CompiledQuery;
      try {
        const compiled = compileQuery(sql, this.#context(probeSender));
        if (compiled.length !== 1) throw new SqlError('a visibility filter must name one table');
        q = compiled[0];
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new RowLevelSecurityError(`client visibility filter ${JSON.stringify(sql)} is invalid: ${why}`, { sql });
      }
      const rule: Rule = {
        sql,
        table: q.table.name,
        reads: q.tables.filter((t) => t !== q.table.name),
        usesSender: q.usesSender,
      };
      const list = this.#rules.get(rule.table) ?? [];
      list.push(rule);
      this.#rules.set(rule.table, list);
    }
    for (const table of this.#rules.keys()) this.#checkCycle(table, []);
  }

  /** Whether any filter exists. */
  get empty(): boolean {
    return this.#rules.size === 0;
  }

  /** Tables that carry filters. */
  get filteredTables(): readonly string[] {
    return [...this.#rules.keys()];
  }

  #context(sender: Identity) {
    return { resolveTable: this.#resolve, allTables: () => this.#tables, sender };
  }

  #checkCycle(table: string, path: string[]) {
    if (path.includes(table)) {
      throw new RowLevelSecurityError(`client visibility filters form a cycle: ${[...path, table].join(' → ')}`, { table });
    }
    for (const rule of this.#rules.get(table) ?? []) for (const t of rule.reads) this.#checkCycle(t, [...path, table]);
  }

  /** What `sender` may see. */
  forSender(sender: Identity): Visibility {
    if (this.empty || (this.#owner && this.#owner.isEqual(sender))) return Visibility.ALL;
    const compiled = new Map<string, CompiledQuery[]>();
    for (const [table, rules] of this.#rules) {
      compiled.set(
        table,
        rules.map((r) => compileQuery(r.sql, this.#context(sender))[0]),
      );
    }
    return new Visibility(compiled, this.#rules);
  }
}

/** One subscriber's view of the rows: which rows of filtered tables it may see. */
export class Visibility {
  /** No filters apply (no rules, or the owner). */
  static readonly ALL = new Visibility(new Map(), new Map());

  readonly #filters: ReadonlyMap<string, readonly CompiledQuery[]>;
  readonly #rules: ReadonlyMap<string, readonly Rule[]>;

  constructor(filters: ReadonlyMap<string, readonly CompiledQuery[]>, rules: ReadonlyMap<string, readonly Rule[]>) {
    this.#filters = filters;
    this.#rules = rules;
  }

  /** Whether rows of `table` are filtered for this subscriber. */
  filters(table: string): boolean {
    return this.#filters.has(table);
  }

  /** Whether any of `tables` is filtered. */
  filtersAny(tables: readonly string[]): boolean {
    return tables.some((t) => this.#filters.has(t));
  }

  /**
   * Whether the visibility of a row of each of `tables` depends only on the
   * row itself (no filter reads another table), so a transaction's changes
   * can be filtered row by row.
   */
  rowLocal(tables: readonly string[]): boolean {
    return tables.every((t) => (this.#rules.get(t) ?? []).every((r) => r.reads.length === 0));
  }

  /** Whether some filter reachable from `tables` mentions `:sender`. */
  usesSender(tables: readonly string[]): boolean {
    return this.dependencies(tables).some((t) => (this.#rules.get(t) ?? []).some((r) => r.usesSender));
  }

  /** `tables` and every table their filters read, transitively. */
  dependencies(tables: readonly string[]): string[] {
    const out = new Set<string>();
    const visit = (t: string) => {
      if (out.has(t)) return;
      out.add(t);
      for (const r of this.#rules.get(t) ?? []) for (const x of r.reads) visit(x);
    };
    tables.forEach(visit);
    return [...out];
  }

  /** Whether this subscriber may see `row` of `table`, given the current rows of `source` (unfiltered). */
  visible(table: string, row: StoredRow, source: DataSource): boolean {
    const filters = this.#filters.get(table);
    if (!filters) return true;
    for (const f of filters) {
      if (!f.rowFilter(row.value)) continue;
      const j = f.join;
      if (!j) return true;
      // The filter's own table is not filtered again inside its filter.
      const other = j.table.name;
      for (const b of source.lookup(other, j.otherColumn.index, row.value[j.column.field])) {
        if (j.otherFilter(b.value) && j.pairFilter(row.value, b.value) && (other === table || this.visible(other, b, source))) return true;
      }
    }
    return false;
  }

  /** `source` as this subscriber sees it. */
  source(base: DataSource): DataSource {
    if (this.#filters.size === 0) return base;
    return {
      scan: (table) => (this.filters(table) ? filterIter(base.scan(table), (r) => this.visible(table, r, base)) : base.scan(table)),
      lookup: (table, column, value) =>
        this.filters(table) ? filterIter(base.lookup(table, column, value), (r) => this.visible(table, r, base)) : base.lookup(table, column, value),
    };
  }

  /**
   * A transaction's changes as this subscriber sees them, for tables whose
   * visibility is row-local (see {@link rowLocal}).
   */
  changes(changes: ChangeSet, base: DataSource): ChangeSet {
    if (this.#filters.size === 0) return changes;
    const out = new Map<string, TableChange>();
    for (const [table, change] of changes) {
      if (!this.filters(table)) {
        out.set(table, change);
        continue;
      }
      const keep = (r: StoredRow) => this.visible(table, r, base);
      out.set(table, { inserts: change.inserts.filter(keep), deletes: change.deletes.filter(keep) });
    }
    return out;
  }
}

function* filterIter(rows: Iterable<StoredRow>, keep: (r: StoredRow) => boolean): Iterable<StoredRow> {
  for (const r of rows) if (keep(r)) yield r;
}
