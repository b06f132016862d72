import { expect } from 'chai';
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
