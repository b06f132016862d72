/**
 * Durability, fault injection and limits, as the unmodified SDK (or a bare
 * socket, where the SDK cannot express it) sees them.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, appendFileSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { DevServer } from '../../devserver/index.ts';
import { isLoopback } from '../../devserver/http/request.ts';
import { connect, startBasicServer, type Connected } from '../helpers/sdk.ts';
import { tcpWebSocket } from '../helpers/tcp.ts';
import { until } from '../helpers/until.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { encodeClientFrame, V3_PROTOCOL } from '../../devserver/protocol/framing.ts';

function subscribe(c: Connected, queries: string[]) {
  return new Promise<void>((resolve, reject) => {
    c.conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError((ctx: { event?: Error }) => reject(ctx.event))
      .subscribe(queries);
  });
}

describe('dev server durability, faults and limits', function () {
  const dirs: string[] = [];
  const servers: DevServer[] = [];
  const clients: Connected[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'stdb-rx-data-'));
    dirs.push(d);
    return d;
  };
  const server = async (opts: Parameters<typeof startBasicServer>[0] = {}) => {
    const s = await startBasicServer(opts);
    servers.push(s);
    return s;
  };
  const client = async (s: DevServer, opts: Parameters<typeof connect>[1] = {}) => {
    const c = await connect(s, opts);
    clients.push(c);
    return c;
  };

  afterEach(async () => {
    for (const c of clients.splice(0)) c.conn.disconnect();
    for (const s of servers.splice(0)) await s.stop();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  describe('with a data folder', () => {
    it('keeps every committed row, the sequences and identities across a restart', async () => {
      const dataDir = tempDir();
      const s = await server({ dataDir });
      const a = await client(s);
      for (const name of ['ann', 'bob', 'cy']) await a.conn.reducers.addPerson({ name, age: 20 });
      await a.conn.reducers.deletePerson({ id: 2n });
      await s.restart();
      expect(s.recovery?.replayed).to.be.greaterThan(0);
      const b = await client(s, { token: a.token });
      expect(b.identity.toHexString()).to.equal(a.identity.toHexString());
      await b.conn.reducers.addPerson({ name: 'dee', age: 20 });
      await subscribe(b, ['SELECT * FROM person']);
      const people = [...b.conn.db.person.iter()].map((p) => [p.id, p.name]).sort((x, y) => Number(x[0]) - Number(y[0]));
      expect(people).to.deep.equal([
        [1n, 'ann'],
        [3n, 'cy'],
        [4n, 'dee'],
      ]);
    });

    it('survives a stop and a new server process on the same folder, tokens included', async () => {
      const dataDir = tempDir();
      const s1 = await server({ dataDir });
      const a = await client(s1);
      await a.conn.reducers.addPerson({ name: 'persisted', age: 1 });
      a.conn.disconnect();
      await s1.stop();
      servers.splice(servers.indexOf(s1), 1);
      const s2 = await server({ dataDir });
      const b = await client(s2, { token: a.token });
      expect(b.identity.toHexString()).to.equal(a.identity.toHexString());
      await subscribe(b, ['SELECT * FROM person']);
      expect([...b.conn.db.person.iter()].map((p) => p.name)).to.deep.equal(['persisted']);
    });

    it('recovers from a torn last record, keeping everything before it', async () => {
      const dataDir = tempDir();
      const logs: string[] = [];
      const s1 = await server({ dataDir });
      const a = await client(s1);
      await a.conn.reducers.addPerson({ name: 'one', age: 1 });
      await a.conn.reducers.addPerson({ name: 'two', age: 2 });
      a.conn.disconnect();
      await s1.stop();
      servers.splice(servers.indexOf(s1), 1);
      // A crash in the middle of the third write: half a record.
      const log = join(dataDir, 'commitlog.bin');
      const size = statSync(log).size;
      appendFileSync(log, Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 9, 9]));
      const s2 = await server({ dataDir, logger: { log: (_l, m) => logs.push(m) } });
      expect(s2.recovery?.truncated?.reason).to.equal('incomplete record');
      expect(statSync(log).size).to.equal(size);
      expect(logs.join('\n')).to.match(/cut off 10 bytes/);
      const b = await client(s2);
      await subscribe(b, ['SELECT * FROM person']);
      expect([...b.conn.db.person.iter()].map((p) => p.name).sort()).to.deep.equal(['one', 'two']);
      // A corrupt (not merely short) last record is caught by its checksum.
      await b.conn.reducers.addPerson({ name: 'three', age: 3 });
      b.conn.disconnect();
      await s2.stop();
      servers.splice(servers.indexOf(s2), 1);
      flipByteInRecord(log, 'three');
      const s3 = await server({ dataDir });
      expect(s3.recovery?.truncated?.reason).to.equal('checksum mismatch');
      const c = await client(s3);
      await subscribe(c, ['SELECT * FROM person']);
      expect([...c.conn.db.person.iter()].map((p) => p.name).sort()).to.deep.equal(['one', 'two']);
    });

    it('takes snapshots so the log stays short, and starts from them', async () => {
      const dataDir = tempDir();
      const s = await server({ dataDir, snapshotEvery: 3 });
      const a = await client(s);
      for (let i = 0; i < 7; i++) await a.conn.reducers.addPerson({ name: `p${i}`, age: i });
      await s.restart();
      // 7 person inserts + the connect row: two snapshots taken, the rest replayed from the log.
      expect(s.recovery?.replayed).to.be.lessThan(3);
      const b = await client(s);
      await subscribe(b, ['SELECT * FROM person']);
      expect(b.conn.db.person.count()).to.equal(7n);
    });
  });

  describe('faults as the SDK sees them', () => {
    it('dropAll closes every socket', async () => {
      const s = await server();
      let disconnected = 0;
      await client(s, { onDisconnect: () => disconnected++ });
      await client(s, { onDisconnect: () => disconnected++ });
      expect(s.faults.dropAll()).to.equal(2);
      await until(() => disconnected === 2, 'both SDK clients to see the drop', 5000);
      expect(s.stats().connections).to.equal(0);
    });

    it('blackhole delivers nothing and closes nothing until it ends', async () => {
      const s = await server();
      let disconnected = false;
      const a = await client(s, { onDisconnect: () => (disconnected = true) });
      await subscribe(a, ['SELECT * FROM person']);
      const other = await client(s);
      const droppedBefore = s.stats().framesDropped;
      // Long enough never to run out during the test: it ends when the test says so.
      s.faults.blackhole(60_000);
      let settled = false;
      a.conn.reducers.addPerson({ name: 'lost', age: 1 }).then(
        () => (settled = true),
        () => (settled = true),
      );
      // Neither call can settle: the SDK's reducer promises wait for a result that never comes.
      void other.conn.reducers.addPerson({ name: 'unseen', age: 1 }).catch(() => undefined);
      // Both calls reached the server over their open sockets and were thrown
      // away there: from now on nothing they could cause can arrive.
      await until(() => s.stats().framesDropped >= droppedBefore + 2, 'the server to drop both calls');
      expect(disconnected, 'no close during the blackhole').to.equal(false);
      expect(settled, 'no reducer result during the blackhole').to.equal(false);
      expect(a.conn.db.person.count(), 'no data during the blackhole').to.equal(0n);
      s.faults.clear();
      await until(() => disconnected, 'the socket to close when the blackhole ends', 5000);
      // The server works normally afterwards.
      const b = await client(s);
      await b.conn.reducers.addPerson({ name: 'after', age: 1 });
    });

    it('latency delays frames both ways and keeps their order', async () => {
      const s = await server();
      const a = await client(s);
      await subscribe(a, ['SELECT * FROM person']);
      s.faults.latency(60, 20);
      const started = performance.now();
      const calls = [1, 2, 3, 4, 5].map((i) => a.conn.reducers.addPerson({ name: `n${i}`, age: i }));
      const order: string[] = [];
      a.conn.db.person.onInsert((_c, row) => order.push(row.name));
      await Promise.all(calls);
      expect(performance.now() - started).to.be.greaterThan(120);
      expect(order).to.deep.equal(['n1', 'n2', 'n3', 'n4', 'n5']);
      s.faults.latency(0);
    });

    it('failNextReducers fails exactly n calls with the message and applies nothing', async () => {
      const s = await server();
      const a = await client(s);
      await subscribe(a, ['SELECT * FROM person']);
      s.faults.failNextReducers(2, 'chaos says no');
      const results = await Promise.allSettled([1, 2, 3].map((i) => a.conn.reducers.addPerson({ name: `x${i}`, age: i })));
      expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected', 'fulfilled']);
      expect(String((results[0] as PromiseRejectedResult).reason)).to.match(/chaos says no/);
      expect([...a.conn.db.person.iter()].map((p) => p.name)).to.deep.equal(['x3']);
    });

    it('corruptNextFrame sends one undecodable frame', async () => {
      const s = await server();
      const url = `${s.wsUrl}/v1/database/${s.database}/subscribe?compression=None`;
      const ws = new WebSocket(url, [V3_PROTOCOL]);
      const frames: Buffer[] = [];
      ws.on('message', (d: Buffer) => frames.push(d));
      await new Promise((r) => ws.once('open', r));
      await until(() => frames.length === 1, 'InitialConnection', 5000);
      s.faults.corruptNextFrame();
      ws.send(encodeClientFrame([{ tag: 'OneOffQuery', value: { requestId: 1, queryString: 'SELECT * FROM person' } }], V3_PROTOCOL));
      await until(() => frames.length >= 2 || ws.readyState !== WebSocket.OPEN, 'a frame', 5000);
      ws.terminate();
      const raw = await RawClient.open(s);
      await raw.next('InitialConnection');
      raw.close();
      expect(frames[1]?.[0]).to.equal(0);
      expect(frames[1]?.[1]).to.equal(0xee);
    });

    it('restart drops clients and serves again on the same port', async () => {
      const s = await server();
      const port = s.port;
      let disconnected = false;
      await client(s, { onDisconnect: () => (disconnected = true) });
      await s.faults.restart();
      await until(() => disconnected, 'the SDK to see the restart', 5000);
      expect(s.port).to.equal(port);
      const b = await client(s);
      await b.conn.reducers.addPerson({ name: 'back', age: 1 });
      expect(s.stats().restarts).to.equal(1);
    });
  });

  describe('limits', () => {
    it('closes an oversized message with 1011 and keeps serving others', async () => {
      const s = await server({ maxMessageBytes: 1024 });
      const a = await client(s);
      const raw = await RawClient.open(s);
      await raw.next('InitialConnection');
      raw.sendRaw(new Uint8Array(1500));
      const closed = await raw.closed();
      expect(closed.code).to.equal(1011);
      expect(closed.reason).to.match(/exceeds the 1024-byte limit/);
      await a.conn.reducers.addPerson({ name: 'fine', age: 1 });
    });

    it('closes a socket that stops answering pings, and only that one', async () => {
      const s = await server({ pingIntervalMs: 40, idleTimeoutMs: 150 });
      const a = await client(s);
      const url = `${s.wsUrl}/v1/database/${s.database}/subscribe?compression=None`;
      const silent = new WebSocket(url, [V3_PROTOCOL], { autoPong: false });
      const closed = new Promise<number>((r) => silent.once('close', (code) => r(code)));
      await new Promise((r) => silent.once('open', r));
      const code = await closed;
      expect(code).to.equal(1006);
      expect(s.stats().limitCloses).to.be.greaterThan(0);
      // The SDK answers pings, so its connection is still alive.
      await a.conn.reducers.addPerson({ name: 'alive', age: 1 });
    });

    it('disconnects a client that stops reading instead of buffering without bound', async () => {
      const s = await server({ maxSendQueueBytes: 64 * 1024 });
      const writer = await client(s);
      for (let i = 0; i < 30; i++) await writer.conn.reducers.addPerson({ name: `${'x'.repeat(2000)}${i}`, age: i });
      const url = `${s.wsUrl}/v1/database/${s.database}/subscribe?compression=None`;
      const { ws: reader, tcp } = tcpWebSocket(url, [V3_PROTOCOL]);
      await new Promise((r) => reader.once('open', r));
      const closed = new Promise<void>((r) => reader.once('close', () => r()));
      tcp.pause();
      const sub = (id: number) => Buffer.concat([Buffer.from([0]), u32(id), u32(id), u32(1), str('SELECT * FROM person')]);
      for (let i = 1; i <= 100; i++) reader.send(sub(i));
      await until(() => s.stats().limitCloses > 0, 'the slow reader to be cut off', 10_000);
      tcp.resume();
      await closed;
      await writer.conn.reducers.addPerson({ name: 'others unaffected', age: 1 });
    });

    it('bounds HTTP request bodies', async () => {
      const s = await server({ maxHttpBodyBytes: 1024 });
      const res = await fetch(`${s.url}/v1/identity`, { method: 'POST', body: 'x'.repeat(10_000) }).catch((e) => e);
      expect(res instanceof Error ? 'reset' : res.status).to.be.oneOf([413, 'reset']);
      expect((await fetch(`${s.url}/v1/ping`)).status).to.equal(200);
    });
  });

  describe('admin endpoints', () => {
    it('are absent without --admin', async () => {
      const s = await server();
      expect((await fetch(`${s.url}/_dev/stats`)).status).to.equal(404);
      expect((await fetch(`${s.url}/_dev/drop-all`, { method: 'POST' })).status).to.equal(404);
    });

    it('drive the faults for loopback callers with --admin', async () => {
      const s = await server({ admin: true });
      const a = await client(s);
      const stats = await (await fetch(`${s.url}/_dev/stats`)).json();
      expect(stats.connections).to.equal(1);
      const admin = { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } };
      // Without the header (what a form on another web page could send): refused.
      expect((await fetch(`${s.url}/_dev/drop-all`, { method: 'POST' })).status).to.equal(403);
      expect(s.stats().connections).to.equal(1);
      const res = await fetch(`${s.url}/_dev/fail-next-reducers?n=1&message=from%20admin`, admin);
      expect(res.status).to.equal(200);
      let err: unknown;
      await a.conn.reducers.addPerson({ name: 'x', age: 1 }).catch((e) => (err = e));
      expect(String(err)).to.match(/from admin/);
      expect((await fetch(`${s.url}/_dev/blackhole?ms=abc`, admin)).status).to.equal(400);
      expect((await fetch(`${s.url}/_dev/drop-all`, admin).then((r) => r.json())).dropped).to.equal(1);
    });

    it('are never held by the blackhole they control: clear ends it at once', async () => {
      const s = await server({ admin: true });
      let disconnected = false;
      await client(s, { onDisconnect: () => (disconnected = true) });
      const admin = { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } };
      expect((await fetch(`${s.url}/_dev/blackhole?ms=60000`, admin)).status).to.equal(200);
      // Another request is held by the blackhole; the admin ones answer.
      const held = fetch(`${s.url}/v1/ping`).then((r) => r.status, () => 'closed');
      const stats = await (await fetch(`${s.url}/_dev/stats`)).json();
      expect(stats.connections).to.equal(1);
      expect((await fetch(`${s.url}/_dev/clear`, admin)).status).to.equal(200);
      expect(await held, 'the held request is released when the blackhole ends').to.equal('closed');
      await until(() => disconnected, 'the blackholed socket to close', 5000);
      expect((await fetch(`${s.url}/v1/ping`)).status, 'requests answer again').to.equal(200);
    });

    it('accept only loopback addresses', () => {
      for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).to.equal(true);
      for (const a of ['10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', undefined]) expect(isLoopback(a), String(a)).to.equal(false);
    });
  });
});

function u32(n: number) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
function str(s: string) {
  return Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
}

/** Damage one byte inside the commit-log record whose payload mentions `text`. */
function flipByteInRecord(log: string, text: string) {
  const buf = readFileSync(log);
  for (let at = 0; at < buf.length; ) {
    const len = buf.readUInt32LE(at);
    const payload = buf.subarray(at + 8, at + 8 + len);
    const i = payload.indexOf(text);
    if (i >= 0) {
      payload[i] ^= 0xff;
      writeFileSync(log, buf);
      return;
    }
    at += 8 + len;
  }
  throw new Error(`no record mentions ${text}`);
}
