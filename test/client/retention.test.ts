import { expect } from 'chai';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { DevServer } from '../../devserver/index.ts';
import { ConnectionLostError, ReducerRejectedError, type SyncStatus } from '../../src/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

// A full collection on demand, without running the whole suite under --expose-gc.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('sync client: errors and call handles kept by an app retain no dead connection', () => {
  let server: DevServer;
  let client: BasicClient | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server?.stop();
  });

  it('100 reconnects with rejected calls in between leave no DbConnection behind', async function () {
    this.timeout(180_000);
    server = await startBasicServer();
    client = basicClient(server, { heartbeat: undefined });
    // What an app might keep forever: every error, every status (with its lastError), every call handle and outcome.
    const kept: unknown[] = [];
    const esub = client.errors$.subscribe((e) => kept.push(e));
    const ssub = client.status$.subscribe((s: SyncStatus) => kept.push(s));
    const alive = new Set<number>();
    const registry = new FinalizationRegistry<number>((n) => alive.delete(n));
    const registered = new WeakSet<object>();
    let connections = 0;
    const rounds = 100;
    for (let i = 0; i < rounds; i++) {
      await live(client, 10_000);
      const conn = client.connection;
      if (conn && !registered.has(conn)) {
        registered.add(conn);
        alive.add(connections);
        registry.register(conn, connections++);
      }
      const handle = client.call('addPerson', { name: '', age: 1 }); // the reducer throws SenderError
      kept.push(handle);
      kept.push(await handle.then(() => new Error('expected a rejection'), (e: unknown) => e));
      server.faults.dropAll();
      await next(client.status$, (s) => s.state !== 'live', 10_000, 'the drop');
    }
    await live(client, 10_000);
    // Collect until the finalizers of all but the last connections have run
    // (they run on a later task than the collection that frees them).
    await until(
      () => {
        gc();
        return alive.size <= 2;
      },
      () => `the DbConnections to be collected (${alive.size} of ${connections} still reachable)`,
      10_000,
    );
    esub.unsubscribe();
    ssub.unsubscribe();
    const rejections = [...new Set(kept.filter((k) => k instanceof ReducerRejectedError))] as ReducerRejectedError[];
    expect(rejections).to.have.length(rounds);
    expect(rejections[0].info.kind).to.equal('sender');
    expect((rejections[0].cause as Error).message).to.contain('name must not be empty');
    expect(kept.some((k) => k instanceof ConnectionLostError || (k as SyncStatus).lastError instanceof ConnectionLostError)).to.equal(true);
    expect(connections).to.be.at.least(rounds);
    // Only the connection in use (and at most the one being replaced) may still be reachable.
    expect(alive.size, `${alive.size} of ${connections} DbConnections still reachable`).to.be.at.most(2);
  });
});
