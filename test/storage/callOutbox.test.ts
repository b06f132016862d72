import { expect } from 'chai';
import { Calls, type CallOutbox, type CallOutcome } from '../../streams/calls.ts';
import { DurableCallOutbox } from '../../storage/callOutbox.ts';
import { InvalidArgsError } from '../../storage/errors.ts';
import { ALICE, freshIndexedDB, open, settle, uniqueServer } from './helpers.ts';

// Compile-time check of the seam: the durable outbox is the client's CallOutbox.
const _seam: (o: DurableCallOutbox) => CallOutbox = o => o;
void _seam;

async function until(predicate: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await predicate()) return;
    await settle();
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('storage/DurableCallOutbox and the client\'s Calls', () => {
  it('drives the client\'s real Calls: stored before sending, sent with its mutation id, gone once confirmed', async () => {
    const s = await open({ lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      const calls = new Calls();
      calls.useDurable({ outbox: s.outbox, canonical: a => (a === 'joinMatch' ? 'join_match' : a), accessor: c => (c === 'join_match' ? 'joinMatch' : c) });
      const sent: { reducer: string; args: Record<string, unknown> }[] = [];
      const answers: (() => void)[] = [];

      const handle = calls.call('joinMatch', { matchId: 7n }, { priority: 1 });
      const outcomes: CallOutcome['status'][] = [];
      handle.subscribe(o => outcomes.push(o.status));
      await until(async () => (await s.outbox.entries()).length === 1, 'the call to be stored');
      const [stored] = await s.outbox.entries();
      expect(stored.reducer).to.equal('join_match');
      expect(sent).to.deep.equal([]); // offline: stored, not sent

      calls.setSender((reducer, args) => {
        sent.push({ reducer, args: args as Record<string, unknown> });
        return new Promise<void>(resolve => answers.push(resolve));
      });
      await calls.startDrain();
      await until(() => sent.length === 1, 'the call to be sent');
      expect(sent[0]).to.deep.equal({ reducer: 'joinMatch', args: { matchId: 7n, mutationId: stored.id } });
      expect((await s.outbox.entries())[0].status).to.equal('sent');

      answers[0]();
      await handle;
      expect(outcomes).to.deep.equal(['pending', 'confirmed']);
      await until(async () => (await s.outbox.entries()).length === 0, 'the entry to be confirmed');
      await calls.close();
    } finally {
      await s.close();
    }
  });

  it('bad arguments are refused before anything is stored', async () => {
    const s = await open({ lease: 'none' });
    try {
      const outbox = s.callOutbox();
      const err = await outbox
        .enqueue({ id: 'c1', reducer: 'joinMatch', args: { matchId: 'seven' }, priority: 0, enqueuedAt: 0 })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidArgsError);
      expect(await s.outbox.entries()).to.deep.equal([]);
    } finally {
      await s.close();
    }
  });

  it('entries of an earlier session are claimed decoded; lost calls are queued again; close keeps queued calls stored', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const first = await open({ ...idb, server, lease: 'none' });
    await first.outbox.setIdentity(ALICE);
    const a = first.callOutbox();
    await a.enqueue({ id: 'c1', reducer: 'sendChat', args: { text: 'in flight at the crash' }, priority: 0, enqueuedAt: 0 });
    await a.enqueue({ id: 'c2', reducer: 'sendChat', args: { text: 'still queued at close' }, priority: 0, enqueuedAt: 0 });
    const [inFlight] = await a.claim(1);
    expect(inFlight.id).to.equal('c1');
    expect((await a.drain()).map(c => c.id)).to.deep.equal(['c2']);
    await first.close();

    const second = await open({ ...idb, server, lease: 'none' });
    try {
      await second.outbox.setIdentity(ALICE);
      const b = second.callOutbox();
      const claimed = await b.claim(10);
      expect(claimed.map(c => [c.reducer, (c.args as { text: string }).text])).to.deep.equal([
        ['sendChat', 'in flight at the crash'],
        ['sendChat', 'still queued at close'],
      ]);
      expect((claimed[0].args as { mutationId: string }).mutationId).to.equal(claimed[0].id);

      await b.settle(claimed[0].id, 'lost');
      await b.settle(claimed[1].id, 'rejected');
      const entries = await second.outbox.entries();
      expect(entries.map(e => e.status)).to.deep.equal(['queued', 'rejected']);
      expect((await b.claim(10)).map(c => c.id)).to.deep.equal([claimed[0].id]);
    } finally {
      await second.close();
    }
  });

  it('durable: false calls stay in memory, supersede each other and drain with the rest by priority', async () => {
    const s = await open({ lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      const o = s.callOutbox();
      await o.enqueue({ id: 'c1', reducer: 'sendChat', args: { text: 'durable' }, priority: 0, enqueuedAt: 0 });
      await o.enqueue({ id: 'c2', reducer: 'moveNode', args: { id: 1n, x: 0, y: 0 }, priority: 5, supersedeKey: 'm', durable: false, enqueuedAt: 0 });
      const superseded = await o.enqueue({ id: 'c3', reducer: 'moveNode', args: { id: 1n, x: 1, y: 1 }, priority: 5, supersedeKey: 'm', durable: false, enqueuedAt: 0 });
      expect(superseded.map(c => c.id)).to.deep.equal(['c2']);
      expect((await s.outbox.entries()).map(e => e.reducer)).to.deep.equal(['send_chat']);
      expect((await o.claim(10)).map(c => c.id)).to.deep.equal(['c3', 'c1']);
    } finally {
      await s.close();
    }
  });
});
