import { expect } from 'chai';
import fc from 'fast-check';
import { DELETED, OverlayMap } from '../../operators/overlayMap.ts';

describe('OverlayMap', () => {
  it('reads like the base map with the overrides applied, without copying the base', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.string()), { maxLength: 30 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.option(fc.string(), { nil: undefined })), { maxLength: 15 }),
        (baseEntries, changes) => {
          const base = new Map(baseEntries);
          const overrides = new Map<number, string | typeof DELETED>();
          const expected = new Map(base);
          for (const [k, v] of changes) {
            overrides.set(k, v === undefined ? DELETED : v);
            if (v === undefined) expected.delete(k);
            else expected.set(k, v);
          }
          const view = new OverlayMap(base, overrides);
          expect(view.size).to.equal(expected.size);
          expect(new Map(view)).to.deep.equal(expected);
          expect([...view.keys()].sort()).to.deep.equal([...expected.keys()].sort());
          for (let k = 0; k <= 30; k++) {
            expect(view.has(k)).to.equal(expected.has(k));
            expect(view.get(k)).to.equal(expected.get(k));
          }
        },
      ),
    );
  });

  it('shows later changes to the overrides', () => {
    const overrides = new Map<string, number | typeof DELETED>();
    const view = new OverlayMap(new Map([['a', 1]]), overrides);
    overrides.set('a', 2);
    overrides.set('b', 3);
    expect([...view]).to.deep.equal([
      ['a', 2],
      ['b', 3],
    ]);
    overrides.set('a', DELETED);
    expect(view.size).to.equal(1);
    expect(view.get('a')).to.equal(undefined);
  });
});
