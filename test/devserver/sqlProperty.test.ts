/**
 * Properties of the SQL engine over random tables, random WHERE clauses and
 * random transactions:
 *  - `initialRows` equals a naive nested-loop evaluation of the same query;
 *  - `initialRows(before) + deltaRows(tx) = initialRows(after)` as multisets,
 *    without a delete of a row the result does not hold, and without scanning.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { AlgebraicType as T } from 'spacetimedb';
import { compileQuery } from '../../devserver/sql/compile.ts';
import { deltaRows, initialRows } from '../../devserver/sql/evaluate.ts';
import type { ChangeSet, StoredRow } from '../../devserver/types.ts';
import { applyDelta, bag, contextFor, jsonSafe, makeTable, MemorySource, type TestTable } from './sqlKit.ts';

// `a.x`/`b.y` are the join columns; `au` is `a` without the index on x.
const aColumns = {
  id: { type: T.U32, primaryKey: true },
  x: { type: T.U8, indexed: true },
  flag: { type: T.Bool },
  name: { type: T.String },
};
const a = makeTable('a', aColumns);
const au = makeTable('au', { ...aColumns, x: { type: T.U8 } });
const b = makeTable('b', { id: { type: T.U32, primaryKey: true }, y: { type: T.U8, indexed: true }, w: { type: T.I64, field: 'weight' } });
const all = [a, au, b];
const ctx = contextFor(all);

type Value = number | bigint | boolean | string;
type Row = Readonly<Record<string, unknown>>;

// ---- random rows and transactions -------------------------------------------

const ID = fc.integer({ min: 0, max: 7 });
const KEY = fc.integer({ min: 0, max: 3 });
const NAME = fc.constantFrom('', 'a', 'ab', 'b', 'B');
const aValue = fc.record({ id: ID, x: KEY, flag: fc.boolean(), name: NAME });
const bValue = fc.record({ id: ID, y: KEY, weight: fc.bigInt({ min: -2n, max: 2n }) });

/** A table's contents: at most one row per primary key. */
const contents = (value: fc.Arbitrary<Record<string, unknown>>) => fc.uniqueArray(value, { selector: (r) => r.id, maxLength: 8 });

/** A transaction on one table: ids to delete, then rows to upsert. */
const tableTx = (value: fc.Arbitrary<Record<string, unknown>>) =>
  fc.record({ deletes: fc.uniqueArray(ID, { maxLength: 4 }), upserts: contents(value).map((rs) => rs.slice(0, 4)) });

interface World {
  source: MemorySource;
  /** Per table, rows by primary key. */
  state: Map<TestTable, Map<unknown, StoredRow>>;
}

function world(initial: [TestTable, Record<string, unknown>[]][]): World {
  const source = new MemorySource(all);
  const state = new Map<TestTable, Map<unknown, StoredRow>>(all.map((t) => [t, new Map()]));
  for (const [t, values] of initial) {
    for (const v of values) {
      const row = t.row(v);
      state.get(t)!.set(v.id, row);
      source.insert([t, row]);
    }
  }
  return { source, state };
}

/** Applies a transaction to the world's bookkeeping and returns its net change set. */
function transact(w: World, txs: [TestTable, { deletes: number[]; upserts: Record<string, unknown>[] }][]): ChangeSet {
  const changes = new Map<string, { inserts: StoredRow[]; deletes: StoredRow[] }>();
  for (const [t, tx] of txs) {
    const rows = w.state.get(t)!;
    const before = new Map([...rows.values()].map((r) => [r.key, r]));
    const beforeById = new Map(rows);
    for (const id of tx.deletes) rows.delete(id);
    for (const v of tx.upserts) {
      const row = t.row(v);
      // Rewriting identical bytes keeps the stored object, as a datastore
      // reports it (no net change), even after a delete in the same transaction.
      const previous = beforeById.get(v.id as number);
      if (previous?.key === row.key) rows.set(v.id as number, previous);
      else if (rows.get(v.id as number)?.key !== row.key) rows.set(v.id as number, row);
    }
    const after = new Map([...rows.values()].map((r) => [r.key, r]));
    changes.set(t.name, {
      inserts: [...after.values()].filter((r) => !before.has(r.key)),
      deletes: [...before.values()].filter((r) => !after.has(r.key)),
    });
  }
  return changes;
}

// ---- random WHERE clauses, as SQL and as a reference function ---------------

interface Pred {
  readonly sql: string;
  /** Evaluates against rows by alias. */
  readonly test: (rows: Record<string, Row>) => boolean;
}

const columnTypes: Record<string, Record<string, fc.Arbitrary<Value>>> = {
  a: { id: ID, x: KEY, flag: fc.boolean(), name: NAME },
  b: { id: ID, y: KEY, w: fc.bigInt({ min: -2n, max: 2n }) },
};
const fieldOf: Record<string, string> = { w: 'weight' };
const OPS = ['=', '!=', '<>', '<', '<=', '>', '>='] as const;

function compareJs(op: (typeof OPS)[number], l: Value, r: Value): boolean {
  switch (op) {
    case '=':
      return l === r;
    case '!=':
    case '<>':
      return l !== r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
  }
}

function literalSql(v: Value): string {
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  return String(v);
}

/**
 * A comparison of a column of `alias` (whose table has the shape `shape`)
 * with a literal, on either side; `qualify` false writes bare names.
 */
function atom(aliases: [string, 'a' | 'b'][], qualify: boolean): fc.Arbitrary<Pred> {
  return fc
    .constantFrom(...aliases)
    .chain(([alias, shape]) =>
      fc.constantFrom(...Object.keys(columnTypes[shape])).chain((column) =>
        fc.tuple(fc.constantFrom(...OPS), columnTypes[shape][column], fc.boolean(), fc.boolean()).map(([op, lit, flip, quote]): Pred => {
          const name = quote ? `"${column}"` : column;
          const ref = qualify ? `${alias}.${name}` : name;
          const field = fieldOf[column] ?? column;
          const value = (rows: Record<string, Row>) => rows[alias][field] as Value;
          return flip
            ? { sql: `${literalSql(lit)} ${op} ${ref}`, test: (rows) => compareJs(op, lit, value(rows)) }
            : { sql: `${ref} ${op} ${literalSql(lit)}`, test: (rows) => compareJs(op, value(rows), lit) };
        }),
      ),
    );
}

function predicate(aliases: [string, 'a' | 'b'][], qualify: boolean): fc.Arbitrary<Pred> {
  const { tree } = fc.letrec<{ tree: Pred }>((tie) => ({
    tree: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'pred' },
      atom(aliases, qualify),
      fc.tuple(tie('tree'), tie('tree'), fc.constantFrom('AND', 'and', 'OR')).map(([l, r, op]): Pred => ({
        sql: `(${l.sql}) ${op} (${r.sql})`,
        test: op === 'OR' ? (rows) => l.test(rows) || r.test(rows) : (rows) => l.test(rows) && r.test(rows),
      })),
    ),
  }));
  return tree;
}

const maybeWhere = (p: fc.Arbitrary<Pred>) => fc.option(p, { nil: undefined });

// ---- the query shapes -------------------------------------------------------

interface QueryCase {
  readonly sql: string;
  /** Naive evaluation over whole tables (by table name). */
  readonly reference: (tables: (name: string) => StoredRow[]) => StoredRow[];
}

function singleTable(): fc.Arbitrary<QueryCase> {
  return fc.tuple(fc.boolean(), fc.boolean()).chain(([qualify, star]) =>
    maybeWhere(predicate([['a', 'a']], qualify)).map((p) => ({
      sql: `SELECT ${star ? '*' : 'a.*'} FROM a${p ? ` WHERE ${p.sql}` : ''}`,
      reference: (tables) => tables('a').filter((r) => !p || p.test({ a: r.value })),
    })),
  );
}

/**
 * `SELECT <ret>.* FROM <l> JOIN <r> ON l.x = r.y [WHERE …]` with the
 * projection on either side, the FROM order either way, and `a` with or
 * without the index on its join column.
 */
function join(): fc.Arbitrary<QueryCase> {
  return fc.tuple(fc.constantFrom(a, au), fc.boolean(), fc.boolean()).chain(([aTable, projectA, aFirst]) =>
    maybeWhere(
      predicate(
        [
          ['l', 'a'],
          ['r', 'b'],
        ],
        true,
      ),
    ).map((p) => {
      const from = aFirst ? `${aTable.name} AS l JOIN b r` : `b r JOIN ${aTable.name} l`;
      const on = aFirst ? 'l.x = r.y' : 'r.y = l.x';
      return {
        sql: `SELECT ${projectA ? 'l' : 'r'}.* FROM ${from} ON ${on}${p ? ` WHERE ${p.sql}` : ''}`,
        reference: (tables) => {
          const out: StoredRow[] = [];
          for (const l of tables(aTable.name)) {
            for (const r of tables('b')) {
              if (l.value.x === r.value.y && (!p || p.test({ l: l.value, r: r.value }))) out.push(projectA ? l : r);
            }
          }
          return out;
        },
      };
    }),
  );
}

function selfJoin(): fc.Arbitrary<QueryCase> {
  return maybeWhere(
    predicate(
      [
        ['s', 'a'],
        ['t', 'a'],
      ],
      true,
    ),
  ).map((p) => ({
    sql: `SELECT s.* FROM a s JOIN a t ON s.x = t.x${p ? ` WHERE ${p.sql}` : ''}`,
    reference: (tables) => {
      const out: StoredRow[] = [];
      for (const s of tables('a')) {
        for (const t of tables('a')) if (s.value.x === t.value.x && (!p || p.test({ s: s.value, t: t.value }))) out.push(s);
      }
      return out;
    },
  }));
}

const queryCase = fc.oneof(singleTable(), join(), selfJoin());

const scenario = fc.record({
  query: queryCase,
  a: contents(aValue),
  au: contents(aValue),
  b: contents(bValue),
  txs: fc.array(fc.record({ a: tableTx(aValue), au: tableTx(aValue), b: tableTx(bValue), touch: fc.subarray(['a', 'au', 'b']) }), {
    minLength: 1,
    maxLength: 3,
  }),
});

const tablesOf = (w: World) => (name: string) => [...w.state.get(all.find((t) => t.name === name)!)!.values()];

const show = (rows: Iterable<StoredRow>) => JSON.stringify([...rows].map((r) => r.value), jsonSafe);

describe('subscription SQL properties', () => {
  it('initialRows equals a nested-loop evaluation', () => {
    fc.assert(
      fc.property(scenario, ({ query, a: av, au: auv, b: bv }) => {
        const w = world([
          [a, av],
          [au, auv],
          [b, bv],
        ]);
        const [q] = compileQuery(query.sql, ctx);
        expect(bag(initialRows(q, w.source)), query.sql).to.deep.equal(bag(query.reference(tablesOf(w))));
      }),
      { numRuns: 400 },
    );
  });

  it('initialRows(before) + deltaRows = initialRows(after), without scanning', () => {
    fc.assert(
      fc.property(scenario, ({ query, a: av, au: auv, b: bv, txs }) => {
        const w = world([
          [a, av],
          [au, auv],
          [b, bv],
        ]);
        const [q] = compileQuery(query.sql, ctx);
        let result = bag(initialRows(q, w.source));
        for (const tx of txs) {
          const before = new Set(all.flatMap((t) => [...w.state.get(t)!.values()]));
          const changes = transact(
            w,
            tx.touch.map((name) => {
              const t = all.find((x) => x.name === name)!;
              return [t, tx[name as 'a' | 'au' | 'b']];
            }),
          );
          w.source.apply(changes);
          const scans = w.source.scans;
          const delta = deltaRows(q, changes, w.source);
          expect(w.source.scans, 'deltaRows scanned a table').to.equal(scans);
          const after = new Set(all.flatMap((t) => [...w.state.get(t)!.values()]));
          // Rows come back as the objects the change set and the datastore hold.
          for (const r of delta.inserts) expect(after.has(r), `insert ${show([r])} is not a stored object`).to.equal(true);
          for (const r of delta.deletes) expect(before.has(r), `delete ${show([r])} is not a stored object`).to.equal(true);
          result = applyDelta(result, delta);
          const expected = bag(initialRows(q, w.source));
          expect(result, `${query.sql}\ninserts ${show(delta.inserts)}\ndeletes ${show(delta.deletes)}`).to.deep.equal(expected);
          // An unchanged row never shows up on both sides of one delta.
          const ins = new Set(delta.inserts.map((r) => r.key));
          expect(delta.deletes.filter((r) => ins.has(r.key)), 'row both inserted and deleted').to.deep.equal([]);
        }
      }),
      { numRuns: 400 },
    );
  });
});
