import { expect } from 'chai';
import { lastValueFrom, toArray } from 'rxjs';
import type { DevServer } from '../../devserver/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next } from '../helpers/syncClient.ts';
import { until } from '../helpers/until.ts';

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('sync client: close()', () => {
  let server: DevServer;
  beforeEach(async () => {
    server = await startBasicServer();
  });
  afterEach(async () => {
    await server.stop();
  });

  it('completes every stream, rejects queued calls and leaves no timer or socket behind', async () => {
    // Mocha arms its own test timeout right after this function returns its promise: count after that.
    await new Promise((r) => setImmediate(r));
    const baseline = timers();
    const client = basicClient(server);
    const ends = Promise.all([
      lastValueFrom(client.status$.pipe(toArray())),
      lastValueFrom(client.phase$.pipe(toArray())),
      lastValueFrom(client.errors$.pipe(toArray())),
      lastValueFrom(client.metrics$.pipe(toArray())),
      lastValueFrom(client.syncProgress$.pipe(toArray())),
      lastValueFrom(client.identity$.pipe(toArray())),
      lastValueFrom(client.table$(tables.person).pipe(toArray())),
    ]);
    await live(client);
    // Heartbeat and grace timers run while live.
    const sub = client.table$(tables.note).subscribe();
    await next(client.table$(tables.note));
    sub.unsubscribe();
    expect(server.stats().connections).to.equal(1);

    server.faults.dropAll();
    await next(client.status$, (s) => s.state === 'reconnecting');
    const queued = client.call('addPerson', { name: 'never', age: 1 }).then(
      () => 'confirmed',
      (e: Error) => e.name,
    );
    await client.close();
    const [statuses] = await ends;
    expect(statuses.at(-1)!.state).to.equal('closed');
    expect(await queued).to.equal('ConnectionLostError');
    // The status$ of a closed client replays nothing more and completes at once.
    expect(await lastValueFrom(client.table$(tables.person).pipe(toArray()))).to.deep.equal([]);

    await until(
      () => server.stats().connections === 0 && timers() <= baseline,
      () => `every socket and timer to go (left behind: ${server.stats().connections} sockets, ${timers() - baseline} timers)`,
      3000,
    );
    expect(timers()).to.be.at.most(baseline);
  });
});
