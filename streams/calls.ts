/**
 * Reducer calls: every call gets an id and an outcome stream `pending →
 * confirmed | rejected` ({@link CallHandle}). `Calls` keeps the record of
 * each call until it settles and joins the parts:
 *
 * - `calls/handle.ts` — the handle, the outcome and option types;
 * - `calls/sendQueue.ts` — the gated priority queue, pipelined sends and the
 *   calls in flight (transient calls — no storage, or `durable: false` —
 *   live only there; one in flight when the connection dies is rejected
 *   with a `ConnectionLostError`);
 * - `calls/drain.ts` — durable calls: stored first in a
 *   {@link DurableQueue} (`durableQueue.ts`; storage implements it), fed to
 *   the send queue while draining, resolved by receipts or outcome records;
 * - `calls/rejections.ts` — the errors calls settle with.
 *
 * @module
 */
import { ReplaySubject, Subject, type Observable } from 'rxjs';
import type { DurableQueue } from './durableQueue.ts';
import { ConnectionLostError } from './errors.ts';
import { Drain } from './calls/drain.ts';
import { CallHandle, type CallEvent, type CallOptions, type CallOutcome, type ConfirmedVia, type OutboxCall, type Settle, type Tracked } from './calls/handle.ts';
import { SendQueue, type CallSender } from './calls/sendQueue.ts';

export { CallHandle, type CallEvent, type CallOptions, type CallOutcome, type ConfirmedVia, type OutboxCall } from './calls/handle.ts';
export type { CallSender } from './calls/sendQueue.ts';

/**
 * The outcome with its call, written out field by field: Node 20's V8 makes
 * `{ ...outcome, call }` (a spread, then a key the source lacks) a runtime
 * call of about a microsecond, several times per call.
 */
function eventOf(o: CallOutcome, call: OutboxCall): CallEvent {
  switch (o.status) {
    case 'pending':
      return { status: 'pending', id: o.id, reducer: o.reducer, queued: o.queued, call };
    case 'confirmed':
      return { status: 'confirmed', id: o.id, reducer: o.reducer, latencyMs: o.latencyMs, via: o.via, call };
    case 'rejected':
      return { status: 'rejected', id: o.id, reducer: o.reducer, error: o.error, call };
  }
}

/** What {@link Calls} needs to know about one reducer, from the bindings and the policies. */
export interface PreparedCall {
  /** The arguments to send (the mutation id filled in when the reducer takes one). */
  readonly args: unknown;
  /** Priority when the call gives none. */
  readonly priority: number;
  /** Epoch ms deadline (drop-if-stale), or null. */
  readonly deadline: number | null;
  /** Whether the reducer records receipts (exactly-once) — else at-least-once. */
  readonly receipts: boolean;
  /** The mutation id chosen (the durable entry's id). */
  readonly mutationId?: string;
}

export interface CallsOptions {
  /**
   * Check a call before anything is queued: throws the refusal (bad
   * arguments, unknown reducer, online-only while offline), else says how to
   * send it. @default accept everything as is
   */
  prepare?: (reducer: string, args: unknown, options: CallOptions) => PreparedCall;
  /** Monotonic clock for latency. @default performance.now */
  now?: () => number;
  /** Wall clock for `enqueuedAt` and deadlines. @default Date.now */
  wallClock?: () => number;
  log?: (message: () => string) => void;
  /** Failures that belong to no call (an earlier session's entry rejected, a storage step failing). */
  onError?: (error: Error) => void;
}

export class Calls {
  readonly #now: () => number;
  readonly #wall: () => number;
  /** Every call not settled yet, by call id. */
  readonly #tracked = new Map<string, Tracked>();
  readonly #events = new Subject<CallEvent>();
  readonly #queue: SendQueue;
  readonly #drain: Drain;
  #seq = 0;
  #closed = false;
  /** Calls still being written to storage (so close() can wait for them). */
  readonly #storing = new Set<Promise<unknown>>();

  constructor(private readonly options: CallsOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#wall = options.wallClock ?? (() => Date.now());
    const settle: Settle = {
      reject: (t, error) => this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error }),
      confirm: (t, via, latencyMs) => this.#settle(t, { status: 'confirmed', id: t.call.id, reducer: t.call.reducer, latencyMs, via }),
    };
    const onError = (e: Error) => this.options.onError?.(e);
    this.#queue = new SendQueue({
      settle,
      now: this.#now,
      wallClock: this.#wall,
      log: options.log,
    });
    this.#drain = this.#queue.durable = new Drain({ queue: this.#queue, settle, onError, closed: () => this.#closed });
  }

  /** Every outcome of every call. */
  get events$(): Observable<CallEvent> {
    return this.#events.asObservable();
  }

  /** Queued and in-flight counts of the calls that are not in the durable outbox. */
  get transient$(): Observable<{ queued: number; sent: number }> {
    return this.#queue.transient$;
  }

  /**
   * Durable calls made before `ready` resolves wait for the storage; if
   * {@link useDurable} was not called by then, they are kept in memory.
   */
  expectDurable(ready: Promise<void>): void {
    this.#drain.expect(ready);
  }

  /**
   * Use this durable queue (storage's `callQueue`) for durable calls. Calls
   * it expires or supersedes on its own settle the matching handles;
   * changes (another tab's calls, calls confirmed elsewhere) feed the send
   * queue while draining.
   */
  useDurable(durable: DurableQueue): void {
    this.#drain.use(durable);
  }

  call(reducer: string, args: unknown, opts: CallOptions = {}): CallHandle {
    const id = `c${++this.#seq}`;
    const outcomes = new ReplaySubject<CallOutcome>();
    const handle = new CallHandle(id, outcomes);
    const reject = (error: Error) => {
      const call: OutboxCall = { id, reducer, args, priority: opts.priority ?? 0, supersedeKey: opts.supersedeKey, enqueuedAt: this.#wall() };
      const t: Tracked = { call, outcomes, handle, startedAt: this.#now(), settled: false };
      this.#settle(t, { status: 'rejected', id, reducer, error });
      return handle;
    };
    if (this.#closed) return reject(new ConnectionLostError('The sync client is closed.', { reason: 'closed', reducer }));
    let prepared: PreparedCall;
    try {
      prepared = this.options.prepare ? this.options.prepare(reducer, args, opts) : { args, priority: 0, deadline: null, receipts: false };
    } catch (error) {
      // Refused at once (bad arguments, unknown reducer, online-only while offline): nothing is queued or stored.
      return reject(error instanceof Error ? error : new Error(String(error)));
    }
    const durable = opts.durable !== false && this.#drain.expected;
    const call: OutboxCall = {
      id,
      reducer,
      args: prepared.args,
      priority: opts.priority ?? prepared.priority,
      supersedeKey: opts.supersedeKey,
      enqueuedAt: this.#wall(),
      durable,
    };
    const t: Tracked = { call, outcomes, handle, startedAt: this.#now(), settled: false };
    this.#tracked.set(id, t);
    const deadline = opts.deadline ?? prepared.deadline;
    this.#emit(t, { status: 'pending', id, reducer, queued: !this.#drain.draining });
    if (!durable) {
      this.#queue.push({ call, tracked: t, deadline });
      return handle;
    }
    const stored = this.#drain
      .store({ tracked: t, mutationId: prepared.mutationId, deadline })
      .catch((error: unknown) => this.#settle(t, { status: 'rejected', id, reducer, error: error instanceof Error ? error : new Error(String(error)) }));
    this.#storing.add(stored);
    void stored.finally(() => this.#storing.delete(stored));
    return handle;
  }

  /** The connection is live (`send` set) or gone (`undefined`). Sending starts with {@link startDrain}. */
  setSender(send: CallSender | undefined): void {
    this.#queue.sender = send;
    if (!send) this.stopDrain();
  }

  /**
   * Start sending: resolve durable calls lost in flight by the module's
   * receipts (`receiptIds`: mutation ids this identity's receipts show) —
   * they took effect, their calls are confirmed — put the other lost ones
   * back in the queue, feed every sendable stored call into the send queue
   * in drain order, and open the gate. A start asked for while one is
   * starting runs after it.
   */
  startDrain(receiptIds: Iterable<string> = []): Promise<void> {
    return this.#drain.start(receiptIds);
  }

  /** Stop sending (connection lost, lease lost, identity changing): calls wait in the queue. */
  stopDrain(): void {
    this.#drain.stop();
  }

  /**
   * Reject the calls waiting in memory (not the durable ones: they stay in
   * the outbox with their identity). Used on sign-out, so nothing queued
   * under one identity goes out under the next.
   */
  rejectQueuedTransient(error: () => Error): void {
    const inFlight = this.#queue.inFlightCalls();
    for (const t of [...this.#tracked.values()]) {
      if (t.call.durable || t.entryId !== undefined) continue;
      if (!inFlight.has(t)) this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: error() });
    }
  }

  /** Settle every transient call in flight as lost; durable ones wait for the next drain (receipts or a resend). */
  connectionLost(reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    this.#queue.sender = undefined;
    this.stopDrain();
    this.#drain.lost(this.#queue.connectionLost(reason, cause));
  }

  /**
   * Confirm the in-flight call that sent this very args object (the SDK's
   * reducer event carries it), so the optimistic layer drops its
   * prediction in the same emission as the server's rows.
   */
  confirmByArgs(args: unknown): void {
    this.#queue.confirmByArgs(args);
  }

  #emit(t: Tracked, o: CallOutcome): void {
    t.outcomes.next(o);
    this.#events.next(eventOf(o, t.call));
  }

  #settle(t: Tracked, o: CallOutcome): void {
    if (t.settled) return;
    t.settled = true;
    this.#tracked.delete(t.call.id);
    this.#drain.forget(t);
    this.#emit(t, o);
    t.outcomes.complete();
  }

  /**
   * Reject every call still pending and end the event stream. Durable calls
   * stay in the outbox: the next session sends them (their handles here are
   * rejected with a `ConnectionLostError` saying so).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#storing, this.#drain.confirmed()]);
    this.connectionLost('closed');
    this.#closed = true;
    this.#drain.close();
    this.#queue.close();
    for (const t of [...this.#tracked.values()]) {
      const kept = t.entryId !== undefined;
      this.#settle(t, {
        status: 'rejected',
        id: t.call.id,
        reducer: t.call.reducer,
        error: new ConnectionLostError(
          kept ? `The sync client was closed before '${t.call.reducer}' was confirmed; it stays in the outbox and the next session sends it.` : 'The sync client was closed before the call was sent.',
          { reason: 'closed', reducer: t.call.reducer },
        ),
      });
    }
    this.#events.complete();
  }
}
