import { expect } from 'chai';
import sinon from 'sinon';
import { VirtualTimeScheduler } from 'rxjs';
import { LiveQueries, type ConnectionLike } from '../../streams/liveQueries.ts';
import { compileRawQuery } from '../../streams/query.ts';

/** A connection whose subscriptions are applied when the test says so. */
function fakeConnection() {
  const pending: (() => void)[] = [];
  const table = { iter: () => [], onInsert() {}, onDelete() {}, removeOnInsert() {}, removeOnDelete() {} };
  const conn: ConnectionLike = {
    db: { thing: table },
    subscriptionBuilder() {
      let applied: (ctx: unknown) => void = () => {};
      const b = {
        onApplied(cb: (ctx: unknown) => void) {
          applied = cb;
          return b;
        },
        onError() {
          return b;
        },
        subscribe() {
          let active = false;
          pending.push(() => {
            active = true;
            applied({});
          });
          return { unsubscribe() {}, isActive: () => active, isEnded: () => false };
        },
      };
      return b;
    },
  };
  return { conn, applyAll: () => pending.splice(0).forEach((f) => f()) };
}

const thing = {
  sourceName: 'thing',
  accessorName: 'thing',
  tableDef: { columns: { id: { columnMetadata: { isPrimaryKey: true }, typeBuilder: { algebraicType: { tag: 'U32' } } } }, rowType: { elements: [] } },
} as never;

describe('LiveQueries regressions', () => {
  it('a query released (grace over) while a new connection syncs no longer holds the connection in syncing', () => {
    const scheduler = new VirtualTimeScheduler();
    const queries = new LiveQueries({ graceMs: 50, scheduler });
    const entry = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing', () => true));
    queries.release(entry); // grace period running
    const { conn, applyAll } = fakeConnection();
    let synced = 0;
    queries.attach(conn, () => synced++);
    scheduler.flush(); // the grace ends before the server answers
    expect(synced).to.equal(1);
    applyAll();
    expect(synced).to.equal(1);
    queries.close();
  });
});

describe('LiveQueries: row events as the SDK orders them', () => {
  /** The SDK's order: cache filled, onApplied, then that event's row callbacks; transactions after. */
  function sdkLike() {
    const rows = new Map<number, { id: number; v: number }>();
    const cbs = { insert: [] as ((ctx: unknown, r: unknown) => void)[], update: [] as ((ctx: unknown, o: unknown, n: unknown) => void)[] };
    let applied: (ctx: unknown) => void = () => {};
    let n = 0;
    const table = {
      iter: () => rows.values(),
      onInsert: (cb: (ctx: unknown, r: unknown) => void) => cbs.insert.push(cb),
      onUpdate: (cb: (ctx: unknown, o: unknown, n: unknown) => void) => cbs.update.push(cb),
      onDelete() {},
      removeOnInsert() {},
      removeOnDelete() {},
    };
    const conn: ConnectionLike = {
      db: { thing: table },
      subscriptionBuilder() {
        const b = {
          onApplied: (cb: (ctx: unknown) => void) => ((applied = cb), b),
          onError: () => b,
          subscribe: () => ({ unsubscribe() {}, isActive: () => true, isEnded: () => false }),
        };
        return b;
      },
    };
    return {
      conn,
      subscribeApplied(initial: { id: number; v: number }[]) {
        const ctx = { event: { id: `e${++n}`, tag: 'SubscribeApplied' } };
        for (const r of initial) rows.set(r.id, r);
        applied({});
        for (const r of initial) for (const cb of cbs.insert) cb(ctx, r);
      },
      transaction(updates: { id: number; v: number }[]) {
        const ctx = { event: { id: `e${++n}`, tag: 'Transaction' } };
        const olds = updates.map((r) => rows.get(r.id));
        for (const r of updates) rows.set(r.id, r);
        updates.forEach((r, i) => (olds[i] ? cbs.update.forEach((cb) => cb(ctx, olds[i], r)) : cbs.insert.forEach((cb) => cb(ctx, r))));
      },
    };
  }

  it('the inserts echoing a just-applied query are not applied twice; the next transaction flows as one batch', () => {
    const queries = new LiveQueries({ graceMs: 50 });
    let looked = 0; // rows the view's filter looked at: each row once, the echoed inserts not again
    const entry = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing', () => (looked++, true)));
    const batches: unknown[][] = [];
    const snapshots: ReadonlyMap<unknown, unknown>[] = [];
    entry.view.changes$.subscribe((b) => batches.push([...b]));
    entry.view.snapshots$.subscribe((s) => s && snapshots.push(s));
    const sdk = sdkLike();
    queries.attach(sdk.conn, () => {});
    const initial = [1, 2, 3].map((id) => ({ id, v: 0 }));
    sdk.subscribeApplied(initial);
    queries.flush();
    expect(batches).to.have.length(1);
    expect(batches[0]).to.have.length(3);
    expect(snapshots).to.have.length(1);
    sdk.transaction([{ id: 2, v: 1 }, { id: 4, v: 0 }]);
    queries.flush();
    expect(batches).to.have.length(2);
    expect((batches[1] as { op: string; key: unknown }[]).map((c) => [c.op, c.key])).to.deep.equal([['update', 2], ['insert', 4]]);
    expect(snapshots[1].size).to.equal(4);
    expect(looked).to.equal(3 + 2);
    queries.close();
  });

  it('a transaction inside a frame is flushed when the frame ends, with no microtask; outside one, in a microtask', async () => {
    const queries = new LiveQueries({ graceMs: 50 });
    const entry = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing', () => true));
    const batches: unknown[][] = [];
    entry.view.changes$.subscribe((b) => batches.push([...b]));
    const sdk = sdkLike();
    queries.attach(sdk.conn, () => {});
    sdk.subscribeApplied([{ id: 1, v: 0 }]);
    await Promise.resolve(); // the sync's own flush
    expect(batches).to.have.length(1);
    const microtasks = sinon.spy(globalThis, 'queueMicrotask');
    try {
      queries.frameStarted();
      sdk.transaction([{ id: 1, v: 1 }]);
      expect(batches).to.have.length(1);
      queries.frameEnded();
      expect(batches).to.have.length(2);
      expect(microtasks.called).to.equal(false);
      sdk.transaction([{ id: 1, v: 2 }]);
      expect(microtasks.calledOnce).to.equal(true);
      expect(batches).to.have.length(2);
      await Promise.resolve();
      expect(batches).to.have.length(3);
    } finally {
      microtasks.restore();
      queries.close();
    }
  });

  it('a second query on a table whose rows are partly cached already: each view ends with its own rows', () => {
    const queries = new LiveQueries({ graceMs: 50 });
    const sdk = sdkLike();
    queries.attach(sdk.conn, () => {});
    const all = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing', () => true));
    sdk.subscribeApplied([1, 2].map((id) => ({ id, v: 0 })));
    queries.flush();
    const some = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing WHERE id > 1', (r: { id: number }) => r.id > 1));
    // The server sends rows 2 and 3; only 3 is new to the cache, so only 3 comes as an insert.
    sdk.subscribeApplied([{ id: 3, v: 0 }]);
    queries.flush();
    expect([...some.view.state.keys()].sort()).to.deep.equal([2, 3]);
    expect([...all.view.state.keys()].sort()).to.deep.equal([1, 2, 3]);
    queries.close();
  });
});
