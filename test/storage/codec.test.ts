import { expect } from 'chai';
import fc from 'fast-check';
import { Identity, Timestamp } from 'spacetimedb';
import { checkValue, encodeArgs, productCodec } from '../../storage/codec.ts';
import { InvalidArgsError } from '../../storage/errors.ts';
import { arena } from './helpers.ts';

const params = (name: string) => arena.reducers.find(r => r.name === name)!.paramsType;

describe('storage/codec', () => {
  it('every well-typed report_telemetry call passes the check and survives a BSATN round trip', () => {
    const codec = productCodec(params('report_telemetry'));
    const event = fc.record({
      kind: fc.string(),
      value: fc.double(),
      clientTime: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(us => new Timestamp(us)),
    });
    fc.assert(
      fc.property(fc.string(), fc.array(event, { maxLength: 5 }), (mutationId, events) => {
        const args = { mutationId, events };
        const bytes = encodeArgs('report_telemetry', codec, args);
        const back = codec.decode(bytes) as typeof args;
        expect(back.mutationId).to.equal(mutationId);
        expect(back.events.map(e => [e.kind, e.value, e.clientTime.microsSinceUnixEpoch])).to.deep.equal(
          events.map(e => [e.kind, e.value, e.clientTime.microsSinceUnixEpoch]),
        );
      }),
    );
  });

  it('integers outside their type are refused, never wrapped', () => {
    const u32 = { tag: 'U32' } as const;
    const u64 = { tag: 'U64' } as const;
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -1e9, max: -1 }), fc.integer({ min: 2 ** 32, max: 2 ** 40 })), n => {
        expect(checkValue(u32, n, 'v')).to.not.equal(undefined);
      }),
    );
    expect(checkValue(u64, (1n << 64n) - 1n, 'v')).to.equal(undefined);
    expect(checkValue(u64, 1n << 64n, 'v')?.expected).to.equal('a bigint u64');
    expect(checkValue(u64, -1n, 'v')).to.not.equal(undefined);
    expect(checkValue(u32, 1.5, 'v')).to.not.equal(undefined);
  });

  it('names the failing path inside options, arrays, sums and special types', () => {
    const codec = productCodec(params('end_match'));
    expect(() => encodeArgs('end_match', codec, { mutationId: 'm', matchId: 1n, winner: { __identity__: 5 } })).to.throw(
      InvalidArgsError,
      'end_match: args.winner must be an Identity, got an object',
    );
    expect(() => encodeArgs('end_match', codec, { mutationId: 'm', matchId: 1n, winner: new Identity(7n) })).not.to.throw();
    const state = arena.tables.arenaMatch.rowType.elements.find(e => e.name === 'state')!.algebraicType;
    expect(checkValue(state, { tag: 'Lobby' }, 'row.state')).to.equal(undefined);
    expect(checkValue(state, { tag: 'Paused' }, 'row.state')?.expected).to.match(/one of the variants/);
    expect(checkValue(state, 'Lobby', 'row.state')?.path).to.equal('row.state');
    // A path through an array into a field, outermost first.
    const telemetry = productCodec(params('report_telemetry'));
    const ok = { kind: 'k', value: 1, clientTime: new Timestamp(1n) };
    expect(() => encodeArgs('report_telemetry', telemetry, { mutationId: 'm', events: [ok, { ...ok, value: 'x' }] })).to.throw(
      InvalidArgsError,
      'report_telemetry: args.events[1].value must be a number (f64)',
    );
  });

  it('bytes handed out stay as they were through later encodes, also one started inside another', () => {
    const codec = productCodec(params('report_telemetry'));
    const event = (kind: string) => ({ kind, value: 2, clientTime: new Timestamp(3n) });
    const first = codec.encode({ mutationId: 'a', events: [event('one')] });
    const copy = first.slice();
    codec.encode({ mutationId: 'b'.repeat(200), events: [event('two'), event('three')] });
    expect(first).to.deep.equal(copy);
    // A getter that encodes while the outer encode is under way.
    let inner: Uint8Array | undefined;
    const sneaky = {
      mutationId: 'outer',
      get events() {
        inner = codec.encode({ mutationId: 'inner', events: [] });
        return [event('x')];
      },
    };
    const outer = codec.encode(sneaky);
    expect((codec.decode(outer) as { mutationId: string }).mutationId).to.equal('outer');
    expect((codec.decode(outer) as { events: { kind: string }[] }).events.map(e => e.kind)).to.deep.equal(['x']);
    expect((codec.decode(inner!) as { mutationId: string }).mutationId).to.equal('inner');
  });
});
