/**
 * Views as the unmodified SDK sees them: per-caller views (`ctx.sender`) and
 * anonymous ones, subscribed to and queried like tables, updated when the
 * tables they read change.
 */
import { expect } from 'chai';
import { accessFor } from '../../devserver/subscriptions.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { until } from '../helpers/until.ts';
import { secureSuite, startSecureServer, subscribeSecure, type SecureClient } from '../helpers/secure.ts';

describe('views', function () {
  const suite = secureSuite();
  const client = suite.client;


  it('computes a per-caller view for each subscriber and updates it when its tables change', async () => {
    const a = await client();
    const b = await client();
    await a.conn.reducers.setName({ name: 'ann' });
    await b.conn.reducers.setName({ name: 'bob' });
    await subscribeSecure(a, ['SELECT * FROM my_account']);
    await subscribeSecure(b, ['SELECT * FROM my_account']);
    const name = (c: SecureClient) => [...c.conn.db.myAccount.iter()].map((r) => r.name);
    expect(name(a)).to.deep.equal(['ann']);
    expect(name(b)).to.deep.equal(['bob']);
    // Each run records the keys it looked up: A's rename runs A's view again, not B's.
    const views = accessFor(suite.server.module, undefined).views;
    const runs = views.runs;
    await a.conn.reducers.setName({ name: 'anna' });
    await until(() => name(a)[0] === 'anna', 'renamed view row', 5000);
    expect(views.runs).to.equal(runs + 1);
    expect(name(a)).to.deep.equal(['anna']);
    // B's own call is answered after any update the rename caused for B: none reached it.
    await b.conn.reducers.post({ text: 'sync' });
    expect(name(b)).to.deep.equal(['bob']);
  });

  it('sends an optional-row view its row once it exists, and array views every row', async () => {
    const a = await client();
    await subscribeSecure(a, ['SELECT * FROM my_account', 'SELECT * FROM my_messages']);
    expect(a.conn.db.myAccount.count()).to.equal(0n);
    await a.conn.reducers.setName({ name: 'late' });
    await until(() => a.conn.db.myAccount.count() === 1n, 'view row', 5000);
    await a.conn.reducers.post({ text: 'one' });
    await a.conn.reducers.post({ text: 'two' });
    await until(() => a.conn.db.myMessages.count() === 2n, 'two messages', 5000);
    await a.conn.reducers.deleteMine({});
    await until(() => a.conn.db.myMessages.count() === 0n, 'messages gone', 5000);
  });

  it('serves an anonymous view to everyone and recomputes it when anyone changes what it reads', async () => {
    const a = await client();
    const b = await client();
    await subscribeSecure(a, ['SELECT * FROM totals']);
    await subscribeSecure(b, ['SELECT * FROM totals']);
    const totals = (c: SecureClient) => [...c.conn.db.totals.iter()].map((r) => [r.accounts, r.messages]);
    expect(totals(a)).to.deep.equal([[0n, 0n]]);
    await b.conn.reducers.setName({ name: 'bob' });
    await b.conn.reducers.post({ text: 'hi' });
    await until(() => totals(a)[0]?.[1] === 1n, 'totals in a', 5000);
    expect(totals(a)).to.deep.equal([[1n, 1n]]);
    await until(() => totals(b)[0]?.[1] === 1n, 'totals in b', 5000);
    // Creating a room touches no table the view reads: the view is not run again.
    const views = accessFor(suite.server.module, undefined).views;
    const runs = views.runs;
    await a.conn.reducers.createRoom({ id: 9, title: 'x' });
    expect(views.runs).to.equal(runs);
    await a.conn.reducers.post({ text: 'again' });
    expect(views.runs).to.equal(runs + 1);
    expect(totals(a)).to.deep.equal([[1n, 2n]]);
  });

  it('reads a view that returns a query, bypassing the visibility filters of its table', async () => {
    const a = await client();
    const b = await client();
    await b.conn.reducers.createRoom({ id: 1, title: 'b-room' });
    await subscribeSecure(a, ['SELECT * FROM all_rooms', 'SELECT * FROM room']);
    // The room table is filtered (A is no member); the view shows every room.
    expect(a.conn.db.room.count()).to.equal(0n);
    expect([...a.conn.db.allRooms.iter()].map((r) => r.title)).to.deep.equal(['b-room']);
    await b.conn.reducers.createRoom({ id: 2, title: 'b-room-2' });
    await until(() => a.conn.db.allRooms.count() === 2n, 'second room in the view', 5000);
  });

  it('filters view rows with WHERE and answers one-off queries on views', async () => {
    const a = await client();
    await a.conn.reducers.post({ text: 'keep' });
    await a.conn.reducers.post({ text: 'drop' });
    await subscribeSecure(a, ["SELECT * FROM my_messages WHERE text = 'keep'"]);
    expect([...a.conn.db.myMessages.iter()].map((r) => r.text)).to.deep.equal(['keep']);

    const raw = await RawClient.open(suite.server, { token: a.token });
    await raw.next('InitialConnection');
    raw.send({ tag: 'OneOffQuery', value: { requestId: 7, queryString: 'SELECT * FROM my_messages' } });
    const res = await raw.next('OneOffQueryResult', (m) => m.value.requestId === 7);
    expect(res.value.result.tag).to.equal('Ok');
    const tables = (res.value.result as { value: { tables: { table: string; rows: { rowsData: Uint8Array } }[] } }).value.tables;
    expect(tables[0].table).to.equal('my_messages');
    expect(Buffer.from(tables[0].rows.rowsData).toString('latin1')).to.include('keep').and.include('drop');
    raw.send({ tag: 'OneOffQuery', value: { requestId: 8, queryString: 'SELECT * FROM my_messages WHERE nope = 1' } });
    const bad = await raw.next('OneOffQueryResult', (m) => m.value.requestId === 8);
    expect(bad.value.result.tag).to.equal('Err');
    expect(String(bad.value.result.value)).to.match(/unknown column "nope"/);
    raw.close();
  });

  it('keeps the rows subscribers have when a view fails while updates are computed, and logs it', async () => {
    await suite.server.stop();
    const lines: string[] = [];
    suite.server = await startSecureServer({ logger: { log: (level, message) => lines.push(`${level} ${message}`) } });
    const raw = await RawClient.open(suite.server);
    await raw.next('InitialConnection');
    raw.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: ['SELECT * FROM fragile'] } });
    await raw.next('SubscribeApplied', (m) => m.value.requestId === 1);
    const post = (requestId: number, text: string) => {
      const bytes = Buffer.from(text, 'utf8');
      const args = new Uint8Array(4 + bytes.length);
      new DataView(args.buffer).setUint32(0, bytes.length, true);
      args.set(bytes, 4);
      raw.send({ tag: 'CallReducer', value: { requestId, flags: 0, reducer: 'post', args } });
    };
    post(2, 'boom');
    const failed = await raw.next('ReducerResult', (m) => m.value.requestId === 2);
    // The call itself committed; the view's failure sent no update (no delete of the row the client has).
    expect(failed.value.result.tag).to.equal('Ok');
    const update = (failed.value.result as { value: { transactionUpdate: { querySets: unknown[] } } }).value.transactionUpdate;
    expect(update.querySets).to.deep.equal([]);
    expect(lines.some((l) => /^warn view fragile failed: Error: boom found; its subscribers keep the rows they have$/.test(l)), lines.join('\n')).to.equal(true);
    raw.close();
  });

  it('fails a subscription to a view that throws, with its message, and keeps the connection', async () => {
    const raw = await RawClient.open(suite.server);
    await raw.next('InitialConnection');
    raw.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: ['SELECT * FROM broken'] } });
    const err = await raw.next('SubscriptionError', (m) => m.value.requestId === 1);
    expect(err.value.error).to.match(/view broken failed: Error: this view always fails/);
    raw.send({ tag: 'Subscribe', value: { requestId: 2, querySetId: { id: 2 }, queryStrings: ['SELECT * FROM totals'] } });
    await raw.next('SubscribeApplied', (m) => m.value.requestId === 2);
    raw.close();
  });
});
