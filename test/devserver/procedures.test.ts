/**
 * Procedures on the dev server through the unmodified SDK: return values
 * (primitive, struct, identity), `ctx.withTx` commits that subscribers see,
 * rolled-back transactions, a throwing procedure, and HTTP refused.
 */
import { expect } from 'chai';
import { startDevServer, type DevServer } from '../../devserver/index.ts';
import { HTTP_REFUSED_MESSAGE } from '../../devserver/host/procedures.ts';
import type { DbConnection } from '../fixtures/timers_bindings/index.ts';
import { until } from '../helpers/until.ts';
import { connectTimers, TIMERS_MODULE } from '../helpers/timers.ts';

describe('dev server: procedures', () => {
  let server: DevServer;
  let conn: DbConnection;
  let other: DbConnection;

  beforeEach(async () => {
    server = await startDevServer({ module: TIMERS_MODULE, port: 0 });
    conn = await connectTimers(server);
    other = await connectTimers(server);
  });

  afterEach(async () => {
    conn.disconnect();
    other.disconnect();
    await server.stop();
  });

  it('returns values of every shape to the caller', async () => {
    expect(await conn.procedures.addPair({ a: 2, b: 40 })).to.deep.equal({ sum: 42, label: '2+40' });
    const id = await conn.procedures.whoAmI({});
    expect(id.isEqual(server.module.databaseIdentity)).to.equal(true);
  });

  it('commits each withTx transaction and sends it to every subscriber, the caller included', async () => {
    expect(await conn.procedures.addItems({ names: ['sword', 'shield'] })).to.equal(2);
    await until(() => [...other.db.item.iter()].length === 2, 'items at the other client', 5000);
    await until(() => [...conn.db.item.iter()].length === 2, 'items at the caller', 5000);
    expect([...other.db.item.iter()].map((r) => r.name).sort()).to.deep.equal(['shield', 'sword']);
  });

  it('rolls back a transaction whose body throws, and the procedure goes on', async () => {
    await conn.procedures.addItems({ names: ['kept'] });
    expect(await conn.procedures.addThenRollBack({ name: 'discarded' })).to.equal(1);
    expect([...server.module.datastore.scan('item')].map((r) => r.value.name)).to.deep.equal(['kept']);
  });

  it('refuses a transaction opened inside another with WouldBlockTransaction', async () => {
    expect(await conn.procedures.nestedTx({})).to.equal('WouldBlockTransaction');
  });

  it('fails a procedure that throws with its message, and keeps serving', async () => {
    let err: unknown;
    await conn.procedures.alwaysThrows({}).catch((e) => (err = e));
    expect(String((err as Error)?.message ?? err)).to.match(/this procedure always throws/);
    expect(await conn.procedures.addPair({ a: 1, b: 1 })).to.deep.equal({ sum: 2, label: '1+1' });
  });

  it("refuses outbound HTTP with the module library's HttpError, loopback included", async () => {
    for (const url of ['http://127.0.0.1:1/', server.url + '/v1/ping', 'https://example.com/']) {
      expect(await conn.procedures.tryFetch({ url })).to.equal(`HttpError: ${HTTP_REFUSED_MESSAGE}`);
    }
  });
});
