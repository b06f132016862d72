import { expect } from 'chai';
import { TestScheduler } from 'rxjs/testing';
import { catchError, of } from 'rxjs';
import { OverlayMap } from '../../operators/overlayMap.ts';

/**
 * Map views (reconcile's rows laid over the server map) compared as the maps
 * they present: chai's deep equality would otherwise compare their internals.
 */
function materialize(value: unknown): unknown {
  if (value instanceof OverlayMap) return new Map(value);
  if (Array.isArray(value)) return value.map(materialize);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, materialize(v)]));
  }
  return value;
}

/** A fresh TestScheduler comparing with chai's deep equality (one per test). */
export function newScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => {
    expect(materialize(actual)).to.deep.equal(expected);
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
