import {
  asyncScheduler,
  Observable,
  type MonoTypeOperatorFunction,
  type Observer,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { QueueOverflowError } from './errors.ts';

/** What happens when an item arrives at a full queue. */
export type OverflowPolicy = 'error' | 'drop-oldest';

/** A queue event of {@link prioritize}, reported to {@link PrioritizeConfig.onEvent}. */
export type PrioritizeEvent<T> =
  | {
      /** A queued item was replaced by a newer one with the same `supersedeKey`. */
      readonly type: 'superseded';
      readonly item: T;
      readonly by: T;
    }
  | {
      /** A queued item outlived its `ttl` and was removed. */
      readonly type: 'expired';
      readonly item: T;
      /** Scheduler time at which it was queued. */
      readonly queuedAt: number;
    }
  | {
      /** An item arrived at a full queue. */
      readonly type: 'overflow';
      readonly policy: OverflowPolicy;
      /** The arriving item. */
      readonly item: T;
      /** `'drop-oldest'`: the item removed to make room. */
      readonly dropped?: T;
      readonly capacity: number;
    };

/** Configuration of {@link prioritize}. */
export interface PrioritizeConfig<T> {
  /**
   * Items are released only while the gate's latest value is `true` (e.g.
   * "connected"). Closed until it first emits. Its errors pass through.
   */
  gate: Observable<boolean>;
  /**
   * Priority of an item: higher numbers are released first; equal ones in arrival order.
   * @default () => 0
   */
  priority?: (item: T) => number;
  /**
   * Items with the same key (other than `undefined`) supersede each other: a
   * new one removes the queued one and queues itself at the back of its priority.
   * @default () => undefined — nothing is superseded
   */
  supersedeKey?: (item: T) => unknown;
  /**
   * How long, in ms, an item may wait in the queue before it expires. A
   * function may return `Infinity` for items that never expire.
   * @default Infinity
   */
  ttl?: number | ((item: T) => number);
  /**
   * Maximum number of queued items (an integer `>= 1`).
   * @default Infinity
   */
  capacity?: number;
  /**
   * At a full queue: `'error'` errors the result with a `QueueOverflowError`;
   * `'drop-oldest'` removes the longest-queued item (whatever its priority). Both are reported.
   * @default 'error'
   */
  overflow?: OverflowPolicy;
  /**
   * Told about superseded, expired and overflowing items. A function or an
   * observer (only `next` is called).
   * @default undefined
   */
  onEvent?: ((event: PrioritizeEvent<T>) => void) | Partial<Observer<PrioritizeEvent<T>>>;
  /**
   * Scheduler for `ttl` timers and queue timestamps.
   * @default asyncScheduler
   */
  scheduler?: SchedulerLike;
}

interface Entry<T> {
  readonly item: T;
  readonly priority: number;
  readonly seq: number;
  readonly key: unknown;
  readonly queuedAt: number;
  alive: boolean;
  expiry?: Subscription;
}

/**
 * Holds outgoing operations while a gate is closed and releases them by priority when it opens.
 *
 * ```
 * source: -a-B-c-b--------d   (B: priority 1; b supersedes a, same key)
 * gate:   f---------t------   (f = false, t = true)
 * prioritize({ gate, priority, supersedeKey })
 * result: ----------(Bcb)-d
 * ```
 *
 * While the gate's latest value is `true`, items pass straight through.
 * While it is closed they queue: higher `priority` first, arrival order
 * within a priority. A newer item with the same `supersedeKey` replaces a
 * queued one (fifty offline moves become the last), an item older than its
 * `ttl` expires, and a full queue (`capacity`) applies the `overflow` policy.
 * Each of those is reported to `onEvent`. When the gate opens, the queue
 * drains synchronously, stopping at once if the gate closes again. Source
 * completion waits until the queue is empty; a source error is passed on at
 * once, discarding the queue. State lives per subscription.
 *
 * ## Example
 * ```ts
 * import { BehaviorSubject, Subject } from 'rxjs';
 * import { prioritize } from 'stdb-rx';
 *
 * type Op = { kind: 'move' | 'chat'; text: string };
 * const connected$ = new BehaviorSubject(false);
 * const ops$ = new Subject<Op>();
 * ops$
 *   .pipe(
 *     prioritize({
 *       gate: connected$,
 *       priority: (op) => (op.kind === 'chat' ? 1 : 0),
 *       supersedeKey: (op) => (op.kind === 'move' ? 'move' : undefined),
 *       onEvent: (e) => console.log(e.type),
 *     }),
 *   )
 *   .subscribe((op) => console.log('send', op.text));
 * ops$.next({ kind: 'move', text: 'to 1,1' });
 * ops$.next({ kind: 'move', text: 'to 2,2' });
 * ops$.next({ kind: 'chat', text: 'hi' });
 * connected$.next(true);
 * // Logs:
 * // superseded
 * // send hi
 * // send to 2,2
 * ```
 *
 * @param config The gate, ordering, superseding, expiry and bound.
 * @returns A function that returns an Observable of the same items, released in priority order while the gate is open.
 * @throws {TypeError} At creation, when the configuration is invalid.
 */
export function prioritize<T>(config: PrioritizeConfig<T>): MonoTypeOperatorFunction<T> {
  const {
    gate,
    priority = () => 0,
    supersedeKey = () => undefined,
    ttl = Infinity,
    capacity = Infinity,
    overflow = 'error',
    onEvent,
    scheduler = asyncScheduler,
  } = config ?? ({} as PrioritizeConfig<T>);
  if (!gate || typeof (gate as Observable<boolean>).subscribe !== 'function') {
    throw new TypeError('prioritize: gate must be an Observable<boolean>.');
  }
  if (typeof ttl !== 'function' && (typeof ttl !== 'number' || Number.isNaN(ttl) || ttl <= 0)) {
    throw new TypeError(`prioritize: ttl must be a number > 0 or a function, got ${String(ttl)}.`);
  }
  if (capacity !== Infinity && (!Number.isInteger(capacity) || capacity < 1)) {
    throw new TypeError(`prioritize: capacity must be an integer >= 1 or Infinity, got ${String(capacity)}.`);
  }
  if (overflow !== 'error' && overflow !== 'drop-oldest') {
    throw new TypeError(`prioritize: overflow must be 'error' or 'drop-oldest', got ${String(overflow)}.`);
  }
  if (typeof priority !== 'function' || typeof supersedeKey !== 'function') {
    throw new TypeError('prioritize: priority and supersedeKey must be functions.');
  }
  const report = typeof onEvent === 'function' ? onEvent : onEvent?.next?.bind(onEvent);
  const ttlOf = typeof ttl === 'function' ? ttl : () => ttl;

  return (source) =>
    new Observable<T>((subscriber) => {
      let open = false;
      let sourceDone = false;
      let draining = false;
      let seq = 0;
      const heap: Entry<T>[] = [];
      /** Queued entries in arrival order (so the first one is the oldest). */
      const queued = new Map<number, Entry<T>>();
      const byKey = new Map<unknown, Entry<T>>();

      const remove = (entry: Entry<T>) => {
        entry.alive = false;
        entry.expiry?.unsubscribe();
        queued.delete(entry.seq);
        if (entry.key !== undefined && byKey.get(entry.key) === entry) byKey.delete(entry.key);
        if (heap.length > 2 * queued.size + 32) rebuild(heap, queued);
      };

      const maybeComplete = () => {
        if (sourceDone && queued.size === 0) subscriber.complete();
      };

      const drain = () => {
        if (draining) return;
        draining = true;
        try {
          while (open && queued.size > 0 && !subscriber.closed) {
            const entry = popAlive(heap);
            if (!entry) break;
            remove(entry);
            subscriber.next(entry.item);
          }
        } finally {
          draining = false;
        }
        maybeComplete();
      };

      const enqueue = (item: T) => {
        const key = supersedeKey(item);
        const entry: Entry<T> = { item, priority: priority(item), seq: seq++, key, queuedAt: scheduler.now(), alive: true };
        const previous = key === undefined ? undefined : byKey.get(key);
        if (previous) {
          remove(previous);
          report?.({ type: 'superseded', item: previous.item, by: item });
        } else if (queued.size >= capacity) {
          if (overflow === 'error') {
            report?.({ type: 'overflow', policy: 'error', item, capacity });
            subscriber.error(new QueueOverflowError({ capacity, item }));
            return;
          }
          const oldest = queued.values().next().value!;
          remove(oldest);
          report?.({ type: 'overflow', policy: 'drop-oldest', item, dropped: oldest.item, capacity });
        }
        queued.set(entry.seq, entry);
        if (key !== undefined) byKey.set(key, entry);
        push(heap, entry);
        const life = ttlOf(item);
        if (life !== Infinity) {
          entry.expiry = scheduler.schedule(() => {
            if (!entry.alive) return;
            remove(entry);
            report?.({ type: 'expired', item, queuedAt: entry.queuedAt });
            maybeComplete();
          }, Math.max(0, life));
        }
      };

      const gateSubscription = gate.subscribe({
        next: (value) => {
          open = value;
          drain();
        },
        error: (err) => subscriber.error(err),
      });
      const sourceSubscription = source.subscribe({
        next: (item) => {
          try {
            enqueue(item);
          } catch (err) {
            subscriber.error(err);
            return;
          }
          drain();
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          maybeComplete();
        },
      });
      return () => {
        gateSubscription.unsubscribe();
        sourceSubscription.unsubscribe();
        for (const entry of queued.values()) entry.expiry?.unsubscribe();
        queued.clear();
      };
    });
}

// --- a binary max-heap ordered by (priority desc, seq asc), with lazy deletion ---

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}

function push<T>(heap: Entry<T>[], entry: Entry<T>): void {
  heap.push(entry);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(heap[i], heap[parent])) break;
    [heap[i], heap[parent]] = [heap[parent], heap[i]];
    i = parent;
  }
}

function pop<T>(heap: Entry<T>[]): Entry<T> | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length > 0 && last) {
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < heap.length && before(heap[l], heap[best])) best = l;
      if (r < heap.length && before(heap[r], heap[best])) best = r;
      if (best === i) break;
      [heap[i], heap[best]] = [heap[best], heap[i]];
      i = best;
    }
  }
  return top;
}

function popAlive<T>(heap: Entry<T>[]): Entry<T> | undefined {
  for (let entry = pop(heap); entry; entry = pop(heap)) if (entry.alive) return entry;
  return undefined;
}

function rebuild<T>(heap: Entry<T>[], queued: Map<number, Entry<T>>): void {
  heap.length = 0;
  for (const entry of queued.values()) push(heap, entry);
}
