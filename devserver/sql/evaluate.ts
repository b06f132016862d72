/**
 * Evaluation of compiled queries with bag semantics: the SDK reference-counts
 * rows per query, so a joined row appears once per matching row of the other
 * table, in the initial result and in every delta.
 *
 * `deltaRows` is incremental: it reads only the transaction's changed rows
 * and probes the datastore (the state *after* the commit) through
 * `DataSource.lookup`. The state before the commit is never stored: it is
 * the state after, minus the transaction's inserts, plus its deletes.
 */
import type { ChangeSet, DataSource, StoredRow } from '../types.ts';
import type { CompiledJoin, CompiledQuery, RowValue } from './compile.ts';
import type { Primitive } from './types.ts';

/** What a query's result gained and lost in one transaction. */
export interface QueryDelta {
  readonly inserts: StoredRow[];
  readonly deletes: StoredRow[];
}

/** Every row the query returns now, each as often as it is returned. */
export function initialRows(q: CompiledQuery, source: DataSource): StoredRow[] {
  const out: StoredRow[] = [];
  const { table, rowFilter, join } = q;
  if (!join) {
    for (const row of source.scan(table.name)) if (rowFilter(row.value)) out.push(row);
    return out;
  }
  const { otherFilter, pairFilter } = join;
  const probeOther = join.table.indexedColumns.has(join.otherColumn.index) || !table.indexedColumns.has(join.column.index);
  if (probeOther) {
    for (const a of source.scan(table.name)) {
      if (!rowFilter(a.value)) continue;
      for (const b of source.lookup(join.table.name, join.otherColumn.index, a.value[join.column.field])) {
        if (otherFilter(b.value) && pairFilter(a.value, b.value)) out.push(a);
      }
    }
  } else {
    for (const b of source.scan(join.table.name)) {
      if (!otherFilter(b.value)) continue;
      for (const a of source.lookup(table.name, join.column.index, b.value[join.otherColumn.field])) {
        if (rowFilter(a.value) && pairFilter(a.value, b.value)) out.push(a);
      }
    }
  }
  return out;
}

/**
 * The change of the query's result caused by one committed transaction:
 * `changes` are its net row changes, `source` the datastore after it.
 * Returns the `StoredRow` objects found in `changes` or `source`, repeated by
 * the change of their multiplicity; a row whose multiplicity is unchanged
 * appears in neither list.
 */
export function deltaRows(q: CompiledQuery, changes: ChangeSet, source: DataSource): QueryDelta {
  if (q.join) return joinDelta(q, q.join, changes, source);
  const change = changes.get(q.table.name);
  if (!change) return { inserts: [], deletes: [] };
  const keep = (row: StoredRow) => q.rowFilter(row.value);
  return { inserts: change.inserts.filter(keep), deletes: change.deletes.filter(keep) };
}

/** A returned-table row whose multiplicity the transaction may have changed. */
interface Candidate {
  /** The row object to emit as an insert (present after the commit). */
  after?: StoredRow;
  /** The row object to emit as a delete (present before the commit). */
  before?: StoredRow;
  /** Found in the state after the commit by a lookup. */
  inState: boolean;
  inserted: number;
  deleted: number;
}

function joinDelta(q: CompiledQuery, join: CompiledJoin, changes: ChangeSet, source: DataSource): QueryDelta {
  const aChange = changes.get(q.table.name);
  const bChange = changes.get(join.table.name);
  const inserts: StoredRow[] = [];
  const deletes: StoredRow[] = [];
  if (!aChange && !bChange) return { inserts, deletes };
  const { rowFilter } = q;
  const { otherFilter, pairFilter } = join;

  const candidates = new Map<string, Candidate>();
  const candidate = (row: StoredRow): Candidate => {
    let c = candidates.get(row.key);
    if (!c) candidates.set(row.key, (c = { inState: false, inserted: 0, deleted: 0 }));
    return c;
  };
  for (const a of aChange?.inserts ?? []) {
    if (!rowFilter(a.value)) continue;
    const c = candidate(a);
    c.inserted++;
    c.after = a;
  }
  for (const a of aChange?.deletes ?? []) {
    if (!rowFilter(a.value)) continue;
    const c = candidate(a);
    c.deleted++;
    c.before = a;
  }

  // Other-table changes, by join key; probe each key once for the rows it joins.
  const bInserted = groupByKey(bChange?.inserts, join, otherFilter);
  const bDeleted = groupByKey(bChange?.deletes, join, otherFilter);
  const probed = new Set<Primitive>();
  for (const groups of [bInserted, bDeleted]) {
    for (const [key, rows] of groups) {
      if (probed.has(key)) continue;
      probed.add(key);
      for (const a of source.lookup(q.table.name, join.column.index, rows[0].value[join.otherColumn.field])) {
        if (!rowFilter(a.value)) continue;
        const c = candidate(a);
        c.inState = true;
        c.after ??= a;
        c.before ??= a;
      }
    }
  }

  for (const c of candidates.values()) {
    const a = (c.after ?? c.before)!.value;
    // Presence of the row itself, after and before (tables are sets; the
    // counts keep a non-net change set with both an insert and a delete right).
    const presentAfter = c.inState || c.inserted > 0 ? 1 : 0;
    const presentBefore = Math.max(0, presentAfter - c.inserted + c.deleted);
    let joinsAfter = 0;
    for (const b of source.lookup(join.table.name, join.otherColumn.index, a[join.column.field])) {
      if (otherFilter(b.value) && pairFilter(a, b.value)) joinsAfter++;
    }
    let joinsBefore = joinsAfter;
    if (presentBefore > 0) {
      const key = join.key(a);
      joinsBefore += countPairs(a, bDeleted.get(key), pairFilter) - countPairs(a, bInserted.get(key), pairFilter);
    }
    const diff = presentAfter * joinsAfter - presentBefore * joinsBefore;
    for (let i = 0; i < diff; i++) inserts.push(c.after!);
    for (let i = 0; i < -diff; i++) deletes.push(c.before!);
  }
  return { inserts, deletes };
}

function groupByKey(
  rows: readonly StoredRow[] | undefined,
  join: CompiledJoin,
  filter: (row: RowValue) => boolean,
): Map<Primitive, StoredRow[]> {
  const groups = new Map<Primitive, StoredRow[]>();
  for (const row of rows ?? []) {
    if (!filter(row.value)) continue;
    const key = join.otherKey(row.value);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

function countPairs(a: RowValue, rows: readonly StoredRow[] | undefined, pairFilter: (a: RowValue, b: RowValue) => boolean): number {
  let n = 0;
  for (const b of rows ?? []) if (pairFilter(a, b.value)) n++;
  return n;
}
