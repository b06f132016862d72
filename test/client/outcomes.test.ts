/**
 * Every call handle tells the truth (issue 12): a handle settles only from
 * a recorded outcome, never because its entry left the outbox. Two tabs are
 * two clients on two storages opened on one fake-indexeddb profile; what one
 * tab does to an entry (discard, dismiss, rehome, expire, supersede) is seen
 * with the right outcome by the handle in the other. Every test then counts
 * on the server: a handle that says `confirmed` has its row there, any other
 * outcome has none.
 */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { ReducerRejectedError, type CallHandle, type CallOutcome, type OutboxState } from '../../src/index.ts';
import type { Storage } from '../../storage/openStorage.ts';
import { until } from '../helpers/until.ts';
import { next } from '../helpers/syncClient.ts';
import { arenaClient, chatTexts, freshProfile, openArenaStorage, startArena, type ArenaClient, type Profile } from './arena.ts';

const live = (c: ArenaClient) => next(c.status$, (s) => s.state === 'live', 10_000, 'live');
const outboxWhere = (c: ArenaClient, p: (s: OutboxState) => boolean, what = 'outbox state') => next(c.outbox$, p, 10_000, what);
/** The final outcome of a handle (never throws). */
const final = (h: CallHandle) => next(h, (o) => o.status !== 'pending', 10_000, `outcome of ${h.id}`) as Promise<Exclude<CallOutcome, { status: 'pending' }>>;

describe('call handles settle from recorded outcomes, in every tab (dev server + fake-indexeddb)', function () {
  this.timeout(30_000);
  let server: DevServer;
  let profile: Profile;
  const clients: ArenaClient[] = [];
  const storages: Storage[] = [];
  /** Handle → the chat text its call writes, for the server check. */
  const made: { handle: CallHandle; text: string }[] = [];
  const client = (opts: Parameters<typeof arenaClient>[1] = {}) => {
    const c = arenaClient(server, { retry: { initialInterval: 60_000, jitter: 'none' }, ...opts });
    clients.push(c);
    return c;
  };
  const storage = async (opts: Parameters<typeof openArenaStorage>[1] = {}) => {
    const s = await openArenaStorage(profile, opts);
    storages.push(s);
    return s;
  };
  const chat = (c: ArenaClient, text: string, opts: Parameters<ArenaClient['call']>[2] = {}) => {
    const handle = c.call('sendChat', { text }, opts);
    made.push({ handle, text });
    return handle;
  };
  /** Two tabs on one profile, both live with one identity; the first holds the drain lease. */
  const twoTabs = async (opts: Parameters<typeof openArenaStorage>[1] = {}) => {
    const a = client({ storage: await storage(opts) });
    await live(a);
    const b = client({ storage: await storage(opts) });
    await live(b);
    expect(a.storage!.lease!.held, 'the first tab holds the lease').to.equal(true);
    expect(b.storage!.lease!.held).to.equal(false);
    return { a, b };
  };
  /** Drop every socket: both tabs wait 60 s before they retry. */
  const bothOffline = async (...cs: ArenaClient[]) => {
    server.faults.dropAll();
    for (const c of cs) await next(c.status$, (s) => s.state === 'reconnecting', 10_000, 'reconnecting');
  };

  beforeEach(async () => {
    profile = freshProfile();
    server = await startArena();
  });
  afterEach(async () => {
    // The check of the issue: a confirmed handle's row is on the server; any other outcome's is not.
    const texts = chatTexts(server);
    const checked = made.splice(0);
    for (const c of clients.splice(0)) await c.close();
    for (const s of storages.splice(0)) await s.close();
    await server.stop();
    for (const { handle, text } of checked) {
      const o = await final(handle);
      const rows = texts.filter((t) => t === text).length;
      if (o.status === 'confirmed') expect(rows, `confirmed "${text}" is on the server`).to.equal(1);
      else if (!(o.error.name === 'ConnectionLostError' && o.error.message.includes('stays in the outbox'))) {
        expect(rows, `"${text}" settled ${o.error.name} (${o.error.message}) and is not on the server`).to.equal(0);
      }
    }
  });

  it('discard in one tab: the handle in the other is rejected as discarded, never confirmed, and nothing reaches the server', async () => {
    const { a, b } = await twoTabs();
    await bothOffline(a, b);
    const h = chat(b, 'b: discarded');
    const queued = await outboxWhere(a, (s) => s.queued === 1, 'b\'s entry seen by a');
    await a.storage!.outbox.discard([queued.pending[0].id]);
    const o = await final(h);
    expect(o.status).to.equal('rejected');
    const err = (o as Extract<CallOutcome, { status: 'rejected' }>).error;
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect((err as ReducerRejectedError).info.kind).to.equal('discarded');
    // The record every tab reads.
    expect((await b.storage!.outbox.outcomes([h.mutationId!]))[0]).to.include({ outcome: 'discarded', by: 'discard' });
    a.reconnectNow();
    await live(a);
    await chat(a, 'a: after');
    expect(chatTexts(server)).to.deep.equal(['a: after']);
  });

  it('dismiss in one tab of a rejected entry: the other tab\'s handle is rejected with the server\'s reason, and the record keeps it', async () => {
    const { a, b } = await twoTabs();
    const h = chat(b, '   '); // the module refuses an empty message
    const o = await final(h);
    expect(o.status).to.equal('rejected');
    const err = (o as Extract<CallOutcome, { status: 'rejected' }>).error as ReducerRejectedError;
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect(err.message).to.contain('must not be empty');
    const state = await outboxWhere(a, (s) => s.rejected.length === 1, 'rejected entry kept');
    await a.storage!.outbox.dismiss([state.rejected[0].id]);
    const [record] = await b.storage!.outbox.outcomes([h.mutationId!]);
    expect(record).to.include({ outcome: 'rejected', by: 'dismiss' });
    expect(record.error!.message).to.contain('must not be empty');
    expect(chatTexts(server)).to.deep.equal([]);
  });

  it('rehome in one tab: the other tab\'s handle is confirmed once the server applied it under the new identity (and not before)', async () => {
    const { a, b } = await twoTabs();
    const oldIdentity = (await next(a.identity$)).toHexString();
    await bothOffline(a, b);
    const h = chat(b, 'b: rehomed');
    await outboxWhere(a, (s) => s.queued === 1);
    // Tab a signs out and comes back as someone else: b's entry is quarantined there.
    await a.signOut();
    await next(a.identity$, (i) => i.toHexString() !== oldIdentity, 10_000, 'a new identity');
    await live(a);
    const state = await outboxWhere(a, (s) => s.quarantined.length === 1);
    let settled: CallOutcome['status'] | undefined;
    h.subscribe((x) => (settled = x.status));
    expect(settled, 'still pending while quarantined').to.equal('pending');
    await a.storage!.outbox.rehome(state.quarantined.map((e) => e.id));
    const o = await final(h);
    expect(o.status).to.equal('confirmed');
    const c = o as Extract<CallOutcome, { status: 'confirmed' }>;
    expect(c.via).to.equal('record');
    expect(c.latencyMs, 'no latency made up for a call another tab sent').to.equal(undefined);
    expect(chatTexts(server)).to.deep.equal(['b: rehomed']);
    // b never saw an answer: its metrics hold no latency.
    const m = await next(b.metrics$);
    expect(m.callLatency.count).to.equal(0);
  });

  it('expiry by the lease holder of a drop-if-stale call made in the other tab: rejected as expired there, never sent', async () => {
    let skew = 0;
    const clock = { now: () => Date.now() + skew };
    const { a, b } = await twoTabs({ clock, reducers: { send_chat: { offline: 'drop-if-stale', staleAfterMs: 5_000 } } });
    await bothOffline(a, b);
    const h = chat(b, 'b: stale');
    await outboxWhere(a, (s) => s.queued === 1);
    skew = 6_000; // virtual time: the call is now older than its 5 s
    a.reconnectNow();
    const o = await final(h);
    expect(o.status).to.equal('rejected');
    expect(((o as Extract<CallOutcome, { status: 'rejected' }>).error as ReducerRejectedError).info.kind).to.equal('expired');
    expect((await b.storage!.outbox.outcomes([h.mutationId!]))[0]).to.include({ outcome: 'expired', by: 'deadline' });
    await live(a);
    await chat(a, 'a: fresh');
    expect(chatTexts(server)).to.deep.equal(['a: fresh']);
  });

  it('supersede by the other tab: the older call\'s handle is rejected as superseded; only the newer one is applied', async () => {
    const { a, b } = await twoTabs();
    await bothOffline(a, b);
    const older = chat(b, 'b: move to 1', { supersedeKey: 'move' });
    await outboxWhere(a, (s) => s.queued === 1);
    const newer = chat(a, 'a: move to 2', { supersedeKey: 'move' });
    const o = await final(older);
    expect(o.status).to.equal('rejected');
    expect(((o as Extract<CallOutcome, { status: 'rejected' }>).error as ReducerRejectedError).info.kind).to.equal('superseded');
    expect((await b.storage!.outbox.outcomes([older.mutationId!]))[0]).to.include({ outcome: 'superseded', supersededBy: newer.mutationId });
    a.reconnectNow();
    const c = await newer;
    expect(c.via).to.equal('answer');
    expect(c.latencyMs).to.be.a('number');
    expect(chatTexts(server)).to.deep.equal(['a: move to 2']);
  });

  it('one tab: discarding quarantined entries rejects their own handles as discarded (never confirmed)', async () => {
    const c = client({ storage: await storage() });
    await live(c);
    const oldIdentity = (await next(c.identity$)).toHexString();
    await bothOffline(c);
    const hs = [chat(c, 'old-1'), chat(c, 'old-2')];
    await outboxWhere(c, (s) => s.queued === 2);
    await c.signOut();
    await next(c.identity$, (i) => i.toHexString() !== oldIdentity, 10_000, 'a new identity');
    await live(c);
    const state = await outboxWhere(c, (s) => s.quarantined.length === 2);
    await c.storage!.outbox.discard(state.quarantined.map((e) => e.id));
    for (const h of hs) {
      const o = await final(h);
      expect(o.status).to.equal('rejected');
      expect(((o as Extract<CallOutcome, { status: 'rejected' }>).error as ReducerRejectedError).info.kind).to.equal('discarded');
    }
    await chat(c, 'new');
    expect(chatTexts(server)).to.deep.equal(['new']);
  });
});
