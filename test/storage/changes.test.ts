/**
 * The cheap side of the outbox's change feed: `changes$` signals every
 * committed change (this tab's and another's) without reading anything, and
 * the in-memory store inserts without copying the queue.
 */
import { expect } from 'chai';
import { MemoryStore } from '../../storage/store.ts';
import type { OutboxRecord } from '../../storage/db.ts';
import { until } from '../helpers/until.ts';
import { ALICE, freshIndexedDB, open, uniqueServer } from './helpers.ts';

// Dexie fires its change event for every handle in this process at once,
// synchronously, when a write transaction commits. So once one handle has
// heard a write, every other handle has been told about that same write:
// that moment, not a pause, is when "the others did not count it" can be
// checked.

describe('storage: outbox change signal and in-memory insert cost', () => {
  it('changes$ fires after each committed write, also for a second handle on the same database (another tab)', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const a = await open({ ...idb, server, lease: 'none' });
    const b = await open({ ...idb, server, lease: 'none' });
    const c = await open({ lease: 'none' }); // another database: not a change of ours
    try {
      let seenA = 0;
      let seenB = 0;
      let seenC = 0;
      const subs = [
        a.outbox.changes$.subscribe(() => seenA++),
        b.outbox.changes$.subscribe(() => seenB++),
        c.outbox.changes$.subscribe(() => seenC++),
      ];
      expect([seenA, seenB, seenC], 'nothing on subscribe').to.deep.equal([0, 0, 0]);
      // A write to another database: c hears it, a and b (told in the same
      // dispatch) must not count it, and have still heard nothing at all.
      await c.outbox.enqueue('send_chat', { text: 'elsewhere' });
      await until(() => seenC > 0, 'the other database to hear its own write');
      expect([seenA, seenB], 'not a change of ours, and nothing since subscribing').to.deep.equal([0, 0]);
      await a.outbox.setIdentity(ALICE);
      const { entry } = await a.outbox.enqueue('send_chat', { text: 'hi' });
      await until(() => seenA > 0, 'the writing handle to hear its change');
      await until(() => seenB > 0, 'the other handle to hear it too');
      const [beforeA, beforeB, beforeC] = [seenA, seenB, seenC];
      await c.outbox.enqueue('send_chat', { text: 'elsewhere again' });
      await until(() => seenC > beforeC, 'the other database to hear its second write');
      expect([seenA, seenB]).to.deep.equal([beforeA, beforeB]);
      await b.outbox.markConfirmed([entry.id]);
      await until(() => seenA > beforeA, "the first handle to hear the second's write");
      for (const s of subs) s.unsubscribe();
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
  });

  it('changes$ of the in-memory storage fires per change', async () => {
    const s = await open({ memory: true, lease: 'none' });
    try {
      let seen = 0;
      const sub = s.outbox.changes$.subscribe(() => seen++);
      await s.outbox.setIdentity(ALICE);
      await s.outbox.enqueue('send_chat', { text: 'a' });
      await s.outbox.enqueue('send_chat', { text: 'b' });
      expect(seen).to.equal(2);
      sub.unsubscribe();
    } finally {
      await s.close();
    }
  });

  it('MemoryStore: an insert copies only the new entry, not the queue; supersede, order and queries still hold', async () => {
    const store = new MemoryStore();
    const entry = (id: string, extra: Partial<OutboxRecord> = {}): Omit<OutboxRecord, 'seq'> => ({
      id,
      reducer: 'send_chat',
      args: new Uint8Array([1, 2, 3]),
      priority: 1,
      supersedeKey: '',
      deadline: null,
      identity: ALICE,
      createdAt: 0,
      updatedAt: 0,
      sentAt: null,
      attempts: 0,
      status: 'queued',
      receipts: false,
      schema: 'x',
      error: null,
      quarantine: null,
      ...extra,
    });
    for (let i = 0; i < 500; i++) await store.outboxInsert(entry(`e${i}`));
    const original = globalThis.structuredClone;
    let clones = 0;
    globalThis.structuredClone = ((v: unknown, o?: StructuredSerializeOptions) => {
      clones++;
      return original(v, o);
    }) as typeof structuredClone;
    try {
      await store.outboxInsert(entry('k1', { supersedeKey: 'k' }));
      await store.outboxInsert(entry('e500'));
      const { superseded } = await store.outboxInsert(entry('k2', { supersedeKey: 'k' }));
      expect(clones, 'copies for three inserts among 500 entries').to.be.at.most(6);
      expect(superseded.map((e) => e.id)).to.deep.equal(['k1']);
    } finally {
      globalThis.structuredClone = original;
    }
    const all = await store.outboxList();
    expect(all).to.have.length(502);
    expect(all.map((e) => e.seq)).to.deep.equal([...all.map((e) => e.seq)].sort((a, b) => a - b));
    expect(all.at(-1)!.id).to.equal('k2');
    // Queries by status use the status index and see updates.
    await store.outboxModify({ ids: ['e3', 'e7'] }, (e) => ({ ...e, status: 'sent' }));
    expect((await store.outboxList({ identity: ALICE, status: 'sent' })).map((e) => e.id)).to.deep.equal(['e3', 'e7']);
    expect(await store.outboxList({ identity: ALICE, status: 'queued' })).to.have.length(500);
    expect((await store.outboxList({ status: 'sent' })).map((e) => e.id)).to.deep.equal(['e3', 'e7']);
    // What a caller gets is a copy: mutating it does not touch the store.
    all[0].status = 'rejected';
    expect((await store.outboxList({ ids: [all[0].id] }))[0].status).to.equal('queued');
    // outbox$ builds the list for its subscribers only, and re-emits on change.
    const seen: number[] = [];
    const sub = store.outbox$().subscribe((list) => seen.push(list.length));
    await store.outboxModify({ ids: ['e3'] }, () => null);
    sub.unsubscribe();
    expect(seen).to.deep.equal([502, 501]);
  });

  it('inserts requested together share one transaction and keep the per-call results: order, supersede, duplicate ids', async () => {
    const s = await open({ lease: 'none' });
    const probe = await open({ lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      const first = await s.outbox.enqueue('send_chat', { text: 'stored' }, { supersedeKey: 'k' });
      let signals = 0;
      const sub = s.outbox.changes$.subscribe(() => signals++);
      let probeSignals = 0;
      const probeSub = probe.outbox.changes$.subscribe(() => probeSignals++);
      const results = await Promise.allSettled([
        s.outbox.enqueue('send_chat', { text: 'a' }, { supersedeKey: 'k', id: 'a' }),
        s.outbox.enqueue('send_chat', { text: 'b' }, { id: 'b' }),
        s.outbox.enqueue('send_chat', { text: 'c' }, { supersedeKey: 'k', id: 'c' }),
        s.outbox.enqueue('send_chat', { text: 'dup' }, { id: 'b' }),
        s.outbox.enqueue('send_chat', { text: 'd' }, { supersedeKey: 'other', id: 'd' }),
      ]);
      // Every commit of the five inserts has been signalled once a later
      // write (to another database) has been.
      await probe.outbox.enqueue('send_chat', { text: 'probe' });
      await until(() => probeSignals > 0, 'the probe write to be signalled');
      sub.unsubscribe();
      probeSub.unsubscribe();
      const [a, b, c, dup, d] = results;
      expect(a.status === 'fulfilled' && a.value.superseded.map((e) => e.id)).to.deep.equal([first.entry.id]);
      expect(c.status === 'fulfilled' && c.value.superseded.map((e) => e.id)).to.deep.equal(['a']);
      expect(b.status === 'fulfilled' && d.status === 'fulfilled').to.equal(true);
      expect(dup.status === 'rejected' && dup.reason.name).to.equal('DuplicateMutationIdError');
      const all = await s.outbox.entries();
      expect(all.map((e) => e.id)).to.deep.equal(['b', 'c', 'd']);
      expect(all.map((e) => e.seq)).to.deep.equal([...all.map((e) => e.seq)].sort((x, y) => x - y));
      expect(signals, 'one or two transactions, not five').to.be.at.most(2);
      const next = await s.outbox.enqueue('send_chat', { text: 'later' });
      expect(next.entry.seq).to.be.greaterThan(all.at(-1)!.seq);
    } finally {
      await s.close();
      await probe.close();
    }
  });
});
