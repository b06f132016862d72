import { expect } from 'chai';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { BinaryWriter, ConnectionId, Identity, TimeDuration, Timestamp } from 'spacetimedb';
import {
  BsatnRowList,
  ClientMessage,
  ProtocolDecodeError,
  ServerMessage,
  decodeClientMessage,
  decodeServerMessage,
  decodeStrict,
  encodeClientMessage,
  encodeServerMessage,
  CLIENT_MESSAGE_TAGS,
  SERVER_MESSAGE_TAGS,
  type QueryRows,
} from '../../devserver/protocol/messages.ts';
import { buildRowList, emptyRowList, rowCount, sizeHintFor, splitRowList, RowListError } from '../../devserver/protocol/rows.ts';
import {
  COMPRESS_THRESHOLD,
  ServerFrameBatcher,
  V2_PROTOCOL,
  V3_PROTOCOL,
  V3_MAX_PAYLOAD_BYTES,
  chooseCompression,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrames,
  encodeServerFramesAsync,
  frameServerPayload,
  frameServerPayloadAsync,
  negotiateProtocol,
  packServerPayloads,
  parseCompression,
  unframeServerPayload,
} from '../../devserver/protocol/framing.ts';

// ---------------------------------------------------------------------------
// Byte-building helpers (independent of the code under test)

const u8 = (n: number) => [n & 0xff];
const u16 = (n: number) => [n & 0xff, (n >> 8) & 0xff];
const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const le = (x: bigint, bytes: number) => {
  const out: number[] = [];
  let v = BigInt.asUintN(bytes * 8, x);
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
};
const str = (s: string) => {
  const b = [...new TextEncoder().encode(s)];
  return [...u32(b.length), ...b];
};
const bytes = (b: number[]) => [...u32(b.length), ...b];
const bin = (...parts: number[][]) => Uint8Array.from(parts.flat());

const rows = (list: number[][]) => buildRowList(list.map(r => Uint8Array.from(r)));
const ID = new Identity('c200112233445566778899aabbccddeeff00112233445566778899aabbccddee');
const CONN = new ConnectionId(0x0102030405060708090a0b0c0d0e0f10n);
const TS = new Timestamp(1_700_000_000_123_456n);

function queryRows(table: string, list: number[][]): QueryRows {
  return { tables: [{ table, rows: rows(list) }] };
}

// One value per message type (every variant of every nested enum appears somewhere).
const clientSamples: ClientMessage[] = [
  ClientMessage.Subscribe({ requestId: 1, querySetId: { id: 9 }, queryStrings: ['SELECT * FROM player', 'SELECT * FROM "item"'] }),
  ClientMessage.Unsubscribe({ requestId: 2, querySetId: { id: 9 }, flags: { tag: 'SendDroppedRows' } }),
  ClientMessage.Unsubscribe({ requestId: 3, querySetId: { id: 10 }, flags: { tag: 'Default' } }),
  ClientMessage.OneOffQuery({ requestId: 4, queryString: 'SELECT * FROM player WHERE name = \'ünï\'' }),
  ClientMessage.CallReducer({ requestId: 5, flags: 0, reducer: 'add_player', args: Uint8Array.from([1, 2, 3]) }),
  ClientMessage.CallProcedure({ requestId: 0xffffffff, flags: 0, procedure: 'fetch', args: new Uint8Array(0) }),
];

const serverSamples: ServerMessage[] = [
  ServerMessage.InitialConnection({ identity: ID, connectionId: CONN, token: 'a.b.c' }),
  ServerMessage.SubscribeApplied({ requestId: 1, querySetId: { id: 9 }, rows: queryRows('player', [[1, 0, 0, 0], [2, 0, 0, 0]]) }),
  ServerMessage.UnsubscribeApplied({ requestId: 2, querySetId: { id: 9 }, rows: queryRows('player', [[1], [2, 2]]) }),
  ServerMessage.UnsubscribeApplied({ requestId: 3, querySetId: { id: 10 }, rows: undefined }),
  ServerMessage.SubscriptionError({ requestId: 4, querySetId: { id: 11 }, error: 'unknown table `nope`' }),
  ServerMessage.SubscriptionError({ requestId: undefined, querySetId: { id: 11 }, error: 'evaluation failed' }),
  ServerMessage.TransactionUpdate({
    querySets: [
      {
        querySetId: { id: 9 },
        tables: [
          {
            tableName: 'player',
            rows: [
              { tag: 'PersistentTable', value: { inserts: rows([[7, 7]]), deletes: rows([[8], [8, 8]]) } },
              { tag: 'EventTable', value: { events: rows([]) } },
            ],
          },
        ],
      },
    ],
  }),
  ServerMessage.OneOffQueryResult({ requestId: 5, result: { tag: 'Ok', value: queryRows('player', [[1]]) } }),
  ServerMessage.OneOffQueryResult({ requestId: 6, result: { tag: 'Err', value: 'syntax error' } }),
  ServerMessage.ReducerResult({
    requestId: 7,
    timestamp: TS,
    result: { tag: 'Ok', value: { retValue: Uint8Array.from([4]), transactionUpdate: { querySets: [] } } },
  }),
  ServerMessage.ReducerResult({ requestId: 8, timestamp: TS, result: { tag: 'OkEmpty' } }),
  ServerMessage.ReducerResult({ requestId: 9, timestamp: TS, result: { tag: 'Err', value: Uint8Array.from([...str('nope')]) } }),
  ServerMessage.ReducerResult({ requestId: 10, timestamp: TS, result: { tag: 'InternalError', value: 'no such reducer' } }),
  ServerMessage.ProcedureResult({
    status: { tag: 'Returned', value: Uint8Array.from([1]) },
    timestamp: TS,
    totalHostExecutionDuration: new TimeDuration(1500n),
    requestId: 11,
  }),
  ServerMessage.ProcedureResult({
    status: { tag: 'InternalError', value: 'boom' },
    timestamp: TS,
    totalHostExecutionDuration: new TimeDuration(0n),
    requestId: 12,
  }),
];

function expectDecodeError(fn: () => unknown, pattern?: RegExp): ProtocolDecodeError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a ProtocolDecodeError').to.be.instanceOf(ProtocolDecodeError);
  if (pattern) expect((caught as Error).message).to.match(pattern);
  return caught as ProtocolDecodeError;
}

describe('devserver protocol: messages', () => {
  it('declares the variants in the wire tag order', () => {
    expect(CLIENT_MESSAGE_TAGS).to.deep.equal(['Subscribe', 'Unsubscribe', 'OneOffQuery', 'CallReducer', 'CallProcedure']);
    expect(SERVER_MESSAGE_TAGS).to.deep.equal([
      'InitialConnection',
      'SubscribeApplied',
      'UnsubscribeApplied',
      'SubscriptionError',
      'TransactionUpdate',
      'OneOffQueryResult',
      'ReducerResult',
      'ProcedureResult',
    ]);
  });

  it('covers every client and server message type in the samples', () => {
    expect(new Set(clientSamples.map(m => m.tag))).to.deep.equal(new Set(CLIENT_MESSAGE_TAGS));
    expect(new Set(serverSamples.map(m => m.tag))).to.deep.equal(new Set(SERVER_MESSAGE_TAGS));
  });

  for (const msg of clientSamples) {
    it(`round-trips client ${msg.tag}`, () => {
      const encoded = encodeClientMessage(msg);
      expect(encoded[0]).to.equal(CLIENT_MESSAGE_TAGS.indexOf(msg.tag));
      expect(decodeClientMessage(encoded)).to.deep.equal(msg);
    });
  }

  for (const msg of serverSamples) {
    it(`round-trips server ${msg.tag}`, () => {
      const encoded = encodeServerMessage(msg);
      expect(encoded[0]).to.equal(SERVER_MESSAGE_TAGS.indexOf(msg.tag));
      const decoded = decodeServerMessage(encoded);
      expect(decoded).to.deep.equal(msg);
      expect(encodeServerMessage(decoded)).to.deep.equal(encoded);
    });
  }

  it('decodes a hand-built Subscribe', () => {
    const b = bin(u8(0), u32(7), u32(3), u32(2), str('SELECT * FROM t'), str('SELECT * FROM u'));
    expect(decodeClientMessage(b)).to.deep.equal({
      tag: 'Subscribe',
      value: { requestId: 7, querySetId: { id: 3 }, queryStrings: ['SELECT * FROM t', 'SELECT * FROM u'] },
    });
  });

  it('decodes hand-built Unsubscribe, OneOffQuery, CallReducer and CallProcedure', () => {
    expect(decodeClientMessage(bin(u8(1), u32(8), u32(3), u8(1)))).to.deep.equal({
      tag: 'Unsubscribe',
      value: { requestId: 8, querySetId: { id: 3 }, flags: { tag: 'SendDroppedRows' } },
    });
    expect(decodeClientMessage(bin(u8(2), u32(9), str('SELECT 1')))).to.deep.equal({
      tag: 'OneOffQuery',
      value: { requestId: 9, queryString: 'SELECT 1' },
    });
    expect(decodeClientMessage(bin(u8(3), u32(10), u8(0), str('move'), bytes([5, 6])))).to.deep.equal({
      tag: 'CallReducer',
      value: { requestId: 10, flags: 0, reducer: 'move', args: Uint8Array.from([5, 6]) },
    });
    expect(decodeClientMessage(bin(u8(4), u32(11), u8(0), str('p'), bytes([])))).to.deep.equal({
      tag: 'CallProcedure',
      value: { requestId: 11, flags: 0, procedure: 'p', args: new Uint8Array(0) },
    });
  });

  it('encodes InitialConnection with little-endian identity and connection id', () => {
    const encoded = encodeServerMessage(serverSamples[0]!);
    const expected = bin(
      u8(0),
      [...ID.toUint8Array()],
      le(0x0102030405060708090a0b0c0d0e0f10n, 16),
      str('a.b.c'),
    );
    expect(encoded).to.deep.equal(expected);
    // The identity hex starts with c200: its most significant byte is the last one on the wire.
    expect(encoded[32]).to.equal(0xc2);
    expect(encoded[31]).to.equal(0x00);
    expect(encoded[1]).to.equal(0xee);
  });

  it('encodes ReducerResult, SubscriptionError, OneOffQueryResult and ProcedureResult field by field', () => {
    const ts = le(1_700_000_000_123_456n, 8);
    expect(encodeServerMessage(ServerMessage.ReducerResult({ requestId: 8, timestamp: TS, result: { tag: 'OkEmpty' } }))).to.deep.equal(
      bin(u8(6), u32(8), ts, u8(1)),
    );
    expect(
      encodeServerMessage(
        ServerMessage.ReducerResult({ requestId: 9, timestamp: TS, result: { tag: 'Err', value: Uint8Array.from(str('x')) } }),
      ),
    ).to.deep.equal(bin(u8(6), u32(9), ts, u8(2), bytes(str('x'))));
    expect(
      encodeServerMessage(
        ServerMessage.ReducerResult({
          requestId: 1,
          timestamp: TS,
          result: { tag: 'Ok', value: { retValue: new Uint8Array(0), transactionUpdate: { querySets: [] } } },
        }),
      ),
    ).to.deep.equal(bin(u8(6), u32(1), ts, u8(0), bytes([]), u32(0)));
    expect(encodeServerMessage(ServerMessage.SubscriptionError({ requestId: undefined, querySetId: { id: 4 }, error: 'e' }))).to.deep.equal(
      bin(u8(3), u8(1), u32(4), str('e')),
    );
    expect(encodeServerMessage(ServerMessage.SubscriptionError({ requestId: 6, querySetId: { id: 4 }, error: 'e' }))).to.deep.equal(
      bin(u8(3), u8(0), u32(6), u32(4), str('e')),
    );
    expect(encodeServerMessage(ServerMessage.OneOffQueryResult({ requestId: 2, result: { tag: 'Err', value: 'bad' } }))).to.deep.equal(
      bin(u8(5), u32(2), u8(1), str('bad')),
    );
    expect(
      encodeServerMessage(
        ServerMessage.ProcedureResult({
          status: { tag: 'InternalError', value: 'x' },
          timestamp: TS,
          totalHostExecutionDuration: new TimeDuration(-2n),
          requestId: 3,
        }),
      ),
    ).to.deep.equal(bin(u8(7), u8(1), str('x'), ts, le(-2n, 8), u32(3)));
  });

  it('encodes TransactionUpdate and SubscribeApplied row lists as the SDK reads them', () => {
    const tx = ServerMessage.TransactionUpdate({
      querySets: [
        {
          querySetId: { id: 2 },
          tables: [
            {
              tableName: 't',
              rows: [{ tag: 'PersistentTable', value: { inserts: rows([[1, 2], [3, 4]]), deletes: rows([]) } }],
            },
          ],
        },
      ],
    });
    expect(encodeServerMessage(tx)).to.deep.equal(
      bin(
        u8(4),
        u32(1), // query sets
        u32(2), // querySetId
        u32(1), // tables
        str('t'),
        u32(1), // rows entries
        u8(0), // PersistentTable
        u8(0), u16(2), bytes([1, 2, 3, 4]), // inserts: FixedSize(2)
        u8(1), u32(0), bytes([]), // deletes: RowOffsets([])
      ),
    );
    const applied = ServerMessage.SubscribeApplied({ requestId: 5, querySetId: { id: 6 }, rows: queryRows('u', [[9], [8, 8]]) });
    expect(encodeServerMessage(applied)).to.deep.equal(
      bin(u8(1), u32(5), u32(6), u32(1), str('u'), u8(1), u32(2), le(0n, 8), le(1n, 8), bytes([9, 8, 8])),
    );
    const unsub = ServerMessage.UnsubscribeApplied({ requestId: 5, querySetId: { id: 6 }, rows: { tables: [] } });
    expect(encodeServerMessage(unsub)).to.deep.equal(bin(u8(2), u32(5), u32(6), u8(0), u32(0)));
  });

  it('rejects every truncation of every sample with ProtocolDecodeError', () => {
    for (const msg of clientSamples) {
      const b = encodeClientMessage(msg);
      for (let n = 0; n < b.length; n++) expectDecodeError(() => decodeClientMessage(b.subarray(0, n)));
    }
    for (const msg of serverSamples) {
      const b = encodeServerMessage(msg);
      for (let n = 0; n < b.length; n++) expectDecodeError(() => decodeServerMessage(b.subarray(0, n)));
    }
  });

  it('names the problem in truncation, empty-input and trailing-byte errors', () => {
    expectDecodeError(() => decodeClientMessage(new Uint8Array(0)), /empty ClientMessage/);
    expectDecodeError(() => decodeClientMessage(bin(u8(0), u32(7), u32(3), u32(1), u32(50), [65])), /truncated.*queryStrings\[0\].*string data/);
    const ok = encodeClientMessage(clientSamples[0]!);
    const err = expectDecodeError(() => decodeClientMessage(bin([...ok], [0])), /1 trailing byte/);
    expect(err.offset).to.equal(ok.length);
  });

  it('rejects unknown tags, top-level and nested', () => {
    expectDecodeError(() => decodeClientMessage(bin(u8(5), u32(1))), /unknown variant tag 5 for ClientMessage.*0\.\.4/);
    expectDecodeError(() => decodeClientMessage(bin(u8(0xff))), /unknown variant tag 255/);
    expectDecodeError(() => decodeClientMessage(bin(u8(1), u32(8), u32(3), u8(2))), /unknown variant tag 2 .*flags/);
    expectDecodeError(() => decodeServerMessage(bin(u8(8))), /unknown variant tag 8 for ServerMessage/);
    expectDecodeError(() => decodeServerMessage(bin(u8(3), u8(2), u32(1), str('e'))), /unknown option tag 2/);
  });

  it('rejects invalid UTF-8, absurd array lengths and non-zero reserved flags', () => {
    expectDecodeError(() => decodeClientMessage(bin(u8(2), u32(1), u32(2), [0xc3, 0x28])), /invalid UTF-8 in .*queryString/);
    expectDecodeError(() => decodeClientMessage(bin(u8(0), u32(1), u32(1), u32(0xffffffff))), /claims 4294967295 element/);
    expectDecodeError(() => decodeClientMessage(bin(u8(3), u32(1), u8(1), str('r'), bytes([]))), /invalid call reducer flag 1/);
    expectDecodeError(() => decodeClientMessage(bin(u8(4), u32(1), u8(2), str('p'), bytes([]))), /invalid call procedure flag 2/);
  });

  it('never throws anything but ProtocolDecodeError on random garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), garbage => {
        try {
          decodeClientMessage(garbage);
        } catch (e) {
          if (!(e instanceof ProtocolDecodeError)) throw e;
        }
        try {
          decodeServerMessage(garbage);
        } catch (e) {
          if (!(e instanceof ProtocolDecodeError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips arbitrary Subscribe and CallReducer messages', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.array(fc.string()), fc.uint8Array(), (rid, qs, queries, args) => {
        const sub = ClientMessage.Subscribe({ requestId: rid, querySetId: { id: qs }, queryStrings: queries });
        expect(decodeClientMessage(encodeClientMessage(sub))).to.deep.equal(sub);
        const call = ClientMessage.CallReducer({ requestId: rid, flags: 0, reducer: queries[0] ?? 'r', args });
        expect(decodeClientMessage(encodeClientMessage(call))).to.deep.equal(call);
      }),
    );
  });

  it('decoded byte arrays do not alias the input buffer', () => {
    const b = encodeClientMessage(clientSamples[4]!);
    const msg = decodeClientMessage(b);
    b.fill(0);
    expect(msg.tag === 'CallReducer' && [...msg.value.args]).to.deep.equal([1, 2, 3]);
  });
});

describe('devserver protocol: row lists', () => {
  it('uses FixedSize when every row has the same length', () => {
    const list = buildRowList([Uint8Array.from([1, 2, 3]), Uint8Array.from([4, 5, 6])]);
    expect(list.sizeHint).to.deep.equal({ tag: 'FixedSize', value: 3 });
    expect([...list.rowsData]).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(rowCount(list)).to.equal(2);
    expect(buildRowList([Uint8Array.from([9])]).sizeHint).to.deep.equal({ tag: 'FixedSize', value: 1 });
  });

  it('uses RowOffsets (u64 starts) when lengths differ', () => {
    const list = buildRowList([Uint8Array.from([1]), Uint8Array.from([2, 3]), new Uint8Array(0), Uint8Array.from([4])]);
    expect(list.sizeHint).to.deep.equal({ tag: 'RowOffsets', value: [0n, 1n, 3n, 3n] });
    expect(splitRowList(list).map(r => [...r])).to.deep.equal([[1], [2, 3], [], [4]]);
    expect(rowCount(list)).to.equal(4);
  });

  it('sends RowOffsets([]) for no rows, like the real server', () => {
    for (const list of [buildRowList([]), emptyRowList()]) {
      expect(list.sizeHint).to.deep.equal({ tag: 'RowOffsets', value: [] });
      expect(list.rowsData.length).to.equal(0);
      expect(rowCount(list)).to.equal(0);
    }
  });

  it('falls back to RowOffsets for zero-length rows and rows wider than u16', () => {
    expect(sizeHintFor([0, 0])).to.deep.equal({ tag: 'RowOffsets', value: [0n, 0n] });
    expect(sizeHintFor([65535, 65535])).to.deep.equal({ tag: 'FixedSize', value: 65535 });
    expect(sizeHintFor([65536, 65536])).to.deep.equal({ tag: 'RowOffsets', value: [0n, 65536n] });
  });

  it('splits back what it built, for any rows', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 20 }), input => {
        const list = buildRowList(input);
        expect(splitRowList(list).map(r => [...r])).to.deep.equal(input.map(r => [...r]));
        expect(rowCount(list)).to.equal(input.length);
        expect(decodeStrict(BsatnRowList, encodeRowList(list))).to.deep.equal(list);
      }),
    );
  });

  it('refuses inconsistent hints when splitting', () => {
    expect(() => splitRowList({ sizeHint: { tag: 'FixedSize', value: 2 }, rowsData: Uint8Array.from([1, 2, 3]) })).to.throw(RowListError);
    expect(() => splitRowList({ sizeHint: { tag: 'RowOffsets', value: [0n, 5n] }, rowsData: Uint8Array.from([1, 2]) })).to.throw(RowListError);
    expect(() => splitRowList({ sizeHint: { tag: 'RowOffsets', value: [] }, rowsData: Uint8Array.from([1]) })).to.throw(RowListError);
  });
});

function encodeRowList(list: BsatnRowList): Uint8Array {
  const writer = new BinaryWriter(64);
  BsatnRowList.serialize(writer, list);
  return writer.getBuffer();
}

describe('devserver protocol: framing', () => {
  const big = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 13);

  it('negotiates v3 first, then v2, else nothing', () => {
    expect(negotiateProtocol(['v3.bsatn.spacetimedb', 'v2.bsatn.spacetimedb'])).to.equal(V3_PROTOCOL);
    expect(negotiateProtocol(['v2.bsatn.spacetimedb', 'v3.bsatn.spacetimedb'])).to.equal(V3_PROTOCOL);
    expect(negotiateProtocol(new Set(['v2.bsatn.spacetimedb']))).to.equal(V2_PROTOCOL);
    expect(negotiateProtocol(['v3.bsatn.spacetimedb, v2.bsatn.spacetimedb'])).to.equal(V3_PROTOCOL);
    expect(negotiateProtocol(['v1.bsatn.spacetimedb', 'v1.json.spacetimedb'])).to.equal(null);
    expect(negotiateProtocol([])).to.equal(null);
  });

  it('parses the compression query parameter like the real server', () => {
    expect(parseCompression(undefined)).to.equal('Brotli');
    expect(parseCompression(null)).to.equal('Brotli');
    expect(parseCompression('Gzip')).to.equal('Gzip');
    expect(parseCompression('None')).to.equal('None');
    expect(parseCompression('gzip')).to.equal(null);
  });

  it('compresses only bodies over 1 KiB', () => {
    expect(COMPRESS_THRESHOLD).to.equal(1024);
    expect(chooseCompression(1024, 'Gzip')).to.equal('None');
    expect(chooseCompression(1025, 'Gzip')).to.equal('Gzip');
    const small = frameServerPayload(big(1024), 'Gzip');
    expect(small[0]).to.equal(0);
    expect(small.subarray(1)).to.deep.equal(big(1024));
    expect(frameServerPayload(big(1025), 'Brotli')[0]).to.equal(1);
    expect(frameServerPayload(big(1025), 'Gzip')[0]).to.equal(2);
    expect(frameServerPayload(big(5000), 'None')[0]).to.equal(0);
  });

  it('produces gzip the SDK can inflate with DecompressionStream', async () => {
    const body = big(10_000);
    const frame = frameServerPayload(body, 'Gzip');
    expect(frame[0]).to.equal(2);
    expect(frame.length).to.be.lessThan(body.length);
    const inflated = new Uint8Array(await new Response(new Blob([frame.slice(1).buffer as ArrayBuffer]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
    expect(inflated).to.deep.equal(body);
  });

  it('produces brotli that node:zlib inflates, and unframes both', () => {
    const body = big(10_000);
    const frame = frameServerPayload(body, 'Brotli');
    expect(frame[0]).to.equal(1);
    expect(new Uint8Array(zlib.brotliDecompressSync(frame.subarray(1)))).to.deep.equal(body);
    expect(unframeServerPayload(frame)).to.deep.equal(body);
    expect(unframeServerPayload(frameServerPayload(body, 'Gzip'))).to.deep.equal(body);
  });

  it('offers an async compression path with the same output', async () => {
    const body = big(200_000);
    for (const c of ['Gzip', 'Brotli'] as const) {
      const frame = await frameServerPayloadAsync(body, c);
      expect(frame[0]).to.equal(c === 'Gzip' ? 2 : 1);
      expect(unframeServerPayload(frame)).to.deep.equal(body);
    }
    expect(await frameServerPayloadAsync(big(10), 'Gzip')).to.deep.equal(frameServerPayload(big(10), 'Gzip'));
  });

  it('rejects unknown compression tags and corrupt bodies', () => {
    expectDecodeError(() => unframeServerPayload(Uint8Array.from([3, 1, 2])), /unknown compression tag 3/);
    expectDecodeError(() => unframeServerPayload(Uint8Array.from([2, 1, 2, 3])), /cannot decompress/);
    expectDecodeError(() => unframeServerPayload(new Uint8Array(0)), /empty server frame/);
  });

  it('sends exactly one message per v2 frame', () => {
    const frames = encodeServerFrames(serverSamples.slice(0, 3), { protocol: V2_PROTOCOL, compression: 'Gzip' });
    expect(frames).to.have.length(3);
    frames.forEach((f, i) => expect(decodeServerFrame(f, V2_PROTOCOL)).to.deep.equal([serverSamples[i]]));
  });

  it('packs several messages into one v3 frame and unpacks them in order', () => {
    const frames = encodeServerFrames(serverSamples, { protocol: V3_PROTOCOL, compression: 'None' });
    expect(frames).to.have.length(1);
    expect(frames[0]![0]).to.equal(0);
    expect(decodeServerFrame(frames[0]!, V3_PROTOCOL)).to.deep.equal(serverSamples);
  });

  it('splits v3 payloads at the size budget, letting an oversized message travel alone', () => {
    const m = (n: number) => new Uint8Array(n).fill(n % 251);
    const sizes = (bodies: Uint8Array[]) => bodies.map(b => b.length);
    expect(sizes(packServerPayloads([m(40), m(40), m(30), m(10)], V3_PROTOCOL, 100))).to.deep.equal([80, 40]);
    expect(sizes(packServerPayloads([m(40), m(150), m(10)], V3_PROTOCOL, 100))).to.deep.equal([40, 150, 10]);
    expect(sizes(packServerPayloads([m(100), m(1)], V3_PROTOCOL, 100))).to.deep.equal([100, 1]);
    expect(sizes(packServerPayloads([m(40), m(40)], V2_PROTOCOL, 100))).to.deep.equal([40, 40]);
    expect(packServerPayloads([], V3_PROTOCOL)).to.deep.equal([]);
    expect(V3_MAX_PAYLOAD_BYTES).to.equal(512 * 1024);
    const packed = packServerPayloads([Uint8Array.from([1, 2]), Uint8Array.from([3])], V3_PROTOCOL);
    expect([...packed[0]!]).to.deep.equal([1, 2, 3]);
  });

  it('compresses a large v3 frame and decodes all its messages', async () => {
    const many = Array.from({ length: 200 }, (_, i) =>
      ServerMessage.SubscribeApplied({ requestId: i, querySetId: { id: i }, rows: queryRows('player', [[i & 0xff, 1, 2, 3]]) }),
    );
    const frames = await encodeServerFramesAsync(many, { protocol: V3_PROTOCOL, compression: 'Gzip' });
    expect(frames).to.have.length(1);
    expect(frames[0]![0]).to.equal(2);
    expect(decodeServerFrame(frames[0]!, V3_PROTOCOL)).to.deep.equal(many);
  });

  it('batches queued messages and keeps async flushes in order', async () => {
    const batcher = new ServerFrameBatcher({ protocol: V3_PROTOCOL, compression: 'Gzip', maxPayloadBytes: 2048 });
    const payload = (i: number) =>
      ServerMessage.ReducerResult({
        requestId: i,
        timestamp: TS,
        result: { tag: 'Ok', value: { retValue: new Uint8Array(900).fill(i), transactionUpdate: { querySets: [] } } },
      });
    for (let i = 0; i < 5; i++) batcher.push(payload(i));
    expect(batcher.pendingMessages).to.equal(5);
    const first = batcher.flushAsync();
    batcher.push(payload(5));
    const second = batcher.flushAsync();
    expect(batcher.pendingMessages).to.equal(0);
    const order: number[] = [];
    const [a, b] = await Promise.all([first.then(f => (order.push(1), f)), second.then(f => (order.push(2), f))]);
    expect(order).to.deep.equal([1, 2]);
    expect(a).to.have.length(3); // 2 + 2 + 1 messages of ~920 bytes under a 2048 budget
    const decoded = [...a, ...b].flatMap(f => decodeServerFrame(f, V3_PROTOCOL));
    expect(decoded.map(m => m.tag === 'ReducerResult' && m.value.requestId)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    expect(batcher.flush()).to.deep.equal([]);
  });

  it('decodes one client message per v2 frame and several per v3 frame', () => {
    const v2 = encodeClientFrame([clientSamples[0]!], V2_PROTOCOL);
    expect(decodeClientFrame(v2, V2_PROTOCOL)).to.deep.equal([clientSamples[0]]);
    expect(() => encodeClientFrame(clientSamples.slice(0, 2), V2_PROTOCOL)).to.throw(RangeError);
    const v3 = encodeClientFrame(clientSamples, V3_PROTOCOL);
    expect(decodeClientFrame(v3, V3_PROTOCOL)).to.deep.equal(clientSamples);
    // Under v2, two concatenated messages are trailing garbage.
    expectDecodeError(() => decodeClientFrame(v3, V2_PROTOCOL), /trailing byte/);
  });

  it('rejects an empty v3 client frame and reports messages decoded before a bad one', () => {
    expectDecodeError(() => decodeClientFrame(new Uint8Array(0), V3_PROTOCOL), /at least one message/);
    const good = encodeClientFrame(clientSamples.slice(0, 2), V3_PROTOCOL);
    const err = expectDecodeError(() => decodeClientFrame(bin([...good], u8(9)), V3_PROTOCOL), /unknown variant tag 9/);
    expect(err.decoded).to.deep.equal(clientSamples.slice(0, 2));
    expect(err.offset).to.equal(good.length);
  });
});
