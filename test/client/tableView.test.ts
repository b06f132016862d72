import { expect } from 'chai';
import fc from 'fast-check';
import { TableView, type RowChange } from '../../streams/tableView.ts';

type Row = { id: bigint; hp: number };

function view(match: (r: Row) => boolean = () => true) {
  const v = new TableView<Row>({ keyOf: (r) => r.id, matches: match }, () => {});
  const snapshots: ReadonlyMap<unknown, Row>[] = [];
  const batches: (readonly RowChange<Row>[])[] = [];
  v.snapshots$.subscribe((s) => s && snapshots.push(s));
  v.changes$.subscribe((b) => batches.push(b));
  return { v, snapshots, batches };
}
const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: BigInt(i), hp: i }));

describe('TableView', () => {
  it('first sync: one snapshot sharing the row objects, one batch of inserts, nothing applied before the flush', () => {
    const { v, snapshots, batches } = view((r) => r.hp % 2 === 0);
    const rs = rows(1000);
    v.syncFrom(rs);
    expect(v.state.size).to.equal(0);
    expect(snapshots).to.have.length(0);
    v.flush();
    expect(snapshots).to.have.length(1);
    expect(snapshots[0].size).to.equal(500);
    expect(snapshots[0].get(10n)).to.equal(rs[10]);
    expect(snapshots[0].has(11n)).to.equal(false);
    expect(batches).to.have.length(1);
    expect(batches[0].every((c) => c.op === 'insert' && c.oldRow === undefined && c.newRow === rs[Number(c.key)])).to.equal(true);
    expect(batches[0]).to.have.length(500);
  });

  it('first sync then row events before the flush: still one batch, coalesced per key', () => {
    const { v, snapshots, batches } = view();
    const rs = rows(10);
    v.syncFrom(rs);
    const hurt = { id: 3n, hp: -3 };
    v.update(rs[3], hurt);
    v.delete(rs[4]);
    v.insert({ id: 20n, hp: 20 });
    v.flush();
    expect(snapshots).to.have.length(1);
    expect(snapshots[0].size).to.equal(10);
    expect(snapshots[0].get(3n)).to.equal(hurt);
    expect(batches).to.have.length(1);
    const byKey = new Map(batches[0].map((c) => [c.key, c]));
    expect(batches[0]).to.have.length(10);
    expect(byKey.get(3n)).to.deep.equal({ op: 'insert', key: 3n, oldRow: undefined, newRow: hurt });
    expect(byKey.has(4n)).to.equal(false);
    expect(byKey.get(20n)?.op).to.equal('insert');
  });

  it('first sync with two rows of one key keeps the last, as the general path does', () => {
    const { v, snapshots, batches } = view();
    const a = { id: 1n, hp: 1 };
    const b = { id: 1n, hp: 2 };
    v.syncFrom([a, b]);
    v.flush();
    expect([...snapshots[0]]).to.deep.equal([[1n, b]]);
    expect(batches[0]).to.deep.equal([{ op: 'insert', key: 1n, oldRow: undefined, newRow: b }]);
  });

  it('updates: one change per key with the row before the transaction; a row changed back emits nothing', () => {
    const { v, snapshots, batches } = view((r) => r.hp >= 0);
    const rs = rows(5);
    v.syncFrom(rs);
    v.flush();
    const mid = { id: 1n, hp: 100 };
    const last = { id: 1n, hp: 101 };
    v.update(rs[1], mid);
    v.update(mid, last);
    const tmp = { id: 2n, hp: 7 };
    v.update(rs[2], tmp);
    v.update(tmp, rs[2]);
    v.update(rs[3], { id: 3n, hp: -1 }); // leaves the query
    v.flush();
    expect(snapshots).to.have.length(2);
    expect(snapshots[0].get(1n)).to.equal(rs[1]);
    expect(snapshots[1].get(1n)).to.equal(last);
    expect(snapshots[1].has(3n)).to.equal(false);
    expect(batches[1]).to.deep.equal([
      { op: 'update', key: 1n, oldRow: rs[1], newRow: last },
      { op: 'delete', key: 3n, oldRow: rs[3], newRow: undefined },
    ]);
    v.update(rs[0], rs[0]);
    v.flush();
    expect(snapshots).to.have.length(2);
  });
});

describe('TableView: row events of primary-keyed tables and re-syncs', () => {
  function pkView(match: (r: Row) => boolean = () => true) {
    const same = (a: Row, b: Row) => a.id === b.id && (a.hp === b.hp || (a.hp !== a.hp && b.hp !== b.hp));
    const v = new TableView<Row>({ keyOf: (r) => r.id, matches: match, primaryKeyed: true, same }, () => {});
    const snapshots: ReadonlyMap<unknown, Row>[] = [];
    const batches: (readonly RowChange<Row>[])[] = [];
    v.snapshots$.subscribe((s) => s && snapshots.push(s));
    v.changes$.subscribe((b) => batches.push(b));
    return { v, snapshots, batches };
  }

  it('event(): one get-and-set per row at the flush; inserts, updates, deletes and rows leaving the filter as changes', () => {
    const { v, snapshots, batches } = pkView((r) => r.hp >= 0);
    const rs = rows(10);
    v.syncFrom(rs);
    v.flush();
    const before = snapshots[0];
    const hurt = { id: 2n, hp: 50 };
    v.event(2n, hurt); // update
    v.event(3n, undefined); // delete
    v.event(4n, { id: 4n, hp: -1 }); // leaves the filter: a delete
    v.event(20n, { id: 20n, hp: 20 }); // insert
    v.event(21n, { id: 21n, hp: -5 }); // never matched: nothing
    v.event(5n, rs[5]); // the same object: nothing
    expect(v.state).to.equal(before); // nothing applied before the flush
    v.flush();
    expect(batches).to.have.length(2);
    expect(batches[1].map((c) => [c.op, c.key])).to.deep.equal([['update', 2n], ['delete', 3n], ['delete', 4n], ['insert', 20n]]);
    expect(batches[1][0]).to.include({ oldRow: rs[2], newRow: hurt });
    expect(batches[1][1]).to.include({ oldRow: rs[3], newRow: undefined });
    expect(snapshots[1].size).to.equal(9);
    expect(before.size).to.equal(10); // the earlier snapshot is untouched
    expect(before.get(2n)).to.equal(rs[2]);
  });

  it('event() after a general-path change in the same transaction coalesces per key', () => {
    const { v, batches } = pkView();
    const rs = rows(4);
    v.syncFrom(rs);
    v.flush();
    const a = { id: 1n, hp: 100 };
    const b = { id: 1n, hp: 200 };
    v.update(rs[1], a);
    v.event(1n, b);
    v.flush();
    expect(batches[1]).to.have.length(1);
    expect(batches[1][0]).to.include({ op: 'update', oldRow: rs[1], newRow: b });
  });

  it('re-sync: only changed, new and vanished rows are changes; equal rows (NaN included) are swapped in silently', () => {
    const { v, snapshots, batches } = pkView();
    const rs = [...rows(6), { id: 6n, hp: NaN }];
    v.syncFrom(rs);
    v.flush();
    // The new connection's objects: equal copies, one changed, one gone (5), one new (9).
    const next = rs.filter((r) => r.id !== 5n).map((r) => (r.id === 2n ? { id: 2n, hp: -2 } : { ...r }));
    next.push({ id: 9n, hp: 9 });
    v.syncFrom(next);
    v.flush();
    expect(batches).to.have.length(2);
    expect(batches[1].map((c) => [c.op, c.key]).sort()).to.deep.equal([['delete', 5n], ['insert', 9n], ['update', 2n]].sort());
    expect(snapshots).to.have.length(2);
    // The snapshot shares the new connection's row objects, unchanged ones included.
    expect(snapshots[1].get(0n)).to.equal(next[0]);
    expect(snapshots[1].get(6n)).to.equal(next.find((r) => r.id === 6n));
    // A re-sync that changes nothing emits nothing.
    v.syncFrom(next.map((r) => ({ ...r })));
    v.flush();
    expect(batches).to.have.length(2);
    expect(snapshots).to.have.length(2);
  });

  it('re-sync after the server moved written rows to the end, deleted and inserted some: exactly the changed rows, whatever the order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.array(fc.tuple(fc.constantFrom('touch', 'touch-same', 'delete', 'move'), fc.nat({ max: 59 })), { maxLength: 25 }),
        fc.array(fc.nat({ max: 90 }), { maxLength: 5 }),
        (size, edits, inserted) => {
          const { v, snapshots, batches } = pkView();
          const start = rows(size);
          v.syncFrom(start);
          v.flush();
          const seen = batches.length;
          const first = snapshots[0];
          // The server's order after the outage: written rows move to the end (as a storage map's delete + insert does).
          let order = start.map((r) => ({ ...r }));
          const want = new Map(start.map((r) => [r.id, r.hp]));
          for (const [op, at] of edits) {
            const i = order.findIndex((r) => r.id === BigInt(at));
            if (i < 0) continue;
            const [r] = order.splice(i, 1);
            if (op === 'delete') {
              want.delete(r.id);
              continue;
            }
            const next = op === 'touch' ? { id: r.id, hp: r.hp + 1000 } : { ...r };
            if (op === 'touch') want.set(r.id, next.hp);
            order.push(next);
          }
          for (const k of inserted) {
            const id = BigInt(100 + k);
            if (want.has(id)) continue;
            order.push({ id, hp: k });
            want.set(id, k);
          }
          if (order.length > 0 && inserted.length % 2 === 1) order = [order[order.length - 1], ...order.slice(0, -1)];
          v.syncFrom(order);
          v.flush();
          const before = new Map(start.map((r) => [r.id, r.hp]));
          const expectedOps = [...new Set([...before.keys(), ...want.keys()])]
            .filter((k) => before.get(k) !== want.get(k))
            .map((k) => `${!before.has(k) ? 'insert' : !want.has(k) ? 'delete' : 'update'}:${k}`)
            .sort();
          expect(batches.length - seen).to.be.at.most(1);
          const got = batches.slice(seen).flat().map((c) => `${c.op}:${c.key}`).sort();
          expect(got).to.deep.equal(expectedOps);
          const latest = snapshots[snapshots.length - 1];
          expect(new Map([...latest].map(([k, r]) => [k, r.hp]))).to.deep.equal(want);
          expect(new Map([...first].map(([k, r]) => [k, r.hp]))).to.deep.equal(before);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('re-sync with rows in another order and a filter: the same exact diff, and the earlier snapshot keeps its rows', () => {
    const { v, snapshots, batches } = pkView((r) => r.hp % 3 !== 0);
    const rs = rows(30);
    v.syncFrom(rs); // kept as deferred arrays: nothing reads it before the re-sync
    v.flush();
    const first = snapshots[0];
    // Reversed, rows 10..14 changed (some leave the filter), row 7 gone, row 40 new.
    const next = rs
      .filter((r) => r.id !== 7n)
      .map((r) => (r.id >= 10n && r.id < 15n ? { id: r.id, hp: r.hp + 1 } : { ...r }))
      .reverse();
    next.push({ id: 40n, hp: 40 });
    v.syncFrom(next);
    v.flush();
    const want = new Map(next.filter((r) => r.hp % 3 !== 0).map((r) => [r.id, r]));
    expect(new Map(snapshots[1])).to.deep.equal(want);
    const was = new Map(rs.filter((r) => r.hp % 3 !== 0).map((r) => [r.id, r]));
    const expectedChanges = [...new Set([...was.keys(), ...want.keys()])]
      .filter((k) => was.get(k)?.hp !== want.get(k)?.hp)
      .map((k) => `${!was.has(k) ? 'insert' : !want.has(k) ? 'delete' : 'update'}:${k}`)
      .sort();
    expect(batches[1].map((c) => `${c.op}:${c.key}`).sort()).to.deep.equal(expectedChanges);
    expect(new Map(first)).to.deep.equal(was);
  });
});
