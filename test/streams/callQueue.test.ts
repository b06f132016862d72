/**
 * The call queue's state machine, without a server: `pending → sent →
 * confirmed | rejected`, priority and supersede, the gate, connection loss
 * for transient and durable calls, the drain's start / stop / restart,
 * batched confirmations, receipts and outcome records.
 *
 * Time-driven steps (the gate, deadlines, supersede) run in virtual time;
 * the durable ones use a fake sender and an in-memory durable queue whose
 * writes the test can hold, so every step is an awaited signal.
 */
import type { TestScheduler } from 'rxjs/testing';
import { expect } from 'chai';
import { EmptyError, map, ReplaySubject } from 'rxjs';
import { CallHandle, Calls, type CallOutcome } from '../../streams/calls.ts';
import { ConnectionLostError, OutcomeUnknownError, ReducerRejectedError } from '../../streams/errors.ts';
import { newScheduler } from '../operators/marbles.ts';
import { MemoryQueue } from './memoryQueue.ts';

/** Every queued microtask and promise callback has run (the in-memory queue never waits on anything else). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A deferred answer per send, settled by the test. */
function fakeSender() {
  const sends: { reducer: string; args: unknown; answer: (err?: unknown) => void }[] = [];
  const send = (reducer: string, args: unknown) =>
    new Promise<void>((resolve, reject) => sends.push({ reducer, args, answer: (err) => (err === undefined ? resolve() : reject(err)) }));
  return { sends, send, reducers: () => sends.map((s) => s.reducer) };
}

/** A call queue without storage, sending through a fresh fake sender, drain started. */
async function draining() {
  const calls = new Calls();
  const net = fakeSender();
  calls.setSender(net.send);
  await calls.startDrain();
  return { calls, net };
}

function outcomesOf(h: import('rxjs').Observable<CallOutcome>): CallOutcome[] {
  const seen: CallOutcome[] = [];
  h.subscribe((o) => seen.push(o));
  return seen;
}

/** A call queue on the scheduler's clock whose sender records `reducer@time` and never answers. */
function virtualCalls(scheduler: TestScheduler) {
  const sent: string[] = [];
  const calls = new Calls({ wallClock: () => scheduler.now() });
  calls.setSender((reducer) => {
    sent.push(`${reducer}@${scheduler.now()}`);
    return new Promise<void>(() => {});
  });
  return { calls, sent };
}

const statusOf = (o: CallOutcome) => (o.status === 'rejected' ? `rejected:${o.error.name}` : o.status === 'confirmed' ? `confirmed:${o.via}` : `pending:${o.queued ? 'queued' : 'now'}`);

describe('call queue (virtual time)', () => {
  it('holds calls while the gate is shut and releases them when the drain starts: priority first, then first in, first out', () => {
    const scheduler = newScheduler();
    const { calls, sent } = virtualCalls(scheduler);
    scheduler.run(() => {
      calls.call('a', {}, { priority: 0 });
      calls.call('b', {}, { priority: 2 });
      calls.call('c', {}, { priority: 0 });
      calls.call('d', {}, { priority: 1 });
      scheduler.schedule(() => void calls.startDrain(), 30);
    });
    expect(sent).to.deep.equal(['b@30', 'd@30', 'a@30', 'c@30']);
  });

  it('a newer queued call with the same supersede key replaces the older one, which is rejected as superseded', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const calls = new Calls({ wallClock: () => scheduler.now() });
      const events = calls.events$.pipe(map((e) => `${e.id}:${e.status}${e.status === 'rejected' ? `:${(e.error as ReducerRejectedError).info.kind}` : ''}`));
      expectObservable(events, '^ 20ms !').toBe('- a 9ms (bc)', { a: 'c1:pending', b: 'c2:pending', c: 'c1:rejected:superseded' });
      scheduler.schedule(() => void calls.call('move', { x: 1 }, { supersedeKey: 'pos' }), 1);
      scheduler.schedule(() => void calls.call('move', { x: 2 }, { supersedeKey: 'pos' }), 11);
    });
  });

  it('a queued call whose deadline passes is rejected as expired at that moment, never sent', () => {
    const scheduler = newScheduler();
    const { calls, sent } = virtualCalls(scheduler);
    scheduler.run(({ expectObservable }) => {
      const h = calls.call('stale', {}, { deadline: 50 });
      expectObservable(h.pipe(map(statusOf))).toBe('a 49ms (b|)', { a: 'pending:queued', b: 'rejected:ReducerRejectedError' });
      scheduler.schedule(() => void calls.startDrain(), 80);
    });
    expect(sent).to.deep.equal([]);
  });

  it('stopDrain shuts the gate: a call made then waits for the next start', () => {
    const scheduler = newScheduler();
    const { calls, sent } = virtualCalls(scheduler);
    scheduler.run(() => {
      scheduler.schedule(() => void calls.startDrain(), 0);
      scheduler.schedule(() => void calls.call('early', {}), 5);
      scheduler.schedule(() => calls.stopDrain(), 10);
      scheduler.schedule(() => void calls.call('late', {}), 20);
      scheduler.schedule(() => void calls.startDrain(), 40);
    });
    expect(sent).to.deep.equal(['early@5', 'late@40']);
  });
});

describe('call queue: transient calls', () => {
  it('pending → sent → confirmed, with the latency of the answer and the counts of the UI', async () => {
    let now = 100;
    const calls = new Calls({ now: () => now });
    const counts: { queued: number; sent: number }[] = [];
    calls.transient$.subscribe((c) => counts.push(c));
    const h = calls.call('ping', { n: 1 });
    const seen = outcomesOf(h);
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    expect(net.reducers()).to.deep.equal(['ping']);
    now = 130;
    net.sends[0].answer();
    const confirmed = await h;
    expect(confirmed).to.deep.include({ status: 'confirmed', via: 'answer', latencyMs: 30 });
    expect(seen.map(statusOf)).to.deep.equal(['pending:queued', 'confirmed:answer']);
    expect(counts).to.deep.equal([{ queued: 0, sent: 0 }, { queued: 1, sent: 0 }, { queued: 0, sent: 1 }, { queued: 0, sent: 0 }]);
    await calls.close();
  });

  it('a handle awaited late settles from the replayed outcome; outcomes that end without one reject with EmptyError', async () => {
    const done = new ReplaySubject<CallOutcome>();
    const late = new CallHandle('c1', done);
    done.next({ status: 'pending', id: 'c1', reducer: 'r', queued: false });
    done.next({ status: 'confirmed', id: 'c1', reducer: 'r', latencyMs: 3, via: 'answer' });
    done.complete();
    expect(await late).to.deep.equal({ status: 'confirmed', id: 'c1', reducer: 'r', latencyMs: 3, via: 'answer' });
    const refused = new ReplaySubject<CallOutcome>();
    const no = new CallHandle('c2', refused);
    const error = new Error('refused');
    const settled = no.then(
      () => 'resolved',
      (e) => e,
    );
    refused.next({ status: 'rejected', id: 'c2', reducer: 'r', error });
    refused.complete();
    expect(await settled).to.equal(error);
    const empty = new ReplaySubject<CallOutcome>();
    const ended = new CallHandle('c3', empty);
    empty.next({ status: 'pending', id: 'c3', reducer: 'r', queued: true });
    empty.complete();
    const reason = await ended.then(
      () => undefined,
      (e) => e,
    );
    expect(reason).to.be.instanceOf(EmptyError);
  });

  it('events$ carries each outcome, every field of it, with the call', async () => {
    const { calls, net } = await draining();
    const events: unknown[] = [];
    calls.events$.subscribe((e) => events.push(e));
    const ok = calls.call('ping', { n: 1 });
    const bad = calls.call('pong', { n: 2 });
    net.sends[0].answer();
    net.sends[1].answer(new Error('no'));
    const [okOutcome] = await Promise.allSettled([ok, bad]);
    const calledPing = { id: ok.id, reducer: 'ping', args: { n: 1 } };
    const calledPong = { id: bad.id, reducer: 'pong', args: { n: 2 } };
    expect(events).to.have.length(4);
    const [p1, p2, c1, r2] = events as Record<string, unknown>[];
    expect(p1).to.deep.include({ status: 'pending', id: ok.id, reducer: 'ping', queued: false });
    expect(p1.call).to.deep.include(calledPing);
    expect(p2).to.deep.include({ status: 'pending', id: bad.id, reducer: 'pong', queued: false });
    expect(p2.call).to.deep.include(calledPong);
    expect(c1).to.deep.include({ status: 'confirmed', id: ok.id, reducer: 'ping', via: 'answer' });
    expect(c1).to.have.property('latencyMs').that.is.a('number');
    expect(c1.latencyMs).to.equal((okOutcome as PromiseFulfilledResult<{ latencyMs: number }>).value.latencyMs);
    expect(c1.call).to.deep.include(calledPing);
    expect(r2).to.deep.include({ status: 'rejected', id: bad.id, reducer: 'pong' });
    expect(r2.error).to.be.instanceOf(ReducerRejectedError);
    expect(r2.call).to.deep.include(calledPong);
    await calls.close();
  });

  it('the server refusing it: rejected with a ReducerRejectedError carrying the reason', async () => {
    const { calls, net } = await draining();
    const h = calls.call('spend', { gold: 5 });
    expect(outcomesOf(h)[0]).to.include({ status: 'pending', queued: false });
    net.sends[0].answer(new Error('not enough gold'));
    const err = await h.then(
      () => expect.fail('confirmed'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect((err as ReducerRejectedError).message).to.equal('spend rejected: not enough gold');
    await calls.close();
  });

  it('connection lost: the call in flight is rejected (outcome unknown), the queued one goes out on the next connection', async () => {
    const { calls, net: first } = await draining();
    const inFlight = calls.call('a', {});
    calls.connectionLost('close');
    const queued = calls.call('b', {});
    const err = await inFlight.then(
      () => expect.fail('confirmed'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConnectionLostError);
    expect((err as ConnectionLostError).info).to.deep.equal({ reason: 'close', reducer: 'a' });
    // A late answer on the dead connection changes nothing.
    first.sends[0].answer();
    const second = fakeSender();
    calls.setSender(second.send);
    await calls.startDrain();
    expect(second.reducers()).to.deep.equal(['b']);
    second.sends[0].answer();
    expect(await queued).to.include({ status: 'confirmed' });
    await calls.close();
  });

  it('confirmByArgs settles the call that sent that very args object, before the SDK resolves it', async () => {
    const { calls, net } = await draining();
    const args = { n: 1 };
    const h = calls.call('a', args);
    const seen = outcomesOf(h);
    calls.confirmByArgs({ n: 1 }); // an equal object is not the one sent
    expect(seen.map(statusOf)).to.deep.equal(['pending:now']);
    calls.confirmByArgs(args);
    expect(seen.map(statusOf)).to.deep.equal(['pending:now', 'confirmed:answer']);
    await calls.close();
  });

  it('rejectQueuedTransient rejects queued calls, not the one in flight', async () => {
    const { calls, net } = await draining();
    const inFlight = calls.call('a', {});
    calls.stopDrain();
    const queued = calls.call('b', {});
    calls.rejectQueuedTransient(() => new ConnectionLostError('signed out', { reason: 'reconnect' }));
    expect(outcomesOf(queued).map(statusOf)).to.deep.equal(['pending:queued', 'rejected:ConnectionLostError']);
    expect(outcomesOf(inFlight).map(statusOf)).to.deep.equal(['pending:now']);
    await calls.close();
  });
});

describe('call queue: durable calls', () => {
  let queue: MemoryQueue;
  let calls: Calls;
  let errors: Error[];
  beforeEach(() => {
    queue = new MemoryQueue();
    errors = [];
    calls = new Calls({ onError: (e) => errors.push(e) });
    calls.useDurable(queue);
  });
  afterEach(() => calls.close());

  /** A call made now; `await flush()` stores it (a handle is a thenable: an async helper would wait for its outcome). */
  const stored = (reducer: string, opts = {}) => calls.call(reducer, { reducer }, opts);

  it('pending → stored → marked sent → sent → confirmed, and the entry leaves the queue', async () => {
    const h = stored('a');
    await flush();
    const seen = outcomesOf(h);
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    await flush();
    expect(queue.calls('markSent')).to.deep.equal([[h.mutationId]]);
    expect(queue.entries.get(h.mutationId!)?.status).to.equal('sent');
    expect(net.reducers()).to.deep.equal(['a']);
    net.sends[0].answer();
    await h;
    await flush();
    expect(seen.map(statusOf)).to.deep.equal(['pending:queued', 'confirmed:answer']);
    expect(queue.calls('confirm')).to.deep.equal([[h.mutationId]]);
    expect(queue.entries.size).to.equal(0);
  });

  it('released calls are marked sent in one write, in drain order', async () => {
    const low = stored('low', { priority: 0 });
    const high = stored('high', { priority: 5 });
    await flush();
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    await flush();
    expect(queue.calls('markSent')).to.deep.equal([[high.mutationId, low.mutationId]]);
    expect(net.reducers()).to.deep.equal(['high', 'low']);
  });

  it('answers that arrive while a confirmation is being written leave the queue in one more write', async () => {
    const hs = [stored('a'), stored('b'), stored('c')];
    await flush();
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    await flush();
    const held = queue.hold('confirm');
    net.sends[0].answer();
    await held.reached;
    net.sends[1].answer();
    net.sends[2].answer();
    await flush();
    expect(queue.calls('confirm')).to.deep.equal([[hs[0].mutationId]]);
    held.open();
    await Promise.all(hs);
    await flush();
    expect(queue.calls('confirm')).to.deep.equal([[hs[0].mutationId], [hs[1].mutationId, hs[2].mutationId]]);
    expect(queue.entries.size).to.equal(0);
  });

  it('the server refusing it: rejected, and the entry stays in the queue as rejected', async () => {
    const h = stored('a');
    await flush();
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    await flush();
    net.sends[0].answer(new Error('no'));
    const err = await h.then(
      () => expect.fail('confirmed'),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ReducerRejectedError);
    await flush();
    expect(queue.entries.get(h.mutationId!)).to.include({ status: 'rejected', message: 'a rejected: no' });
  });

  it('connection lost: a durable call in flight stays pending; the next start confirms it by receipt or sends it again', async () => {
    const byReceipt = stored('a');
    const resent = stored('b');
    await flush();
    const first = fakeSender();
    calls.setSender(first.send);
    await calls.startDrain();
    await flush();
    expect(first.reducers()).to.deep.equal(['a', 'b']);
    calls.connectionLost('close');
    await flush();
    expect(outcomesOf(byReceipt).map(statusOf)).to.deep.equal(['pending:queued']);
    expect(outcomesOf(resent).map(statusOf)).to.deep.equal(['pending:queued']);

    const second = fakeSender();
    calls.setSender(second.send);
    await calls.startDrain([byReceipt.mutationId!]);
    await flush();
    expect(await byReceipt).to.include({ status: 'confirmed', via: 'receipt', latencyMs: undefined });
    expect(second.reducers(), 'only the one without a receipt is sent again').to.deep.equal(['b']);
    second.sends[0].answer();
    expect(await resent).to.include({ status: 'confirmed', via: 'answer' });
    expect(queue.entries.get(resent.mutationId!), 'confirmed entries leave').to.equal(undefined);
  });

  it('a start asked for while one is starting runs after it, on the new connection; a stop cancels the one under way', async () => {
    const h = stored('a');
    await flush();
    const held = queue.hold('recover');
    const first = fakeSender();
    calls.setSender(first.send);
    const starting = calls.startDrain();
    await held.reached;
    calls.connectionLost('close');
    const second = fakeSender();
    calls.setSender(second.send);
    const again = calls.startDrain();
    held.open();
    await Promise.all([starting, again]);
    await flush();
    expect(first.reducers()).to.deep.equal([]);
    expect(second.reducers()).to.deep.equal(['a']);
    expect(queue.calls('recover')).to.have.length(2);
    second.sends[0].answer();
    await h;
  });

  it('stopDrain during a start: nothing is sent until the next start', async () => {
    stored('a');
    await flush();
    const held = queue.hold('recover');
    const net = fakeSender();
    calls.setSender(net.send);
    const starting = calls.startDrain();
    await held.reached;
    calls.stopDrain();
    held.open();
    await starting;
    await flush();
    expect(net.reducers()).to.deep.equal([]);
    expect(queue.calls('toSend'), 'no refill for a cancelled start').to.deep.equal([]);
    await calls.startDrain();
    await flush();
    expect(net.reducers()).to.deep.equal(['a']);
  });

  it('feeds calls stored by another session or tab, and reports their rejection (no handle here)', async () => {
    const net = fakeSender();
    calls.setSender(net.send);
    await calls.startDrain();
    queue.add({ reducer: 'fromElsewhere', args: { n: 1 } });
    await flush();
    expect(net.sends.map((s) => [s.reducer, s.args])).to.deep.equal([['fromElsewhere', { n: 1 }]]);
    net.sends[0].answer(new Error('refused'));
    await flush();
    expect(errors.map((e) => e.message)).to.deep.equal(['fromElsewhere rejected: refused']);
  });

  it('settles from the outcome another tab recorded, with OutcomeUnknownError when there is none, and from a rejection kept in place', async () => {
    const confirmedElsewhere = stored('a');
    const gone = stored('b');
    const rejectedElsewhere = stored('c');
    const discarded = stored('d');
    await flush();
    queue.remove(confirmedElsewhere.mutationId!, { outcome: 'confirmed', by: 'answer', message: undefined, supersededBy: undefined });
    queue.remove(gone.mutationId!);
    queue.remove(discarded.mutationId!, { outcome: 'discarded', by: 'discard', message: undefined, supersededBy: undefined });
    const entry = queue.entries.get(rejectedElsewhere.mutationId!)!;
    entry.status = 'rejected';
    entry.message = 'bad move';
    queue.add({ reducer: 'nudge', args: {}, foreign: true }); // any change signal
    await flush();
    expect(await confirmedElsewhere).to.include({ via: 'record', latencyMs: undefined });
    const reason = (h: Promise<unknown>) => h.then(() => expect.fail('confirmed'), (e: Error) => e);
    expect(await reason(gone.done)).to.be.instanceOf(OutcomeUnknownError);
    const rejected = await reason(rejectedElsewhere.done);
    expect(rejected).to.be.instanceOf(ReducerRejectedError);
    expect(rejected.message).to.equal('c rejected: bad move');
    expect(((await reason(discarded.done)) as ReducerRejectedError).info.kind).to.equal('discarded');
  });

  it('expired or superseded by the queue itself: rejected as such; after an earlier send whose answer was lost: outcome unknown', async () => {
    let now = 0;
    queue = new MemoryQueue(() => now);
    await calls.close();
    calls = new Calls({ wallClock: () => now });
    calls.useDurable(queue);
    const stale = stored('stale', { deadline: 10 });
    const older = stored('move', { supersedeKey: 'k' });
    const sentBefore = stored('sentBefore', { deadline: 10 });
    await flush();
    queue.entries.get(sentBefore.mutationId!)!.attempts = 1;
    stored('move', { supersedeKey: 'k' });
    await flush();
    expect(outcomesOf(older).map(statusOf)).to.deep.equal(['pending:queued', 'rejected:ReducerRejectedError']);
    now = 20;
    await queue.expire();
    expect(((await stale.done.catch((e: ReducerRejectedError) => e)) as ReducerRejectedError).info.kind).to.equal('expired');
    expect(await sentBefore.done.catch((e: Error) => e)).to.be.instanceOf(OutcomeUnknownError);
  });

  it('close: a stored call stays in the queue and its handle says so; a call after close is rejected at once', async () => {
    const h = stored('a');
    await flush();
    await calls.close();
    const err = (await h.done.catch((e: ConnectionLostError) => e)) as ConnectionLostError;
    expect(err).to.be.instanceOf(ConnectionLostError);
    expect(err.message).to.match(/stays in the outbox/);
    expect(queue.entries.has(h.mutationId!)).to.equal(true);
    const after = calls.call('b', {});
    expect(outcomesOf(after).map(statusOf)).to.deep.equal(['rejected:ConnectionLostError']);
  });
});
