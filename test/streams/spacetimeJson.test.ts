/**
 * The SpacetimeDB extension of the delta encoding (streams/spacetimeJson.ts)
 * and the `stdb-rx` entry's delta operators, which use it by default.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { from, lastValueFrom, map, toArray } from 'rxjs';
import { ConnectionId, Identity, TimeDuration, Timestamp } from 'spacetimedb';
import * as operators from '../../operators/index.ts';
import { applyDelta, decodeValue, DeltaEncodingError, encodeValue, jsonPatchDelta, plainJson, spacetimeJson, type DeltaOperation } from '../../src/index.ts';
import { errorAsValue, newScheduler } from '../operators/marbles.ts';

type Row = Record<string, unknown>;

describe('spacetimeJson: the SpacetimeDB types as tagged JSON', () => {
  const row = {
    identity: new Identity(0xabcn),
    connection: new ConnectionId(0x1fn),
    at: new Timestamp(1_700_000_000_000_000n),
    took: new TimeDuration(-5n),
    big: 7n,
  };
  const encoded = {
    identity: { $identity: 'abc'.padStart(64, '0') },
    connection: { $connectionId: '1f'.padStart(32, '0') },
    at: { $timestamp: '1700000000000000' },
    took: { $timeDuration: '-5' },
    big: { $bigint: '7' },
  };

  it('encodes them and rebuilds instances of the SDK classes', () => {
    expect(spacetimeJson.encode(row)).to.deep.equal(encoded);
    expect(encodeValue(row), 'the stdb-rx encodeValue').to.deep.equal(encoded);
    const back = decodeValue(JSON.parse(JSON.stringify(encoded))) as typeof row;
    expect(back).to.deep.equal(row);
    expect(back.identity).to.be.instanceOf(Identity);
    expect(back.connection).to.be.instanceOf(ConnectionId);
    expect(back.at).to.be.instanceOf(Timestamp);
    expect(back.took).to.be.instanceOf(TimeDuration);
  });

  it('recognises the values by their field, so instances of a second copy of the SDK encode too', () => {
    const foreign = { __identity__: 0xabcn };
    Object.setPrototypeOf(foreign, class Identity {}.prototype);
    expect(spacetimeJson.encode(foreign)).to.deep.equal({ $identity: 'abc'.padStart(64, '0') });
  });

  it('refuses malformed bodies with a DeltaEncodingError', () => {
    for (const bad of [{ $identity: 'xyz' }, { $identity: 5 }, { $connectionId: '' }, { $timestamp: '1.5' }, { $timeDuration: null }]) {
      expect(() => spacetimeJson.decode({ v: bad as never }), JSON.stringify(bad)).to.throw(DeltaEncodingError, /Malformed tagged value/);
    }
  });

  it('the operators entry knows none of them: plainJson refuses an Identity', () => {
    expect(() => plainJson.encode(row)).to.throw(DeltaEncodingError, /Identity instance cannot be encoded/);
    expect(() => operators.decodeValue(encoded)).to.throw(DeltaEncodingError, /\$identity/);
  });

  it('stdb-rx jsonPatchDelta / applyDelta use it by default (marbles)', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const id = new Identity(1n);
      const first = { since: new Timestamp(10n) };
      const a = new Map([[id, first]]);
      const b = new Map([[id, { since: new Timestamp(20n) }]]);
      const key = '1'.padStart(64, '0');
      const ops = {
        x: [{ op: 'add', path: `/${key}`, value: { since: { $timestamp: '10' } } }] as DeltaOperation[],
        y: [{ op: 'replace', path: `/${key}/since`, value: { $timestamp: '20' } }] as DeltaOperation[],
      };
      expectObservable(cold('a-b|', { a, b }).pipe(jsonPatchDelta())).toBe('x-y|', ops);
      expectObservable(cold('x-y|', ops).pipe(applyDelta({ keyFromString: (hex) => new Identity(hex) }))).toBe('a-b|', { a, b });
      // An explicit codec still wins.
      expectObservable(cold('a|', { a }).pipe(jsonPatchDelta({ codec: plainJson }), errorAsValue())).toBe('(e|)', {
        e: { name: 'DeltaEncodingError', info: { path: `/${key}/since`, value: first.since } },
      });
    });
  });

  it('round trip through JSON text holds for any of the SDK values (property)', async () => {
    const value = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }).map((n) => new Identity(n)),
      fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((n) => new ConnectionId(n)),
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((n) => new Timestamp(n)),
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((n) => new TimeDuration(n)),
    );
    const snapshot = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), value), { maxLength: 3 }).map((entries) => new Map(entries.map(([k, v]) => [k, { v }])));
    await fc.assert(
      fc.asyncProperty(fc.array(snapshot, { maxLength: 5 }), async (input) => {
        const output = await lastValueFrom(
          from(input).pipe(
            jsonPatchDelta(),
            map((ops) => JSON.parse(JSON.stringify(ops)) as DeltaOperation[]),
            applyDelta<string, Row>(),
            toArray(),
          ),
        );
        expect(output.map((m) => [...m].sort())).to.deep.equal(input.map((m) => [...m].sort()));
      }),
      { numRuns: 100 },
    );
  });
});
