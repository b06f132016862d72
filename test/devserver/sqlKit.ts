/**
 * Test kit for the SQL engine: tables described with the SDK's own
 * `AlgebraicType`s, rows encoded with its serializer (so `bytes`, `value` and
 * `key` agree), and a tiny in-memory `DataSource` that counts how it is read.
 */
import { AlgebraicType, BinaryReader, BinaryWriter, Identity } from 'spacetimedb';
import type { ChangeSet, ColumnInfo, DataSource, StoredRow, TableChange, TableInfo } from '../../devserver/types.ts';
import type { CompileContext } from '../../devserver/sql/compile.ts';

export interface ColumnSpec {
  /** SQL name; the decoded field is `field` (defaults to the SQL name). */
  readonly type: AlgebraicType;
  readonly field?: string;
  readonly indexed?: boolean;
  readonly primaryKey?: boolean;
}

export interface TestTable extends TableInfo {
  /** Encodes a decoded row object (keyed by field) into a `StoredRow`. */
  row(value: Record<string, unknown>): StoredRow;
}

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

export function makeTable(
  name: string,
  columns: Record<string, ColumnSpec>,
  opts: { isPublic?: boolean; isEvent?: boolean } = {},
): TestTable {
  const cols: ColumnInfo[] = Object.entries(columns).map(([colName, spec], index) => ({
    index,
    name: colName,
    field: spec.field ?? colName,
    type: spec.type,
  }));
  const rowType = AlgebraicType.Product({
    elements: cols.map((c) => ({ name: c.field, algebraicType: c.type })),
  });
  const serialize = AlgebraicType.makeSerializer(rowType);
  const deserialize = AlgebraicType.makeDeserializer(rowType);
  const specs = Object.values(columns);
  return {
    name,
    columns: cols,
    primaryKey: cols.filter((_, i) => specs[i].primaryKey).map((c) => c.index),
    indexedColumns: new Set(cols.filter((_, i) => specs[i].indexed || specs[i].primaryKey).map((c) => c.index)),
    isPublic: opts.isPublic ?? true,
    isEvent: opts.isEvent ?? false,
    row(value) {
      const writer = new BinaryWriter(64);
      serialize(writer, value);
      const bytes = writer.getBuffer().slice();
      // Decode back, as the datastore does, so `value` has the SDK's shapes.
      return { bytes, value: deserialize(new BinaryReader(bytes)), key: latin1(bytes) };
    },
  };
}

export function contextFor(tables: readonly TableInfo[], sender: Identity = new Identity(0xc200n)): CompileContext {
  const byName = new Map(tables.map((t) => [t.name, t]));
  return { resolveTable: (n) => byName.get(n), allTables: () => tables, sender };
}

/**
 * A set-semantics in-memory datastore. `lookup` matches on the column's
 * encoded bytes, independently of the engine's own comparison code.
 */
export class MemorySource implements DataSource {
  readonly rows = new Map<string, Map<string, StoredRow>>();
  scans = 0;
  lookups = 0;
  private readonly encoders = new Map<string, (v: unknown) => string>();

  constructor(readonly tables: readonly TestTable[]) {
    for (const t of tables) {
      this.rows.set(t.name, new Map());
      for (const c of t.columns) {
        const ser = AlgebraicType.makeSerializer(c.type);
        this.encoders.set(`${t.name}\u0000${c.index}`, (v) => {
          const w = new BinaryWriter(16);
          ser(w, v);
          return latin1(w.getBuffer());
        });
      }
    }
  }

  scan(table: string): Iterable<StoredRow> {
    this.scans++;
    return [...this.table(table).values()];
  }

  lookup(table: string, column: number, value: unknown): Iterable<StoredRow> {
    this.lookups++;
    const encode = this.encoders.get(`${table}\u0000${column}`)!;
    const want = encode(value);
    const field = this.tables.find((t) => t.name === table)!.columns[column].field;
    return [...this.table(table).values()].filter((r) => encode(r.value[field]) === want);
  }

  insert(...rows: [TestTable, StoredRow][]): void {
    for (const [t, r] of rows) this.table(t.name).set(r.key, r);
  }

  /** Applies a change set (deletes first, then inserts). */
  apply(changes: ChangeSet): void {
    for (const [name, ch] of changes) {
      for (const r of ch.deletes) this.table(name).delete(r.key);
      for (const r of ch.inserts) this.table(name).set(r.key, r);
    }
  }

  private table(name: string): Map<string, StoredRow> {
    const t = this.rows.get(name);
    if (!t) throw new Error(`no table ${name}`);
    return t;
  }
}

export function changeSet(entries: Record<string, Partial<TableChange>>): ChangeSet {
  return new Map(Object.entries(entries).map(([k, v]) => [k, { inserts: v.inserts ?? [], deletes: v.deletes ?? [] }]));
}

/** Multiset of row keys → count, for comparing results regardless of order. */
export function bag(rows: Iterable<StoredRow>): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r.key, (m.get(r.key) ?? 0) + 1);
  return m;
}

/** `before + inserts - deletes`; throws when a delete has nothing to remove. */
export function applyDelta(before: Map<string, number>, delta: { inserts: StoredRow[]; deletes: StoredRow[] }): Map<string, number> {
  const m = new Map(before);
  for (const r of delta.deletes) {
    const n = m.get(r.key) ?? 0;
    if (n === 0) throw new Error(`delta deletes a row the result does not hold: ${JSON.stringify(r.value, jsonSafe)}`);
    if (n === 1) m.delete(r.key);
    else m.set(r.key, n - 1);
  }
  for (const r of delta.inserts) m.set(r.key, (m.get(r.key) ?? 0) + 1);
  return m;
}

export function jsonSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}
