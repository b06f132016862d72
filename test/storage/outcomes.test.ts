/**
 * Outcome records (issue 12): whatever removes an entry from the outbox
 * records what became of it, in the same transaction, for a bounded time;
 * a call handle settles from that record — or, when it aged out, with an
 * `OutcomeUnknownError` — never from the entry's mere absence.
 */
import { expect } from 'chai';
import { Subject } from 'rxjs';
import { Calls, type CallOutcome } from '../../streams/calls.ts';
import type { DurableQueue } from '../../streams/durableQueue.ts';
import { OutcomeUnknownError, ReducerRejectedError } from '../../streams/errors.ts';
import type { Outbox } from '../../storage/outbox.ts';
import { outboxQueue } from '../../storage/outboxQueue.ts';
import type { Storage } from '../../storage/openStorage.ts';
import { until } from '../helpers/until.ts';
import { ALICE, FakeTime, freshIndexedDB, open, uniqueServer } from './helpers.ts';

const side = (outbox: Outbox): DurableQueue => outboxQueue(outbox, { canonical: (a) => (a === 'sendChat' ? 'send_chat' : a), accessor: (c) => (c === 'send_chat' ? 'sendChat' : c) });

for (const mode of ['durable', 'memory'] as const) {
  describe(`outbox outcome records (${mode} store)`, () => {
    let s: Storage;
    let time: FakeTime;
    beforeEach(async () => {
      time = new FakeTime();
      s = await open({ time, lease: 'none', memory: mode === 'memory', outcomeTtlMs: 60_000, reducers: { send_chat: { offline: 'drop-if-stale', staleAfterMs: 1000 } } });
      await s.outbox.setIdentity(ALICE);
    });
    afterEach(() => s.close());

    it('records confirmed (answer and receipt), rejected (dismiss), expired, superseded and discarded, and nothing for an entry still there', async () => {
      const e = async (text: string, opts = {}) => (await s.outbox.enqueue('send_chat', { text }, opts)).entry;
      const answered = await e('answered');
      const receipted = await e('receipted');
      const refused = await e('refused');
      const stale = await e('stale');
      const older = await e('older', { supersedeKey: 'k' });
      const newer = await e('newer', { supersedeKey: 'k' });
      const thrown = await e('thrown away');
      const kept = await e('kept', { deadline: time.now() + 1e9 });
      await s.outbox.markSent([answered.id, refused.id]);
      await s.outbox.markConfirmed([answered.id]);
      await s.outbox.resolveByReceipts([receipted.id]);
      await s.outbox.markRejected(refused.id, new Error('must not be empty'));
      await s.outbox.dismiss([refused.id]);
      await s.outbox.discard([thrown.id]);
      time.advance(2000);
      await s.outbox.expire();
      const records = new Map((await s.outbox.outcomes([answered.id, receipted.id, refused.id, stale.id, older.id, thrown.id, kept.id, newer.id])).map((o) => [o.id, o]));
      expect(records.get(answered.id)).to.include({ outcome: 'confirmed', by: 'answer', reducer: 'send_chat' });
      expect(records.get(receipted.id)).to.include({ outcome: 'confirmed', by: 'receipt' });
      expect(records.get(refused.id)).to.include({ outcome: 'rejected', by: 'dismiss' });
      expect(records.get(refused.id)!.error!.message).to.equal('must not be empty');
      expect(records.get(stale.id)).to.include({ outcome: 'expired', by: 'deadline' });
      expect(records.get(older.id)).to.include({ outcome: 'superseded', supersededBy: newer.id });
      expect(records.get(thrown.id)).to.include({ outcome: 'discarded', by: 'discard' });
      expect(records.has(kept.id), 'an entry still in the outbox has no outcome').to.equal(false);
      // newer was expired by the deadline too (drop-if-stale): it is recorded as such.
      expect(records.get(newer.id)).to.include({ outcome: 'expired' });
    });

    it('records nothing for a discarded entry that was already sent: the server may still apply it', async () => {
      const queued = (await s.outbox.enqueue('send_chat', { text: 'queued' })).entry;
      const sent = (await s.outbox.enqueue('send_chat', { text: 'sent' })).entry;
      await s.outbox.markSent([sent.id]);
      const deleted = await s.outbox.discard([queued.id, sent.id]);
      expect(deleted.map((e) => e.id).sort()).to.deep.equal([queued.id, sent.id].sort());
      expect((await s.outbox.outcomes([queued.id, sent.id])).map((o) => [o.id, o.outcome])).to.deep.equal([[queued.id, 'discarded']]);
    });

    it('records nothing when an entry sent before (then put back after a lost answer) expires or is superseded: it may have been applied', async () => {
      const stale = (await s.outbox.enqueue('send_chat', { text: 'stale' })).entry;
      const older = (await s.outbox.enqueue('send_chat', { text: 'older' }, { supersedeKey: 'k', deadline: time.now() + 1e9 })).entry;
      await s.outbox.markSent([stale.id, older.id]);
      await s.outbox.requeueSent(); // the connection died before the answers
      const newer = (await s.outbox.enqueue('send_chat', { text: 'newer' }, { supersedeKey: 'k', deadline: time.now() + 1e9 })).entry;
      time.advance(2000);
      expect((await s.outbox.expire()).map((e) => e.id)).to.deep.equal([stale.id]);
      expect(await s.outbox.outcomes([stale.id, older.id])).to.deep.equal([]);
      expect((await s.outbox.entries()).map((e) => e.id)).to.deep.equal([newer.id]);
    });

    it('a write that removes many entries answers per id (one record per write in IndexedDB), and an id recorded again answers with its latest outcome', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await s.outbox.enqueue('send_chat', { text: `m${i}` }, { deadline: time.now() + 1e9 })).entry.id);
      expect((await s.outbox.claim(100)).map((e) => e.id)).to.deep.equal(ids);
      const before = mode === 'durable' ? await s.db!.outcomeSets.count() : 0;
      expect((await s.outbox.markConfirmed(ids.slice(0, 30))).map((e) => e.id)).to.deep.equal(ids.slice(0, 30));
      if (mode === 'durable') expect(await s.db!.outcomeSets.count(), 'one outcome set for the whole confirmation').to.equal(before + 1);
      await s.outbox.markRejected(ids[30], new Error('no'));
      await s.outbox.dismiss([ids[30]]);
      const asked = [ids[31], ids[29], ids[30], ids[0]];
      expect((await s.outbox.outcomes(asked)).map((o) => [o.id, o.outcome, o.by, o.reducer])).to.deep.equal([
        [ids[29], 'confirmed', 'answer', 'send_chat'],
        [ids[30], 'rejected', 'dismiss', 'send_chat'],
        [ids[0], 'confirmed', 'answer', 'send_chat'],
      ]);
      // The same mutation id, stored again after it left, then discarded: its latest outcome answers.
      time.advance(10);
      const again = (await s.outbox.enqueue('send_chat', { text: 'again' }, { id: ids[5], deadline: time.now() + 1e9 })).entry;
      expect(again.id).to.equal(ids[5]);
      await s.outbox.discard([ids[5]]);
      expect((await s.outbox.outcomes([ids[5], ids[6]])).map((o) => [o.id, o.outcome])).to.deep.equal([
        [ids[5], 'discarded'],
        [ids[6], 'confirmed'],
      ]);
    });

    it('keeps records for outcomeTtlMs: a later write prunes the aged ones', async () => {
      const a = (await s.outbox.enqueue('send_chat', { text: 'a' })).entry;
      await s.outbox.discard([a.id]);
      expect(await s.outbox.outcomes([a.id])).to.have.length(1);
      time.advance(61_000);
      const b = (await s.outbox.enqueue('send_chat', { text: 'b', }, { deadline: time.now() + 1e9 })).entry;
      await s.outbox.discard([b.id]);
      expect(await s.outbox.outcomes([a.id]), 'aged out').to.deep.equal([]);
      expect(await s.outbox.outcomes([b.id])).to.have.length(1);
    });
  });
}

describe('Calls: a handle settles from the outcome record, or says the outcome is unknown', () => {
  /** Two "tabs" on one IndexedDB and one clock; the first one's change signal is in the test's hands (a suspended tab). */
  let time: FakeTime;
  let tabA: Storage;
  let tabB: Storage;
  let signal: Subject<void>;
  let calls: Calls;
  beforeEach(async () => {
    time = new FakeTime();
    const shared = { time, lease: 'none' as const, server: uniqueServer(), ...freshIndexedDB(), outcomeTtlMs: 10_000 };
    tabA = await open(shared);
    tabB = await open(shared);
    await tabA.outbox.setIdentity(ALICE);
    await tabB.outbox.setIdentity(ALICE);
    signal = new Subject<void>();
    // Tab A's calls see changes only when the test says: the tab sleeps in between.
    const suspended = Object.create(tabA.outbox, { changes$: { value: signal.asObservable() } }) as Outbox;
    calls = new Calls({ wallClock: () => time.now() });
    calls.useDurable(side(suspended));
  });
  afterEach(async () => {
    await calls.close();
    await tabA.close();
    await tabB.close();
  });

  const stored = async (text: string) => {
    const h = calls.call('sendChat', { text });
    await until(() => h.mutationId !== undefined, 'the call to be stored');
    const outcomes: CallOutcome[] = [];
    h.subscribe((o) => outcomes.push(o));
    return { h, outcomes };
  };

  it('confirmed by the other tab: confirmed via the record, with no latency made up', async () => {
    const { h, outcomes } = await stored('sent by b');
    await tabB.outbox.markSent([h.mutationId!]);
    await tabB.outbox.markConfirmed([h.mutationId!]);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['pending']);
    signal.next();
    const o = await h;
    expect(o).to.include({ status: 'confirmed', via: 'record', latencyMs: undefined });
  });

  it('an entry gone with its record aged out: OutcomeUnknownError, never confirmed', async () => {
    const { h } = await stored('forgotten');
    await tabB.outbox.discard([h.mutationId!]);
    time.advance(11_000);
    // Any later removal prunes the aged records.
    const other = (await tabB.outbox.enqueue('send_chat', { text: 'other' })).entry;
    await tabB.outbox.discard([other.id]);
    expect(await tabB.outbox.outcomes([h.mutationId!])).to.deep.equal([]);
    signal.next(); // the tab wakes up
    const err = await h.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(OutcomeUnknownError);
    expect((err as OutcomeUnknownError).info).to.include({ reducer: 'sendChat', mutationId: h.mutationId, outcomeTtlMs: 10_000 });
  });

  it('dismissed by the other tab before this one looked: rejected with the server\'s reason', async () => {
    const { h } = await stored('refused');
    await tabB.outbox.markSent([h.mutationId!]);
    await tabB.outbox.markRejected(h.mutationId!, new Error('message must not be empty'));
    await tabB.outbox.dismiss([h.mutationId!]);
    signal.next();
    const err = await h.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect((err as Error).message).to.contain('message must not be empty');
  });

  it('a call sent once, put back after a lost answer, then expired: OutcomeUnknownError, not "expired"', async () => {
    const h = calls.call('sendChat', { text: 'maybe applied' }, { deadline: time.now() + 1000 });
    await until(() => h.mutationId !== undefined, 'the call to be stored');
    await tabB.outbox.markSent([h.mutationId!]);
    await tabB.outbox.requeueSent();
    time.advance(2000);
    await tabB.outbox.expire();
    signal.next();
    const err = await h.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(OutcomeUnknownError);
  });

  it('the handle is promise-like: catch and finally work as on a Promise', async () => {
    const { h } = await stored('discarded');
    await tabB.outbox.discard([h.mutationId!]);
    signal.next();
    let finished = false;
    const caught = await h.finally(() => (finished = true)).catch((e: unknown) => e);
    expect(finished).to.equal(true);
    expect(caught).to.be.instanceOf(ReducerRejectedError);
    expect((caught as ReducerRejectedError).info.kind).to.equal('discarded');
  });
});
