/**
 * The dev server as the unmodified SDK sees it, over real sockets on
 * 127.0.0.1 — the behaviours SpacetimeDB's own SDK conformance clients check.
 */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { connect, startBasicServer, v2OnlyWebSocket, type Connected } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { V2_PROTOCOL, V3_PROTOCOL } from '../../devserver/protocol/framing.ts';
import { BinaryWriter } from 'spacetimedb';

function subscribe(c: Connected, queries: string[]) {
  return new Promise<{ unsubscribe: () => void; handle: any }>((resolve, reject) => {
    const handle = c.conn
      .subscriptionBuilder()
      .onApplied(() => resolve({ handle, unsubscribe: () => handle.unsubscribe() }))
      .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(queries);
  });
}

describe('dev server with the unmodified SDK', function () {
  let server: DevServer;
  const open: Connected[] = [];
  const client = async (opts: Parameters<typeof connect>[1] = {}) => {
    const c = await connect(server, opts);
    open.push(c);
    return c;
  };

  beforeEach(async () => {
    server = await startBasicServer();
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.conn.disconnect();
    await server.stop();
  });

  describe('connecting', () => {
    it('mints an identity for an anonymous client and keeps it for its saved token', async () => {
      const first = await client();
      expect(first.identity.toHexString()).to.match(/^c200[0-9a-f]{60}$/);
      expect(first.token.split('.')).to.have.length(3);
      const second = await client({ token: first.token });
      expect(second.identity.toHexString()).to.equal(first.identity.toHexString());
      // reconnect_different_connection_id: same identity, a new connection.
      expect(second.conn.connectionId.toHexString()).to.not.equal(first.conn.connectionId.toHexString());
    });

    it('refuses a forged token before the upgrade', async () => {
      const good = await client();
      const [h, p] = good.token.split('.');
      const forged = `${h}.${p}.${Buffer.from('not a signature').toString('base64url')}`;
      let error: unknown;
      await connect(server, { token: forged }).catch((e) => (error = e));
      expect(String(error)).to.match(/Failed to verify token/);
      const res = await fetch(`${server.url}/v1/identity/websocket-token`, {
        method: 'POST',
        headers: { authorization: `Bearer ${forged}` },
      });
      expect(res.status).to.equal(401);
      expect(await res.text()).to.not.include(forged);
    });

    it('answers HTTP errors as SpacetimeDB does', async () => {
      expect((await fetch(`${server.url}/v1/ping`)).status).to.equal(200);
      const minted = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json();
      expect(minted.identity).to.match(/^c200/);
      expect(minted.token).to.be.a('string');
      await RawClient.open(server, { database: 'nope' }).then(
        () => expect.fail('connected to an unknown database'),
        (e) => expect(e.message).to.equal('HTTP 404'),
      );
      await RawClient.open(server, { protocols: ['v1.json.spacetimedb'] }).then(
        () => expect.fail('connected without a supported subprotocol'),
        (e) => expect(e.message).to.equal('HTTP 400'),
      );
      await RawClient.open(server, { token: 'garbage' }).then(
        () => expect.fail('connected with a garbage token'),
        (e) => expect(e.message).to.equal('HTTP 401'),
      );
    });

    it('runs clientConnected and clientDisconnected (connect_disconnect_callbacks)', async () => {
      const watcher = await client();
      await subscribe(watcher, ['SELECT * FROM connections']);
      const other = await connect(server);
      const id = other.identity.toHexString();
      const row = () => [...watcher.conn.db.connections.iter()].find((r) => r.identity.toHexString() === id);
      await until(() => row()?.connected === true, 'connected row', 5000);
      other.conn.disconnect();
      await until(() => row()?.connected === false, 'disconnected row', 5000);
    });
  });

  describe('subscriptions', () => {
    it('delivers current rows, then inserts, updates and deletes to the caller and others exactly once', async () => {
      const a = await client();
      const b = await client();
      await a.conn.reducers.addPerson({ name: 'ann', age: 30 });
      const events: string[] = [];
      b.conn.db.person.onInsert((_c, r) => events.push(`insert ${r.name}`));
      b.conn.db.person.onUpdate((_c, o, n) => events.push(`update ${o.name}->${n.name}`));
      b.conn.db.person.onDelete((_c, r) => events.push(`delete ${r.name}`));
      const callerEvents: string[] = [];
      a.conn.db.person.onInsert((_c, r) => callerEvents.push(`insert ${r.name}`));
      a.conn.db.person.onUpdate((_c, o, n) => callerEvents.push(`update ${o.name}->${n.name}`));
      a.conn.db.person.onDelete((_c, r) => callerEvents.push(`delete ${r.name}`));
      await subscribe(b, ['SELECT * FROM person']);
      await subscribe(a, ['SELECT * FROM person']);
      expect(events).to.deep.equal(['insert ann']);

      await a.conn.reducers.addPerson({ name: 'bob', age: 20 });
      // caller_always_notified: the caller's rows are applied before its promise resolves.
      expect(callerEvents).to.deep.equal(['insert ann', 'insert bob']);
      const bob = [...a.conn.db.person.iter()].find((p) => p.name === 'bob')!;
      await a.conn.reducers.renamePerson({ id: bob.id, name: 'bobby' });
      await a.conn.reducers.deletePerson({ id: bob.id });
      expect(callerEvents).to.deep.equal(['insert ann', 'insert bob', 'update bob->bobby', 'delete bobby']);
      await until(() => events.length === 4, 'updates at the other client', 5000);
      expect(events).to.deep.equal(['insert ann', 'insert bob', 'update bob->bobby', 'delete bobby']);
    });

    it('rejects a reducer Err with the module message and applies nothing (fail_reducer)', async () => {
      const a = await client();
      await subscribe(a, ['SELECT * FROM person']);
      let err: any;
      await a.conn.reducers.addPerson({ name: '', age: 1 }).catch((e) => (err = e));
      expect(err?.name).to.equal('SenderError');
      expect(err?.message).to.equal('name must not be empty');
      err = undefined;
      await a.conn.reducers.insertTwiceThenFail({}).catch((e) => (err = e));
      expect(err?.message).to.match(/boom/);
      expect(a.conn.db.person.count()).to.equal(0n);
    });

    it('keeps the SDK cache right through overlapping query sets and unsubscribes (overlapping_subscriptions, row_deduplication)', async () => {
      const a = await client();
      for (const [name, age] of [['ann', 30], ['bob', 12], ['cy', 50]] as const) await a.conn.reducers.addPerson({ name, age });
      const deleted: string[] = [];
      a.conn.db.person.onDelete((_c, r) => deleted.push(r.name));
      const all = await subscribe(a, ['SELECT * FROM person']);
      const adults = await subscribe(a, ['SELECT * FROM person WHERE age > 18', 'SELECT * FROM person WHERE name = \'ann\'']);
      expect(a.conn.db.person.count()).to.equal(3n);
      all.unsubscribe();
      await until(() => a.conn.db.person.count() === 2n, 'bob to leave the cache', 5000);
      expect(deleted).to.deep.equal(['bob']);
      adults.unsubscribe();
      await until(() => a.conn.db.person.count() === 0n, 'cache to empty', 5000);
      expect(deleted.sort()).to.deep.equal(['ann', 'bob', 'cy']);
    });

    it('filters by :sender (parameterized subscriptions)', async () => {
      const a = await client();
      const b = await client();
      await a.conn.reducers.addNote({ personId: 1n, body: 'from a' });
      await b.conn.reducers.addNote({ personId: 1n, body: 'from b' });
      await subscribe(a, ['SELECT * FROM note WHERE owner = :sender']);
      await subscribe(b, ['SELECT * FROM note WHERE owner = :sender']);
      expect([...a.conn.db.note.iter()].map((n) => n.body)).to.deep.equal(['from a']);
      expect([...b.conn.db.note.iter()].map((n) => n.body)).to.deep.equal(['from b']);
      await b.conn.reducers.addNote({ personId: 2n, body: 'b again' });
      await a.conn.reducers.addNote({ personId: 2n, body: 'a again' });
      await until(() => b.conn.db.note.count() === 2n);
      expect([...a.conn.db.note.iter()].map((n) => n.body).sort()).to.deep.equal(['a again', 'from a']);
      expect([...b.conn.db.note.iter()].map((n) => n.body).sort()).to.deep.equal(['b again', 'from b']);
    });

    it('serves a join subscription incrementally', async () => {
      const a = await client();
      const b = await client();
      await a.conn.reducers.addPerson({ name: 'ann', age: 30 });
      await a.conn.reducers.addPerson({ name: 'kid', age: 8 });
      const ids = new Map<string, bigint>();
      await subscribe(a, ['SELECT * FROM person']);
      for (const p of a.conn.db.person.iter()) ids.set(p.name, p.id);
      await a.conn.reducers.addNote({ personId: ids.get('ann')!, body: 'adult note' });
      await a.conn.reducers.addNote({ personId: ids.get('kid')!, body: 'kid note' });
      await subscribe(b, ['SELECT note.* FROM note JOIN person ON note.person_id = person.id WHERE person.age > 18']);
      expect([...b.conn.db.note.iter()].map((n) => n.body)).to.deep.equal(['adult note']);
      // The kid grows up: their note joins the result without being inserted again.
      await a.conn.reducers.deletePerson({ id: ids.get('kid')! });
      await a.conn.reducers.addPerson({ name: 'kid', age: 8 });
      await a.conn.reducers.addNote({ personId: ids.get('ann')!, body: 'second adult note' });
      await until(() => b.conn.db.note.count() === 2n, 'second adult note', 5000);
      expect([...b.conn.db.note.iter()].map((n) => n.body).sort()).to.deep.equal(['adult note', 'second adult note']);
    });

    it('answers invalid SQL with a SubscriptionError (subscription_error_smoke_test)', async () => {
      const a = await client();
      let err: unknown;
      await subscribe(a, ['SELECT * FROM nowhere']).catch((e) => (err = e));
      expect(String(err)).to.match(/nowhere/);
      err = undefined;
      await subscribe(a, ['SELECT * FROM person WHERE NOT age = 3']).catch((e) => (err = e));
      expect(String(err)).to.match(/NOT/);
      // The connection stays usable.
      await subscribe(a, ['SELECT * FROM person']);
    });
  });

  describe('protocol variants', () => {
    // Node 20's DecompressionStream has no brotli, so the SDK refuses it there; the raw test below covers it.
    for (const compression of ['none', 'gzip'] as const) {
      it(`syncs a large subscription with compression ${compression} (two_different_compression_algos)`, async () => {
        const a = await client({ compression });
        for (let i = 0; i < 40; i++) await a.conn.reducers.addPerson({ name: `person-with-a-long-name-${i}`, age: i });
        const b = await client({ compression });
        await subscribe(b, ['SELECT * FROM person']);
        expect(b.conn.db.person.count()).to.equal(40n);
      });
    }

    it('tags each server frame with its compression, compressing only bodies over 1 KiB', async () => {
      const a = await client();
      for (let i = 0; i < 40; i++) await a.conn.reducers.addPerson({ name: `person-with-a-long-name-${i}`, age: i });
      for (const [compression, tag] of [['None', 0], ['Gzip', 2], ['Brotli', 1]] as const) {
        const raw = await RawClient.open(server, { compression });
        await raw.next('InitialConnection');
        expect(raw.frames[0][0], `${compression}: small InitialConnection`).to.equal(0);
        raw.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: ['SELECT * FROM person'] } });
        const applied = await raw.next('SubscribeApplied');
        expect(raw.frames.at(-1)![0], `${compression}: large SubscribeApplied`).to.equal(tag);
        expect(applied.value.rows.tables[0].rows.rowsData.length).to.be.greaterThan(1024);
        raw.close();
      }
    });

    it('speaks v2 to an SDK that offers only v2', async () => {
      const a = await client({ wsFn: v2OnlyWebSocket });
      const b = await client({ wsFn: v2OnlyWebSocket, compression: 'gzip' });
      await subscribe(b, ['SELECT * FROM person']);
      await a.conn.reducers.addPerson({ name: 'v2', age: 2 });
      await until(() => b.conn.db.person.count() === 1n, 'v2 update', 5000);
      const raw = await RawClient.open(server, { protocols: [V2_PROTOCOL] });
      expect(raw.protocol).to.equal(V2_PROTOCOL);
      raw.close();
    });

    it('packs same-tick messages into one v3 frame and one message per v2 frame', async () => {
      for (const protocol of [V3_PROTOCOL, V2_PROTOCOL]) {
        const raw = await RawClient.open(server, { protocols: [protocol] });
        await raw.next('InitialConnection');
        const before = raw.frames.length;
        const subs = [1, 2, 3].map((id) => ({
          tag: 'Subscribe' as const,
          value: { requestId: id, querySetId: { id }, queryStrings: ['SELECT * FROM person'] },
        }));
        if (protocol === V3_PROTOCOL) raw.send(...subs);
        else for (const s of subs) raw.send(s);
        await raw.next('SubscribeApplied', (m) => m.value.requestId === 3);
        expect(raw.frames.length - before).to.equal(protocol === V3_PROTOCOL ? 1 : 3);
        raw.close();
      }
    });
  });

  describe('bad input', () => {
    it('closes only the socket that sent a malformed frame, with 1011 and a reason', async () => {
      const a = await client();
      const raw = await RawClient.open(server);
      await raw.next('InitialConnection');
      raw.sendRaw(new Uint8Array([0xff, 1, 2, 3]));
      const { code, reason } = await raw.closed();
      expect(code).to.equal(1011);
      expect(reason).to.match(/tag/i);
      await a.conn.reducers.addPerson({ name: 'still here', age: 1 });
      await subscribe(a, ['SELECT * FROM person']);
      expect(a.conn.db.person.count()).to.equal(1n);
    });

    it('reports unknown reducers and undecodable arguments as InternalError', async () => {
      const raw = await RawClient.open(server);
      await raw.next('InitialConnection');
      raw.send({ tag: 'CallReducer', value: { requestId: 7, flags: 0, reducer: 'no_such_reducer', args: new Uint8Array() } });
      const unknown = await raw.next('ReducerResult', (m) => m.value.requestId === 7);
      expect(unknown.value.result).to.deep.include({ tag: 'InternalError' });
      expect((unknown.value.result as any).value).to.match(/no such reducer/);
      raw.send({ tag: 'CallReducer', value: { requestId: 8, flags: 0, reducer: 'add_person', args: new Uint8Array([1]) } });
      const bad = await raw.next('ReducerResult', (m) => m.value.requestId === 8);
      expect(bad.value.result.tag).to.equal('InternalError');
      raw.send({ tag: 'CallReducer', value: { requestId: 9, flags: 0, reducer: 'on_connect', args: new Uint8Array() } });
      const lifecycle = await raw.next('ReducerResult', (m) => m.value.requestId === 9);
      expect((lifecycle.value.result as any).value).to.match(/cannot be called by clients/);
      raw.close();
    });

    it('answers a one-off query and a duplicate query set id', async () => {
      const raw = await RawClient.open(server);
      await raw.next('InitialConnection');
      const w = new BinaryWriter(32);
      w.writeString('oneoff');
      w.writeU32(44);
      raw.send({ tag: 'CallReducer', value: { requestId: 1, flags: 0, reducer: 'add_person', args: w.getBuffer().slice() } });
      await raw.next('ReducerResult', (m) => m.value.requestId === 1 && m.value.result.tag === 'Ok');
      raw.send({ tag: 'OneOffQuery', value: { requestId: 2, queryString: 'SELECT * FROM person WHERE age = 44' } });
      const res = await raw.next('OneOffQueryResult');
      expect(res.value.result.tag).to.equal('Ok');
      const sub = { tag: 'Subscribe' as const, value: { requestId: 3, querySetId: { id: 5 }, queryStrings: ['SELECT * FROM person'] } };
      raw.send(sub);
      await raw.next('SubscribeApplied');
      raw.send({ ...sub, value: { ...sub.value, requestId: 4 } });
      const dup = await raw.next('SubscriptionError', (m) => m.value.requestId === 4);
      expect(dup.value.error).to.match(/already subscribed/);
      raw.close();
    });
  });
});
