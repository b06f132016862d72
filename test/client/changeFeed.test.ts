/**
 * The offline-cache feed of LiveQueries: nothing is collected without a sink;
 * with one, a transaction's row changes arrive in one call, in order-preserving
 * batches per table; and a row event computes the row's key once for all views.
 */
import { expect } from 'chai';
import { LiveQueries, type ConnectionLike, type TableChangeBatch, type Transaction } from '../../streams/liveQueries.ts';
import { compileRawQuery, type CompiledQuery } from '../../streams/query.ts';
import type { DevServer } from '../../devserver/index.ts';
import { next } from '../helpers/syncClient.ts';
import { arenaClient, freshProfile, openArenaStorage, startArena, tables } from './arena.ts';

type Row = { id: number; v: string };
type Cb = (...args: any[]) => void;

/** A connection with tables `thing` and `other` whose row events the test fires. */
function fakeConnection() {
  const appliers: (() => void)[] = [];
  const mkTable = () => {
    const cbs = { insert: [] as Cb[], del: [] as Cb[], update: [] as Cb[] };
    return {
      cbs,
      iter: () => [] as Row[],
      onInsert: (cb: Cb) => cbs.insert.push(cb),
      onDelete: (cb: Cb) => cbs.del.push(cb),
      onUpdate: (cb: Cb) => cbs.update.push(cb),
      removeOnInsert: (cb: Cb) => cbs.insert.splice(cbs.insert.indexOf(cb), 1),
      removeOnDelete: (cb: Cb) => cbs.del.splice(cbs.del.indexOf(cb), 1),
      removeOnUpdate: (cb: Cb) => cbs.update.splice(cbs.update.indexOf(cb), 1),
    };
  };
  const db = { thing: mkTable(), other: mkTable() };
  const conn: ConnectionLike = {
    db,
    subscriptionBuilder() {
      let applied: Cb = () => {};
      const b = {
        onApplied(cb: Cb) {
          applied = cb;
          return b;
        },
        onError() {
          return b;
        },
        subscribe() {
          appliers.push(() => applied({}));
          return { unsubscribe() {}, isActive: () => true, isEnded: () => false };
        },
      };
      return b;
    },
  };
  let tx = 0;
  let ctx = { event: { id: 'tx0' } };
  return {
    conn,
    applyAll: () => appliers.splice(0).forEach((f) => f()),
    /** Start a new transaction: the following row events carry its id. */
    begin: () => (ctx = { event: { id: `tx${++tx}` } }),
    insert: (t: 'thing' | 'other', row: Row) => db[t].cbs.insert.forEach((cb) => cb(ctx, row)),
    del: (t: 'thing' | 'other', row: Row) => db[t].cbs.del.forEach((cb) => cb(ctx, row)),
    update: (t: 'thing' | 'other', o: Row, n: Row) => db[t].cbs.update.forEach((cb) => cb(ctx, o, n)),
  };
}

const tableRef = (name: string) =>
  ({
    sourceName: name,
    accessorName: name,
    tableDef: { columns: { id: { columnMetadata: { isPrimaryKey: true }, typeBuilder: { algebraicType: { tag: 'U32' } } } }, rowType: { elements: [] } },
  }) as never;

/** A query on `table` whose key function counts its calls. */
function countingQuery(table: string, sql: string, counter: { keys: number }, matches: (r: Row) => boolean = () => true): CompiledQuery<Row> {
  const q = compileRawQuery<Row>(tableRef(table), sql, matches);
  return {
    ...q,
    keyOf: (row) => {
      counter.keys++;
      return q.keyOf(row);
    },
  };
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));
const summary = (calls: TableChangeBatch[][]) => calls.map((batches) => batches.map((b) => `${b.table} -${b.deletes.map((r) => r.id).join(',')} +${b.inserts.map((r) => `${r.id}${r.v}`).join(',')}`));

describe('LiveQueries change feed (offline cache)', () => {
  it('transaction$: one emission per transaction; row changes only of the recorded tables, in order, updates as writes of the new row', async () => {
    const queries = new LiveQueries({ graceMs: 0 });
    const counter = { keys: 0 };
    const entry = queries.acquire(countingQuery('thing', 'SELECT * FROM thing', counter));
    queries.acquire(countingQuery('other', 'SELECT * FROM other', counter));
    const f = fakeConnection();
    queries.attach(f.conn, () => {});
    f.applyAll();
    const transactions: Transaction[] = [];
    queries.transaction$.subscribe((t) => transactions.push(t));
    const calls = () => transactions.filter((t) => t.changes.length > 0).map((t) => [...t.changes]);
    const r = (id: number, v: string): Row => ({ id, v });

    // Nothing recorded yet: the transaction is emitted, without row changes.
    f.begin();
    f.insert('thing', r(1, 'a'));
    f.insert('thing', r(2, 'a'));
    await tick();
    expect(entry.view.state.size).to.equal(2);
    expect(transactions).to.have.length(1);
    expect(transactions[0].changes).to.deep.equal([]);

    queries.recordChanges((t) => t === 'thing' || t === 'other');
    expect(calls()).to.deep.equal([]);

    f.begin();
    f.insert('other', r(9, 'x'));
    f.update('thing', r(1, 'a'), r(1, 'b'));
    f.update('thing', r(2, 'a'), r(2, 'b'));
    f.insert('thing', r(3, 'a'));
    f.del('thing', r(3, 'a')); // a delete after an insert: a new batch, so it applies after it
    f.insert('thing', r(4, 'a'));
    f.begin(); // the next transaction ends the previous one
    f.del('thing', r(4, 'a'));
    f.insert('thing', r(5, 'a'));
    expect(summary(calls())).to.deep.equal([['other - +9x', 'thing - +1b,2b,3a', 'thing -3 +4a']]);
    await tick(); // … or the end of the task
    expect(summary(calls())).to.deep.equal([['other - +9x', 'thing - +1b,2b,3a', 'thing -3 +4a'], ['thing -4 +5a']]);
    expect(transactions).to.have.length(3);
    expect(entry.view.state.size).to.equal(3);

    // A table not recorded costs nothing; recording nothing stops the changes.
    queries.recordChanges((t) => t === 'thing');
    f.begin();
    f.insert('other', r(10, 'x'));
    await tick();
    expect(calls()).to.have.length(2);
    expect(transactions).to.have.length(4);
    queries.recordChanges(undefined);
    f.begin();
    f.insert('thing', r(6, 'a'));
    await tick();
    expect(calls()).to.have.length(2);
    expect(transactions).to.have.length(5);
    queries.close();
  });

  it('a row event computes the row key once for all views of its table', async () => {
    const queries = new LiveQueries({ graceMs: 0 });
    const counter = { keys: 0 };
    const all = queries.acquire(countingQuery('thing', 'SELECT * FROM thing', counter));
    const some = queries.acquire(countingQuery('thing', 'SELECT * FROM thing WHERE id > 1', counter, (row) => row.id > 1));
    const f = fakeConnection();
    queries.attach(f.conn, () => {});
    f.applyAll();
    await tick();
    const r = (id: number, v: string): Row => ({ id, v });
    f.begin();
    f.insert('thing', r(1, 'a'));
    f.insert('thing', r(2, 'a'));
    expect(counter.keys).to.equal(2);
    f.begin();
    f.update('thing', r(1, 'a'), r(1, 'b'));
    f.update('thing', r(2, 'a'), r(2, 'b'));
    expect(counter.keys).to.equal(4);
    f.begin();
    f.del('thing', r(2, 'b'));
    expect(counter.keys).to.equal(5);
    await tick();
    expect([...all.view.state.values()]).to.deep.equal([r(1, 'b')]);
    expect(some.view.state.size).to.equal(0);
    queries.close();
  });
});

describe('sync client: offline-cache feed (dev server + fake-indexeddb)', function () {
  this.timeout(30_000);
  let server: DevServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  /** Create two nodes, move one (an update) and delete the other, each a transaction; the cache's writes and its rows after close. */
  const run = async (persistTables: boolean) => {
    server ??= await startArena();
    const profile = freshProfile();
    const storage = await openArenaStorage(profile);
    const writes: { table: string; inserts: number; deletes: number }[] = [];
    const write = storage.snapshots.write.bind(storage.snapshots);
    storage.snapshots.write = (table, changes) => {
      writes.push({ table, inserts: changes.inserts?.length ?? 0, deletes: changes.deletes?.length ?? 0 });
      write(table, changes);
    };
    const client = arenaClient(server, { storage, persistTables });
    const nodes = client.table$(tables.gameNode);
    const sub = nodes.subscribe();
    await next(client.status$, (s) => s.state === 'live', 10_000, 'live');
    await next(nodes, (m) => m !== undefined);
    await client.call('createNode', { parent: 0n, x: 1, y: 1, data: '{}' });
    await client.call('createNode', { parent: 0n, x: 2, y: 2, data: '{}' });
    const [a, b] = [...(await next(nodes, (m) => m.size === 2)).values()].sort((p, q) => (p.x < q.x ? -1 : 1));
    await client.call('moveNode', { id: a.id, x: 5, y: 6 });
    await client.call('deleteNode', { id: b.id });
    await next(nodes, (m) => m.size === 1 && [...m.values()][0].x === 5);
    sub.unsubscribe();
    await client.close();
    await storage.close();
    const again = await openArenaStorage(profile);
    const { rows } = await again.snapshots.load('game_node');
    await again.close();
    return { writes: writes.filter((w) => w.table === 'game_node'), rows };
  };

  it('with persistTables: one write per transaction, updates as writes of the new row; the cache ends with the server rows', async () => {
    const { writes, rows } = await run(true);
    // Create, create, move (an update: the new row only), delete.
    expect(writes).to.deep.equal([
      { table: 'game_node', inserts: 1, deletes: 0 },
      { table: 'game_node', inserts: 1, deletes: 0 },
      { table: 'game_node', inserts: 1, deletes: 0 },
      { table: 'game_node', inserts: 0, deletes: 1 },
    ]);
    expect(rows.map((r) => [r.x, r.y])).to.deep.equal([[5, 6]]);
  });

  it('with persistTables off nothing reaches the cache', async () => {
    const { writes, rows } = await run(false);
    expect(writes).to.deep.equal([]);
    expect(rows).to.deep.equal([]);
  });
});
