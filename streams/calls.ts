/**
 * Reducer calls: outcome streams, the queue of calls waiting for a
 * connection, and settling calls whose connection died.
 *
 * Every call gets an id and an outcome stream `pending → confirmed |
 * rejected`. Calls wait in a {@link CallOutbox} until the connection is live
 * (in memory by default; the durable outbox of the storage layer implements
 * the same interface). A call sent on a connection that dies before the
 * answer is settled as rejected with a {@link ConnectionLostError} — the SDK's
 * own promise for it would never settle.
 *
 * @module
 */
import { Observable, ReplaySubject, Subject, firstValueFrom, filter } from 'rxjs';
import { InternalError, SenderError } from 'spacetimedb';
import { ConnectionLostError, ReducerRejectedError } from './errors.ts';

/** A call as stored in the outbox. */
export interface OutboxCall {
  readonly id: string;
  /** Reducer accessor name as in the bindings (`addPerson`). */
  readonly reducer: string;
  readonly args: unknown;
  /** Higher first. @default 0 */
  readonly priority: number;
  /** A newer queued call with the same key replaces this one. */
  readonly supersedeKey?: string;
  /** Epoch ms. */
  readonly enqueuedAt: number;
}

/**
 * The seam for the durable outbox (storage issue). The client calls
 * `enqueue` for every call, `claim` when the connection is live, and `settle`
 * with each claimed call's outcome. Methods may return promises.
 */
export interface CallOutbox {
  /** Store a call until it can be sent. Returns the queued calls it supersedes (the client rejects them). */
  enqueue(call: OutboxCall): readonly OutboxCall[] | Promise<readonly OutboxCall[]>;
  /** Up to `max` calls to send now, priority then FIFO. They leave the queue. */
  claim(max: number): readonly OutboxCall[] | Promise<readonly OutboxCall[]>;
  /** Final outcome of a claimed call: `lost` means the connection died before the answer. */
  settle(id: string, outcome: 'confirmed' | 'rejected' | 'lost'): void | Promise<void>;
  /** Remove and return every queued call (on `close()`). */
  drain(): readonly OutboxCall[] | Promise<readonly OutboxCall[]>;
}

/** The default outbox: a priority queue in memory, lost on reload. */
export class MemoryOutbox implements CallOutbox {
  #queue: OutboxCall[] = [];

  get size(): number {
    return this.#queue.length;
  }

  enqueue(call: OutboxCall): readonly OutboxCall[] {
    let superseded: OutboxCall[] = [];
    if (call.supersedeKey !== undefined) {
      superseded = this.#queue.filter((c) => c.supersedeKey === call.supersedeKey);
      if (superseded.length) this.#queue = this.#queue.filter((c) => c.supersedeKey !== call.supersedeKey);
    }
    // Stable insert: after every call of higher or equal priority.
    let i = this.#queue.length;
    while (i > 0 && this.#queue[i - 1].priority < call.priority) i--;
    this.#queue.splice(i, 0, call);
    return superseded;
  }

  claim(max: number): readonly OutboxCall[] {
    return this.#queue.splice(0, max);
  }

  settle(): void {}

  drain(): readonly OutboxCall[] {
    return this.#queue.splice(0);
  }
}

export type CallOutcome =
  | { readonly status: 'pending'; readonly id: string; readonly reducer: string; readonly queued: boolean }
  | { readonly status: 'confirmed'; readonly id: string; readonly reducer: string; readonly latencyMs: number }
  | { readonly status: 'rejected'; readonly id: string; readonly reducer: string; readonly error: Error };

/** Options of one call. */
export interface CallOptions {
  /** Higher is sent first when calls were queued. @default 0 */
  priority?: number;
  /** While queued, a newer call with the same key replaces this one (rejected as superseded). */
  supersedeKey?: string;
}

/**
 * The outcome of one reducer call: an Observable of `pending → confirmed |
 * rejected` (replayed to late subscribers) that can also be awaited — the
 * promise resolves with the confirmed outcome and rejects with the error.
 */
export class CallHandle extends Observable<CallOutcome> implements PromiseLike<Extract<CallOutcome, { status: 'confirmed' }>> {
  #promise: Promise<Extract<CallOutcome, { status: 'confirmed' }>> | undefined;
  constructor(readonly id: string, private readonly outcomes: ReplaySubject<CallOutcome>) {
    super((subscriber) => outcomes.subscribe(subscriber));
  }

  /** The final outcome as a promise. */
  get done(): Promise<Extract<CallOutcome, { status: 'confirmed' }>> {
    return (this.#promise ??= firstValueFrom(this.outcomes.pipe(filter((o) => o.status !== 'pending'))).then((o) => {
      if (o.status === 'rejected') throw o.error;
      return o as Extract<CallOutcome, { status: 'confirmed' }>;
    }));
  }

  then<A = Extract<CallOutcome, { status: 'confirmed' }>, B = never>(
    onfulfilled?: ((value: Extract<CallOutcome, { status: 'confirmed' }>) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: any) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.done.then(onfulfilled, onrejected);
  }
}

/** Sends one call on the current connection; resolves when confirmed, rejects with the SDK's error. */
export type CallSender = (reducer: string, args: unknown) => Promise<void>;

export interface CallsOptions {
  outbox?: CallOutbox;
  /** Monotonic clock for latency. @default performance.now */
  now?: () => number;
  /** Wall clock for `enqueuedAt`. @default Date.now */
  wallClock?: () => number;
  log?: (message: () => string) => void;
}

interface Tracked {
  readonly call: OutboxCall;
  readonly outcomes: ReplaySubject<CallOutcome>;
  startedAt: number;
  settled: boolean;
}

/** Settlement events, for the optimistic layer and metrics. */
export type CallEvent = CallOutcome & { readonly call: OutboxCall };

export class Calls {
  readonly #outbox: CallOutbox;
  readonly #now: () => number;
  readonly #wall: () => number;
  readonly #tracked = new Map<string, Tracked>();
  readonly #inFlight = new Set<string>();
  readonly #events = new Subject<CallEvent>();
  #sender: CallSender | undefined;
  #seq = 0;
  #draining = false;
  #closed = false;

  constructor(private readonly options: CallsOptions = {}) {
    this.#outbox = options.outbox ?? new MemoryOutbox();
    this.#now = options.now ?? (() => performance.now());
    this.#wall = options.wallClock ?? (() => Date.now());
  }

  /** Every outcome of every call. */
  get events$(): Observable<CallEvent> {
    return this.#events.asObservable();
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  call(reducer: string, args: unknown, opts: CallOptions = {}): CallHandle {
    const id = `c${++this.#seq}`;
    const outcomes = new ReplaySubject<CallOutcome>();
    const handle = new CallHandle(id, outcomes);
    const call: OutboxCall = { id, reducer, args, priority: opts.priority ?? 0, supersedeKey: opts.supersedeKey, enqueuedAt: this.#wall() };
    const t: Tracked = { call, outcomes, startedAt: this.#now(), settled: false };
    this.#tracked.set(id, t);
    if (this.#closed) {
      this.#settle(t, { status: 'rejected', id, reducer, error: new ConnectionLostError('The sync client is closed.', { reason: 'closed', reducer }) });
      return handle;
    }
    this.#emit(t, { status: 'pending', id, reducer, queued: this.#sender === undefined });
    void Promise.resolve(this.#outbox.enqueue(call)).then((superseded) => {
      for (const old of superseded) {
        const o = this.#tracked.get(old.id);
        if (o) this.#settle(o, { status: 'rejected', id: old.id, reducer: old.reducer, error: new ReducerRejectedError(`Superseded by a newer call with key '${old.supersedeKey}'.`, { reducer: old.reducer, args: old.args, kind: 'superseded' }) });
      }
      this.#drain();
    });
    return handle;
  }

  /** The connection is live (`send` set) or gone (`undefined`). */
  setSender(send: CallSender | undefined): void {
    this.#sender = send;
    if (send) this.#drain();
  }

  /** Settle every in-flight call as lost (their connection died). */
  connectionLost(reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    this.#sender = undefined;
    for (const id of [...this.#inFlight]) {
      const t = this.#tracked.get(id);
      this.#inFlight.delete(id);
      if (!t) continue;
      void this.#outbox.settle(id, 'lost');
      this.#settle(t, {
        status: 'rejected',
        id,
        reducer: t.call.reducer,
        error: new ConnectionLostError(`The connection was lost while '${t.call.reducer}' was in flight; its outcome is unknown.`, { reason, reducer: t.call.reducer }, { cause }),
      });
    }
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#sender && !this.#closed) {
        const batch = await this.#outbox.claim(64);
        if (batch.length === 0) break;
        for (const call of batch) {
          const send = this.#sender;
          const t = this.#tracked.get(call.id);
          if (!t || t.settled) continue;
          if (!send) {
            // Lost the connection mid-batch: put it back.
            await this.#outbox.enqueue(call);
            continue;
          }
          this.#inFlight.add(call.id);
          this.options.log?.(() => `call ${call.reducer} (${call.id})`);
          send(call.reducer, call.args).then(
            () => this.#answered(call.id, undefined),
            (err) => this.#answered(call.id, err),
          );
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Confirm the in-flight call that sent this very args object: the SDK's
   * reducer event carries it, and row callbacks see that event before the
   * SDK resolves the call's promise. Confirming there lets the optimistic
   * layer drop its prediction in the same emission as the server's rows.
   */
  confirmByArgs(args: unknown): void {
    if (args === null || typeof args !== 'object') return;
    for (const id of this.#inFlight) {
      const t = this.#tracked.get(id);
      if (t && t.call.args === args) {
        this.#answered(id, undefined);
        return;
      }
    }
  }

  #answered(id: string, err: unknown) {
    if (!this.#inFlight.delete(id)) return; // already settled as lost
    const t = this.#tracked.get(id);
    if (!t) return;
    if (err === undefined) {
      void this.#outbox.settle(id, 'confirmed');
      this.#settle(t, { status: 'confirmed', id, reducer: t.call.reducer, latencyMs: this.#now() - t.startedAt });
    } else {
      void this.#outbox.settle(id, 'rejected');
      const kind = err instanceof SenderError ? 'sender' : err instanceof InternalError ? 'internal' : 'internal';
      const message = err instanceof Error ? err.message : String(err);
      this.#settle(t, {
        status: 'rejected',
        id,
        reducer: t.call.reducer,
        error: new ReducerRejectedError(`${t.call.reducer} rejected: ${message}`, { reducer: t.call.reducer, args: t.call.args, kind }, { cause: err }),
      });
    }
  }

  #emit(t: Tracked, o: CallOutcome) {
    t.outcomes.next(o);
    this.#events.next({ ...o, call: t.call });
  }

  #settle(t: Tracked, o: CallOutcome) {
    if (t.settled) return;
    t.settled = true;
    this.#tracked.delete(t.call.id);
    this.#emit(t, o);
    t.outcomes.complete();
  }

  /** Reject everything still queued or in flight and end the event stream. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.connectionLost('closed');
    this.#closed = true;
    const queued = await this.#outbox.drain();
    for (const c of queued) {
      const t = this.#tracked.get(c.id);
      if (t) this.#settle(t, { status: 'rejected', id: c.id, reducer: c.reducer, error: new ConnectionLostError('The sync client was closed before the call was sent.', { reason: 'closed', reducer: c.reducer }) });
    }
    for (const t of [...this.#tracked.values()]) {
      this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: new ConnectionLostError('The sync client was closed.', { reason: 'closed', reducer: t.call.reducer }) });
    }
    this.#events.complete();
  }
}
