import { expect } from 'chai';
import { Identity, Timestamp } from 'spacetimedb';
import { ALICE, BOB, FakeTime, freshIndexedDB, open, uniqueServer } from './helpers.ts';

const node = (id: bigint, x: number, owner = ALICE) => ({
  id,
  owner: new Identity(owner),
  parent: 0n,
  x,
  y: -x,
  data: '{"hp":3}',
  version: 1,
  updatedAt: new Timestamp(1_700_000_000_123_456n),
});

const match = {
  id: 1n,
  name: 'arena one',
  host: new Identity(BOB),
  state: { tag: 'Battle' },
  maxPlayers: 8,
  createdAt: new Timestamp(1_699_999_999_000_001n),
  startedAt: new Timestamp(1_700_000_000_000_000n),
  endedAt: undefined,
  winner: undefined,
};

describe('storage/SnapshotCache', () => {
  it('offline round trip: a cold start on the same IndexedDB loads the rows with bigint, Identity and Timestamp intact', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const time = new FakeTime();
    const first = await open({ ...idb, server, time });
    const big = (1n << 64n) - 1n;
    first.snapshots.replace('game_node', [node(1n, 1.25), node(big, 2.5, BOB)]);
    first.snapshots.write('arena_match', { inserts: [match] });
    const writtenAt = time.now();
    await first.close(); // flushes

    const second = await open({ ...idb, server, time: new FakeTime(writtenAt + 60_000) });
    try {
      const nodes = await second.snapshots.load<ReturnType<typeof node>>('game_node');
      expect(nodes.asOf).to.equal(writtenAt);
      const byId = new Map(nodes.rows.map(r => [r.id, r]));
      expect([...byId.keys()].sort()).to.deep.equal([1n, big]);
      const n = byId.get(big)!;
      expect(n.owner).to.be.instanceOf(Identity);
      expect(n.owner.isEqual(new Identity(BOB))).to.equal(true);
      expect(n.updatedAt).to.be.instanceOf(Timestamp);
      expect(n.updatedAt.microsSinceUnixEpoch).to.equal(1_700_000_000_123_456n);
      expect(n.x).to.equal(2.5);

      const [m] = (await second.snapshots.load<typeof match>('arena_match')).rows;
      expect(m.state.tag).to.equal('Battle');
      expect(m.startedAt?.microsSinceUnixEpoch).to.equal(1_700_000_000_000_000n);
      expect(m.endedAt).to.equal(undefined);
      expect(m.host.isEqual(new Identity(BOB))).to.equal(true);
      expect(await second.snapshots.load('chat_message')).to.deep.equal({ rows: [], asOf: null });
    } finally {
      await second.close();
    }
  });

  it('coalesces changes per row and writes them once, after the throttle delay, in one flush', async () => {
    const time = new FakeTime();
    const s = await open({ time, snapshotThrottleMs: 500 });
    try {
      const applied: number[] = [];
      const store = (s.snapshots as unknown as { store: { rowsApply: (w: unknown[]) => Promise<void> } }).store;
      const real = store.rowsApply.bind(store);
      store.rowsApply = async writes => {
        applied.push(writes.length);
        return real(writes);
      };

      for (let x = 0; x < 100; x++) s.snapshots.write('game_node', { deletes: x ? [node(1n, x - 1)] : [], inserts: [node(1n, x)] });
      s.snapshots.write('game_node', { inserts: [node(2n, 0)] });
      s.snapshots.write('game_node', { deletes: [node(2n, 0)] });
      s.snapshots.write('chat_message', { inserts: [{ id: 1n, sender: new Identity(ALICE), text: 'hi', sentAt: new Timestamp(1n) }] });
      expect(s.snapshots.pendingChanges).to.equal(3);
      expect(time.pending).to.equal(1); // one timer armed, however many writes

      time.advance(499);
      expect(applied).to.deep.equal([]);
      time.advance(1);
      await s.snapshots.flush(); // wait for the timer's flush (nothing new pending)
      expect(applied).to.deep.equal([2]); // two tables, one rowsApply (one transaction)

      const { rows } = await s.snapshots.load<ReturnType<typeof node>>('game_node');
      expect(rows.map(r => [r.id, r.x])).to.deep.equal([[1n, 99]]);
    } finally {
      await s.close();
    }
  });

  it('a slow disk: one write in flight, everything that arrives meanwhile coalesces into the next one', async () => {
    const s = await open();
    let release!: () => void;
    const gate = new Promise<void>(r => (release = r));
    try {
      const store = (s.snapshots as unknown as { store: { rowsApply: (w: { put: unknown[]; delete: unknown[] }[]) => Promise<void> } }).store;
      const real = store.rowsApply.bind(store);
      const applied: number[] = [];
      store.rowsApply = async writes => {
        applied.push(writes.reduce((n, w) => n + w.put.length + w.delete.length, 0));
        if (applied.length === 1) await gate; // the first write hangs until released
        return real(writes as never);
      };

      s.snapshots.write('game_node', { inserts: [node(1n, 0)] });
      const first = s.snapshots.flush();
      const later: Promise<void>[] = [];
      // 200 flushes while the first write hangs: each moves row 2, and row 1 moves once.
      for (let x = 1; x <= 200; x++) {
        s.snapshots.write('game_node', { deletes: x > 1 ? [node(2n, x - 1)] : [], inserts: [node(2n, x)] });
        if (x === 100) s.snapshots.write('game_node', { deletes: [node(1n, 0)], inserts: [node(1n, 1)] });
        later.push(s.snapshots.flush());
      }
      expect(s.snapshots.pendingChanges).to.equal(2); // coalesced per row, however many flushes
      expect(new Set(later).size).to.equal(1); // all wait for the same next write

      release();
      await Promise.all([first, ...later]);
      expect(applied).to.deep.equal([1, 2]); // the hung write, then one write with both rows' last values
      const { rows } = await s.snapshots.load<ReturnType<typeof node>>('game_node');
      expect(rows.map(r => [r.id, r.x])).to.deep.equal([
        [1n, 1],
        [2n, 200],
      ]);
    } finally {
      release();
      await s.close();
    }
  });

  it('replace() drops rows that are not in the new full set', async () => {
    const s = await open();
    try {
      s.snapshots.replace('game_node', [node(1n, 1), node(2n, 2)]);
      await s.snapshots.flush();
      s.snapshots.replace('game_node', [node(3n, 3)]);
      s.snapshots.write('game_node', { inserts: [node(4n, 4)] });
      await s.snapshots.flush();
      const { rows } = await s.snapshots.load<ReturnType<typeof node>>('game_node');
      expect(rows.map(r => r.id).sort()).to.deep.equal([3n, 4n]);
      expect((await s.snapshots.tables()).map(t => [t.table, t.count])).to.deep.equal([['game_node', 2]]);
    } finally {
      await s.close();
    }
  });

  it('a row that does not fit its table is reported, not thrown, and the rest are kept', async () => {
    const s = await open();
    try {
      const errors: string[] = [];
      s.errors$.subscribe(e => errors.push(e.message));
      s.snapshots.write('game_node', { inserts: [node(1n, 1), { ...node(2n, 2), x: undefined as unknown as number, owner: 'nope' as unknown as Identity }] });
      s.snapshots.write('no_such_table', { inserts: [{}] });
      await s.snapshots.flush();
      expect((await s.snapshots.load('game_node')).rows).to.have.length(1);
      expect(errors).to.have.length(2);
      expect(errors[0]).to.contain('no_such_table'); // refused at write time
      expect(errors[1]).to.contain('snapshots.encode(game_node)'); // found at flush
      expect(s.mode).to.equal('durable');
    } finally {
      await s.close();
    }
  });

  it('token storage: get/set/clear, and signOut() clears it', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const a = await open({ ...idb, server });
    await a.tokens.set('jwt-1', new Identity(ALICE));
    await a.close();
    const b = await open({ ...idb, server });
    try {
      expect(await b.tokens.get()).to.equal('jwt-1');
      expect((await b.tokens.session())?.identity).to.equal(ALICE);
      await b.signOut();
      expect(await b.tokens.get()).to.equal(undefined);
      expect(b.outbox.identity).to.equal(null);
    } finally {
      await b.close();
    }
  });
});
