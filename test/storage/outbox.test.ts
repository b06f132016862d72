import { expect } from 'chai';
import { firstValueFrom, filter } from 'rxjs';
import { Identity } from 'spacetimedb';
import { DuplicateMutationIdError, InvalidArgsError, OfflineRefusedError, UnknownReducerError } from '../../storage/errors.ts';
import type { OutboxEvent, OutboxState } from '../../storage/outbox.ts';
import { ALICE, BOB, FakeTime, freshIndexedDB, open, uniqueServer } from './helpers.ts';

/** Storage whose lease is held, so `claim` hands out entries. */
async function drainer(overrides: Parameters<typeof open>[0] = {}) {
  const storage = await open({ lease: 'none', ...overrides });
  await storage.outbox.setIdentity(ALICE);
  storage.outbox.setOnline(true);
  return storage;
}

describe('storage/Outbox', () => {
  describe('persistence', () => {
    it('a new Outbox on the same IndexedDB sees the entries queued before the reload', async () => {
      const idb = freshIndexedDB();
      const server = uniqueServer();
      const first = await open({ ...idb, server, lease: 'none' });
      await first.outbox.setIdentity(ALICE);
      const a = await first.outbox.enqueue('send_chat', { text: 'hello' });
      const b = await first.outbox.enqueue('move_node', { id: 7n, x: 1.5, y: -2 }, { priority: 'high' });
      await first.close();

      const second = await open({ ...idb, server, lease: 'none' });
      try {
        await second.outbox.setIdentity(ALICE);
        const entries = await second.outbox.entries();
        expect(entries.map(e => e.id)).to.deep.equal([a.entry.id, b.entry.id]);
        expect(second.outbox.decodeArgs(entries[1])).to.deep.equal({ mutationId: b.entry.id, id: 7n, x: 1.5, y: -2 });
        const batch = await second.outbox.nextBatch(10);
        expect(batch.map(e => e.id)).to.deep.equal([b.entry.id, a.entry.id]); // high priority first
      } finally {
        await second.close();
      }
    });
  });

  describe('validation at enqueue', () => {
    it('rejects bad args at once with a typed error naming the path, and stores nothing', async () => {
      const s = await drainer();
      try {
        const err = await s.outbox.enqueue('move_node', { id: 5, x: 1, y: 2 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(InvalidArgsError);
        expect((err as InvalidArgsError).path).to.equal('args.id');
        expect((err as InvalidArgsError).message).to.contain('move_node').and.contain('bigint u64');
        expect(() => s.outbox.prepare('move_node', { id: 5n, x: 'left', y: 2 })).to.throw(InvalidArgsError, /args\.x/);
        expect(() =>
          s.outbox.prepare('report_telemetry', { events: [{ kind: 'fps', value: 60, clientTime: 5n }] }),
        ).to.throw(InvalidArgsError, /args\.events\[0\]\.clientTime must be a Timestamp/);
        expect(() => s.outbox.prepare('end_match', { matchId: 1n, winner: 'me' })).to.throw(InvalidArgsError, /args\.winner must be an Identity/);
        expect(() => s.outbox.prepare('no_such_reducer', {})).to.throw(UnknownReducerError);
        expect(await s.outbox.entries()).to.deep.equal([]);
      } finally {
        await s.close();
      }
    });

    it('accepts options, identities and timestamps of the right types and fills in the mutation id', async () => {
      const s = await drainer();
      try {
        const winner = new Identity(BOB);
        const { entry } = await s.outbox.enqueue('end_match', { matchId: 3n, winner });
        const args = s.outbox.decodeArgs(entry);
        expect(args.mutationId).to.equal(entry.id);
        expect((args.winner as Identity).isEqual(winner)).to.equal(true);
        const none = await s.outbox.enqueue('end_match', { matchId: 3n, winner: undefined, mutationId: 'my-own-id' });
        expect(none.entry.id).to.equal('my-own-id');
        expect(s.outbox.decodeArgs(none.entry).winner).to.equal(undefined);
        expect(entry.receipts).to.equal(true);
        expect((await s.outbox.enqueue('prune_receipts', { olderThan: undefined, keepNewest: 5 })).entry.receipts).to.equal(false);
      } finally {
        await s.close();
      }
    });
  });

  describe('ordering and supersede', () => {
    it('drains by priority, then first in first out', async () => {
      const s = await drainer();
      try {
        const ids: Record<string, string> = {};
        for (const [name, priority] of [
          ['low1', 'low'],
          ['n1', 'normal'],
          ['high1', 'high'],
          ['n2', 'normal'],
          ['urgent', 9],
          ['high2', 'high'],
        ] as const) {
          ids[name] = (await s.outbox.enqueue('send_chat', { text: name }, { priority })).entry.id;
        }
        const order = (await s.outbox.nextBatch(10)).map(e => s.outbox.decodeArgs(e).text);
        expect(order).to.deep.equal(['urgent', 'high1', 'high2', 'n1', 'n2', 'low1']);
        expect((await s.outbox.nextBatch(2)).map(e => e.id)).to.deep.equal([ids.urgent, ids.high1]);
      } finally {
        await s.close();
      }
    });

    it('a newer queued call with the same supersede key replaces the older one, but not one already sent', async () => {
      const s = await drainer();
      try {
        const events: OutboxEvent[] = [];
        s.outbox.events$.subscribe(e => events.push(e));
        const a = await s.outbox.enqueue('move_node', { id: 1n, x: 0, y: 0 }, { supersedeKey: 'move:1' });
        const other = await s.outbox.enqueue('move_node', { id: 2n, x: 0, y: 0 }, { supersedeKey: 'move:2' });
        const b = await s.outbox.enqueue('move_node', { id: 1n, x: 5, y: 5 }, { supersedeKey: 'move:1' });
        expect(b.superseded.map(e => e.id)).to.deep.equal([a.entry.id]);
        expect(events).to.deep.equal([{ type: 'superseded', entry: a.entry, by: b.entry }]);

        const claimed = await s.outbox.claim(10);
        expect(claimed.map(e => e.id)).to.deep.equal([other.entry.id, b.entry.id]);
        // b is in flight: a newer move must not cancel it, only queue behind it.
        const c = await s.outbox.enqueue('move_node', { id: 1n, x: 9, y: 9 }, { supersedeKey: 'move:1' });
        expect(c.superseded).to.deep.equal([]);
        expect((await s.outbox.entries()).map(e => e.id)).to.deep.equal([other.entry.id, b.entry.id, c.entry.id]);
      } finally {
        await s.close();
      }
    });
  });

  describe('pipelined drain and exactly-once', () => {
    it('claims batches without handing out an entry twice, and confirms or rejects them', async () => {
      const s = await drainer();
      try {
        for (let i = 0; i < 5; i++) await s.outbox.enqueue('send_chat', { text: `m${i}` });
        const first = await s.outbox.claim(3);
        const second = await s.outbox.claim(3);
        expect(first).to.have.length(3);
        expect(second).to.have.length(2);
        expect(new Set([...first, ...second].map(e => e.id)).size).to.equal(5);
        expect(first.every(e => e.status === 'sent' && e.attempts === 1)).to.equal(true);
        expect(await s.outbox.claim(3)).to.deep.equal([]);

        await s.outbox.markConfirmed([first[0].id, first[1].id]);
        const rejected = await s.outbox.markRejected(first[2].id, new Error('match 3 is full'));
        expect(rejected?.status).to.equal('rejected');
        const state = await firstValueFrom(s.outbox.outbox$.pipe(filter(st => st.rejected.length === 1)));
        expect(state.rejected[0].error).to.deep.equal({ code: 'Error', message: 'match 3 is full' });
        expect(state.sent).to.equal(2);
        expect(await s.outbox.dismiss([first[2].id])).to.have.length(1);
        expect((await s.outbox.entries()).map(e => e.id)).to.deep.equal(second.map(e => e.id));
      } finally {
        await s.close();
      }
    });

    it('after a reconnect, entries lost in flight are confirmed by receipts or sent again', async () => {
      const s = await drainer();
      try {
        const a = (await s.outbox.enqueue('send_chat', { text: 'applied before the drop' })).entry;
        const b = (await s.outbox.enqueue('send_chat', { text: 'lost before the server' })).entry;
        const c = (await s.outbox.enqueue('prune_receipts', { olderThan: undefined, keepNewest: 1 })).entry;
        const d = (await s.outbox.enqueue('send_chat', { text: 'never sent' })).entry;
        expect((await s.outbox.claim(3)).map(e => e.id)).to.deep.equal([a.id, b.id, c.id]);

        // Connection drops; on reconnect the receipts subscription shows a's receipt.
        const { confirmed, requeued } = await s.outbox.recoverAfterReconnect([a.id, 'some-older-receipt']);
        expect(confirmed.map(e => [e.id, e.status])).to.deep.equal([[a.id, 'confirmed']]);
        expect(requeued.map(e => e.id)).to.deep.equal([b.id, c.id]); // c has no receipts: at-least-once, re-sent
        const again = await s.outbox.claim(10);
        expect(again.map(e => e.id)).to.deep.equal([b.id, c.id, d.id]);
        expect(again.map(e => e.attempts)).to.deep.equal([2, 2, 1]);
      } finally {
        await s.close();
      }
    });
  });

  describe('identity quarantine', () => {
    it('never returns entries of another identity for sending; they wait for discard or rehome', async () => {
      const s = await drainer();
      try {
        const mine = (await s.outbox.enqueue('send_chat', { text: 'from alice' })).entry;
        const sent = (await s.outbox.enqueue('send_chat', { text: 'alice, in flight' })).entry;
        await s.outbox.markSent([sent.id]);
        await s.signOut();
        expect(await s.outbox.nextBatch(10)).to.deep.equal([]);
        expect(await s.tokens.get()).to.equal(undefined);

        await s.outbox.setIdentity(new Identity(BOB));
        await s.outbox.requeueSent();
        const bobs = (await s.outbox.enqueue('send_chat', { text: 'from bob' })).entry;
        expect((await s.outbox.claim(10)).map(e => e.id)).to.deep.equal([bobs.id]);
        const quarantined = await s.outbox.quarantined();
        expect(quarantined.map(e => [e.id, e.identity, e.status])).to.deep.equal([
          [mine.id, ALICE, 'queued'],
          [sent.id, ALICE, 'queued'],
        ]);
        const state = await firstValueFrom(s.outbox.outbox$);
        expect(state.quarantined.map(e => e.id)).to.deep.equal([mine.id, sent.id]);
        expect(state.pending.map(e => e.id)).to.deep.equal([bobs.id]);

        await s.outbox.discard([sent.id]);
        await s.outbox.rehome([mine.id]);
        expect((await s.outbox.claim(10)).map(e => e.id)).to.deep.equal([mine.id]);
        expect(await s.outbox.quarantined()).to.deep.equal([]);
      } finally {
        await s.close();
      }
    });

    it('entries made before any identity was known are adopted by the first identity', async () => {
      const s = await open({ lease: 'none' });
      try {
        const early = (await s.outbox.enqueue('send_chat', { text: 'offline first start' })).entry;
        expect(early.identity).to.equal('');
        expect(await s.outbox.nextBatch(5)).to.deep.equal([]);
        const adopted = await s.outbox.setIdentity(ALICE);
        expect(adopted.map(e => e.id)).to.deep.equal([early.id]);
        expect((await s.outbox.nextBatch(5)).map(e => e.identity)).to.deep.equal([ALICE]);
      } finally {
        await s.close();
      }
    });
  });

  describe('offline policies', () => {
    it('online-only is refused at once while offline, queue is stored', async () => {
      const s = await open({ lease: 'none', reducers: { start_match: { offline: 'online-only' } } });
      try {
        await s.outbox.setIdentity(ALICE);
        s.outbox.setOnline(false);
        const err = await s.outbox.enqueue('start_match', { matchId: 1n }).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(OfflineRefusedError);
        expect((err as Error).message).to.match(/start_match is online-only/);
        await s.outbox.enqueue('join_match', { matchId: 1n });
        s.outbox.setOnline(true);
        await s.outbox.enqueue('start_match', { matchId: 1n });
        expect((await s.outbox.entries()).map(e => e.reducer)).to.deep.equal(['join_match', 'start_match']);
      } finally {
        await s.close();
      }
    });

    it('drop-if-stale entries expire instead of being sent once past their deadline', async () => {
      const time = new FakeTime();
      const s = await open({ time, lease: 'none', reducers: { report_telemetry: { offline: 'drop-if-stale', staleAfterMs: 5_000, priority: 'low' } } });
      try {
        await s.outbox.setIdentity(ALICE);
        const events: OutboxEvent[] = [];
        s.outbox.events$.subscribe(e => events.push(e));
        const old = (await s.outbox.enqueue('report_telemetry', { events: [] })).entry;
        expect(old.deadline).to.equal(time.now() + 5_000);
        time.advance(4_000);
        const fresh = (await s.outbox.enqueue('report_telemetry', { events: [] })).entry;
        const chat = (await s.outbox.enqueue('send_chat', { text: 'kept however old' })).entry;
        time.advance(2_000);
        const batch = await s.outbox.claim(10);
        expect(batch.map(e => e.id)).to.deep.equal([chat.id, fresh.id]);
        expect(events.map(e => [e.type, e.entry.id, e.entry.status])).to.deep.equal([['expired', old.id, 'expired']]);
      } finally {
        await s.close();
      }
    });

    it('durable: false encodes and checks the call but stores nothing', async () => {
      const s = await drainer();
      try {
        const { entry, stored } = await s.outbox.enqueue('move_node', { id: 1n, x: 3, y: 4 }, { durable: false });
        expect(stored).to.equal(false);
        expect(s.outbox.decodeArgs(entry)).to.include({ x: 3, y: 4 });
        expect(await s.outbox.entries()).to.deep.equal([]);
        await s.outbox.enqueue('move_node', { id: 1n, x: 'fast', y: 4 }, { durable: false }).then(
          () => expect.fail('bad args must be refused'),
          (e: unknown) => expect(e).to.be.instanceOf(InvalidArgsError),
        );
      } finally {
        await s.close();
      }
    });
  });

  describe('outbox$', () => {
    it('counts queued and sent entries for the UI, across two instances of one database', async () => {
      const idb = freshIndexedDB();
      const server = uniqueServer();
      const tabA = await open({ ...idb, server, lease: 'none' });
      const tabB = await open({ ...idb, server, lease: 'none' });
      try {
        await tabA.outbox.setIdentity(ALICE);
        await tabB.outbox.setIdentity(ALICE);
        const seen: OutboxState[] = [];
        const sub = tabA.outbox.outbox$.subscribe(st => seen.push(st));
        await tabB.outbox.enqueue('send_chat', { text: 'one' });
        await tabB.outbox.enqueue('send_chat', { text: 'two' });
        await tabA.outbox.enqueue('send_chat', { text: 'three' });
        const three = await firstValueFrom(tabA.outbox.outbox$.pipe(filter(st => st.queued === 3)));
        expect(three.pending.map(e => tabA.outbox.decodeArgs(e).text)).to.deep.equal(['one', 'two', 'three']);
        await tabA.outbox.claim(1);
        const after = await firstValueFrom(tabA.outbox.outbox$.pipe(filter(st => st.sent === 1)));
        expect(after.queued).to.equal(2);
        sub.unsubscribe();
        expect(seen.length).to.be.greaterThan(1);
      } finally {
        await tabA.close();
        await tabB.close();
      }
    });
  });
});

describe('storage/Outbox regressions', () => {
  it('a reused mutation id is refused as the caller\'s error and does not knock the storage into memory', async () => {
    const s = await open({ lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      await s.outbox.enqueue('send_chat', { text: 'first', mutationId: 'same' });
      const err = await s.outbox.enqueue('send_chat', { text: 'second', mutationId: 'same' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(DuplicateMutationIdError);
      expect(s.mode).to.equal('durable');
      expect((await s.outbox.entries()).map(e => s.outbox.decodeArgs(e).text)).to.deep.equal(['first']);
    } finally {
      await s.close();
    }
  });
});
