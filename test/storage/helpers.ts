/**
 * Shared fixtures of the storage tests: a fresh fake IndexedDB per test,
 * injected time, and the arena demo's bindings as the module.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { reducers, tables } from '../../demo/arena/bindings/index.ts';
import type { Clock, Timers } from '../../storage/clock.ts';
import { openStorage, type Storage, type StorageOptions } from '../../storage/openStorage.ts';
import { moduleFromBindings, type StorageModule } from '../../storage/schema.ts';

/** The arena bindings, as the storage sees them. */
export const arena: StorageModule = moduleFromBindings({ tables, reducers });

/** A clock and timers that move only when the test says so. */
export class FakeTime implements Clock, Timers {
  private t: number;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): () => void {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return () => {
      this.timers = this.timers.filter(x => x.id !== id);
    };
  }

  /** Timers armed and not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  /** Move time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

/** A brand-new, empty IndexedDB world. */
export function freshIndexedDB(): Pick<StorageOptions, 'indexedDB' | 'IDBKeyRange'> {
  return { indexedDB: new IDBFactory(), IDBKeyRange };
}

let counter = 0;
/** A server name no other test uses (Dexie propagates changes between same-named databases in one process). */
export function uniqueServer(): string {
  counter += 1;
  return `ws://test-${process.pid}-${counter}.local`;
}

/** Open storage on the arena module with injected time and fresh IndexedDB unless given. */
export function open(overrides: Partial<StorageOptions> & { time?: FakeTime } = {}): Promise<Storage> {
  const time = overrides.time ?? new FakeTime();
  return openStorage({
    server: overrides.server ?? uniqueServer(),
    database: 'arena',
    module: arena,
    clock: time,
    timers: time,
    lease: 'store',
    ...freshIndexedDB(),
    ...overrides,
  });
}

export const ALICE = 'c200' + 'a'.repeat(60);
export const BOB = 'c200' + 'b'.repeat(60);

/** Resolve after pending I/O callbacks (fake-indexeddb schedules with setImmediate). */
export function settle(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}
