/**
 * The dev server's in-memory datastore: the tables of one module, with the
 * semantics a SpacetimeDB module relies on — set semantics per table, unique
 * constraints, point and range index scans over BSATN keys, sequences that
 * fill generated columns, and transactions whose writes commit together or
 * not at all (an undo log), each commit yielding its net change set.
 */
import { AlgebraicType, BinaryReader, BinaryWriter } from 'spacetimedb';
import type { ChangeSet, DataSource, StoredRow, TableChange } from '../types.ts';
import type { IndexDesc, ModuleDescription, SequenceDesc, TableDesc } from './moduleDef.ts';
import { makeComparator, type Comparator } from './values.ts';

/** Error codes of the module ABI (`errno`), as the module library maps them to error classes. */
export const Errno = {
  HostCallFailure: 1,
  NotInTransaction: 2,
  BsatnDecodeError: 3,
  NoSuchTable: 4,
  NoSuchIndex: 5,
  NoSuchIter: 6,
  UniqueAlreadyExists: 12,
  IndexNotUnique: 14,
  NoSuchRow: 15,
  AutoIncOverflow: 16,
} as const;

/** A failed host call, carrying the ABI error code the module sees. */
export class HostCallError extends Error {
  override readonly name = 'HostCallError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

type Serializer = (w: BinaryWriter, v: any) => void;
type Deserializer = (r: BinaryReader) => any;

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

interface IndexState {
  readonly desc: IndexDesc;
  readonly table: TableState;
  /** Encoded key → rows with that key. */
  readonly map: Map<string, Map<string, StoredRow>>;
  readonly fields: readonly string[];
  readonly serializers: readonly Serializer[];
  readonly deserializers: readonly Deserializer[];
  readonly comparators: readonly Comparator[];
}

interface SequenceState extends SequenceDesc {
  next: bigint;
  readonly field: string;
  readonly isBig: boolean;
  readonly serialize: Serializer;
}

class TableState {
  readonly rows = new Map<string, StoredRow>();
  readonly indexes: IndexState[] = [];
  /** One map per unique constraint: encoded key → row. */
  readonly uniques: { columns: readonly number[]; fields: readonly string[]; serializers: Serializer[]; map: Map<string, StoredRow> }[] = [];
  readonly sequences: SequenceState[];
  readonly serializeRow: Serializer;
  readonly deserializeRow: Deserializer;

  constructor(
    readonly desc: TableDesc,
    typespace: ModuleDescription['typespace'],
  ) {
    const ts = typespace as { types: AlgebraicType[] };
    this.serializeRow = AlgebraicType.makeSerializer(desc.rowType, ts);
    this.deserializeRow = AlgebraicType.makeDeserializer(desc.rowType, ts);
    const colSer = (c: number) => AlgebraicType.makeSerializer(desc.columns[c].type, ts) as Serializer;
    for (const columns of desc.uniques) {
      this.uniques.push({
        columns,
        fields: columns.map((c) => desc.columns[c].field),
        serializers: columns.map(colSer),
        map: new Map(),
      });
    }
    this.sequences = desc.sequences.map((s) => {
      const col = desc.columns[s.column];
      const isBig = !['I8', 'U8', 'I16', 'U16', 'I32', 'U32'].includes(col.type.tag);
      return { ...s, next: s.start, field: col.field, isBig, serialize: colSer(s.column) };
    });
  }

  encodeRow(value: Record<string, unknown>): StoredRow {
    const w = new BinaryWriter(64);
    this.serializeRow(w, value);
    const bytes = w.getBuffer().slice();
    return { bytes, value, key: latin1(bytes) };
  }

  decodeRow(bytes: Uint8Array): StoredRow {
    let value: Record<string, unknown>;
    const reader = new BinaryReader(bytes);
    try {
      value = this.deserializeRow(reader);
    } catch (e) {
      throw new HostCallError(Errno.BsatnDecodeError, `row does not decode as a ${this.desc.name} row: ${String(e)}`);
    }
    if (reader.offset !== bytes.length) {
      throw new HostCallError(Errno.BsatnDecodeError, `row for ${this.desc.name} has ${bytes.length - reader.offset} trailing bytes`);
    }
    const own = bytes.slice();
    return { bytes: own, value, key: latin1(own) };
  }
}

function encodeKey(serializers: readonly Serializer[], fields: readonly string[], value: Record<string, unknown>): string {
  const w = new BinaryWriter(16);
  for (let i = 0; i < serializers.length; i++) serializers[i](w, value[fields[i]]);
  return latin1(w.getBuffer());
}

type Bound = { kind: 'included' | 'excluded'; value: unknown } | { kind: 'unbounded' };

type UndoEntry = { op: 'insert' | 'delete'; table: TableState; row: StoredRow };

interface TxState {
  readonly undo: UndoEntry[];
  readonly changes: Map<TableState, { inserts: Map<string, StoredRow>; deletes: Map<string, StoredRow> }>;
}

/** The datastore of one module instance. */
export class Datastore implements DataSource {
  readonly tables: readonly TableState[];
  readonly #byId = new Map<number, TableState>();
  readonly #byName = new Map<string, TableState>();
  readonly #indexes = new Map<number, IndexState>();
  readonly #indexByName = new Map<string, number>();
  #tx: TxState | undefined;
  /** Set while {@link trackReads} runs: what was read. */
  #reads: ReadSet | undefined;

  constructor(readonly module: ModuleDescription) {
    this.tables = module.tables.map((d) => new TableState(d, module.typespace));
    const ts = module.typespace as { types: AlgebraicType[] };
    for (const t of this.tables) {
      this.#byId.set(t.desc.id, t);
      this.#byName.set(t.desc.name, t);
      if (!this.#byName.has(t.desc.sourceName)) this.#byName.set(t.desc.sourceName, t);
      for (const ix of t.desc.indexes) {
        const state: IndexState = {
          desc: ix,
          table: t,
          map: new Map(),
          fields: ix.columns.map((c) => t.desc.columns[c].field),
          serializers: ix.columns.map((c) => AlgebraicType.makeSerializer(t.desc.columns[c].type, ts)),
          deserializers: ix.columns.map((c) => AlgebraicType.makeDeserializer(t.desc.columns[c].type, ts)),
          comparators: ix.columns.map((c) => makeComparator(t.desc.columns[c].type)),
        };
        t.indexes.push(state);
        this.#indexes.set(ix.id, state);
        this.#indexByName.set(ix.sourceName, ix.id);
      }
    }
  }

  // ---- names ------------------------------------------------------------

  tableIdFromName(name: string): number {
    const t = this.#byName.get(name);
    if (!t) throw new HostCallError(Errno.NoSuchTable, `no such table: ${name}`);
    return t.desc.id;
  }

  indexIdFromName(name: string): number {
    const id = this.#indexByName.get(name);
    if (id === undefined) throw new HostCallError(Errno.NoSuchIndex, `no such index: ${name}`);
    return id;
  }

  tableByName(name: string): TableState | undefined {
    return this.#byName.get(name);
  }

  #table(id: number): TableState {
    const t = this.#byId.get(id);
    if (!t) throw new HostCallError(Errno.NoSuchTable, `no such table id: ${id}`);
    // Scans and row counts read the whole table.
    this.#reads?.tables.add(t.desc.name);
    return t;
  }

  #index(id: number): IndexState {
    const ix = this.#indexes.get(id);
    if (!ix) throw new HostCallError(Errno.NoSuchIndex, `no such index id: ${id}`);
    return ix;
  }

  /**
   * Run `fn` and report what the module read through the host functions
   * meanwhile (for views): whole tables (scans, counts, range scans) and
   * index points (`find`, `filter` on one value).
   */
  trackReads<T>(fn: () => T): { result: T; reads: ReadSet } {
    const outer = this.#reads;
    const reads: ReadSet = { tables: new Set(), points: new Map() };
    this.#reads = reads;
    try {
      return { result: fn(), reads };
    } finally {
      this.#reads = outer;
      if (outer) {
        for (const t of reads.tables) outer.tables.add(t);
        for (const [id, p] of reads.points) {
          const o = outer.points.get(id);
          if (o) for (const k of p.keys) o.keys.add(k);
          else outer.points.set(id, { table: p.table, keys: new Set(p.keys) });
        }
      }
    }
  }

  /**
   * Whether a transaction's `changes` inserted or deleted a row that `reads`
   * saw or would have seen. Pass the same `memo` for every check against one
   * transaction: each changed row's index keys are then encoded once.
   */
  touches(reads: ReadSet, changes: ChangeSet, memo: Map<number, Map<StoredRow, string>> = new Map()): boolean {
    for (const t of reads.tables) if (changes.has(t)) return true;
    for (const [indexId, { table, keys }] of reads.points) {
      const change = changes.get(table);
      const ix = this.#indexes.get(indexId);
      if (!change || !ix) continue;
      let encoded = memo.get(indexId);
      if (!encoded) memo.set(indexId, (encoded = new Map()));
      for (const list of [change.inserts, change.deletes]) {
        for (const row of list) {
          let key = encoded.get(row);
          if (key === undefined) encoded.set(row, (key = encodeKey(ix.serializers, ix.fields, row.value)));
          if (keys.has(key)) return true;
        }
      }
    }
    return false;
  }

  // ---- transactions -----------------------------------------------------

  get inTransaction(): boolean {
    return this.#tx !== undefined;
  }

  begin(): void {
    if (this.#tx) throw new Error('a transaction is already open');
    this.#tx = { undo: [], changes: new Map() };
  }

  /** Commit the open transaction and return its net changes (tables with none are left out). */
  commit(): ChangeSet {
    const tx = this.#requireTx();
    this.#tx = undefined;
    const out = new Map<string, TableChange>();
    for (const [table, c] of tx.changes) {
      if (c.inserts.size === 0 && c.deletes.size === 0) continue;
      out.set(table.desc.name, { inserts: [...c.inserts.values()], deletes: [...c.deletes.values()] });
    }
    return out;
  }

  /** Undo every write of the open transaction. */
  rollback(): void {
    const tx = this.#requireTx();
    this.#tx = undefined;
    for (let i = tx.undo.length - 1; i >= 0; i--) {
      const u = tx.undo[i];
      if (u.op === 'insert') this.#rawDelete(u.table, u.row);
      else this.#rawInsert(u.table, u.row);
    }
  }

  #requireTx(): TxState {
    if (!this.#tx) throw new HostCallError(Errno.NotInTransaction, 'not in a transaction');
    return this.#tx;
  }

  #record(op: 'insert' | 'delete', table: TableState, row: StoredRow) {
    const tx = this.#requireTx();
    tx.undo.push({ op, table, row });
    let c = tx.changes.get(table);
    if (!c) tx.changes.set(table, (c = { inserts: new Map(), deletes: new Map() }));
    if (op === 'insert') {
      if (c.deletes.has(row.key)) c.deletes.delete(row.key);
      else c.inserts.set(row.key, row);
    } else if (c.inserts.has(row.key)) {
      c.inserts.delete(row.key);
    } else {
      c.deletes.set(row.key, row);
    }
  }

  // ---- raw row maintenance (no tx bookkeeping, no checks) ---------------

  #rawInsert(t: TableState, row: StoredRow) {
    t.rows.set(row.key, row);
    for (const u of t.uniques) u.map.set(encodeKey(u.serializers, u.fields, row.value), row);
    for (const ix of t.indexes) {
      const k = encodeKey(ix.serializers, ix.fields, row.value);
      let bucket = ix.map.get(k);
      if (!bucket) ix.map.set(k, (bucket = new Map()));
      bucket.set(row.key, row);
    }
  }

  #rawDelete(t: TableState, row: StoredRow) {
    t.rows.delete(row.key);
    for (const u of t.uniques) {
      const k = encodeKey(u.serializers, u.fields, row.value);
      if (u.map.get(k)?.key === row.key) u.map.delete(k);
    }
    for (const ix of t.indexes) {
      const k = encodeKey(ix.serializers, ix.fields, row.value);
      const bucket = ix.map.get(k);
      if (bucket) {
        bucket.delete(row.key);
        if (bucket.size === 0) ix.map.delete(k);
      }
    }
  }

  /** Event tables keep their rows only for the transaction that inserted them. */
  dropEventRows(): void {
    for (const t of this.tables) {
      if (!t.desc.isEvent || t.rows.size === 0) continue;
      for (const row of [...t.rows.values()]) this.#rawDelete(t, row);
    }
  }

  /**
   * After restoring rows, move every sequence past the values already used,
   * so generated ids never collide with recovered ones.
   */
  resyncSequences(): void {
    for (const t of this.tables) {
      for (const s of t.sequences) {
        for (const row of t.rows.values()) {
          const v = BigInt(row.value[s.field] as number | bigint);
          if (s.increment > 0n ? v >= s.next : v <= s.next) s.next = v + s.increment;
        }
      }
    }
  }

  /** Rows of every table, by canonical name (for snapshots). */
  *allRows(): Generator<[string, Iterable<Uint8Array>]> {
    for (const t of this.tables) {
      if (t.desc.isEvent) continue;
      yield [t.desc.name, [...t.rows.values()].map((r) => r.bytes)];
    }
  }

  /** Load a row outside any transaction (restoring persisted state). */
  restoreRow(tableId: number, bytes: Uint8Array): void {
    const t = this.#table(tableId);
    const row = t.decodeRow(bytes);
    if (!t.rows.has(row.key)) this.#rawInsert(t, row);
  }

  // ---- writes -----------------------------------------------------------

  /**
   * Insert a BSATN row. Sequence columns holding 0 get their next value.
   * Returns the stored row and the BSATN of the generated values, in column
   * order (what the host writes back into the module's buffer).
   */
  insert(tableId: number, bytes: Uint8Array): { row: StoredRow; generated: Uint8Array } {
    this.#requireTx();
    const t = this.#table(tableId);
    let row = t.decodeRow(bytes);
    const generated = this.#fillSequences(t, row);
    if (generated.length > 0) row = t.encodeRow(row.value);
    if (t.rows.has(row.key)) {
      // Set semantics: inserting a row that is already there changes nothing.
      return { row: t.rows.get(row.key)!, generated };
    }
    this.#checkUnique(t, row, undefined);
    this.#rawInsert(t, row);
    this.#record('insert', t, row);
    return { row, generated };
  }

  #fillSequences(t: TableState, row: StoredRow): Uint8Array {
    if (t.sequences.length === 0) return new Uint8Array(0);
    const w = new BinaryWriter(16);
    for (const s of t.sequences) {
      const v = row.value[s.field];
      if (v !== 0 && v !== 0n) continue;
      const next = s.next;
      if (next > s.max || next < s.min) {
        throw new HostCallError(Errno.AutoIncOverflow, `sequence on ${t.desc.name}.${t.desc.columns[s.column].name} is exhausted`);
      }
      s.next = next + s.increment;
      const value = s.isBig ? next : Number(next);
      (row.value as Record<string, unknown>)[s.field] = value;
      s.serialize(w, value);
    }
    return w.getBuffer().slice();
  }

  #checkUnique(t: TableState, row: StoredRow, replacing: StoredRow | undefined) {
    for (const u of t.uniques) {
      const existing = u.map.get(encodeKey(u.serializers, u.fields, row.value));
      if (existing && existing !== replacing) {
        const cols = u.columns.map((c) => t.desc.columns[c].name).join(', ');
        throw new HostCallError(
          Errno.UniqueAlreadyExists,
          `duplicate unique column value(s) (${cols}) in table ${t.desc.name}`,
        );
      }
    }
  }

  /** Replace the row found through the unique index `indexId` by `bytes`. */
  update(tableId: number, indexId: number, bytes: Uint8Array): { row: StoredRow; generated: Uint8Array } {
    this.#requireTx();
    const t = this.#table(tableId);
    const ix = this.#index(indexId);
    if (ix.table !== t) throw new HostCallError(Errno.NoSuchIndex, `index ${indexId} is not on table ${t.desc.name}`);
    if (!t.uniques.some((u) => ix.desc.columns.every((c) => u.columns.includes(c)))) {
      throw new HostCallError(Errno.IndexNotUnique, `index ${ix.desc.sourceName} is not unique`);
    }
    let row = t.decodeRow(bytes);
    const generated = this.#fillSequences(t, row);
    if (generated.length > 0) row = t.encodeRow(row.value);
    const bucket = ix.map.get(encodeKey(ix.serializers, ix.fields, row.value));
    const old = bucket?.values().next().value as StoredRow | undefined;
    if (!old) throw new HostCallError(Errno.NoSuchRow, `no row in ${t.desc.name} to update`);
    if (old.key === row.key) return { row: old, generated };
    this.#rawDelete(t, old);
    try {
      this.#checkUnique(t, row, undefined);
    } catch (e) {
      this.#rawInsert(t, old);
      throw e;
    }
    this.#record('delete', t, old);
    if (t.rows.has(row.key)) return { row: t.rows.get(row.key)!, generated };
    this.#rawInsert(t, row);
    this.#record('insert', t, row);
    return { row, generated };
  }

  /** Delete one stored row (it must be in the table). */
  deleteRow(tableId: number, row: StoredRow): boolean {
    this.#requireTx();
    const t = this.#table(tableId);
    const stored = t.rows.get(row.key);
    if (!stored) return false;
    this.#rawDelete(t, stored);
    this.#record('delete', t, stored);
    return true;
  }

  /** Delete every row equal to one in `relation` (BSATN: u32 count, then rows). */
  deleteAllByEq(tableId: number, relation: Uint8Array): number {
    this.#requireTx();
    const t = this.#table(tableId);
    const reader = new BinaryReader(relation);
    let count: number;
    const rows: string[] = [];
    try {
      count = reader.readU32();
      for (let i = 0; i < count; i++) {
        const start = reader.offset;
        t.deserializeRow(reader);
        rows.push(latin1(relation.subarray(start, reader.offset)));
      }
    } catch (e) {
      throw new HostCallError(Errno.BsatnDecodeError, `rows to delete do not decode as ${t.desc.name} rows: ${String(e)}`);
    }
    let deleted = 0;
    for (const key of rows) {
      const stored = t.rows.get(key);
      if (stored) {
        this.#rawDelete(t, stored);
        this.#record('delete', t, stored);
        deleted++;
      }
    }
    return deleted;
  }

  /** Delete every row of a table; returns how many. */
  clear(tableId: number): number {
    this.#requireTx();
    const t = this.#table(tableId);
    const all = [...t.rows.values()];
    for (const row of all) {
      this.#rawDelete(t, row);
      this.#record('delete', t, row);
    }
    return all.length;
  }

  // ---- reads ------------------------------------------------------------

  rowCount(tableId: number): number {
    return this.#table(tableId).rows.size;
  }

  scanTable(tableId: number): StoredRow[] {
    return [...this.#table(tableId).rows.values()];
  }

  /** Rows whose index key equals the BSATN `point` (every column of the index). */
  indexScanPoint(indexId: number, point: Uint8Array): StoredRow[] {
    const ix = this.#index(indexId);
    // Validate the point and normalise it to the index's own encoding.
    const reader = new BinaryReader(point);
    const values: unknown[] = [];
    try {
      for (const d of ix.deserializers) values.push(d(reader));
    } catch (e) {
      throw new HostCallError(Errno.BsatnDecodeError, `index key does not decode for ${ix.desc.sourceName}: ${String(e)}`);
    }
    if (reader.offset !== point.length) {
      throw new HostCallError(Errno.BsatnDecodeError, `index key for ${ix.desc.sourceName} has trailing bytes`);
    }
    const key = latin1(point);
    if (this.#reads) {
      const p = this.#reads.points.get(indexId);
      if (p) p.keys.add(key);
      else this.#reads.points.set(indexId, { table: ix.table.desc.name, keys: new Set([key]) });
    }
    const bucket = ix.map.get(key);
    return bucket ? [...bucket.values()] : [];
  }

  /**
   * Rows of a BTree index matched by a prefix of equal leading columns and a
   * range on the next column, in index order. Layout of `buf`:
   * `prefix[0..prefixLen]` (prefixElems values), then the start bound
   * (`rstartLen` bytes), then the end bound (`rendLen` bytes; 0 means the
   * end equals the start). A bound is a u8 tag (0 included, 1 excluded,
   * 2 unbounded) followed by the value unless unbounded.
   */
  indexScanRange(
    indexId: number,
    buf: Uint8Array,
    prefixLen: number,
    prefixElems: number,
    rstartLen: number,
    rendLen: number,
  ): StoredRow[] {
    const ix = this.#index(indexId);
    this.#reads?.tables.add(ix.table.desc.name);
    if (ix.desc.algorithm === 'hash') {
      throw new HostCallError(Errno.HostCallFailure, `index ${ix.desc.sourceName} is a hash index and has no range scans`);
    }
    if (prefixElems >= ix.desc.columns.length) {
      throw new HostCallError(Errno.BsatnDecodeError, `range scan on ${ix.desc.sourceName}: ${prefixElems} prefix columns leave none for the range`);
    }
    let prefix: unknown[];
    let start: Bound;
    let end: Bound;
    try {
      const pr = new BinaryReader(buf.subarray(0, prefixLen));
      prefix = [];
      for (let i = 0; i < prefixElems; i++) prefix.push(ix.deserializers[i](pr));
      const rangeCol = ix.deserializers[prefixElems];
      const readBound = (bytes: Uint8Array): Bound => {
        const r = new BinaryReader(bytes);
        const tag = r.readU8();
        if (tag === 2) return { kind: 'unbounded' };
        if (tag !== 0 && tag !== 1) throw new Error(`bad bound tag ${tag}`);
        return { kind: tag === 0 ? 'included' : 'excluded', value: rangeCol(r) };
      };
      start = readBound(buf.subarray(prefixLen, prefixLen + rstartLen));
      end = rendLen === 0 ? start : readBound(buf.subarray(prefixLen + rstartLen, prefixLen + rstartLen + rendLen));
    } catch (e) {
      throw new HostCallError(Errno.BsatnDecodeError, `range scan bounds do not decode for ${ix.desc.sourceName}: ${String(e)}`);
    }
    const cmpRange = ix.comparators[prefixElems];
    const field = ix.fields[prefixElems];
    const out: StoredRow[] = [];
    for (const row of ix.table.rows.values()) {
      let ok = true;
      for (let i = 0; i < prefixElems && ok; i++) ok = ix.comparators[i](row.value[ix.fields[i]], prefix[i]) === 0;
      if (!ok) continue;
      const v = row.value[field];
      if (start.kind !== 'unbounded') {
        const c = cmpRange(v, start.value);
        if (c < 0 || (c === 0 && start.kind === 'excluded')) continue;
      }
      if (end.kind !== 'unbounded') {
        const c = cmpRange(v, end.value);
        if (c > 0 || (c === 0 && end.kind === 'excluded')) continue;
      }
      out.push(row);
    }
    // BTree order: by the index's columns.
    out.sort((a, b) => {
      for (let i = 0; i < ix.fields.length; i++) {
        const c = ix.comparators[i](a.value[ix.fields[i]], b.value[ix.fields[i]]);
        if (c !== 0) return c;
      }
      return 0;
    });
    return out;
  }

  deleteRows(tableId: number, rows: readonly StoredRow[]): number {
    let n = 0;
    for (const r of rows) if (this.deleteRow(tableId, r)) n++;
    return n;
  }

  indexTableId(indexId: number): number {
    return this.#index(indexId).table.desc.id;
  }

  // ---- DataSource (SQL engine) ------------------------------------------

  scan(table: string): Iterable<StoredRow> {
    const t = this.#byName.get(table);
    return t ? t.rows.values() : [];
  }

  lookup(table: string, column: number, value: unknown): Iterable<StoredRow> {
    const t = this.#byName.get(table);
    if (!t) return [];
    const ix = t.indexes.find((i) => i.desc.columns.length === 1 && i.desc.columns[0] === column);
    if (ix) {
      const bucket = ix.map.get(encodeKey(ix.serializers, ix.fields, { [ix.fields[0]]: value }));
      return bucket ? bucket.values() : [];
    }
    const field = t.desc.columns[column].field;
    const cmp = makeComparator(t.desc.columns[column].type);
    return [...t.rows.values()].filter((r) => cmp(r.value[field], value) === 0);
  }
}

/** What a tracked run read (see {@link Datastore.trackReads}). */
export interface ReadSet {
  /** Tables read as a whole. */
  readonly tables: Set<string>;
  /** Index id → the table and the encoded keys looked up in it. */
  readonly points: Map<number, { readonly table: string; readonly keys: Set<string> }>;
}

export type { TableState, IndexState };
