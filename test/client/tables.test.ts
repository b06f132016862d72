import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';
import type { RowChange } from '../../src/index.ts';
import { until } from '../helpers/until.ts';

describe('sync client: tables as observables (dev server, real socket)', () => {
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

  it('emits the current rows first, also to a late subscriber, at once', async () => {
    await client.call('addPerson', { name: 'ada', age: 36 });
    await client.call('addPerson', { name: 'bob', age: 17 });
    const first = await next(client.table$(tables.person), (m) => m.size === 2);
    expect([...first.values()].map((p) => p.name).sort()).to.deep.equal(['ada', 'bob']);
    // A late subscriber gets the current state synchronously, without a server round trip.
    const seen: number[] = [];
    const sub = client.table$(tables.person).subscribe((m) => seen.push(m.size));
    expect(seen).to.deep.equal([2]);
    sub.unsubscribe();
  });

  it('syncProgress$ counts the rows of the queries subscribed when the connection came up', async () => {
    await client.call('addPerson', { name: 'ada', age: 36 });
    await client.call('addPerson', { name: 'bob', age: 17 });
    await client.call('addPerson', { name: 'cy', age: 51 });
    const other = basicClient(server);
    const sub = other.table$(tables.person, { where: (r) => r.age.gte(18) }).subscribe();
    try {
      const done = await next(other.syncProgress$, (p) => p.total === 1 && p.applied === 1);
      expect(done.rows).to.equal(2);
    } finally {
      sub.unsubscribe();
      await other.close();
    }
  });

  it('filters with the query builder: subscription SQL on the server, the same filter on the shared cache', async () => {
    const adults: string[][] = [];
    const sub = client.table$(tables.person, { where: (r) => r.age.gte(18) }).subscribe((m) => adults.push([...m.values()].map((p) => p.name).sort()));
    const all = await next(client.table$(tables.person), () => true);
    expect(all.size).to.equal(0);
    await client.call('addPerson', { name: 'kid', age: 9 });
    await client.call('addPerson', { name: 'grown', age: 40 });
    await next(client.table$(tables.person, { where: (r) => r.age.gte(18) }), (m) => m.size === 1);
    expect(adults.at(-1)).to.deep.equal(['grown']);
    expect(adults.some((names) => names.includes('kid'))).to.equal(false);
    sub.unsubscribe();
  });

  it('emits once per transaction, never once per row', async () => {
    const sizes: number[] = [];
    const batches: (readonly RowChange<unknown>[])[] = [];
    const s1 = client.table$(tables.person).subscribe((m) => sizes.push(m.size));
    const s2 = client.changes$(tables.person).subscribe((b) => batches.push(b));
    await next(client.table$(tables.person), () => true);
    // One reducer inserting two rows, then failing → nothing; then one successful transaction per call.
    await client.call('insertTwiceThenFail', {}).then(
      () => expect.fail('should be rejected'),
      (e: Error) => expect(e.name).to.equal('ReducerRejectedError'),
    );
    await client.call('addPerson', { name: 'p1', age: 1 });
    await client.call('addPerson', { name: 'p2', age: 2 });
    await next(client.table$(tables.person), (m) => m.size === 2);
    expect(sizes).to.deep.equal([0, 1, 2]);
    expect(batches.map((b) => b.map((c) => c.op))).to.deep.equal([['insert'], ['insert']]);
    s1.unsubscribe();
    s2.unsubscribe();
  });

  it('emits a rename as one update with the old and new row, and shares row objects with the SDK cache', async () => {
    await client.call('addPerson', { name: 'old', age: 50 });
    const before = await next(client.table$(tables.person), (m) => m.size === 1);
    const [key, row] = [...before][0];
    const changes = next(client.changes$(tables.person), (b) => b.some((c) => c.op === 'update'));
    await client.call('renamePerson', { id: row.id, name: 'new' });
    const batch = await changes;
    expect(batch).to.have.length(1);
    expect(batch[0]).to.include({ op: 'update', key });
    expect((batch[0].oldRow as { name: string }).name).to.equal('old');
    expect((batch[0].newRow as { name: string }).name).to.equal('new');
    const after = await next(client.table$(tables.person), (m) => m.get(key)?.name === 'new');
    const cached = [...client.connection!.db.person.iter()].find((p) => p.id === row.id);
    expect(after.get(key)).to.equal(cached);
    // Snapshots are immutable: the earlier one still shows the old row.
    expect(before.get(key)?.name).to.equal('old');
  });

  it('shares one server subscription among observers and releases it after the grace period', async () => {
    const base = server.stats().subscriptions;
    const subs = [1, 2, 3].map(() => client.table$(tables.note).subscribe());
    await next(client.table$(tables.note), () => true);
    expect(server.stats().subscriptions).to.equal(base + 1);
    subs.forEach((s) => s.unsubscribe());
    // Re-subscribing within the grace period keeps the same subscription.
    const again = client.table$(tables.note).subscribe();
    expect(server.stats().subscriptions).to.equal(base + 1);
    again.unsubscribe();
    // After the grace period (50 ms in tests) the server subscription goes away.
    await until(() => server.stats().subscriptions === base, 'the server subscription to be released', 3000);
    expect(server.stats().subscriptions).to.equal(base);
  });

  it('row$ follows one row by primary key', async () => {
    await client.call('addPerson', { name: 'solo', age: 20 });
    const all = await next(client.table$(tables.person), (m) => m.size === 1);
    const id = [...all.values()][0].id;
    const seen: (string | undefined)[] = [];
    const sub = client.row$(tables.person, id).subscribe((p) => seen.push(p?.name));
    await client.call('renamePerson', { id, name: 'duo' });
    await client.call('deletePerson', { id });
    await next(client.row$(tables.person, id), (p) => p === undefined);
    expect(seen).to.deep.equal(['solo', 'duo', undefined]);
    sub.unsubscribe();
  });
});
