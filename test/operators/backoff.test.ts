import { expect } from 'chai';
import fc from 'fast-check';
import { computeBackoffDelay, exponentialBackoffDelay, type Jitter } from '../../operators/index.ts';

const base = { backoffDelay: exponentialBackoffDelay, previousDelay: undefined };

describe('backoff maths', () => {
  it('exponentialBackoffDelay is backoff-rxjs\'s 2^iteration * initialInterval', () => {
    expect([0, 1, 2, 3].map((i) => exponentialBackoffDelay(i, 250))).to.deep.equal([250, 500, 1000, 2000]);
  });

  it("'none' ignores random and equals min(backoffDelay, maxInterval)", () => {
    fc.assert(
      fc.property(fc.nat(30), fc.nat(10_000), fc.nat(1_000_000), (iteration, initialInterval, maxInterval) => {
        const delay = computeBackoffDelay({ ...base, iteration, initialInterval, maxInterval, jitter: 'none', random: () => 0.3 });
        expect(delay).to.equal(Math.min(Math.pow(2, iteration) * initialInterval, maxInterval));
      }),
    );
  });

  const jittered = fc.record({
    iteration: fc.nat(30),
    initialInterval: fc.integer({ min: 1, max: 10_000 }),
    maxInterval: fc.integer({ min: 1, max: 1_000_000 }),
    r: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    previous: fc.integer({ min: 1, max: 1_000_000 }),
  });

  for (const [jitter, bounds] of [
    ['full', (d: number) => [0, d]],
    ['equal', (d: number) => [d / 2, d]],
  ] as Array<[Jitter, (d: number) => [number, number]]>) {
    it(`'${jitter}' stays within its range of the capped delay`, () => {
      fc.assert(
        fc.property(jittered, ({ iteration, initialInterval, maxInterval, r }) => {
          const d = Math.min(Math.pow(2, iteration) * initialInterval, maxInterval);
          const delay = computeBackoffDelay({ ...base, iteration, initialInterval, maxInterval, jitter, random: () => r });
          const [lo, hi] = bounds(d);
          expect(delay).to.be.within(lo, hi);
        }),
      );
    });
  }

  it("'decorrelated' draws from [initialInterval, 3 * previous] capped at maxInterval, restarting at iteration 0", () => {
    fc.assert(
      fc.property(jittered, ({ iteration, initialInterval, maxInterval, r, previous }) => {
        const delay = computeBackoffDelay({
          ...base,
          iteration: iteration + 1,
          initialInterval,
          maxInterval,
          jitter: 'decorrelated',
          random: () => r,
          previousDelay: previous,
        });
        expect(delay).to.be.at.most(maxInterval);
        expect(delay).to.be.at.least(Math.min(initialInterval, maxInterval));
        expect(delay).to.be.at.most(Math.max(initialInterval, 3 * previous));
      }),
    );
    const first = computeBackoffDelay({ ...base, iteration: 0, initialInterval: 10, maxInterval: 1e9, jitter: 'decorrelated', random: () => 1, previousDelay: 5000 });
    expect(first).to.equal(30);
  });
});
