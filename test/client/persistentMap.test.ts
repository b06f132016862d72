import { expect } from 'chai';
import fc from 'fast-check';
import { PersistentMap, hashKey } from '../../streams/persistentMap.ts';
import { redact } from '../../streams/logger.ts';

describe('PersistentMap', () => {
  it('behaves like Map under random set/delete batches and never changes an older version', () => {
    const key = fc.oneof(fc.integer({ min: -50, max: 50 }), fc.bigInt({ min: -50n, max: 50n }), fc.string({ maxLength: 3 }));
    const op = fc.tuple(fc.boolean(), key, fc.integer());
    fc.assert(
      fc.property(fc.array(fc.array(op, { maxLength: 40 }), { maxLength: 8 }), (batches) => {
        let pm = PersistentMap.empty<string | number | bigint, number>();
        const model = new Map<string | number | bigint, number>();
        const history: [PersistentMap<string | number | bigint, number>, [unknown, number][]][] = [];
        for (const [i, batch] of batches.entries()) {
          const apply = (m: { set(k: any, v: number): unknown; delete(k: any): unknown }) => {
            for (const [isSet, k, v] of batch) (isSet ? m.set(k, v) : m.delete(k));
          };
          if (i % 2 === 0) pm = pm.withMutations((m) => apply(m));
          else for (const [isSet, k, v] of batch) pm = isSet ? pm.set(k, v) : pm.delete(k);
          apply(model);
          expect(pm.size).to.equal(model.size);
          for (const [k, v] of model) expect(pm.get(k)).to.equal(v);
          expect(new Map(pm)).to.deep.equal(model);
          history.push([pm, [...model]]);
        }
        for (const [old, entries] of history) expect(new Map(old)).to.deep.equal(new Map(entries));
      }),
      { numRuns: 200 },
    );
  });

  it('handles colliding hashes, large bigints, fractions and bulk builds like Map', () => {
    // Strings with equal 32-bit hashes (found by brute force), so collision nodes are exercised.
    const seen = new Map<number, string>();
    const colliding: (string | number | bigint)[] = [];
    for (let i = 0; colliding.length < 6; i++) {
      const s = `k${i}`;
      const other = seen.get(hashKey(s));
      if (other !== undefined) colliding.push(other, s);
      else seen.set(hashKey(s), s);
    }
    expect(hashKey(colliding[0])).to.equal(hashKey(colliding[1]));
    // A number and a bigint with that same hash (inverting the integer mix), so collision nodes hold 4 keys.
    const unmix = (h: number) => {
      h ^= h >>> 16;
      h = Math.imul(h, 0x7ed1b41d);
      h ^= (h >>> 13) ^ (h >>> 26);
      h = Math.imul(h, 0xa5cb9243);
      return (h ^ (h >>> 16)) | 0;
    };
    const x = unmix(hashKey(colliding[0]));
    colliding.push(x, BigInt(x));
    expect(hashKey(x)).to.equal(hashKey(colliding[0]));
    expect(hashKey(BigInt(x))).to.equal(hashKey(colliding[0]));
    const big = (n: bigint) => (1n << 80n) + n; // beyond a double's precision: must not collapse to one hash
    const key = fc.oneof(
      fc.constantFrom(...colliding),
      fc.bigInt({ min: -3n, max: 3n }).map(big),
      fc.bigInt({ min: -(1n << 60n), max: 1n << 60n }),
      fc.integer({ min: -40, max: 40 }).map((n) => n / 4),
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      fc.boolean(),
    );
    const op = fc.tuple(fc.boolean(), key, fc.integer());
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.integer()), { maxLength: 60 }), fc.array(fc.array(op, { maxLength: 30 }), { maxLength: 6 }), (initial, batches) => {
        let pm = PersistentMap.build(initial.map(([k]) => k), initial.map(([, v]) => v));
        const model = new Map<any, number>(initial);
        expect(new Map(pm)).to.deep.equal(model);
        expect(new Map(PersistentMap.from(initial))).to.deep.equal(model);
        const history: [PersistentMap<any, number>, [unknown, number][]][] = [[pm, [...model]]];
        for (const [i, batch] of batches.entries()) {
          const apply = (m: { set(k: any, v: number): unknown; delete(k: any): unknown }) => {
            for (const [isSet, k, v] of batch) (isSet ? m.set(k, v) : m.delete(k));
          };
          if (i % 2 === 0) pm = pm.withMutations((m) => apply(m));
          else for (const [isSet, k, v] of batch) pm = isSet ? pm.set(k, v) : pm.delete(k);
          apply(model);
          expect(pm.size).to.equal(model.size);
          for (const [k, v] of model) expect(pm.get(k)).to.equal(v);
          for (const [isSet, k] of batch) if (!isSet) expect(pm.has(k)).to.equal(model.has(k));
          expect(new Map(pm)).to.deep.equal(model);
          const each = new Map();
          pm.forEach((v, k) => each.set(k, v));
          expect(each).to.deep.equal(model);
          history.push([pm, [...model]]);
        }
        for (const [old, entries] of history) expect(new Map(old)).to.deep.equal(new Map(entries));
      }),
      { numRuns: 300 },
    );
  });

  it('spreads large bigint keys that differ only in low bits over different hashes', () => {
    const hashes = new Set(Array.from({ length: 1000 }, (_, i) => hashKey((1n << 100n) + BigInt(i))));
    expect(hashes.size).to.be.greaterThan(990);
    expect(hashKey(123n)).to.equal(hashKey(123n));
    expect(hashKey(2n ** 40n + 7n)).to.not.equal(hashKey(2n ** 40n + 8n));
  });

  it('refuses a mutator kept past its batch, so the new map cannot change afterwards', () => {
    let kept: { set(k: number, v: number): void } | undefined;
    const a = PersistentMap.empty<number, number>().withMutations((m) => {
      m.set(1, 1);
      kept = m;
    });
    expect(() => kept!.set(2, 2)).to.throw(/after withMutations returned/);
    expect([...a]).to.deep.equal([[1, 1]]);
    // A later batch copies what the first one created instead of editing it.
    const b = a.withMutations((m) => m.set(1, 5));
    expect(a.get(1)).to.equal(1);
    expect(b.get(1)).to.equal(5);
  });

  it('returns the same map when nothing changes, so unchanged snapshots are not re-emitted', () => {
    const row = { id: 1 };
    const a = PersistentMap.empty<number, object>().set(1, row);
    expect(a.set(1, row)).to.equal(a);
    expect(a.delete(2)).to.equal(a);
    expect(a.withMutations(() => {})).to.equal(a);
  });

  it('keeps 100k rows and changes one in time independent of the size', () => {
    const big = PersistentMap.from(Array.from({ length: 100_000 }, (_, i) => [BigInt(i), { i }] as const));
    const t0 = performance.now();
    let m = big;
    for (let i = 0; i < 1000; i++) m = m.set(BigInt(i), { i: -i });
    const perTxn = (performance.now() - t0) / 1000;
    expect(big.get(5n)).to.deep.equal({ i: 5 });
    expect(m.get(5n)).to.deep.equal({ i: -5 });
    expect(perTxn).to.be.lessThan(0.5); // ms per single-row transaction; copying the Map takes ~14 ms
  });
});

describe('logger redaction', () => {
  it('never prints a token', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const out = redact(`GET /subscribe?token=${jwt}&compression=None Authorization: Bearer ${jwt} raw ${jwt}`);
    expect(out).to.not.contain(jwt);
    expect(out).to.contain('compression=None');
  });
});

describe('PersistentMap.deferred', () => {
  it('behaves as the built map: size at once; lookups, iteration and changes build it on first use', () => {
    const keys = Array.from({ length: 3000 }, (_, i) => BigInt(i * 7));
    const values = keys.map((k) => ({ k }));
    const built = PersistentMap.build(keys, values);
    const lazy = PersistentMap.deferred(keys, values);
    expect(lazy.size).to.equal(3000);
    expect(lazy.get(21n)).to.equal(values[3]);
    expect(lazy.has(22n)).to.equal(false);
    expect([...lazy.keys()].sort((a, b) => Number(a - b))).to.deep.equal([...built.keys()].sort((a, b) => Number(a - b)));
    const lazy2 = PersistentMap.deferred(keys, values);
    const next = lazy2.withMutations((m) => {
      expect(m.swap(0n, { k: -1n })).to.equal(values[0]);
      m.delete(7n);
    });
    expect(next.size).to.equal(2999);
    expect(lazy2.get(0n)).to.equal(values[0]); // the deferred map itself never changes
    expect(lazy2.size).to.equal(3000);
    expect(PersistentMap.deferred<number, string>([5], ["a"]).set(6, "b").size).to.equal(2);
    expect(PersistentMap.deferred([], []).size).to.equal(0);
  });
});
