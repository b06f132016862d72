/**
 * Views (`spacetimedb.view`, `spacetimedb.anonymousView`): read-only tables
 * whose rows a module function computes — per caller (`ctx.sender`) or once
 * for everyone. Clients subscribe to them and query them like tables.
 *
 * A view's rows are computed on demand and cached, per caller for a
 * per-caller view. A commit drops the cached results of the views that read
 * something the commit changed (the host records what each run read: whole
 * tables, or the index keys it looked up with `find`/`filter`);
 * subscriptions to those views are then recomputed and compared with what
 * their subscribers have, and the difference is sent.
 */
import { AlgebraicType, BinaryReader, type Identity } from 'spacetimedb';
import type { ChangeSet, DataSource, StoredRow, TableInfo } from './types.ts';
import type { ModuleInstance } from './host/instance.ts';
import type { ViewDesc } from './host/moduleDef.ts';
import type { ReadSet } from './host/datastore.ts';
import { compileQuery, tableResolver } from './sql/compile.ts';
import { initialRows } from './sql/evaluate.ts';

/** A view function failed or returned something the dev server cannot read. */
export class ViewError extends Error {
  override readonly name = 'ViewError';
  constructor(
    message: string,
    readonly info: { readonly view: string; readonly sender?: string },
  ) {
    super(message);
  }
}

interface Cached {
  readonly rows: StoredRow[];
  /** What the run read: a commit that changes none of it leaves the result as it is. */
  readonly reads: ReadSet;
}

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

/** The views of one module instance and their cached results. */
export class ViewHost {
  readonly #module: ModuleInstance;
  readonly #byName = new Map<string, ViewDesc>();
  readonly #decoders = new Map<string, (r: BinaryReader) => Record<string, unknown>>();
  readonly #cache = new Map<string, Cached>();
  /** Cache keys the last commit dropped. */
  #dropped = new Set<string>();
  /** View runs so far (for the benchmark and tests). */
  runs = 0;

  constructor(module: ModuleInstance) {
    this.#module = module;
    const ts = module.description.typespace as { types: AlgebraicType[] };
    for (const v of module.description.viewDefs) {
      this.#byName.set(v.name, v);
      this.#decoders.set(v.name, AlgebraicType.makeDeserializer(v.rowType, ts) as (r: BinaryReader) => Record<string, unknown>);
    }
  }

  /** The views, as tables for the SQL compiler. */
  get tables(): readonly TableInfo[] {
    return [...this.#byName.values()];
  }

  get(name: string): ViewDesc | undefined {
    return this.#byName.get(name);
  }

  /** The cache key of `view`'s result for `sender` (compute once: it is checked after every commit). */
  keyFor(view: ViewDesc, sender: Identity): string {
    return view.isAnonymous ? view.name : `${view.name}\u0000${sender.toHexString()}`;
  }

  /** The rows `view` returns to `sender` now. @throws {ViewError} */
  rows(view: ViewDesc, sender: Identity): StoredRow[] {
    const key = this.keyFor(view, sender);
    let c = this.#cache.get(key);
    if (!c) {
      c = this.#run(view, sender);
      this.#cache.set(key, c);
    }
    return c.rows;
  }

  #run(view: ViewDesc, sender: Identity): Cached {
    if (view.paramCount > 0) {
      throw new ViewError(`view ${view.name} takes parameters; only views without parameters can be read`, { view: view.name });
    }
    this.runs++;
    let out: { data: Uint8Array; reads: ReadSet };
    try {
      out = this.#module.callView(view, sender);
    } catch (e) {
      const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      throw new ViewError(`view ${view.name} failed: ${why}`, { view: view.name, sender: sender.toHexString() });
    }
    const reader = new BinaryReader(out.data);
    try {
      const tag = reader.readU8();
      if (tag === 1) {
        // The view returned a query: its rows are that query's (views read every table, unfiltered).
        const sql = reader.readString();
        const tables = this.#module.description.tables;
        const ctx = { resolveTable: tableResolver(tables), allTables: () => tables, sender, allowPrivate: true };
        const [q] = compileQuery(sql, ctx);
        const rows = initialRows(q, this.#module.datastore);
        for (const t of q.tables) out.reads.tables.add(t);
        return { rows: dedupe(rows), reads: out.reads };
      }
      if (tag !== 0) throw new RangeError(`unknown view result header ${tag}`);
      const decode = this.#decoders.get(view.name)!;
      const n = reader.readU32();
      const rows: StoredRow[] = [];
      for (let i = 0; i < n; i++) {
        const start = reader.offset;
        const value = decode(reader);
        const bytes = out.data.slice(start, reader.offset);
        rows.push({ bytes, value, key: latin1(bytes) });
      }
      return { rows: dedupe(rows), reads: out.reads };
    } catch (e) {
      if (e instanceof ViewError) throw e;
      throw new ViewError(`view ${view.name} returned a result the dev server cannot read: ${e instanceof Error ? e.message : String(e)}`, {
        view: view.name,
      });
    }
  }

  /** After a commit: drop the results of views that read a changed table. */
  invalidate(changes: ChangeSet): void {
    this.#dropped = new Set();
    const ds = this.#module.datastore;
    const memo = new Map<number, Map<StoredRow, string>>();
    for (const [key, c] of this.#cache) {
      if (ds.touches(c.reads, changes, memo)) {
        this.#cache.delete(key);
        this.#dropped.add(key);
      }
    }
  }

  /** Whether the last commit changed the result under `key` (see {@link keyFor}), as far as its reads tell. */
  affected(key: string): boolean {
    return this.#dropped.has(key);
  }

  /** Forget every cached result (a new module instance, a restart). */
  clear(): void {
    this.#cache.clear();
    this.#dropped = new Set();
  }

  /** `base` with the views readable as tables, as `sender` sees them. */
  source(base: DataSource, sender: Identity): DataSource {
    if (this.#byName.size === 0) return base;
    return {
      scan: (table) => {
        const v = this.#byName.get(table);
        return v ? this.rows(v, sender) : base.scan(table);
      },
      lookup: (table, column, value) => {
        const v = this.#byName.get(table);
        if (!v) return base.lookup(table, column, value);
        const field = v.columns[column].field;
        return this.rows(v, sender).filter((r) => sameValue(r.value[field], value));
      },
    };
  }
}

/** A view's rows as a set: a row returned twice is one row (tables hold sets). */
function dedupe(rows: StoredRow[]): StoredRow[] {
  const seen = new Map<string, StoredRow>();
  for (const r of rows) if (!seen.has(r.key)) seen.set(r.key, r);
  return [...seen.values()];
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ea = a as { isEqual?: (o: unknown) => boolean };
    if (typeof ea.isEqual === 'function') return ea.isEqual(b);
    return JSON.stringify(a, big) === JSON.stringify(b, big);
  }
  return false;
}

const big = (_k: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v);
