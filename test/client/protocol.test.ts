/**
 * Bad input from the server (issue 9, client side): malformed, truncated,
 * oversized and wrongly tagged frames, a message naming an unknown table,
 * rows the SDK cannot decode. Each is a ProtocolError on errors$, the
 * connection is rebuilt, the rows come back, the process keeps running.
 */
import { expect } from 'chai';
import { WebSocket as UndiciWebSocket } from 'undici';
import type { DevServer } from '../../devserver/index.ts';
import { ConnectionLostError, InvalidArgsError, ProtocolError } from '../../src/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

/** undici's WebSocket, remembering the last one opened so a test can inject frames into it. */
class TapSocket extends UndiciWebSocket {
  static last: TapSocket | undefined;
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    TapSocket.last = this;
  }
}

function inject(bytes: Uint8Array) {
  const ws = TapSocket.last;
  if (!ws) throw new Error('no socket to inject into');
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  ws.dispatchEvent(new MessageEvent('message', { data }));
}

/** Little BSATN writer for hand-made server messages. */
class Bytes {
  readonly out: number[] = [];
  u8(n: number) {
    this.out.push(n & 0xff);
    return this;
  }
  u16(n: number) {
    return this.u8(n).u8(n >> 8);
  }
  u32(n: number) {
    return this.u16(n & 0xffff).u16(n >>> 16);
  }
  bytes(b: readonly number[]) {
    this.u32(b.length);
    this.out.push(...b);
    return this;
  }
  str(s: string) {
    return this.bytes([...new TextEncoder().encode(s)]);
  }
  get frame() {
    return new Uint8Array(this.out);
  }
}

/** An uncompressed frame with one TransactionUpdate inserting `rowsData` (fixed-size hint) into `table`. */
function transactionUpdate(table: string, rowsData: readonly number[]): Uint8Array {
  const b = new Bytes().u8(0).u8(4); // compression: none; ServerMessage::TransactionUpdate
  b.u32(1).u32(1); // one query set, id 1
  b.u32(1).str(table); // one table
  b.u32(1).u8(0); // one PersistentTable update
  b.u8(0).u16(rowsData.length).bytes(rowsData); // inserts
  b.u8(0).u16(0).bytes([]); // deletes
  return b.frame;
}

describe('sync client: bad frames from the server', () => {
  let server: DevServer;
  let client: BasicClient;
  let errors: Error[];

  beforeEach(async () => {
    server = await startBasicServer();
    client = basicClient(server, { WebSocket: TapSocket as never, maxFrameBytes: 1 << 20 });
    errors = [];
    client.errors$.subscribe((e) => errors.push(e));
    await live(client);
    await client.call('addPerson', { name: 'kept', age: 40 });
    await next(client.table$(tables.person), (m) => m.size === 1);
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  /** After the bad frame: one ProtocolError, a rebuilt connection, the same rows, calls working. */
  async function recovers(what: RegExp) {
    await next(client.status$, (s) => s.state === 'reconnecting', 5000, 'the connection to be dropped');
    await live(client);
    const protocolErrors = errors.filter((e) => e instanceof ProtocolError);
    expect(protocolErrors.map((e) => e.message)).to.have.length(1);
    expect(protocolErrors[0].message).to.match(what);
    const rows = await next(client.table$(tables.person));
    expect([...rows.values()].map((p) => p.name)).to.deep.equal(['kept']);
    await client.call('addPerson', { name: 'after', age: 41 });
    await next(client.table$(tables.person), (m) => m.size === 2);
  }

  it('an unknown compression tag', async () => {
    inject(new Uint8Array([7, 1, 2, 3]));
    await recovers(/unknown compression tag 7/);
  });

  it('a truncated message', async () => {
    inject(new Uint8Array([0, 4, 1, 0]));
    await recovers(/Could not read a frame/);
  });

  it('a malformed body (gzip tag, not gzip)', async () => {
    inject(new Uint8Array([2, 0xde, 0xad, 0xbe, 0xef]));
    await recovers(/Could not decompress/);
  });

  it('an oversized frame', async () => {
    const big = new Uint8Array((1 << 20) + 1);
    inject(big);
    await recovers(/over the 1048576-byte limit/);
  });

  it('a message naming a table the bindings do not have', async () => {
    inject(transactionUpdate('no_such_table', []));
    await recovers(/table 'no_such_table', which the bindings do not have/);
  });

  it('rows the SDK cannot decode: its throw is contained', async () => {
    inject(transactionUpdate('person', [1, 2, 3]));
    await recovers(/The SDK could not apply a frame/);
  });

  it('server.faults.corruptNextFrame(): the lost answer settles its call, the row arrives with the resync', async () => {
    server.faults.corruptNextFrame();
    const call = client.call('addPerson', { name: 'answer-lost', age: 1 });
    const outcome = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(outcome).to.be.instanceOf(ConnectionLostError);
    await live(client);
    expect(errors.some((e) => e instanceof ProtocolError)).to.equal(true);
    const rows = await next(client.table$(tables.person), (m) => m.size === 2);
    expect([...rows.values()].map((p) => p.name).sort()).to.deep.equal(['answer-lost', 'kept']);
  });

  it('refuses reducer arguments that do not fit the bindings before anything is sent (no storage)', async () => {
    const sent = (await next(client.metrics$)).messagesOut.CallReducer;
    const err = await client.call('addPerson', { name: 7, age: 'old' } as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(InvalidArgsError);
    expect((err as Error).message).to.equal('add_person: args.name must be a string, got 7');
    expect((await next(client.metrics$)).messagesOut.CallReducer).to.equal(sent);
  });
});
