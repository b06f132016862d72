/**
 * The send queue: every call reaches the network through one
 * {@link prioritize} queue gated by "may send now". While the gate is shut
 * calls wait; when it opens they go out priority first, then first in,
 * first out — transient ones superseded by a newer queued call with the
 * same key, or expired at their deadline. Sends are pipelined: every
 * released call goes out at once and answers settle them as they arrive.
 *
 * Transient calls (not in durable storage) live only here. Durable ones are
 * pushed by the drain (`drain.ts`) and handed back to it when released,
 * expired or answered: their storage bookkeeping is the drain's.
 *
 * @module
 */
import { BehaviorSubject, Subject, type Observable, type Subscription } from 'rxjs';
import { prioritize } from '../../operators/prioritize.ts';
import type { ConnectionLostError, ReducerRejectedError } from '../errors.ts';
import type { OutboxCall, Settle, Tracked } from './handle.ts';
import { answeredError, expiredError, lostInFlightError, supersededError } from './rejections.ts';

/** Sends one call on the current connection; resolves when confirmed, rejects with the SDK's error. */
export type CallSender = (reducer: string, args: unknown) => Promise<void>;

/** One unit in the send queue. */
export interface Item {
  readonly call: OutboxCall;
  /** The handle's record; none for a durable entry of an earlier session or another tab. */
  readonly tracked?: Tracked;
  /** Durable: the stored entry's id. */
  readonly entryId?: string;
  /** Epoch ms, or null. */
  readonly deadline: number | null;
}

/** Where durable items go when they leave the queue. */
export interface DurableHooks {
  /** Released by the gate: mark it sent, then {@link SendQueue.send} it. */
  released(item: Item): void;
  /** Its deadline passed while queued. */
  expired(item: Item): void;
  /** The server answered (`rejection` undefined: applied). Called before the handle settles. */
  answered(item: Item, rejection: ReducerRejectedError | undefined): void;
}

export interface SendQueueOptions {
  readonly settle: Settle;
  /** Monotonic clock for latency. */
  readonly now: () => number;
  /** Wall clock for deadlines. */
  readonly wallClock: () => number;
  readonly log?: (message: () => string) => void;
}

export class SendQueue {
  readonly #options: SendQueueOptions;
  readonly #queue = new Subject<Item>();
  readonly #gate = new BehaviorSubject<boolean>(false);
  readonly #sub: Subscription;
  /** Items handed to the SDK and not answered, by item key (entry id or call id). */
  readonly #inFlight = new Map<string, Item>();
  /** In-flight item keys by the args object sent (for {@link confirmByArgs}), in send order. */
  readonly #inFlightByArgs = new Map<unknown, Set<string>>();
  readonly #transientCount = new BehaviorSubject<{ queued: number; sent: number }>({ queued: 0, sent: 0 });
  #transientQueued = 0;
  #transientSent = 0;
  /** The live connection's sender, if any. */
  sender: CallSender | undefined;
  /** Where durable items go (the drain); set once, before any durable item is pushed. */
  durable!: DurableHooks;

  constructor(options: SendQueueOptions) {
    this.#options = options;
    const { settle, wallClock } = options;
    this.#sub = this.#queue
      .pipe(
        prioritize<Item>({
          gate: this.#gate,
          priority: (item) => item.call.priority,
          // Durable entries are superseded by the durable queue itself, when stored.
          supersedeKey: (item) => (item.entryId === undefined && item.call.supersedeKey !== undefined ? item.call.supersedeKey : undefined),
          ttl: (item) => (item.deadline === null ? Infinity : Math.max(1, item.deadline - wallClock())),
          onEvent: (e) => {
            const old = e.item;
            if (e.type === 'superseded') {
              this.#transientQueued--;
              if (old.tracked) settle.reject(old.tracked, supersededError(old.call, old.call.supersedeKey));
            } else if (e.type === 'expired') {
              if (old.entryId !== undefined) this.durable.expired(old);
              else {
                this.#transientQueued--;
                if (old.tracked) settle.reject(old.tracked, expiredError(old.call));
              }
            }
            this.#countTransient();
          },
        }),
      )
      .subscribe((item) => this.#release(item));
  }

  /** Queued and in-flight counts of the calls that are not in durable storage. */
  get transient$(): Observable<{ queued: number; sent: number }> {
    return this.#transientCount.asObservable();
  }

  /** Queue a call: it goes out when the gate is open, in priority order. */
  push(item: Item): void {
    if (item.entryId !== undefined) return this.#queue.next(item);
    this.#transientQueued++;
    this.#queue.next(item);
    this.#countTransient();
  }

  /** Open (`true`) or shut the gate. */
  gate(open: boolean): void {
    if (this.#gate.value !== open) this.#gate.next(open);
  }

  /** Whether the item with this key (entry id or call id) is in flight. */
  inFlight(key: string): boolean {
    return this.#inFlight.has(key);
  }

  /** The calls in flight (their records). */
  inFlightCalls(): Set<Tracked | undefined> {
    const calls = new Set<Tracked | undefined>();
    for (const item of this.#inFlight.values()) calls.add(item.tracked);
    return calls;
  }

  #release(item: Item): void {
    if (item.entryId !== undefined) return this.durable.released(item);
    this.#transientQueued--;
    if (!item.tracked?.settled) this.send(item, item.call.id); // else dropped while queued (sign-out)
    this.#countTransient();
  }

  /** Hand an item to the connection; its answer settles it. */
  send(item: Item, key: string): void {
    const send = this.sender;
    if (!send) {
      // Only transient calls get here without a sender (a release racing a disconnect).
      this.#lost(item, 'close');
      return;
    }
    this.#inFlight.set(key, item);
    if (item.entryId === undefined) this.#transientSent++;
    const args = item.call.args;
    if (args !== null && typeof args === 'object') {
      let keys = this.#inFlightByArgs.get(args);
      if (!keys) this.#inFlightByArgs.set(args, (keys = new Set()));
      keys.add(key);
    }
    if (item.tracked) item.tracked.startedAt = this.#options.now();
    this.#options.log?.(() => `call ${item.call.reducer} (${key})`);
    let result: Promise<void>;
    try {
      result = send(item.call.reducer, item.call.args);
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      () => this.#answered(key, undefined),
      (err) => this.#answered(key, err),
    );
  }

  /**
   * Confirm the in-flight call that sent this very args object: the SDK's
   * reducer event carries it, and row callbacks see that event before the
   * SDK resolves the call's promise. Confirming there lets the optimistic
   * layer drop its prediction in the same emission as the server's rows.
   */
  confirmByArgs(args: unknown): void {
    if (args === null || typeof args !== 'object') return;
    // By index: a scan of every call in flight per reducer event made a replay quadratic.
    const keys = this.#inFlightByArgs.get(args);
    if (keys) for (const key of keys) return this.#answered(key, undefined);
  }

  /**
   * The connection died: forget every call in flight. Transient ones are
   * rejected with a {@link ConnectionLostError}; returns the durable ones'
   * entry ids (they stay in storage for the next drain).
   */
  connectionLost(reason: ConnectionLostError['info']['reason'], cause?: unknown): string[] {
    this.sender = undefined;
    const durable: string[] = [];
    for (const [key, item] of [...this.#inFlight]) {
      this.#forget(key, item);
      if (item.entryId !== undefined) durable.push(item.entryId);
      else this.#lost(item, reason, cause);
    }
    this.#countTransient();
    return durable;
  }

  #lost(item: Item, reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    const t = item.tracked;
    if (t) this.#options.settle.reject(t, lostInFlightError(t.call.reducer, reason, cause));
  }

  #forget(key: string, item: Item): void {
    this.#inFlight.delete(key);
    if (item.entryId === undefined) this.#transientSent--;
    const keys = this.#inFlightByArgs.get(item.call.args);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.#inFlightByArgs.delete(item.call.args);
    }
  }

  #answered(key: string, err: unknown): void {
    const item = this.#inFlight.get(key);
    if (!item) return; // already settled, or lost with its connection
    this.#forget(key, item);
    const t = item.tracked;
    const rejection = err === undefined ? undefined : answeredError(item.call, err);
    if (item.entryId !== undefined) this.durable.answered(item, rejection);
    else this.#countTransient();
    if (!t) return;
    if (rejection === undefined) this.#options.settle.confirm(t, 'answer', this.#options.now() - t.startedAt);
    else this.#options.settle.reject(t, rejection);
  }

  #countTransient(): void {
    const cur = this.#transientCount.value;
    if (cur.queued !== this.#transientQueued || cur.sent !== this.#transientSent) this.#transientCount.next({ queued: this.#transientQueued, sent: this.#transientSent });
  }

  /** Stop the queue and complete its streams. */
  close(): void {
    this.#sub.unsubscribe();
    this.#transientCount.complete();
    this.#gate.complete();
  }
}
