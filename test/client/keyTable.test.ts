import { expect } from 'chai';
import fc from 'fast-check';
import { KeyTable } from '../../streams/keyTable.ts';

describe('KeyTable', () => {
  it('behaves like Map under random sets and deletes, through growth and back-shifting deletions', () => {
    // Few distinct keys in a wide range, clustered keys (long probe runs), large safe integers, -0, and non-integer keys.
    const key = fc.oneof(
      fc.integer({ min: -40, max: 40 }),
      fc.integer({ min: 0, max: 5 }).map((i) => i * 1024),
      fc.constantFrom(2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 40 + 3, -0, 0.5, NaN, 'a', 7n),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('set', 'delete', 'swap', 'swap-out'), key, fc.integer()), { maxLength: 400 }), (ops) => {
        const t = new KeyTable<number>();
        const m = new Map<unknown, number>();
        for (const [op, k, v] of ops) {
          if (op === 'set') {
            t.set(k, v);
            m.set(k, v);
          } else if (op === 'delete') expect(t.delete(k)).to.equal(m.delete(k));
          else {
            // swap: set (or remove) and get the previous value in one probe
            expect(t.swap(k, op === 'swap' ? v : undefined)).to.equal(m.get(k));
            if (op === 'swap') m.set(k, v);
            else m.delete(k);
          }
          expect(t.size).to.equal(m.size);
        }
        for (const [k, v] of m) expect(t.get(k)).to.equal(v);
        expect(new Map(t.entries())).to.deep.equal(m);
        const copy = t.clone();
        copy.set(12345, 1);
        expect(t.has(12345)).to.equal(m.has(12345));
        expect(copy.get(12345)).to.equal(1);
      }),
      { numRuns: 300 },
    );
  });

  it('builds from arrays (later duplicates win) and finds every key of a large table', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => i * 7);
    const t = KeyTable.of([...keys, 7], [...keys.map((k) => k + 1), -1]);
    expect(t.size).to.equal(20_000);
    expect(t.get(7)).to.equal(-1);
    for (let i = 2; i < keys.length; i += 997) expect(t.get(keys[i])).to.equal(keys[i] + 1);
    expect(t.get(3)).to.equal(undefined);
  });

  it('keeps consecutive keys (runs placed together) findable through growth and deletions', () => {
    const t = new KeyTable<number>();
    const m = new Map<number, number>();
    // Ranges of ids, as a table with auto-incremented keys has, interleaved with scattered keys.
    for (let i = 1; i <= 5_000; i++) {
      t.set(i, i);
      m.set(i, i);
      const far = i * 4096 + 3;
      t.set(far, -i);
      m.set(far, -i);
    }
    for (let i = 1; i <= 5_000; i += 3) {
      expect(t.delete(i)).to.equal(true);
      m.delete(i);
    }
    expect(t.size).to.equal(m.size);
    for (const [k, v] of m) expect(t.get(k)).to.equal(v);
    for (let i = 1; i <= 5_000; i += 3) expect(t.get(i)).to.equal(undefined);
    expect(new Map(t.entries())).to.deep.equal(m);
  });
});
