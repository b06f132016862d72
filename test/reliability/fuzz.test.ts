/**
 * Property-based fuzzing of client messages against one dev server, over real
 * sockets on 127.0.0.1. Each run is one socket (v2 or v3, any compression)
 * sending random well-formed `ClientMessage`s (random SQL, reducer names and
 * argument bytes, request and query set ids, duplicate ids, unsubscribes of
 * unknown sets), and, in some runs, one bad frame at the end: random bytes, a
 * truncated or mutated valid frame, a text frame or a message over the cap.
 *
 * Invariants:
 * - the server logs no error, and no uncaught exception or unhandled
 *   rejection reaches this process;
 * - every well-formed message gets its answer, in order, of the right kind
 *   (checked against a model of the socket's query sets);
 * - a frame that does not decode (the server's strict decoder is the oracle)
 *   closes that socket with 1011 and a non-empty reason, after the answers to
 *   the messages before it;
 * - a sentinel SDK client connected throughout still gets its reducer results
 *   and subscription updates at the end.
 *
 * Reproduce a failure with the seed it prints: `FUZZ_SEED=<n> npx mocha test/reliability/fuzz.test.ts`
 * (`FUZZ_RUNS=<n>` changes the number of runs).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { BinaryWriter } from 'spacetimedb';
import type { DevServer } from '../../devserver/index.ts';
import { decodeClientFrame, encodeClientFrame, V2_PROTOCOL, V3_PROTOCOL, type WsProtocol } from '../../devserver/protocol/framing.ts';
import { ProtocolDecodeError, type ClientMessage, type ServerMessage } from '../../devserver/protocol/messages.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { Sentinel, startBasicServer, Watch } from './harness.ts';
import { until } from '../helpers/until.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_509);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const LIMIT = 16 * 1024;

// ---------------------------------------------------------------------------
// Arbitraries

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const setId = fc.integer({ min: 0, max: 4 }); // few ids: duplicates and unknown unsubscribes are common

const TABLES = ['person', 'note', 'connections', 'secret', 'score', 'nowhere', '"person"', 'Person'];
const COLUMNS = ['id', 'name', 'age', 'owner', 'person_id', 'body', 'connected', 'nick_name', 'identity', 'nope', '"age"'];
const literal = fc.oneof(
  fc.integer().map(String),
  fc.string({ maxLength: 8 }).map((s) => `'${s.replace(/'/g, "''")}'`),
  fc.constantFrom('TRUE', 'FALSE', ':sender', ':other', '0x00', "X'c200'", '1.5', '-3', '1e400', "'2024-01-01T00:00:00Z'", 'NULL'),
);
const condition = fc
  .tuple(fc.constantFrom(...COLUMNS), fc.constantFrom('=', '!=', '<>', '<', '<=', '>', '>=', 'LIKE', '+'), literal)
  .map(([c, op, l]) => `${c} ${op} ${l}`);
const where = fc
  .array(fc.tuple(condition, fc.constantFrom('AND', 'OR'), fc.boolean()), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.map(([c, op, paren], i) => `${i ? `${op} ` : ''}${paren ? `(${c})` : c}`).join(' '));
const selectSql = fc
  .tuple(fc.constantFrom('SELECT *', 'SELECT person.*', 'SELECT name', 'select *', 'SELECT COUNT(*)'), fc.constantFrom(...TABLES, '*'), fc.option(where))
  .map(([sel, t, w]) => `${sel} FROM ${t}${w ? ` WHERE ${w}` : ''}`);
const joinSql = fc.constantFrom(
  'SELECT note.* FROM note JOIN person ON note.person_id = person.id',
  'SELECT note.* FROM note JOIN person ON note.person_id = person.id WHERE person.age > 3',
  'SELECT person.* FROM person JOIN note ON person.id = note.person_id WHERE note.owner = :sender',
  'SELECT note.* FROM note JOIN person ON note.body = person.name',
  'SELECT a.* FROM note a JOIN person b ON a.person_id = b.id JOIN note c ON c.id = a.id',
);
const sql = fc.oneof(
  { weight: 4, arbitrary: selectSql },
  { weight: 1, arbitrary: joinSql },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
);

const REDUCERS = ['add_person', 'rename_person', 'delete_person', 'add_note', 'count_adults', 'insert_twice_then_fail', 'log_something', 'on_connect', 'on_disconnect'];
const addPersonArgs = fc.tuple(fc.string({ maxLength: 12 }), u32).map(([name, age]) => {
  const w = new BinaryWriter(32);
  w.writeString(name);
  w.writeU32(age);
  return w.getBuffer().slice();
});
const callReducer = fc
  .record({
    requestId: u32,
    reducer: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...REDUCERS) }, { weight: 1, arbitrary: fc.string({ maxLength: 16 }) }),
    args: fc.oneof(fc.uint8Array({ maxLength: 24 }), addPersonArgs),
  })
  .map(({ requestId, reducer, args }) => ({ tag: 'CallReducer' as const, value: { requestId, flags: 0, reducer, args } }));

const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({ requestId: u32, id: setId, queryStrings: fc.array(sql, { maxLength: 3 }) })
      .map(({ requestId, id, queryStrings }) => ({ tag: 'Subscribe' as const, value: { requestId, querySetId: { id }, queryStrings } })),
  },
  {
    weight: 2,
    arbitrary: fc.record({ requestId: u32, id: setId, drop: fc.boolean() }).map(({ requestId, id, drop }) => ({
      tag: 'Unsubscribe' as const,
      value: { requestId, querySetId: { id }, flags: drop ? { tag: 'SendDroppedRows' as const } : { tag: 'Default' as const } },
    })),
  },
  { weight: 2, arbitrary: fc.record({ requestId: u32, queryString: sql }).map((value) => ({ tag: 'OneOffQuery' as const, value })) },
  { weight: 3, arbitrary: callReducer },
  {
    weight: 1,
    arbitrary: fc
      .record({ requestId: u32, procedure: fc.string({ maxLength: 10 }), args: fc.uint8Array({ maxLength: 8 }) })
      .map(({ requestId, procedure, args }) => ({ tag: 'CallProcedure' as const, value: { requestId, flags: 0, procedure, args } })),
  },
);

type Bad =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'oversized'; size: number };

const concat = (parts: Uint8Array[]) => encodeClientFrame(parts, V3_PROTOCOL);
const badFrame: fc.Arbitrary<Bad> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 48 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.array(clientMessage, { minLength: 1, maxLength: 3 }), fc.double({ min: 0, max: 1, noNaN: true })).map(([ms, at]) => {
      const full = concat(ms.map((m) => encodeClientFrame([m], V3_PROTOCOL)));
      return { kind: 'bytes' as const, bytes: full.subarray(0, Math.floor(at * full.length)) };
    }),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.array(clientMessage, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }))
      .map(([ms, flips]) => {
        const bytes = concat(ms.map((m) => encodeClientFrame([m], V3_PROTOCOL))).slice();
        for (const [at, x] of flips) bytes[at % bytes.length] ^= x;
        return { kind: 'bytes' as const, bytes };
      }),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.integer({ min: LIMIT + 1, max: 3 * LIMIT }).map((size) => ({ kind: 'oversized' as const, size })) },
);

const session = fc.record({
  protocol: fc.constantFrom<WsProtocol>(V3_PROTOCOL, V2_PROTOCOL),
  compression: fc.constantFrom('None', 'Gzip', 'Brotli'),
  frames: fc.array(fc.array(clientMessage, { minLength: 1, maxLength: 4 }), { maxLength: 4 }),
  bad: fc.option(badFrame, { freq: 2 }),
});

// ---------------------------------------------------------------------------
// The model: which answer each well-formed message must get

const ANSWERS = new Set<ServerMessage['tag']>(['SubscribeApplied', 'UnsubscribeApplied', 'SubscriptionError', 'OneOffQueryResult', 'ReducerResult', 'ProcedureResult']);
const CALLABLE = new Set(['add_person', 'rename_person', 'delete_person', 'add_note', 'count_adults', 'insert_twice_then_fail', 'log_something']);

function checkAnswers(sent: ClientMessage[], received: ServerMessage[]) {
  const answers = received.filter((m) => ANSWERS.has(m.tag));
  expect(answers.length, `answers for ${sent.length} messages: ${answers.map((a) => a.tag).join(', ')}`).to.equal(sent.length);
  const sets = new Set<number>();
  sent.forEach((msg, i) => {
    const a = answers[i] as ServerMessage & { value: { requestId?: number } };
    const where = `message ${i} (${msg.tag} ${JSON.stringify(msg.value, (_k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v))}) → ${a.tag}`;
    expect(a.value.requestId, where).to.equal(msg.value.requestId);
    switch (msg.tag) {
      case 'Subscribe': {
        const id = msg.value.querySetId.id;
        if (sets.has(id)) {
          expect(a.tag, `${where}: duplicate query set id`).to.equal('SubscriptionError');
          expect((a.value as { error: string }).error, where).to.match(/already subscribed/);
        } else {
          expect(a.tag, where).to.be.oneOf(['SubscribeApplied', 'SubscriptionError']);
          if (a.tag === 'SubscribeApplied') sets.add(id);
          else expect((a.value as { error: string }).error, `${where}: a reason`).to.not.equal('');
        }
        expect((a.value as { querySetId: { id: number } }).querySetId.id, where).to.equal(id);
        break;
      }
      case 'Unsubscribe': {
        const id = msg.value.querySetId.id;
        if (sets.delete(id)) {
          expect(a.tag, where).to.equal('UnsubscribeApplied');
          const rows = (a.value as { rows?: unknown }).rows;
          expect(rows !== undefined, `${where}: rows iff SendDroppedRows`).to.equal(msg.value.flags.tag === 'SendDroppedRows');
        } else {
          expect(a.tag, `${where}: unknown query set`).to.equal('SubscriptionError');
        }
        break;
      }
      case 'OneOffQuery':
        expect(a.tag, where).to.equal('OneOffQueryResult');
        break;
      case 'CallReducer': {
        expect(a.tag, where).to.equal('ReducerResult');
        const result = (a.value as { result: { tag: string } }).result;
        if (!CALLABLE.has(msg.value.reducer)) expect(result.tag, `${where}: not callable`).to.equal('InternalError');
        break;
      }
      case 'CallProcedure':
        expect(a.tag, where).to.equal('ProcedureResult');
        break;
    }
  });
}

// ---------------------------------------------------------------------------

describe('reliability: fuzzing client messages', function () {
  this.timeout(120_000);
  let server: DevServer;
  let watch: Watch;
  let sentinel: Sentinel;

  before(async () => {
    watch = new Watch().start();
    server = await startBasicServer({ logger: watch.logger, maxMessageBytes: LIMIT });
    sentinel = await Sentinel.start(server);
  });
  after(async () => {
    sentinel.stop();
    await server.stop();
    watch.stop();
  });

  it(`keeps every invariant over ${RUNS} random sessions (seed ${SEED}), and the sentinel keeps working`, async () => {
    let runs = 0;
    let closedBad = 0;
    const property = fc.asyncProperty(session, async ({ protocol, compression, frames, bad }) => {
      runs++;
      const r = await RawClient.open(server, { protocols: [protocol], compression });
      r.ws.on('error', () => {}); // this client's own socket errors (e.g. EPIPE after a close) are not the server's
      try {
        await r.next('InitialConnection');
        const sent: ClientMessage[] = [];
        for (const frame of frames) {
          if (protocol === V2_PROTOCOL) for (const m of frame) r.send(m);
          else r.send(...frame);
          sent.push(...frame);
        }
        let expectClose: RegExp | undefined;
        if (bad?.kind === 'oversized') {
          r.sendRaw(new Uint8Array(bad.size));
          expectClose = /exceeds the 16384-byte limit/;
        } else if (bad?.kind === 'text') {
          r.ws.send(bad.text, { binary: false });
          expectClose = /text frames/;
        } else if (bad) {
          try {
            sent.push(...decodeClientFrame(bad.bytes, protocol));
          } catch (e) {
            if (!(e instanceof ProtocolDecodeError)) throw e;
            sent.push(...(e.decoded as ClientMessage[]));
            expectClose = /./;
          }
          r.sendRaw(bad.bytes);
        }
        if (expectClose) {
          const closed = await r.closed();
          expect(closed.code, 'close code for a bad frame').to.equal(1011);
          expect(closed.reason, 'close reason').to.match(expectClose);
          closedBad++;
        } else {
          // A last message as a barrier: when its answer is in, every earlier one must be.
          const probe: ClientMessage = { tag: 'OneOffQuery', value: { requestId: 4242, queryString: 'SELECT * FROM connections' } };
          r.send(probe);
          sent.push(probe);
          await r.next('OneOffQueryResult', () => r.messages.filter((m) => ANSWERS.has(m.tag)).length >= sent.length);
          expect(r.closeCode, 'a socket that sent only well-formed messages stays open').to.equal(undefined);
        }
        checkAnswers(sent, r.messages);
        watch.expectClean(`after run ${runs}`);
      } finally {
        r.ws.terminate();
      }
    });
    try {
      await fc.assert(property, { seed: SEED, numRuns: RUNS, endOnFailure: true });
    } catch (e) {
      throw new Error(`fuzz failed (reproduce: FUZZ_SEED=${SEED} npx mocha test/reliability/fuzz.test.ts)\n${(e as Error).message}`);
    }
    expect(runs).to.equal(RUNS);
    expect(closedBad, 'some runs ended with a bad frame').to.be.greaterThan(RUNS / 10);
    await sentinel.check();
    watch.expectClean('at the end');
    await until(() => server.stats().connections === 1, 'every fuzz socket to be gone, only the sentinel left', 5000);
  });
});
