import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevServer } from '../../devserver/index.ts';
import { HeartbeatTimeoutError, type RowChange } from '../../src/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { connect, startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

type Person = { id: bigint; name: string; age: number };

describe('sync client: reconnect is invisible except as status (dev server faults)', () => {
  let server: DevServer;
  let client: BasicClient | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reconnects after dropAll with the same identity and emits nothing for unchanged rows', async () => {
    server = await startBasicServer();
    client = basicClient(server);
    await live(client);
    const identity = await next(client.identity$);
    await client.call('addPerson', { name: 'stay', age: 30 });
    const emissions: number[] = [];
    const sub = client.table$(tables.person).subscribe((m) => emissions.push(m.size));
    await next(client.table$(tables.person), (m) => m.size === 1);
    const states: string[] = [];
    const ssub = client.status$.subscribe((s) => states.push(s.state));
    expect(server.faults.dropAll()).to.be.greaterThan(0);
    await next(client.status$, (s) => s.state === 'reconnecting');
    await live(client);
    expect(states).to.include.members(['reconnecting', 'live']);
    expect(client.connection!.identity!.toHexString()).to.equal(identity.toHexString());
    // Unchanged rows emitted nothing; a change after the reconnect flows as usual.
    expect(emissions).to.deep.equal([1]);
    await client.call('addPerson', { name: 'after', age: 31 });
    await next(client.table$(tables.person), (m) => m.size === 2);
    expect(emissions).to.deep.equal([1, 2]);
    sub.unsubscribe();
    ssub.unsubscribe();
  });

  it('detects a blackholed connection by heartbeat, settles the call in flight, and recovers', async () => {
    server = await startBasicServer();
    client = basicClient(server, { heartbeat: { interval: 100, timeout: 200 } });
    await live(client);
    const errors: Error[] = [];
    const esub = client.errors$.subscribe((e) => errors.push(e));
    const started = Date.now();
    server.faults.blackhole(2500);
    const call = client.call('addPerson', { name: 'lost-in-the-void', age: 1 });
    const outcome = await call.then(
      () => 'confirmed',
      (e: Error) => e.name,
    );
    expect(outcome).to.equal('ConnectionLostError');
    const lost = errors.find((e) => e instanceof HeartbeatTimeoutError);
    expect(lost, 'a HeartbeatTimeoutError on errors$').to.not.equal(undefined);
    // Detected well before the blackhole ended (TCP would never have told us).
    expect(Date.now() - started).to.be.lessThan(2000);
    expect(client.status.state).to.be.oneOf(['reconnecting', 'connecting', 'syncing']);
    await live(client, 10_000);
    esub.unsubscribe();
  });

  it('after a restart with dataDir, rows changed and deleted during the outage arrive as one exact diff', async () => {
    dir = mkdtempSync(join(tmpdir(), 'stdb-rx-client-'));
    server = await startBasicServer({ dataDir: dir });
    // A long retry wait: the client stays away while another client changes rows.
    client = basicClient(server, { retry: { initialInterval: 60_000, jitter: 'none' } });
    await live(client);
    const identity = (await next(client.identity$)).toHexString();
    for (const [name, age] of [['keep', 1], ['rename', 2], ['remove', 3]] as const) await client.call('addPerson', { name, age });
    const before = await next(client.table$(tables.person), (m) => m.size === 3);
    const byName = (m: ReadonlyMap<unknown, Person>, n: string) => [...m.values()].find((p) => p.name === n)!;
    const keep = byName(before, 'keep');

    const snapshots: ReadonlyMap<unknown, Person>[] = [];
    const batches: (readonly RowChange<Person>[])[] = [];
    const s1 = client.table$(tables.person).subscribe((m) => snapshots.push(m));
    const s2 = client.changes$(tables.person).subscribe((b) => batches.push(b));
    snapshots.length = 0;
    batches.length = 0;

    await server.faults.restart();
    await next(client.status$, (s) => s.state === 'reconnecting' && s.nextRetryAt !== null);

    const other = await connect(server);
    await other.conn.reducers.renamePerson({ id: byName(before, 'rename').id, name: 'renamed' });
    await other.conn.reducers.deletePerson({ id: byName(before, 'remove').id });
    await other.conn.reducers.addPerson({ name: 'new', age: 4 });
    other.conn.disconnect();

    client.reconnectNow();
    await live(client);
    await next(client.table$(tables.person), (m) => m.size === 3 && byName(m, 'new') !== undefined);
    expect(batches).to.have.length(1);
    const diff = batches[0].map((c) => `${c.op}:${(c.newRow ?? c.oldRow)!.name}`).sort();
    expect(diff).to.deep.equal(['delete:remove', 'insert:new', 'update:renamed']);
    const update = batches[0].find((c) => c.op === 'update')!;
    expect(update.oldRow!.name).to.equal('rename');
    expect(snapshots).to.have.length(1);
    expect([...snapshots[0].values()].map((p) => p.name).sort()).to.deep.equal(['keep', 'new', 'renamed']);
    // The unchanged row emitted nothing, and its object is now the new connection's.
    const cached = [...client.connection!.db.person.iter()].find((p) => p.name === 'keep');
    expect(snapshots[0].get(keep.id)).to.equal(cached);
    // Same token, same identity across the restart.
    expect(client.connection!.identity!.toHexString()).to.equal(identity);
    s1.unsubscribe();
    s2.unsubscribe();
  });
});
