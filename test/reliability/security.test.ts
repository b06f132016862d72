/**
 * Security properties of the dev server: tokens never reach its logs, error
 * answers or close reasons; the admin endpoints are absent unless asked for,
 * loopback-only, POST-only (but stats) and strict about parameters; the size
 * and queue limits hold, also under injected latency.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import type { DevServer } from '../../devserver/index.ts';
import { isLoopback } from '../../devserver/http/request.ts';
import { TokenAuthority } from '../../devserver/auth.ts';
import { V3_PROTOCOL } from '../../devserver/protocol/framing.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { connect, rawHttp, startBasicServer, upgradeRequest, Watch } from './harness.ts';
import { tcpWebSocket } from '../helpers/tcp.ts';
import { until } from '../helpers/until.ts';

const JWT_LIKE = /eyJ[A-Za-z0-9_-]{8,}/;

describe('reliability: security', function () {
  this.timeout(30_000);
  const servers: DevServer[] = [];
  const watches: Watch[] = [];
  const start = async (opts: Parameters<typeof startBasicServer>[0] = {}) => {
    const watch = new Watch().start();
    watches.push(watch);
    const s = await startBasicServer({ logger: watch.logger, ...opts });
    servers.push(s);
    return { s, watch };
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    for (const w of watches.splice(0)) {
      w.stop();
      w.expectClean();
    }
  });

  it('never writes a token to the log (every level down to trace), an error answer or a close reason', async () => {
    const { s, watch } = await start();
    const texts: string[] = []; // every error answer and close reason the session produced
    const tokens: string[] = [];

    // A client with a token: the SDK exchanges it for a short-lived one, then connects.
    const minted = (await (await fetch(`${s.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    tokens.push(minted.token);
    const a = await connect(s, { token: minted.token });
    const short = (await (await fetch(`${s.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${minted.token}` } })).json()) as { token: string };
    tokens.push(short.token);
    const anon = await connect(s);
    tokens.push(anon.token);

    // Failed authentication, both doors, with tokens that look real.
    const foreign = (await TokenAuthority.ephemeral().mint()).token;
    const [h, p] = minted.token.split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64, 7).toString('base64url')}`;
    tokens.push(foreign, forged);
    for (const t of [foreign, forged, 'garbage.token.here']) {
      const res = await fetch(`${s.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${t}` } });
      texts.push(await res.text());
      texts.push((await rawHttp(s.port, upgradeRequest(`/v1/database/${s.database}/subscribe?token=${encodeURIComponent(t)}`))).text);
      texts.push((await rawHttp(s.port, upgradeRequest(`/v1/database/${s.database}/subscribe`, [`Authorization: Bearer ${t}`]))).text);
    }
    // A token in a path where none belongs.
    texts.push(await (await fetch(`${s.url}/v1/database/x/${encodeURIComponent(minted.token)}`)).text());

    // Reducers: committed, refused by the module, failing inside, logging, unknown.
    await a.conn.reducers.addPerson({ name: 'logged', age: 1 });
    await a.conn.reducers.addPerson({ name: '', age: 1 }).catch((e: Error) => texts.push(String(e)));
    await a.conn.reducers.insertTwiceThenFail({}).catch((e: Error) => texts.push(String(e)));
    await a.conn.reducers.logSomething({ message: 'a message from the module' });
    await a.conn.reducers.countAdults({ minAge: 0 });
    const raw = await RawClient.open(s, { token: short.token });
    await raw.next('InitialConnection');
    raw.send({ tag: 'CallReducer', value: { requestId: 1, flags: 0, reducer: 'nope', args: new Uint8Array() } });
    texts.push(JSON.stringify((await raw.next('ReducerResult')).value.result));
    raw.send({ tag: 'Subscribe', value: { requestId: 2, querySetId: { id: 1 }, queryStrings: ['SELECT * FROM nowhere'] } });
    texts.push((await raw.next('SubscriptionError')).value.error);
    // A malformed frame: the close reason.
    raw.sendRaw(new Uint8Array([0xff]));
    texts.push((await raw.closed()).reason);
    a.conn.disconnect();
    anon.conn.disconnect();
    await until(() => s.stats().connections === 0, 'disconnects', 5000);

    const lines = watch.lines.map((l) => `[${l.level}] ${l.message}`);
    expect(lines.some((l) => /client connected/.test(l)), 'the session was logged at debug level').to.equal(true);
    expect(lines.some((l) => /a message from the module/.test(l)), 'module logs were captured').to.equal(true);
    for (const [where, all] of [['log', lines], ['answers and close reasons', texts]] as const) {
      for (const text of all) {
        expect(text, `${where}: a JWT-looking substring`).to.not.match(JWT_LIKE);
        for (const t of tokens) for (const part of t.split('.')) if (part.length > 8) expect(text, `${where}: a token part`).to.not.include(part);
      }
    }
  });

  describe('admin endpoints', () => {
    const ops = ['stats', 'drop-all', 'blackhole?ms=10', 'latency?ms=0', 'fail-next-reducers?n=0', 'corrupt-next-frame', 'clear', 'restart'];

    it('are absent without admin: 404 for every operation and method', async () => {
      const { s } = await start();
      for (const op of ops) {
        for (const method of ['GET', 'POST']) expect((await fetch(`${s.url}/_dev/${op}`, { method })).status, `${method} ${op}`).to.equal(404);
      }
    });

    it('need POST for everything but stats (405), and refuse bad parameters with 400', async () => {
      const { s } = await start({ admin: true });
      const stats = await fetch(`${s.url}/_dev/stats`);
      expect(stats.status).to.equal(200);
      expect(await stats.json()).to.include.keys('connections', 'limitCloses', 'delayedBytes');
      for (const op of ops.filter((o) => o !== 'stats')) {
        for (const method of ['GET', 'PUT', 'DELETE']) expect((await fetch(`${s.url}/_dev/${op}`, { method })).status, `${method} ${op}`).to.equal(405);
      }
      const bad = [
        'blackhole',
        'blackhole?ms=abc',
        'blackhole?ms=-1',
        'blackhole?ms=Infinity',
        'blackhole?ms=1e12',
        'latency',
        'latency?ms=NaN',
        'latency?ms=10&jitter=-5',
        'latency?ms=3000000000',
        'fail-next-reducers?n=1.5',
        'fail-next-reducers?n=-1',
      ];
      for (const op of bad) {
        const res = await fetch(`${s.url}/_dev/${op}`, { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } });
        expect(res.status, op).to.equal(400);
        expect(await res.text(), op).to.not.equal('');
      }
      expect((await fetch(`${s.url}/_dev/no-such-op`, { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } })).status).to.equal(404);
      // Nothing of the refused requests took effect.
      const after = (await (await fetch(`${s.url}/_dev/stats`)).json()) as { framesDropped: number };
      const c = await connect(s);
      await c.conn.reducers.addPerson({ name: 'admin-ok', age: 1 });
      c.conn.disconnect();
      expect(after.framesDropped).to.equal(0);
    });

    it('answer loopback callers only (isLoopback)', () => {
      for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).to.equal(true);
      for (const a of ['10.0.0.1', '0.0.0.0', '::', '::ffff:10.0.0.1', '::ffff:192.168.0.1', 'fe80::1', '128.0.0.1', '', 'localhost', undefined]) {
        expect(isLoopback(a), String(a)).to.equal(false);
      }
    });
  });

  describe('limits', () => {
    const url = (s: DevServer) => `${s.wsUrl}/v1/database/${s.database}/subscribe?compression=None`;
    const oneOff = (id: number, pad: number) => {
      const sql = `SELECT * FROM person WHERE name = '${'x'.repeat(pad)}'`;
      const b = Buffer.alloc(9 + sql.length);
      b[0] = 2;
      b.writeUInt32LE(id, 1);
      b.writeUInt32LE(sql.length, 5);
      b.write(sql, 9, 'latin1');
      return b;
    };

    it('disconnects a client that never reads, and only that one', async () => {
      const { s } = await start({ maxSendQueueBytes: 64 * 1024 });
      const writer = await connect(s);
      for (let i = 0; i < 20; i++) await writer.conn.reducers.addPerson({ name: `${'p'.repeat(3000)}${i}`, age: i });
      const { ws: reader, tcp } = tcpWebSocket(url(s), [V3_PROTOCOL]);
      await new Promise((r) => reader.once('open', r));
      const closed = new Promise<void>((r) => reader.once('close', () => r()));
      tcp.pause();
      const sub = (id: number) => {
        const q = 'SELECT * FROM person';
        const b = Buffer.alloc(17 + q.length);
        b[0] = 0;
        b.writeUInt32LE(id, 1);
        b.writeUInt32LE(id, 5);
        b.writeUInt32LE(1, 9);
        b.writeUInt32LE(q.length, 13);
        b.write(q, 17);
        return b;
      };
      for (let i = 1; i <= 200; i++) reader.send(sub(i));
      await until(() => s.stats().limitCloses > 0, 'the reader that never reads to be cut off', 10_000);
      tcp.resume();
      await closed;
      await writer.conn.reducers.addPerson({ name: 'writer unaffected', age: 1 });
      writer.conn.disconnect();
    });

    it('keeps what injected latency holds bounded: incoming frames wait (backpressure), none lost, order kept', async () => {
      const limit = 64 * 1024;
      const { s } = await start({ maxSendQueueBytes: limit });
      const r = await RawClient.open(s);
      await r.next('InitialConnection');
      s.faults.latency(100);
      let peak = 0;
      const sample = setInterval(() => (peak = Math.max(peak, s.stats().delayedBytes)), 2);
      const n = 1000; // about 1 MB, fifteen times the limit
      for (let i = 1; i <= n; i++) r.sendRaw(oneOff(i, 1000));
      try {
        await r.next('OneOffQueryResult', (m) => m.value.requestId === n, 20_000);
      } finally {
        clearInterval(sample);
      }
      const ids = r.messages.filter((m) => m.tag === 'OneOffQueryResult').map((m) => (m.value as { requestId: number }).requestId);
      expect(ids).to.deep.equal(Array.from({ length: n }, (_, i) => i + 1));
      expect(peak, 'bytes held back by latency').to.be.greaterThan(0);
      // The limit plus what the socket had already read when reading stopped (one 64 KiB chunk) and the answers.
      expect(peak, 'bytes held back by latency').to.be.at.most(limit + 128 * 1024);
      expect(r.closeCode).to.equal(undefined);
      s.faults.latency(0);
      r.close();
    });

    it('counts frames held back by latency toward the slow-reader limit', async () => {
      const limit = 64 * 1024;
      const { s } = await start({ maxSendQueueBytes: limit });
      const writer = await connect(s);
      for (let i = 0; i < 10; i++) await writer.conn.reducers.addPerson({ name: `${'q'.repeat(4000)}${i}`, age: i });
      const r = await RawClient.open(s);
      await r.next('InitialConnection');
      s.faults.latency(400);
      let peak = 0;
      const sample = setInterval(() => (peak = Math.max(peak, s.stats().delayedBytes)), 2);
      // Each answer is ~40 KB; under latency they wait in the server, past the limit after two.
      for (let i = 1; i <= 50; i++) r.send({ tag: 'OneOffQuery', value: { requestId: i, queryString: 'SELECT * FROM person' } });
      try {
        await until(() => s.stats().limitCloses > 0, 'the client owed too much to be cut off', 10_000);
      } finally {
        clearInterval(sample);
      }
      expect(peak).to.be.at.most(limit + 128 * 1024);
      s.faults.latency(0);
      await writer.conn.reducers.addPerson({ name: 'still fine', age: 1 });
      writer.conn.disconnect();
      r.ws.terminate();
    });
  });
});
