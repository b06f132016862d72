/**
 * Bad input, one kind at a time, against one dev server on 127.0.0.1: each
 * gets its status or close code with a reason, nothing is logged as an error,
 * nothing escapes as an uncaught exception, and a sentinel SDK client keeps
 * working throughout.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import { BinaryWriter } from 'spacetimedb';
import type { DevServer } from '../../devserver/index.ts';
import { encodeClientMessage, type ClientMessage } from '../../devserver/protocol/messages.ts';
import { V2_PROTOCOL, V3_PROTOCOL } from '../../devserver/protocol/framing.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { rawHttp, Sentinel, startBasicServer, upgradeRequest, Watch } from './harness.ts';
import { tcpWebSocket } from '../helpers/tcp.ts';
import { until } from '../helpers/until.ts';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const bytes = (...parts: (number[] | Uint8Array | Buffer)[]) => Buffer.concat(parts.map((p) => Buffer.from(p as Uint8Array)));
const enc = (m: ClientMessage) => encodeClientMessage(m);
const LIMIT = 512 * 1024;
const SUBSCRIBE = enc({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: ['SELECT * FROM person'] } });

describe('reliability: bad input', function () {
  this.timeout(30_000);
  let server: DevServer;
  let watch: Watch;
  let sentinel: Sentinel;
  const raws: RawClient[] = [];
  const raw = async (opts: Parameters<typeof RawClient.open>[1] = {}) => {
    const r = await RawClient.open(server, opts);
    raws.push(r);
    await r.next('InitialConnection');
    return r;
  };

  before(async () => {
    watch = new Watch().start();
    server = await startBasicServer({ logger: watch.logger, maxMessageBytes: LIMIT, maxHttpBodyBytes: 4096 });
    sentinel = await Sentinel.start(server);
  });
  afterEach(async () => {
    for (const r of raws.splice(0)) r.ws.terminate();
    // After every kind of bad input: the server is whole and the sentinel works.
    watch.expectClean();
    await sentinel.check();
  });
  after(async () => {
    sentinel.stop();
    await server.stop();
    watch.stop();
  });

  describe('HTTP', () => {
    it('answers request targets that do not parse with 400 (plain and upgrade), and a malformed %-escape in the database with 404', async () => {
      for (const target of ['//', '//x:99999/', 'http://[::1']) {
        const plain = await rawHttp(server.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        expect(plain.status, `GET ${target}`).to.equal(400);
        const up = await rawHttp(server.port, upgradeRequest(target));
        expect(up.status, `upgrade ${target}`).to.equal(400);
        expect(up.text).to.match(/malformed request target/);
      }
      const bad = '/v1/database/%E0%A4%A/subscribe';
      expect((await rawHttp(server.port, `GET ${bad} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).status).to.equal(404);
      const up = await rawHttp(server.port, upgradeRequest(bad));
      expect(up.status).to.equal(404);
      expect(up.text).to.match(/no such database/);
      expect((await fetch(`${server.url}/v1/ping`)).status).to.equal(200);
    });

    it('ignores garbage bodies where no body is read, and refuses missing or non-Bearer credentials with 401', async () => {
      const garbage = Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 131 + 7) & 0xff));
      const minted = await fetch(`${server.url}/v1/identity`, { method: 'POST', body: garbage });
      expect(minted.status).to.equal(200);
      expect((await minted.json()).identity).to.match(/^c200/);
      for (const authorization of [undefined, 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer    ', 'Token abc']) {
        const res = await fetch(`${server.url}/v1/identity/websocket-token`, {
          method: 'POST',
          headers: authorization === undefined ? {} : { authorization },
          body: '{"token": not json',
        });
        expect(res.status, String(authorization)).to.equal(401);
        expect(await res.text(), String(authorization)).to.not.equal('');
      }
    });

    it('answers unknown paths and methods with 404, a plain GET of the subscribe path with 400', async () => {
      expect((await fetch(`${server.url}/nope`)).status).to.equal(404);
      expect((await fetch(`${server.url}/v1/identity`)).status).to.equal(404);
      expect((await fetch(`${server.url}/v1/ping`, { method: 'DELETE' })).status).to.equal(404);
      expect((await fetch(`${server.url}/v1/database/${server.database}/subscribe`)).status).to.equal(400);
      expect((await fetch(`${server.url}/v1/database/other/subscribe`)).status).to.equal(404);
    });

    it('refuses a body over maxHttpBodyBytes with 413 (or a reset) and keeps serving', async () => {
      const res = await fetch(`${server.url}/v1/identity`, { method: 'POST', body: 'x'.repeat(50_000) }).catch((e: Error) => e);
      expect(res instanceof Error ? 'reset' : res.status).to.be.oneOf([413, 'reset']);
      const head = `POST /v1/identity HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n`;
      const rawRes = await rawHttp(server.port, head + 'y'.repeat(50_000));
      expect(rawRes.status ?? 'reset').to.be.oneOf([413, 'reset']);
      expect((await fetch(`${server.url}/v1/ping`)).status).to.equal(200);
    });

    it('refuses upgrades to an unknown database (404), without a known subprotocol (400) or with an unknown compression (400)', async () => {
      await RawClient.open(server, { database: 'nope' }).then(
        () => expect.fail('connected'),
        (e: Error) => expect(e.message).to.equal('HTTP 404'),
      );
      await RawClient.open(server, { protocols: ['v1.json.spacetimedb'] }).then(
        () => expect.fail('connected'),
        (e: Error) => expect(e.message).to.equal('HTTP 400'),
      );
      await RawClient.open(server, { compression: 'Zstd' }).then(
        () => expect.fail('connected'),
        (e: Error) => expect(e.message).to.equal('HTTP 400'),
      );
    });
  });

  describe('malformed WebSocket messages', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['an unknown message tag', bytes([0xff, 1, 2, 3]), /unknown variant tag 255/],
      ['an empty frame', Buffer.alloc(0), /at least one message/],
      ['a truncated Subscribe', Buffer.from(SUBSCRIBE.subarray(0, SUBSCRIBE.length - 3)), /truncated/],
      ['invalid UTF-8 in a query string', bytes([0], u32(1), u32(1), u32(1), u32(2), [0xc3, 0x28]), /invalid UTF-8/],
      ['an unknown Unsubscribe flag', bytes([1], u32(1), u32(1), [7]), /unknown variant tag 7/],
      [
        'CallReducer flags other than 0',
        Buffer.from(enc({ tag: 'CallReducer', value: { requestId: 1, flags: 1, reducer: 'add_person', args: new Uint8Array() } })),
        /call reducer flag 1/,
      ],
      ['an array count beyond the frame', bytes([0], u32(1), u32(1), u32(0xffffffff)), /claims 4294967295 element/],
      ['a string length beyond the frame', bytes([2], u32(1), u32(0x7fffffff), Buffer.from('abc')), /truncated/],
    ];
    for (const [what, frame, reason] of cases) {
      it(`closes only the sender of ${what} with 1011 and a reason`, async () => {
        const r = await raw();
        const bystander = await raw();
        r.sendRaw(frame);
        const closed = await r.closed();
        expect(closed.code).to.equal(1011);
        expect(closed.reason).to.match(reason);
        bystander.send({ tag: 'OneOffQuery', value: { requestId: 5, queryString: 'SELECT * FROM person' } });
        expect((await bystander.next('OneOffQueryResult')).value.result.tag).to.equal('Ok');
      });
    }

    it('closes a v2 frame with trailing bytes, and runs the good messages of a v3 frame before its bad one', async () => {
      const v2 = await raw({ protocols: [V2_PROTOCOL] });
      v2.sendRaw(bytes(SUBSCRIBE, [0]));
      const c2 = await v2.closed();
      expect(c2.code).to.equal(1011);
      expect(c2.reason).to.match(/trailing byte/);
      const v3 = await raw({ protocols: [V3_PROTOCOL] });
      v3.sendRaw(bytes(SUBSCRIBE, [0xff]));
      const c3 = await v3.closed();
      expect(c3.code).to.equal(1011);
      expect(v3.messages.map((m) => m.tag)).to.deep.equal(['InitialConnection', 'SubscribeApplied']);
    });

    it('closes text frames with 1011, valid UTF-8 or not', async () => {
      for (const payload of [Buffer.from('{"Subscribe": {}}'), Buffer.from([0xff, 0xfe, 0x80])]) {
        const r = await raw();
        r.ws.send(payload, { binary: false });
        const closed = await r.closed();
        expect(closed.code).to.equal(1011);
        expect(closed.reason).to.match(/text frames are not supported/);
      }
    });

    it('closes every message over maxMessageBytes with 1011 and a reason, whatever its size', async () => {
      for (const size of [LIMIT + 1, 3 * LIMIT, 8 * LIMIT]) {
        const r = await raw();
        r.sendRaw(new Uint8Array(size));
        const closed = await r.closed();
        expect(closed.code, `${size} bytes`).to.equal(1011);
        expect(closed.reason).to.match(/exceeds the 524288-byte limit/);
      }
      const fragmented = await raw();
      for (let i = 0; i < 3; i++) fragmented.ws.send(new Uint8Array(LIMIT / 2), { binary: true, fin: i === 2 });
      const closed = await fragmented.closed();
      expect(closed.code, 'a fragmented message over the cap').to.equal(1011);
    });

    it('lets ws close WebSocket protocol violations (unmasked client frame) with 1002', async () => {
      const res = await rawHttp(server.port, Buffer.concat([Buffer.from(upgradeRequest(`/v1/database/${server.database}/subscribe?compression=None`)), Buffer.from([0x82, 0x01, 0x00])]));
      expect(res.status).to.equal(101);
      const body = Buffer.from(res.text, 'latin1');
      // The server's frames after the 101: InitialConnection may come first; find the close frame (opcode 8).
      let at = body.indexOf('\r\n\r\n') + 4;
      let code: number | undefined;
      while (at < body.length) {
        const opcode = body[at] & 0x0f;
        let len = body[at + 1] & 0x7f;
        let start = at + 2;
        if (len === 126) {
          len = body.readUInt16BE(at + 2);
          start = at + 4;
        }
        if (opcode === 8) code = body.readUInt16BE(start);
        at = start + len;
      }
      expect(code).to.equal(1002);
    });
  });

  describe('well-formed messages with wrong contents', () => {
    const call = (requestId: number, reducer: string, args: Uint8Array): ClientMessage => ({
      tag: 'CallReducer',
      value: { requestId, flags: 0, reducer, args },
    });

    it('answers unknown reducers, wrong argument bytes and lifecycle reducers with ReducerResult InternalError', async () => {
      const r = await raw();
      const good = new BinaryWriter(16);
      good.writeString('ok');
      good.writeU32(1);
      const goodArgs = good.getBuffer().slice();
      r.send(
        call(1, 'no_such_reducer', new Uint8Array()),
        call(2, '', new Uint8Array()),
        call(3, 'add_person', new Uint8Array([1])),
        call(4, 'add_person', goodArgs.subarray(0, goodArgs.length - 1)),
        call(5, 'add_person', bytes(u32(0xfffffff0))),
        call(6, 'on_connect', new Uint8Array()),
        call(7, 'delete_person', new Uint8Array(8).fill(0xff)),
      );
      const result = async (id: number) => (await r.next('ReducerResult', (m) => m.value.requestId === id)).value.result;
      expect(await result(1)).to.deep.equal({ tag: 'InternalError', value: 'no such reducer: no_such_reducer' });
      expect(await result(2)).to.deep.equal({ tag: 'InternalError', value: 'no such reducer: ' });
      for (const id of [3, 4, 5]) expect((await result(id)).tag, `request ${id}`).to.equal('InternalError');
      expect(((await result(6)) as { value: string }).value).to.match(/cannot be called by clients/);
      // Trailing bytes after a complete argument product are ignored, as the module's own deserializer does.
      r.send(call(8, 'add_person', bytes(goodArgs, [9, 9, 9])));
      expect((await result(8)).tag).to.equal('Ok');
      // Decodable arguments for which the module throws a SenderError: Err, not InternalError.
      expect((await result(7)).tag).to.equal('Err');
      await sentinel.check();
      expect(sentinel.names().filter((n) => n === 'ok'), 'the one well-formed call applied once').to.deep.equal(['ok']);
    });

    it('answers duplicate query set ids and unsubscribes of unknown sets with SubscriptionError', async () => {
      const r = await raw();
      r.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 9 }, queryStrings: ['SELECT * FROM person'] } });
      await r.next('SubscribeApplied');
      r.send({ tag: 'Subscribe', value: { requestId: 2, querySetId: { id: 9 }, queryStrings: ['SELECT * FROM note'] } });
      expect((await r.next('SubscriptionError', (m) => m.value.requestId === 2)).value.error).to.match(/already subscribed/);
      r.send({ tag: 'Unsubscribe', value: { requestId: 3, querySetId: { id: 12345 }, flags: { tag: 'SendDroppedRows' } } });
      expect((await r.next('SubscriptionError', (m) => m.value.requestId === 3)).value.error).to.match(/not subscribed/);
      r.send({ tag: 'Unsubscribe', value: { requestId: 4, querySetId: { id: 9 }, flags: { tag: 'Default' } } });
      expect((await r.next('UnsubscribeApplied', (m) => m.value.requestId === 4)).value.rows).to.equal(undefined);
      r.send({ tag: 'Unsubscribe', value: { requestId: 5, querySetId: { id: 9 }, flags: { tag: 'Default' } } });
      await r.next('SubscriptionError', (m) => m.value.requestId === 5);
    });

    it('answers SQL nested too deep with an error, and serves a 20 000-term OR chain (no stack overflow)', async () => {
      const r = await raw();
      const deep = 'SELECT * FROM person WHERE ' + '('.repeat(5000) + 'age = 1' + ')'.repeat(5000);
      r.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: [deep] } });
      expect((await r.next('SubscriptionError')).value.error).to.match(/nested more than 64 deep/);
      r.send({ tag: 'OneOffQuery', value: { requestId: 2, queryString: deep } });
      expect((await r.next('OneOffQueryResult')).value.result).to.deep.include({ tag: 'Err' });
      const chain = 'SELECT * FROM person WHERE ' + Array.from({ length: 20_000 }, (_, i) => `age = ${i + 100_000}`).join(' OR ');
      r.send({ tag: 'Subscribe', value: { requestId: 3, querySetId: { id: 3 }, queryStrings: [chain] } });
      await r.next('SubscribeApplied', (m) => m.value.requestId === 3);
      // Incremental evaluation of that set on the next commits (sentinel.check in afterEach) must not overflow either.
      const w = new BinaryWriter(32);
      w.writeString('in the chain');
      w.writeU32(100_007);
      r.send(call(4, 'add_person', w.getBuffer().slice()));
      const res = await r.next('ReducerResult', (m) => m.value.requestId === 4);
      expect(res.value.result.tag).to.equal('Ok');
    });

    it('answers CallProcedure of an unknown procedure with ProcedureResult InternalError', async () => {
      const r = await raw();
      r.send({ tag: 'CallProcedure', value: { requestId: 77, flags: 0, procedure: 'anything', args: new Uint8Array([1, 2]) } });
      const res = await r.next('ProcedureResult');
      expect(res.value.requestId).to.equal(77);
      expect(res.value.status).to.deep.equal({ tag: 'InternalError', value: 'no such procedure: anything' });
    });
  });

  it('leaves no socket behind a client that vanishes mid-frame', async () => {
    const { ws, tcp } = tcpWebSocket(`${server.wsUrl}/v1/database/${server.database}/subscribe?compression=None`, [V3_PROTOCOL]);
    await new Promise((r) => ws.once('open', r));
    const before = server.stats().connections;
    // Half a frame header, then the TCP connection is gone.
    tcp.write(Buffer.from([0x82, 0xfe]));
    ws.terminate();
    await until(() => server.stats().connections < before, 'the server to drop the half-sent socket');
    expect(server.stats().connections).to.equal(before - 1);
  });
});
