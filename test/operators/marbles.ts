import { expect } from 'chai';
import { TestScheduler } from 'rxjs/testing';

/** A fresh TestScheduler comparing with chai's deep equality (one per test). */
export function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(actual).to.deep.equal(expected);
  });
}

/** A random source replaying `values` in a loop, for deterministic jitter. */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}
