/**
 * Sent marks (schema v5): in IndexedDB, `markSent` writes one mark per
 * batch instead of rewriting every entry. Every read must still show a
 * marked entry as sent — in this tab and in another one on the same
 * database — and every later write of it must carry what the mark said.
 */
import { expect } from 'chai';
import type { Storage } from '../../storage/openStorage.ts';
import { ALICE, BOB, FakeTime, freshIndexedDB, open, uniqueServer } from './helpers.ts';

describe('storage/sent marks (IndexedDB)', () => {
  let time: FakeTime;
  let tabA: Storage;
  let tabB: Storage;
  beforeEach(async () => {
    time = new FakeTime();
    const shared = { time, lease: 'none' as const, server: uniqueServer(), ...freshIndexedDB() };
    tabA = await open(shared);
    tabB = await open(shared);
    await tabA.outbox.setIdentity(ALICE);
    await tabB.outbox.setIdentity(ALICE);
  });
  afterEach(async () => {
    await tabA.close();
    await tabB.close();
  });

  const enqueue = async (s: Storage, n: number, prefix: string) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await s.outbox.enqueue('send_chat', { text: `${prefix}${i}` })).entry.id);
    return ids;
  };

  it('a batch is marked with one write per mark, not one rewrite per entry, and reads as sent in both tabs', async () => {
    const ids = await enqueue(tabA, 100, 'm');
    const sentAt = time.now() + 5;
    time.advance(5);
    const claimed = await tabA.outbox.claim(1000);
    expect(claimed.map(e => e.id)).to.deep.equal(ids);
    expect(claimed.every(e => e.status === 'sent' && e.attempts === 1 && e.sentAt === sentAt && e.updatedAt === sentAt)).to.equal(true);
    // Stored: still `queued` records, plus marks listing every id once.
    const db = tabA.db!;
    expect(await db.outbox.where('[status+identity]').equals(['queued', ALICE]).count()).to.equal(100);
    const marks = await db.sends.toArray();
    expect(marks.length).to.be.within(1, 10);
    expect(marks.flatMap(m => m.ids).sort()).to.deep.equal([...ids].sort());
    // The other tab sees them sent: nothing to claim, all pending as sent.
    expect(await tabB.outbox.nextBatch(1000)).to.deep.equal([]);
    expect(await tabB.outbox.claim(1000)).to.deep.equal([]);
    const all = await tabB.outbox.entries();
    expect(all.map(e => [e.status, e.attempts])).to.deep.equal(ids.map(() => ['sent', 1]));
    expect(tabB.outbox.summarize(all)).to.include({ queued: 0, sent: 100 });
    // A new entry is queued and claimable alongside them.
    const [fresh] = await enqueue(tabB, 1, 'fresh');
    expect((await tabB.outbox.nextBatch(1000)).map(e => e.id)).to.deep.equal([fresh]);
  });

  it('requeueSent, markRejected and rehome carry the mark into the entry (attempts 1) and drop it from the marks', async () => {
    const ids = await enqueue(tabA, 40, 'r');
    await tabA.outbox.claim(1000);
    await tabB.outbox.markRejected(ids[0], new Error('no'));
    await tabB.outbox.rehome([ids[1]], BOB);
    const requeued = await tabB.outbox.requeueSent(ids.slice(2, 10));
    expect(requeued.map(e => [e.id, e.status, e.attempts])).to.deep.equal(ids.slice(2, 10).map(id => [id, 'queued', 1]));
    const byId = new Map((await tabA.outbox.entries()).map(e => [e.id, e]));
    expect(byId.get(ids[0])).to.include({ status: 'rejected', attempts: 1 });
    expect(byId.get(ids[1])).to.include({ status: 'sent', attempts: 1, identity: BOB });
    expect(ids.slice(2, 10).map(id => [byId.get(id)!.status, byId.get(id)!.attempts])).to.deep.equal(ids.slice(2, 10).map(() => ['queued', 1]));
    expect(ids.slice(10).every(id => byId.get(id)!.status === 'sent')).to.equal(true);
    const marked = new Set((await tabA.db!.sends.toArray()).flatMap(m => m.ids));
    expect(ids.slice(0, 10).some(id => marked.has(id)), 'rewritten entries left their marks').to.equal(false);
    expect(ids.slice(10).every(id => marked.has(id))).to.equal(true);
    // Claimed again: sent a second time.
    expect((await tabA.outbox.claim(1000)).map(e => [e.id, e.attempts])).to.deep.equal(ids.slice(2, 10).map(id => [id, 2]));
    // Everything requeued after a reconnect: every identity's, each with its count.
    const back = await tabA.outbox.requeueSent();
    expect(back.map(e => [e.id, e.attempts])).to.deep.equal([[ids[1], 1], ...ids.slice(2, 10).map(id => [id, 2]), ...ids.slice(10).map(id => [id, 1])]);
    expect(await tabA.db!.sends.count()).to.equal(0);
  });

  it('confirmed entries leave their marks; a mutation id stored again after it left is queued, not sent', async () => {
    const ids = await enqueue(tabA, 70, 'c');
    await tabA.outbox.claim(1000);
    // One at a time in one tab, a batch in the other: each tab's copy of the marks follows the other's writes.
    await tabA.outbox.markConfirmed([ids[0]]);
    await tabB.outbox.markConfirmed(ids.slice(1, 50));
    await tabA.outbox.markConfirmed([ids[50]]);
    expect((await tabA.outbox.entries()).map(e => [e.id, e.status])).to.deep.equal(ids.slice(51).map(id => [id, 'sent']));
    expect((await tabB.outbox.entries()).map(e => e.id)).to.deep.equal(ids.slice(51));
    expect((await tabA.db!.sends.toArray()).flatMap(m => m.ids).sort()).to.deep.equal(ids.slice(51).sort());
    expect((await tabB.outbox.outcomes(ids.slice(0, 51))).map(o => o.outcome)).to.deep.equal(ids.slice(0, 51).map(() => 'confirmed'));
    const again = (await tabB.outbox.enqueue('send_chat', { text: 'again' }, { id: ids[3] })).entry;
    expect(again).to.include({ id: ids[3], status: 'queued', attempts: 0 });
    expect((await tabA.outbox.get([ids[3]]))[0]).to.include({ status: 'queued', attempts: 0 });
    expect((await tabA.outbox.claim(1000)).map(e => e.id)).to.deep.equal([ids[3]]);
    await tabA.outbox.markConfirmed([...ids.slice(51), ids[3]]);
    expect(await tabA.outbox.entries()).to.deep.equal([]);
    expect(await tabA.db!.sends.count()).to.equal(0);
  });

  it('a sent (marked) entry is neither superseded nor expired, and its discard records no outcome', async () => {
    const old = (await tabA.outbox.enqueue('send_chat', { text: 'old' }, { supersedeKey: 'k', deadline: time.now() + 1000 })).entry;
    await tabA.outbox.claim(10);
    const { superseded } = await tabB.outbox.enqueue('send_chat', { text: 'new' }, { supersedeKey: 'k' });
    expect(superseded).to.deep.equal([]);
    time.advance(2000);
    expect(await tabB.outbox.expire()).to.deep.equal([]);
    expect((await tabB.outbox.discard([old.id])).map(e => [e.id, e.status])).to.deep.equal([[old.id, 'sent']]);
    expect(await tabB.outbox.outcomes([old.id])).to.deep.equal([]);
    expect(await tabA.db!.sends.count()).to.equal(0);
  });
});
