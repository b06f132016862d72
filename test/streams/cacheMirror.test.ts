/**
 * Snapshots that read the SDK's cache in place (streams/cacheMirror.ts):
 * older versions keep what they showed through every kind of change, with a
 * table double that applies operations as the SDK's cache does, with the
 * view on top, and with the real SDK and the dev server.
 */
import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { firstValueFrom, Subscription } from 'rxjs';
import { CacheMirror } from '../../streams/cacheMirror.ts';
import { editSnapshot, outerStatus, type SnapshotMap } from '../../streams/snapshotMap.ts';
import { TableView, type RowChange } from '../../streams/tableView.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { eachLiveClient } from '../helpers/syncClient.ts';
import { until } from '../helpers/until.ts';

// A full collection on demand, without running the whole suite under --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Row {
  readonly id: bigint;
  readonly v: string;
}
type Op = { type: 'insert' | 'delete'; rowId: bigint; row: Row };
type Callback = ['insert', Row] | ['update', Row, Row] | ['delete', Row];

const row = (id: number, v: string): Row => ({ id: BigInt(id), v });
const keyOf = (r: Row) => r.id;

/**
 * A table cache that stores and pairs operations as the SDK's does for a
 * primary-keyed table: `rows` maps a row id to `[row, refCount]`;
 * `applyOperations` (an own property) takes a transaction's inserts, then its
 * deletes, and returns the row callbacks it owes, which the caller makes
 * afterwards (the SDK's order).
 */
class CacheDouble {
  rows = new Map<unknown, [Row, number]>();
  seen: Callback[] = [];
  count() {
    return BigInt(this.rows.size);
  }
  applyOperations = (ops: readonly Op[], _ctx: unknown): Callback[] => {
    const inserts = new Map<bigint, Op>();
    const deletes = new Map<bigint, Op>();
    for (const op of ops) (op.type === 'insert' ? inserts : deletes).set(op.rowId, op);
    const out: Callback[] = [];
    for (const [id, op] of inserts) {
      const prev = this.rows.get(id);
      if (deletes.has(id) && prev) {
        deletes.delete(id);
        this.rows.set(id, [op.row, prev[1]]);
        out.push(['update', prev[0], op.row]);
      } else {
        this.rows.set(id, [op.row, (prev?.[1] ?? 0) + 1]);
        if (!prev) out.push(['insert', op.row]);
      }
    }
    for (const [id, op] of deletes) {
      const prev = this.rows.get(id);
      if (!prev) continue;
      if (prev[1] <= 1) {
        this.rows.delete(id);
        out.push(['delete', op.row]);
      } else this.rows.set(id, [op.row, prev[1] - 1]);
    }
    return out;
  };

  /** Apply a transaction (inserts first, then deletes, as the SDK lists them); returns its callbacks. */
  apply(inserts: Row[], deletes: Row[], ctx: unknown = {}): Callback[] {
    const ops: Op[] = [...inserts.map((r) => ({ type: 'insert' as const, rowId: r.id, row: r })), ...deletes.map((r) => ({ type: 'delete' as const, rowId: r.id, row: { ...r } }))];
    return (this as unknown as { applyOperations(ops: Op[], ctx: unknown): Callback[] }).applyOperations(ops, ctx);
  }
}

function seeded(...rows: Row[]): CacheDouble {
  const c = new CacheDouble();
  for (const r of rows) c.rows.set(r.id, [r, 1]);
  return c;
}

const entries = (m: SnapshotMap<unknown, Row>) => [...m].map(([k, r]) => [k, r] as const);

describe('CacheMirror: snapshots that read the SDK cache in place', () => {
  describe('with a table double', () => {
    const a = row(1, 'a');
    const b = row(2, 'b');
    const c = row(3, 'c');

    it('an older version keeps its rows (the same objects) through an insert, an update and a delete', () => {
      const cache = seeded(a, b, c);
      const before: unknown[] = [];
      const mirror = CacheMirror.of<Row>(cache, keyOf, (ctx) => {
        before.push([ctx, cache.rows.get(2n)?.[0]]);
      })!;
      const v0 = mirror.head!;
      expect(outerStatus(v0).outer).to.equal(true);
      const was = entries(v0);
      const b2 = row(2, 'b2');
      const d = row(4, 'd');
      cache.apply([b2, d], [b, c], 'tx1');
      // The caller ran before the cache changed, with the SDK's event context.
      expect(before).to.deep.equal([['tx1', b]]);
      const v1 = mirror.head!;
      expect(v1).to.not.equal(v0);
      expect(entries(v0)).to.deep.equal(was);
      expect(v0.get(2n)).to.equal(b);
      expect(v0.get(3n)).to.equal(c);
      expect(v0.has(4n)).to.equal(false);
      expect(v0.size).to.equal(3);
      expect(v1.get(2n)).to.equal(b2);
      expect(v1.has(3n)).to.equal(false);
      expect(v1.get(4n)).to.equal(d);
      expect(v1.size).to.equal(3);
    });

    it('a transaction of updates only takes the old rows from the update callbacks, with no read before the change', () => {
      const cache = seeded(a, b, c);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      const reads: unknown[] = [];
      const get = cache.rows.get.bind(cache.rows);
      cache.rows.get = (k) => (reads.push(k), get(k));
      const a2 = row(1, 'a2');
      const c2 = row(3, 'c2');
      const callbacks = cache.apply([a2, c2], [a, c]);
      // Only the double's own reads: the mirror read nothing.
      expect(reads).to.deep.equal([1n, 3n]);
      for (const cb of callbacks) if (cb[0] === 'update') mirror.note(cb[1], cb[2]);
      const v1 = mirror.head!;
      expect(v0.get(1n)).to.equal(a);
      expect(v0.get(3n)).to.equal(c);
      expect(v1.get(1n)).to.equal(a2);
      expect(v1.get(3n)).to.equal(c2);
      expect(entries(v0).map(([, r]) => r)).to.have.members([a, b, c]);
    });

    it('followers of a transaction of updates, begun by the caller, are told once after the change and get its change objects from the notes', () => {
      const cache = seeded(a, b, c);
      let begun = true;
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => begun)!;
      const v0 = mirror.head!;
      const told: (Row | undefined)[] = [];
      const follower = { take: () => told.push(cache.rows.get(1n)?.[0]) > 0 };
      const other = { take: () => true };
      mirror.follow(follower);
      mirror.follow(other);
      const a2 = row(1, 'a2');
      const c2 = row(3, 'c2');
      const callbacks = cache.apply([a2, c2], [a, c]);
      // Told once, with the cache already changed, before any callback.
      expect(told).to.deep.equal([a2]);
      expect(mirror.handedOver).to.equal(true);
      for (const cb of callbacks) if (cb[0] === 'update') mirror.note(cb[1], cb[2]);
      const taken = mirror.taken();
      expect(taken.map((ch) => [ch.op, ch.key, ch.oldRow, ch.newRow])).to.deep.equal([
        ['update', 1n, a, a2],
        ['update', 3n, c, c2],
      ]);
      // Every follower gets the same array, once: the last one's read lets go of it. The older version keeps its rows.
      expect(mirror.taken()).to.equal(taken);
      expect(mirror.taken()).to.deep.equal([]);
      expect(v0.get(1n)).to.equal(a);
      expect(mirror.head!.get(1n)).to.equal(a2);
      // A transaction the caller has not begun, and one that is not updates only: the row callbacks bring those.
      begun = false;
      cache.apply([row(2, 'b2')], [b]);
      expect(mirror.handedOver).to.equal(false);
      begun = true;
      cache.apply([row(4, 'd')], []);
      expect(mirror.handedOver).to.equal(false);
      expect(told).to.have.length(1);
      // Without followers nothing is told.
      mirror.unfollow(follower);
      mirror.unfollow(other);
      cache.apply([row(1, 'a3')], [a2]);
      expect(told).to.have.length(1);
    });

    it('an update the cache does not make (an id it never held) makes no change object', () => {
      const cache = seeded(a, b);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => true)!;
      mirror.head!;
      let told = 0;
      mirror.follow({ take: () => ++told > 0 });
      const ghost = row(9, 'ghost');
      const b2 = row(2, 'b2');
      for (const cb of cache.apply([ghost, b2], [ghost, b])) if (cb[0] === 'update') mirror.note(cb[1], cb[2]);
      expect(told).to.equal(1);
      expect(mirror.taken().map((ch) => [ch.key, ch.oldRow, ch.newRow])).to.deep.equal([[2n, b, b2]]);
      expect(mirror.head!.has(9n)).to.equal(false);
    });

    it('a pair of operations that makes no update callback (a row the cache did not hold) leaves older versions as they were', () => {
      const cache = seeded(a, b);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      const ghost = row(9, 'ghost');
      // An insert and a delete of the same id: updates only by shape, but the cache never held id 9.
      const callbacks = cache.apply([ghost], [ghost]);
      expect(callbacks.some((cb) => cb[0] === 'update')).to.equal(false);
      const v1 = mirror.head!;
      expect(entries(v0)).to.deep.equal([
        [1n, a],
        [2n, b],
      ]);
      expect(v0.size).to.equal(2);
      expect(v1.size).to.equal(2);
      expect(v0.has(undefined as unknown as bigint)).to.equal(false);
    });

    it('an iteration left open across a change ends on the rows it began with, in the same order', () => {
      const rows = Array.from({ length: 20 }, (_, i) => row(i + 1, `r${i + 1}`));
      const cache = seeded(...rows);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      const it = v0.entries();
      const got: Row[] = [];
      for (let i = 0; i < 5; i++) got.push(it.next().value![1]);
      cache.apply([row(3, 'x'), row(30, 'new')], [rows[2], rows[10]]);
      for (let r = it.next(); !r.done; r = it.next()) got.push(r.value[1]);
      expect(got).to.deep.equal(rows);
      expect(mirror.head!.get(3n)!.v).to.equal('x');
      expect(v0.get(3n)).to.equal(rows[2]);
    });

    it('diffs past four times the rows freeze the map on a copy: a version kept forever holds no more', () => {
      const cache = seeded(a, b, c);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      let cur = [a, b, c];
      let maxRecorded = 0;
      for (let t = 0; t < 400; t++) {
        const nextRows = cur.map((r) => row(Number(r.id), `${r.v}.`));
        // Unpaired order (deletes listed out of step): the mirror reads the old rows itself.
        cache.apply(nextRows, [cur[1], cur[0], cur[2]]);
        cur = nextRows;
        maxRecorded = Math.max(maxRecorded, outerStatus(mirror.head!).recorded);
      }
      expect(maxRecorded).to.be.at.most(4 * 3 + 1024 + 2 * 3);
      expect(entries(v0)).to.deep.equal([[1n, a], [2n, b], [3n, c]]);
      expect([...mirror.head!.values()]).to.deep.equal(cur);
    });

    it('operations it cannot read stop the mirror; the versions so far keep their rows', () => {
      const cache = seeded(a, b);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      (cache as unknown as { applyOperations(ops: unknown, ctx: unknown): unknown }).applyOperations([{ kind: 'other' }], {});
      cache.rows.delete(1n); // what such a change might have done
      expect(mirror.head).to.equal(undefined);
      expect(v0.get(1n)).to.equal(a);
      expect(v0.size).to.equal(2);
      expect(CacheMirror.of<Row>(cache, keyOf, () => {})).to.equal(undefined);
    });

    it('a cache of another shape is not mirrored', () => {
      const shapes: [string, object][] = [
        ['no applyOperations', { rows: new Map([[1n, [a, 1]]]), count: () => 1n }],
        ['values that are not [row, refCount] pairs', { rows: new Map([[1n, a]]), count: () => 1n, applyOperations() {} }],
        ['a map of another size than count()', { rows: new Map([[1n, [a, 1]]]), count: () => 2n, applyOperations() {} }],
        ['no row map', { count: () => 0n, applyOperations() {} }],
      ];
      for (const [what, table] of shapes) expect(CacheMirror.of(table, keyOf, () => {}), what).to.equal(undefined);
    });

    it('editing any version starts a table of its own; the mirror and the version are untouched', () => {
      const cache = seeded(a, b);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const v0 = mirror.head!;
      cache.apply([row(3, 'c')], []);
      const e = editSnapshot(v0);
      e.put(1n, undefined);
      e.put(5n, row(5, 'e'));
      const own = e.commit();
      expect(outerStatus(own).outer).to.equal(false);
      expect([...own.keys()].sort()).to.deep.equal([2n, 5n]);
      expect([...v0.keys()]).to.deep.equal([1n, 2n]);
      expect([...mirror.head!.keys()]).to.deep.equal([1n, 2n, 3n]);
    });
  });

  describe('a whole-table view on the mirror', () => {
    /**
     * A view of every row of a primary-keyed table, following `cache`;
     * flushes by hand. `begins`: whether the mirror's caller begins each
     * transaction before the change (then the view takes an updates-only
     * change's objects from the mirror and ignores its row events).
     */
    function viewOn(cache: CacheDouble, begins = true) {
      let dirty = false;
      const view = new TableView<Row>({ keyOf, matches: () => true, everyRow: true, primaryKeyed: true }, () => (dirty = true));
      const snapshots: SnapshotMap<unknown, Row>[] = [];
      const batches: (readonly RowChange<Row>[])[] = [];
      const subs = new Subscription();
      subs.add(view.snapshots$.subscribe((s) => s && snapshots.push(s as SnapshotMap<unknown, Row>)));
      subs.add(view.changes$.subscribe((c) => batches.push(c)));
      // The caller's part (liveQueries): flush the last transaction, and begin the next.
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {
        if (dirty) {
          dirty = false;
          view.flush();
        }
        return begins;
      })!;
      view.syncFrom([...cache.rows.values()].map((p) => p[0]), mirror);
      view.flush();
      dirty = false;
      /** Apply a transaction and make its callbacks as the SDK's dispatch would. */
      const tx = (inserts: Row[], deletes: Row[]) => {
        for (const cb of cache.apply(inserts, deletes)) {
          if (cb[0] === 'insert') view.event(cb[1].id, cb[1]);
          else if (cb[0] === 'delete') view.event(cb[1].id, undefined);
          else {
            // What the client's update callback does (streams/liveQueries.ts): the note, then the view.
            mirror.note(cb[1], cb[2]);
            if (!view.changesTaken) view.event(cb[2].id, cb[2], cb[1]);
          }
        }
      };
      return { view, snapshots, batches, tx, subs, flush: () => (dirty ? ((dirty = false), view.flush()) : undefined) };
    }

    for (const [begins, how] of [[true, ' (changes taken from the mirror)'], [false, ' (changes from the row events)']] as const) {
      it(`emits the cache itself, and change objects whose old rows are the previous snapshot’s` + how, () => {
        const a = row(1, 'a');
        const b = row(2, 'b');
        const cache = seeded(a, b);
        const { view, snapshots, batches, tx, flush } = viewOn(cache, begins);
        expect(snapshots).to.have.length(1);
        expect(outerStatus(view.state).outer).to.equal(true);
        const s0 = snapshots[0];
        tx([row(1, 'a2'), row(3, 'c')], [a]);
        flush();
        tx([], [b]);
        flush();
        expect(snapshots).to.have.length(3);
        const [, s1, s2] = snapshots;
        expect([...s0.values()]).to.deep.equal([a, b]);
        expect(s1.get(1n)!.v).to.equal('a2');
        expect(s1.get(2n)).to.equal(b);
        expect(s2.has(2n)).to.equal(false);
        // The delete's old row is the object the snapshots held (the SDK reports the server's copy).
        const del = batches[2].find((c) => c.op === 'delete')!;
        expect(del.oldRow).to.equal(b);
        const upd = batches[1].find((c) => c.op === 'update')!;
        expect(upd.oldRow).to.equal(a);
        expect(batches[1].map((c) => c.op).sort()).to.deep.equal(['insert', 'update']);
      });

      it(`change objects are plain objects with a literal's own properties, on every path that makes them` + how, () => {
        const a = row(1, 'a');
        const b = row(2, 'b');
        const cache = seeded(a, b);
        const { batches, tx, flush } = viewOn(cache, begins);
        tx([row(1, 'a2')], [a]);
        flush();
        tx([row(3, 'c')], [b]);
        flush();
        const all = batches.flat();
        expect(all.map((c) => c.op).sort()).to.deep.equal(['delete', 'insert', 'insert', 'insert', 'update']);
        for (const c of all) {
          expect(Object.getPrototypeOf(c)).to.equal(Object.prototype);
          expect(Object.keys(c)).to.deep.equal(['op', 'key', 'oldRow', 'newRow']);
        }
      });

      it(`a transaction applied before the last one was flushed: the last one is flushed first, its snapshot without the new rows` + how, () => {
        const a = row(1, 'a');
        const cache = seeded(a);
        const { snapshots, batches, tx, flush } = viewOn(cache, begins);
        tx([row(1, 'a2')], [a]);
        // No flush between the two: the mirror's caller flushes before the second change.
        tx([row(1, 'a3')], [cache.rows.get(1n)![0]]);
        flush();
        expect(snapshots.map((s) => s.get(1n)!.v)).to.deep.equal(['a', 'a2', 'a3']);
        expect(batches.map((b) => b.map((c) => `${c.oldRow?.v}>${c.newRow?.v}`))).to.deep.equal([['undefined>a'], ['a>a2'], ['a2>a3']]);
      });
    }

    it('a first sync reads the cache itself: the rows are not asked for, every row is an insert under the cache’s key', () => {
      const a = row(1, 'a');
      const b = row(2, 'b');
      const cache = seeded(a, b);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const view = new TableView<Row>({ keyOf, matches: () => true, everyRow: true, primaryKeyed: true }, () => {});
      const batches: (readonly RowChange<Row>[])[] = [];
      const sub = view.changes$.subscribe((c) => batches.push(c));
      let asked = 0;
      view.syncFrom(() => (asked++, [a, b]), mirror);
      view.flush();
      sub.unsubscribe();
      expect(asked).to.equal(0);
      expect(outerStatus(view.state).outer).to.equal(true);
      expect(batches).to.have.length(1);
      expect(batches[0].map((c) => [c.op, c.key, c.oldRow, c.newRow])).to.deep.equal([
        ['insert', 1n, undefined, a],
        ['insert', 2n, undefined, b],
      ]);
    });

    it('a cache whose keys are not the rows’ keys is not read in place: the view builds its own table from the rows', () => {
      const a = row(1, 'a');
      const cache = new CacheDouble();
      cache.rows.set('not-1', [a, 1]);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => {})!;
      const view = new TableView<Row>({ keyOf, matches: () => true, everyRow: true, primaryKeyed: true }, () => {});
      let asked = 0;
      view.syncFrom(() => (asked++, [a]), mirror);
      view.flush();
      expect(asked).to.equal(1);
      expect(outerStatus(view.state).outer).to.equal(false);
      expect(view.state.get(1n)).to.equal(a);
      // A re-sync does not follow that cache either, and no outer map was made for it.
      const a2 = row(1, 'a2');
      cache.rows.set('not-1', [a2, 1]);
      view.syncFrom(() => (asked++, [a2]), mirror);
      view.flush();
      expect(asked).to.equal(2);
      expect(outerStatus(view.state).outer).to.equal(false);
      expect(view.state.get(1n)).to.equal(a2);
      expect(outerStatus(mirror.head!).recorded).to.equal(0);
    });

    it('a new connection: the view walks the lost cache against the new one and emits only what changed', () => {
      const rows = Array.from({ length: 50 }, (_, i) => row(i + 1, `r${i + 1}`));
      const lost = seeded(...rows);
      const { view, snapshots, batches } = viewOn(lost);
      const before = snapshots[0];
      view.suspend();
      // From the loss on, the snapshots read a copy: the lost cache is not theirs to keep alive.
      lost.rows.clear();
      expect(before.size).to.equal(50);
      expect(before.get(7n)).to.equal(rows[6]);
      // The server resends every row (new objects); row 7 changed, row 20 is gone, row 60 is new.
      const fresh = seeded(...rows.filter((r) => r.id !== 20n).map((r) => (r.id === 7n ? row(7, 'changed') : { ...r })), row(60, 'new'));
      const mirror = CacheMirror.of<Row>(fresh, keyOf, () => {})!;
      view.syncFrom([...fresh.rows.values()].map((p) => p[0]), mirror);
      view.flush();
      expect(batches).to.have.length(2);
      expect(batches[1].map((c) => `${c.op} ${c.key}`).sort()).to.deep.equal(['delete 20', 'insert 60', 'update 7']);
      expect(batches[1].find((c) => c.op === 'delete')!.oldRow).to.equal(rows[19]);
      const after = snapshots.at(-1)!;
      expect(after).to.equal(mirror.head);
      expect(after.size).to.equal(50);
      expect(before.get(7n)).to.equal(rows[6]);
      expect(before.get(20n)).to.equal(rows[19]);
      expect(before.size).to.equal(50);
    });

    it('a change the view makes itself leaves the cache for a table of its own', () => {
      const a = row(1, 'a');
      const cache = seeded(a);
      const { view, snapshots } = viewOn(cache);
      view.updateSameKey(a, row(1, 'mine'));
      view.flush();
      const last = snapshots[snapshots.length - 1];
      expect(outerStatus(last).outer).to.equal(false);
      expect(last.get(1n)!.v).to.equal('mine');
      expect(cache.rows.get(1n)![0]).to.equal(a);
    });

    it('once its last view has left, the mirror records nothing more: the versions read a copy', () => {
      const a = row(1, 'a');
      const b = row(2, 'b');
      const cache = seeded(a, b);
      const { view, snapshots, tx, flush } = viewOn(cache);
      tx([row(1, 'a2')], [a]);
      flush();
      const s1 = snapshots.at(-1)!;
      const recorded = outerStatus(s1).recorded;
      expect(recorded).to.be.greaterThan(0);
      view.updateSameKey(b, row(2, 'mine'));
      view.flush();
      for (let t = 0; t < 5; t++) cache.apply([row(1, `a${t + 3}`), row(2, `b${t}`)], [cache.rows.get(1n)![0], cache.rows.get(2n)![0]]);
      expect(outerStatus(s1).recorded).to.equal(recorded);
      expect(s1.get(1n)!.v).to.equal('a2');
      expect(s1.get(2n)).to.equal(b);
      expect(snapshots[0].get(1n)).to.equal(a);
    });

    it('a view that ends (its query dropped) leaves the mirror: nothing is handed to it, nothing more recorded', () => {
      const a = row(1, 'a');
      const cache = seeded(a);
      const { view, snapshots } = viewOn(cache);
      const mirror = CacheMirror.of<Row>(cache, keyOf, () => true)!;
      const s0 = snapshots[0];
      view.complete();
      expect(view.live).to.equal(false);
      cache.apply([row(1, 'a2')], [a]);
      expect(mirror.handedOver).to.equal(false);
      expect(outerStatus(s0).recorded).to.equal(0);
      expect(s0.get(1n)).to.equal(a);
    });

    it('once the view has emitted a transaction of updates, nothing in the client keeps the rows it replaced', async () => {
      // The app keeps the newest snapshot only, as a game that renders the table would.
      const cache = new CacheDouble();
      const n = 100;
      for (let i = 1; i <= n; i++) cache.rows.set(BigInt(i), [row(i, 'old'), 1]);
      const { view, tx, flush, subs, snapshots, batches } = viewOn(cache);
      let latest: unknown;
      const keep = view.snapshots$.subscribe((s) => (latest = s));
      // viewOn's own lists keep every snapshot and batch: not this app.
      subs.unsubscribe();
      snapshots.length = 0;
      batches.length = 0;
      const replaced = new FinalizationRegistry<void>(() => void collected++);
      let collected = 0;
      (() => {
        const olds = [...cache.rows.values()].map((p) => p[0]);
        for (const r of olds) replaced.register(r, undefined);
        tx(olds.map((r) => row(Number(r.id), 'new')), olds);
      })();
      flush();
      expect((latest as SnapshotMap<unknown, Row>).get(1n)!.v).to.equal('new');
      await until(
        () => {
          gc();
          return collected === n;
        },
        () => `the ${n} replaced rows to be collected (${collected} were)`,
      );
      keep.unsubscribe();
    });
  });

  describe('with the SDK and the dev server', () => {
    const each = eachLiveClient();

    it('a whole-table view reads the SDK cache in place, and its older snapshots stay as they were', async () => {
      const { client } = each;
      for (const name of ['ada', 'bob', 'cy']) await client.call('addPerson', { name, age: 30 });
      type Person = { id: bigint; name: string };
      const snapshots: ReadonlyMap<unknown, Person>[] = [];
      const batches: (readonly RowChange<Person>[])[] = [];
      const subs = new Subscription();
      subs.add(client.table$(tables.person).subscribe((s) => snapshots.push(s)));
      subs.add(client.changes$(tables.person).subscribe((c) => batches.push(c)));
      try {
        await until(() => snapshots.at(-1)?.size === 3, 'three people');
        const s0 = snapshots.at(-1)!;
        // A failure here means the SDK's cache changed shape: the view keeps a table of its own again.
        expect(outerStatus(s0 as SnapshotMap<unknown, unknown>).outer, 'reads the SDK cache').to.equal(true);
        const was = [...s0];
        const [ada, bob] = [...s0.values()].sort((x, y) => Number(x.id - y.id));
        await client.call('renamePerson', { id: ada.id, name: 'ada2' });
        await client.call('deletePerson', { id: bob.id });
        await client.call('addPerson', { name: 'dee', age: 40 });
        await until(() => snapshots.at(-1)?.size === 3 && [...snapshots.at(-1)!.values()].some((p) => p.name === 'dee'), 'the changes');
        // (Iteration order is unspecified: compared by key.)
        const byId = (e: readonly [unknown, Person][]) => [...e].sort((x, y) => Number(x[1].id - y[1].id));
        expect(byId([...s0])).to.deep.equal(byId(was));
        expect(s0.get(bob.id)).to.equal(bob);
        const del = batches.flat().find((c) => c.op === 'delete')!;
        expect(del.oldRow).to.equal(bob);
        const latest = snapshots.at(-1)!;
        expect([...latest.values()].map((p) => p.name).sort()).to.deep.equal(['ada2', 'cy', 'dee']);
      } finally {
        subs.unsubscribe();
      }
    });

    it('a whole-table view and a filtered view of one table: an update reaches both, each with its own rows', async () => {
      const { client } = each;
      for (const [name, age] of [['ada', 30], ['kid', 10]] as const) await client.call('addPerson', { name, age });
      type Person = { id: bigint; name: string; age: number };
      const all: (readonly RowChange<Person>[])[] = [];
      const adults: (readonly RowChange<Person>[])[] = [];
      const latest: { all?: ReadonlyMap<unknown, Person>; adults?: ReadonlyMap<unknown, Person> } = {};
      const subs = new Subscription();
      subs.add(client.changes$(tables.person).subscribe((c) => all.push(c)));
      subs.add(client.changes$(tables.person, { where: (r) => r.age.gte(18) }).subscribe((c) => adults.push(c)));
      subs.add(client.table$(tables.person).subscribe((m) => (latest.all = m)));
      subs.add(client.table$(tables.person, { where: (r) => r.age.gte(18) }).subscribe((m) => (latest.adults = m)));
      try {
        await until(() => latest.all?.size === 2 && latest.adults?.size === 1, 'both views synced');
        expect(outerStatus(latest.all as SnapshotMap<unknown, unknown>).outer, 'the whole-table view reads the SDK cache').to.equal(true);
        const ada = [...latest.all!.values()].find((p) => p.name === 'ada')!;
        const kid = [...latest.all!.values()].find((p) => p.name === 'kid')!;
        all.length = adults.length = 0;
        await client.call('renamePerson', { id: ada.id, name: 'ada2' });
        await client.call('renamePerson', { id: kid.id, name: 'kid2' });
        await until(() => all.length === 2 && adults.length === 1, 'both renames');
        expect(all.map((b) => b.map((c) => `${c.op} ${c.oldRow?.name}>${c.newRow?.name}`))).to.deep.equal([['update ada>ada2'], ['update kid>kid2']]);
        expect(adults.map((b) => b.map((c) => `${c.op} ${c.oldRow?.name}>${c.newRow?.name}`))).to.deep.equal([['update ada>ada2']]);
        // The old row by value: the filtered query's rows came after the whole table's, and the SDK
        // stores the copy a second subscription sends of a row it holds (no callback), so the
        // object is no longer the one the whole-table view's last snapshot showed.
        expect(all[0][0].oldRow).to.deep.equal(ada);
        expect([...latest.adults!.values()].map((p) => p.name)).to.deep.equal(['ada2']);
        expect([...latest.all!.values()].map((p) => p.name).sort()).to.deep.equal(['ada2', 'kid2']);
      } finally {
        subs.unsubscribe();
      }
    });

    it('two transactions in one frame: each emission shows its own transaction and no later one', async () => {
      const { client } = each;
      const snapshots: ReadonlyMap<unknown, { id: bigint; name: string }>[] = [];
      const batches: (readonly RowChange<{ name: string }>[])[] = [];
      const subs = new Subscription();
      subs.add(client.table$(tables.person).subscribe((s) => snapshots.push(s)));
      subs.add(client.changes$(tables.person).subscribe((batch) => batches.push(batch)));
      try {
        await client.call('addPerson', { name: 'ada', age: 30 });
        await until(() => snapshots.at(-1)?.size === 1, 'ada');
        const id = [...snapshots.at(-1)!.values()][0].id;
        snapshots.length = batches.length = 0;
        const m0 = await firstValueFrom(client.metrics$);
        const framesBefore = m0.framesIn;
        // A call's own transaction comes back in its ReducerResult.
        const answers = (m: typeof m0) => (m.messagesIn.ReducerResult ?? 0) + (m.messagesIn.TransactionUpdate ?? 0);
        const txBefore = answers(m0);
        // Two calls sent together are answered in the same tick, which the server sends as one frame.
        const one = client.call('renamePerson', { id, name: 'one' });
        const two = client.call('renamePerson', { id, name: 'two' });
        await Promise.all([one, two]);
        await until(() => batches.length >= 2 && snapshots.length >= 2, 'two emissions');
        const m = await firstValueFrom(client.metrics$);
        const txs = answers(m) - txBefore;
        expect(txs, 'transactions').to.equal(2);
        expect(m.framesIn - framesBefore, 'frames (fewer than messages: batched)').to.be.lessThan(txs);
        // One emission per transaction; the first snapshot holds the first rename, not the second
        // (which the SDK had applied to its cache before stdb-rx emitted the first).
        expect(batches.map((b) => b.map((c) => c.newRow?.name))).to.deep.equal([['one'], ['two']]);
        expect(snapshots.map((s) => s.get(id)!.name)).to.deep.equal(['one', 'two']);
        expect(batches[1][0].oldRow).to.equal(snapshots[0].get(id));
      } finally {
        subs.unsubscribe();
      }
    });
  });
});
