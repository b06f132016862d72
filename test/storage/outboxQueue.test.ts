/**
 * `storage.callQueue()`: the outbox as the call queue's `DurableQueue` —
 * names translated both ways, the mutation id the outbox chose sent with
 * the call, whether it may be sent now, the refill after a seq, and where a
 * call went (still waiting, rejected, or removed with or without a record).
 */
import { expect } from 'chai';
import type { Storage } from '../../storage/openStorage.ts';
import type { DurableQueue } from '../../streams/durableQueue.ts';
import { ALICE, BOB, open } from './helpers.ts';

const names = { canonical: (a: string) => (a === 'sendChat' ? 'send_chat' : a), accessor: (c: string) => (c === 'send_chat' ? 'sendChat' : c) };
const call = (text: string, extra: { mutationId?: string; priority?: number; supersedeKey?: string } = {}) => ({
  reducer: 'sendChat',
  args: extra.mutationId === undefined ? { text } : { text, mutationId: extra.mutationId },
  priority: extra.priority ?? 0,
  supersedeKey: extra.supersedeKey,
  deadline: null,
  mutationId: extra.mutationId,
});

describe('storage/outboxQueue: the outbox as the call queue sees it', () => {
  let s: Storage;
  let q: DurableQueue;
  beforeEach(async () => {
    s = await open({ lease: 'none' });
    await s.outbox.setIdentity(ALICE);
    q = s.callQueue(names);
  });
  afterEach(() => s.close());

  it('stores under the module name, shows the accessor name, and sends the mutation id the outbox chose', async () => {
    const { call: stored, args, sendable } = await q.enqueue(call('hi'));
    expect((await s.outbox.get([stored.id]))[0].reducer).to.equal('send_chat');
    expect(stored.reducer).to.equal('sendChat');
    expect(stored.supersedeKey, 'no key: undefined, not the stored empty string').to.equal(undefined);
    expect(args).to.deep.equal({ text: 'hi', mutationId: stored.id });
    expect(stored.args()).to.deep.equal({ text: 'hi', mutationId: stored.id });
    expect(sendable).to.equal(true);
    const given = await q.enqueue(call('mine', { mutationId: 'my-id' }));
    expect(given.call.id).to.equal('my-id');
    expect(given.args).to.deep.equal({ text: 'mine', mutationId: 'my-id' });
  });

  it('a call stored with no identity is not sendable; one superseded comes back with its key', async () => {
    const older = await q.enqueue(call('a', { supersedeKey: 'k' }));
    const newer = await q.enqueue(call('b', { supersedeKey: 'k' }));
    expect(newer.superseded.map((c) => [c.id, c.supersedeKey])).to.deep.equal([[older.call.id, 'k']]);
    await s.outbox.setIdentity(null);
    expect((await q.enqueue(call('signed out'))).sendable).to.equal(false);
  });

  it('toSend: in drain order, only this identity\'s, and with afterSeq only the later ones', async () => {
    const low = await q.enqueue(call('low'));
    const high = await q.enqueue(call('high', { priority: 2 }));
    await s.outbox.setIdentity(BOB);
    await q.enqueue(call("bob's"));
    await s.outbox.setIdentity(ALICE);
    const later = await q.enqueue(call('later'));
    expect((await q.toSend()).map((c) => c.id)).to.deep.equal([high.call.id, low.call.id, later.call.id]);
    expect((await q.toSend(high.call.seq)).map((c) => c.id)).to.deep.equal([later.call.id]);
  });

  it('markSent returns the ids still queued; requeue, confirm, reject and recover move them as the outbox does', async () => {
    const a = (await q.enqueue(call('a'))).call.id;
    const b = (await q.enqueue(call('b'))).call.id;
    const c = (await q.enqueue(call('c'))).call.id;
    await s.outbox.discard([c]);
    expect(await q.markSent([a, b, c])).to.deep.equal([a, b]);
    expect(await q.markSent([a]), 'already sent').to.deep.equal([]);
    await q.requeue([a]);
    expect((await s.outbox.get([a]))[0].status).to.equal('queued');
    await q.markSent([a]);
    expect(await q.recover([a])).to.deep.equal([a]);
    await q.reject(b, new Error('too long'));
    const states = await q.lookup([a, b, c, 'never-stored']);
    expect(states.get(a)).to.deep.include({ state: 'removed' });
    expect((states.get(a) as { record: { outcome: string; by: string } }).record).to.include({ outcome: 'confirmed', by: 'receipt' });
    expect(states.get(b)).to.deep.equal({ state: 'rejected', message: 'too long' });
    expect((states.get(c) as { record: { outcome: string } }).record).to.include({ outcome: 'discarded' });
    expect(states.get('never-stored')).to.deep.equal({ state: 'removed', record: undefined });
  });

  it('confirm removes them with a confirmed record; a waiting call is `waiting`', async () => {
    const a = (await q.enqueue(call('a'))).call.id;
    const b = (await q.enqueue(call('b'))).call.id;
    await q.markSent([a, b]);
    await q.confirm([a]);
    const states = await q.lookup([a, b]);
    expect((states.get(a) as { record: { outcome: string; by: string } }).record).to.include({ outcome: 'confirmed', by: 'answer' });
    expect(states.get(b)).to.deep.equal({ state: 'waiting' });
  });
});
