import { expect } from 'chai';
import { TestScheduler } from 'rxjs/testing';
import { catchError, of } from 'rxjs';

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

/**
 * Turns an error into a final `{ name, info }` value, because chai's deep
 * equality compares errors by name and message only and would not see `info`.
 */
export function errorAsValue<T>() {
  return (source: import('rxjs').Observable<T>) =>
    source.pipe(
      catchError((err: { name: string; info?: unknown }) => of({ name: err.name, info: err.info })),
    );
}
