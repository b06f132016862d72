import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { OfflineRefusedError, ReducerRejectedError, type CallOutcome, type ReconciledView, type RowKey } from '../../src/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

type Person = { id: bigint; name: string; age: number; nickName?: string };

describe('sync client: reducer calls and optimistic updates', () => {
  let server: DevServer;
  let client: BasicClient;

  beforeEach(async () => {
    server = await startBasicServer();
    client = basicClient(server);
    await live(client);
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  it('reports pending → confirmed and measures the round trip into metrics$', async () => {
    const sub = client.table$(tables.person).subscribe();
    await next(client.table$(tables.person));
    const outcomes: CallOutcome['status'][] = [];
    const handle = client.call('addPerson', { name: 'x', age: 1 });
    handle.subscribe((o) => outcomes.push(o.status));
    const confirmed = await handle;
    expect(outcomes).to.deep.equal(['pending', 'confirmed']);
    expect(confirmed.latencyMs).to.be.a('number').and.be.greaterThan(0);
    const m = await next(client.metrics$, (x) => x.callLatency.count === 1);
    expect(m.callLatency.lastMs).to.equal(confirmed.latencyMs);
    expect(m.messagesOut.CallReducer).to.equal(1);
    expect(m.tableBytesIn.person).to.be.greaterThan(0);
    sub.unsubscribe();
  });

  it('rejects with ReducerRejectedError carrying the server message', async () => {
    const err = await client.call('addPerson', { name: '', age: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect((err as ReducerRejectedError).message).to.contain('name must not be empty');
    expect((err as ReducerRejectedError).info).to.deep.include({ reducer: 'addPerson', kind: 'sender' });
  });

  it('shows an optimistic insert at once, marked pending, and swaps it for the server row in one emission', async () => {
    const views: ReconciledView<RowKey, Person>[] = [];
    const sub = client.optimistic$(tables.person).subscribe((v) => views.push(v as ReconciledView<RowKey, Person>));
    await next(client.table$(tables.person));
    views.length = 0;
    const handle = client.call('addPerson', { name: 'fast', age: 7 }, {
      optimistic: {
        table: tables.person,
        predict: () => new Map([[-1n, { id: -1n, name: 'fast', age: 7, nickName: undefined }]]),
      },
    });
    // Synchronously visible, before any network round trip.
    expect(views).to.have.length(1);
    expect([...views[0].rows.values()].map((p) => p.name)).to.deep.equal(['fast']);
    expect([...views[0].pending.keys()]).to.deep.equal([-1n]);
    await handle;
    await next(client.table$(tables.person), (m) => !m.has(-1n));
    // Exactly one more emission: the server's row replaced the prediction, no flicker, no duplicate.
    expect(views).to.have.length(2);
    expect([...views[1].rows.values()].map((p) => p.name)).to.deep.equal(['fast']);
    expect(views[1].pending.size).to.equal(0);
    expect(views[1].events).to.deep.equal([]);
    sub.unsubscribe();
  });

  it('rolls an optimistic update back when the server rejects the call', async () => {
    await client.call('addPerson', { name: 'orig', age: 40 });
    const rows = await next(client.table$(tables.person), (m) => m.size === 1);
    const [key, row] = [...rows][0];
    const views: ReconciledView<RowKey, Person>[] = [];
    const sub = client.optimistic$(tables.person).subscribe((v) => views.push(v as ReconciledView<RowKey, Person>));
    views.length = 0;
    server.faults.failNextReducers(1, 'not today');
    const outcome = client.call('renamePerson', { id: row.id, name: 'optimist' }, {
      optimistic: { table: tables.person, predict: (current) => new Map([[key, { ...current.get(key)!, name: 'optimist' }]]) },
    });
    expect(views.at(-1)!.rows.get(key)!.name).to.equal('optimist');
    const err = await outcome.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ReducerRejectedError);
    expect((err as Error).message).to.contain('not today');
    const last = views.at(-1)!;
    expect(last.rows.get(key)!.name).to.equal('orig');
    expect(last.rows.get(key)).to.equal(row);
    expect(last.events.map((e) => e.type)).to.deep.equal(['rollback']);
    sub.unsubscribe();
  });

  it('queues calls made while disconnected and sends them, by priority, once live', async () => {
    await client.close();
    client = basicClient(server, { retry: { initialInterval: 60_000, jitter: 'none' } });
    await live(client);
    server.faults.dropAll();
    await next(client.status$, (s) => s.state === 'reconnecting');
    const order: string[] = [];
    const a = client.call('addPerson', { name: 'low', age: 1 }, { priority: 0 });
    const b = client.call('addPerson', { name: 'high', age: 2 }, { priority: 5 });
    const c1 = client.call('addPerson', { name: 'move-1', age: 3 }, { supersedeKey: 'move' });
    const c2 = client.call('addPerson', { name: 'move-2', age: 4 }, { supersedeKey: 'move' });
    for (const [h, n] of [[a, 'low'], [b, 'high'], [c2, 'move-2']] as const) void h.then(() => order.push(n));
    const superseded = await c1.then(
      () => undefined,
      (e: ReducerRejectedError) => e.info.kind,
    );
    expect(superseded).to.equal('superseded');
    client.reconnectNow();
    await Promise.all([a, b, c2]);
    expect(order[0]).to.equal('high');
    const names = [...(await next(client.table$(tables.person), (m) => m.size === 3)).values()].map((p) => p.name).sort();
    expect(names).to.deep.equal(['high', 'low', 'move-2']);
  });

  it('without storage: per-reducer policies apply (online-only refused offline, drop-if-stale expires in the queue) and outbox$ counts the calls in memory', async () => {
    await client.close();
    client = basicClient(server, {
      retry: { initialInterval: 60_000, jitter: 'none' },
      reducers: { delete_person: { offline: 'online-only' }, rename_person: { offline: 'drop-if-stale', staleAfterMs: 1 } },
    });
    await live(client);
    server.faults.dropAll();
    await next(client.status$, (s) => s.state === 'reconnecting');
    const refused = await client.call('deletePerson', { id: 1n }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(OfflineRefusedError);
    const stale = client.call('renamePerson', { id: 1n, name: 'late' });
    const queued = client.call('addPerson', { name: 'queued', age: 2 });
    const expired = await stale.then(
      () => undefined,
      (e: ReducerRejectedError) => e.info.kind,
    );
    expect(expired).to.equal('expired');
    expect((await next(client.outbox$, (o) => o.queued === 1)).sent).to.equal(0);
    client.reconnectNow();
    await queued;
    await next(client.outbox$, (o) => o.queued === 0 && o.sent === 0);
  });
});
