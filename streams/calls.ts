/**
 * Reducer calls: outcome streams, the send queue, and what happens to calls
 * whose connection died.
 *
 * Every call gets an id and an outcome stream `pending → confirmed |
 * rejected`. Calls reach the network through one {@link prioritize} queue
 * gated by "may send now" (live, recovered, holding the drain lease): it
 * holds calls while the gate is closed and releases them priority first,
 * then first in, first out, superseding queued calls with the same key.
 *
 * Two kinds of calls go through it:
 *
 * - **transient** calls (no storage, or `durable: false`) live only in that
 *   queue. One in flight when the connection dies is rejected with a
 *   {@link ConnectionLostError}: its outcome is unknown and nothing will
 *   send it again.
 * - **durable** calls are written to the storage outbox first (see
 *   `storage/outbox.ts`); the queue is then fed from the outbox — this
 *   session's calls, an earlier session's, another tab's — when draining
 *   starts and whenever the outbox changes. A durable call in flight when
 *   the connection dies stays pending: on the next drain it is resolved by
 *   the module's receipts or sent again (see {@link Calls.startDrain}).
 *   A durable call's handle settles from what this tab saw (the server's
 *   answer, its receipts) or from the outcome record whichever tab removed
 *   the entry wrote (confirmed, rejected, expired, superseded, discarded) —
 *   never from the entry's mere absence; without a record it is rejected
 *   with an {@link OutcomeUnknownError}.
 *
 * Sends are pipelined: every released call goes out at once, answers settle
 * them as they arrive.
 *
 * @module
 */
import { BehaviorSubject, Observable, ReplaySubject, Subject, firstValueFrom, filter, type Subscription } from 'rxjs';
import { InternalError, SenderError } from 'spacetimedb';
import { prioritize } from '../operators/prioritize.ts';
import type { OutcomeRecord } from '../storage/db.ts';
import type { Outbox, OutboxEntry } from '../storage/outbox.ts';
import { ConnectionLostError, OutcomeUnknownError, ReducerRejectedError } from './errors.ts';

/** A call as it travels to the network. */
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
  /** `false`: kept in memory only. @default true when the client has storage */
  readonly durable?: boolean;
}


/**
 * How a call's confirmation was learnt: `answer` — this client saw the
 * server's answer to its send; `receipt` — after a reconnect the call was
 * found among the module's receipts (by this tab or another); `record` —
 * another tab saw the server's answer and recorded it in the shared storage.
 */
export type ConfirmedVia = 'answer' | 'receipt' | 'record';

export type CallOutcome =
  | { readonly status: 'pending'; readonly id: string; readonly reducer: string; readonly queued: boolean }
  | {
      readonly status: 'confirmed';
      readonly id: string;
      readonly reducer: string;
      /** Send to answer (ms), when this client saw the answer (`via: 'answer'`); otherwise undefined: no latency is made up. */
      readonly latencyMs: number | undefined;
      readonly via: ConfirmedVia;
    }
  | { readonly status: 'rejected'; readonly id: string; readonly reducer: string; readonly error: Error };

/** Options of one call. */
export interface CallOptions {
  /** Higher is sent first when calls were queued. @default the reducer's policy priority (storage), else 0 */
  priority?: number;
  /** While queued, a newer call with the same key replaces this one (rejected as superseded). */
  supersedeKey?: string;
  /**
   * `false` keeps the call out of the durable outbox (per-frame input): it is
   * queued in memory only, and rejected with `ConnectionLostError` if the
   * connection dies while it is in flight. Without storage every call is
   * like this. @default true
   */
  durable?: boolean;
  /** Epoch ms after which a call still queued is expired (rejected) instead of sent. */
  deadline?: number;
}

/**
 * The outcome of one reducer call: an Observable of `pending → confirmed |
 * rejected` (replayed to late subscribers) that can also be awaited — the
 * promise resolves with the confirmed outcome and rejects with the error.
 */
export class CallHandle extends Observable<CallOutcome> implements PromiseLike<Extract<CallOutcome, { status: 'confirmed' }>> {
  #promise: Promise<Extract<CallOutcome, { status: 'confirmed' }>> | undefined;
  /** The durable outbox entry's id (the mutation id), once stored. */
  mutationId: string | undefined;
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

  /** Like `Promise.prototype.catch` on {@link done}. */
  catch<B = never>(onrejected?: ((reason: any) => B | PromiseLike<B>) | null): Promise<Extract<CallOutcome, { status: 'confirmed' }> | B> {
    return this.done.catch(onrejected);
  }

  /** Like `Promise.prototype.finally` on {@link done}. */
  finally(onfinally?: (() => void) | null): Promise<Extract<CallOutcome, { status: 'confirmed' }>> {
    return this.done.finally(onfinally);
  }
}

/** Sends one call on the current connection; resolves when confirmed, rejects with the SDK's error. */
export type CallSender = (reducer: string, args: unknown) => Promise<void>;

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

/** The durable side: the storage outbox plus the name mapping of the bindings. */
export interface DurableSide {
  readonly outbox: Outbox;
  /** Accessor name → canonical name. */
  canonical(accessor: string): string;
  /** Canonical name → accessor name. */
  accessor(canonical: string): string;
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

interface Tracked {
  call: OutboxCall;
  readonly outcomes: ReplaySubject<CallOutcome>;
  readonly handle: CallHandle;
  startedAt: number;
  settled: boolean;
  /** The outbox entry, once stored (durable calls). */
  entryId?: string;
}

/** One unit in the send queue. */
interface Item {
  readonly call: OutboxCall;
  readonly tracked?: Tracked;
  /** Durable: the outbox entry id. */
  readonly entryId?: string;
  readonly deadline: number | null;
}

/** Settlement events, for the optimistic layer and metrics. */
export type CallEvent = CallOutcome & { readonly call: OutboxCall };

/** A call that expired in the queue before it could be sent (drop-if-stale or its deadline). */
function expiredError(reducer: string, args: unknown): ReducerRejectedError {
  return new ReducerRejectedError(`${reducer} expired before it could be sent (its deadline passed while offline).`, { reducer, args, kind: 'expired' });
}

export class Calls {
  readonly #now: () => number;
  readonly #wall: () => number;
  readonly #tracked = new Map<string, Tracked>();
  readonly #byEntry = new Map<string, Tracked>();
  /** Items handed to the SDK and not answered, by item key (entry id or call id). */
  readonly #inFlight = new Map<string, Item>();
  /** Entry ids in the send queue, waiting for markSent, or in flight. */
  readonly #known = new Set<string>();
  readonly #events = new Subject<CallEvent>();
  readonly #queue = new Subject<Item>();
  readonly #gate = new BehaviorSubject<boolean>(false);
  readonly #subs: Subscription[] = [];
  /** Durable items released by the queue, waiting for one `markSent`. */
  #released: Item[] = [];
  #sender: CallSender | undefined;
  #durable: DurableSide | undefined;
  /** Set while the storage is opening: durable calls wait for it. */
  #durableReady: Promise<void> | undefined;
  #starting = false;
  /** A drain asked for while one was starting: its receipt ids, started once that one is done. */
  #startAgain: Iterable<string> | undefined;
  #drainGen = 0;
  #seq = 0;
  #draining = false;
  #feeding: Promise<void> | undefined;
  #feedAgain = false;
  #reconciling: Promise<void> | undefined;
  #reconcileAgain = false;
  /** In-flight item keys by the args object sent (for {@link confirmByArgs}), in send order. */
  readonly #inFlightByArgs = new Map<unknown, Set<string>>();
  /** Transient items in flight. */
  #transientSent = 0;
  /** Durable entries answered `confirmed`, waiting for one `markConfirmed` of them all. */
  #toConfirm: string[] = [];
  /** The `markConfirmed` write under way, if any. */
  #confirming: Promise<void> | undefined;
  #closed = false;
  /** Calls still being written to the outbox (so close() can wait for them). */
  readonly #storing = new Set<Promise<unknown>>();
  readonly #transientCount = new BehaviorSubject<{ queued: number; sent: number }>({ queued: 0, sent: 0 });
  #transientQueued = 0;

  constructor(private readonly options: CallsOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#wall = options.wallClock ?? (() => Date.now());
    this.#subs.push(
      this.#queue
        .pipe(
          prioritize<Item>({
            gate: this.#gate,
            priority: (item) => item.call.priority,
            // Durable entries are superseded by the outbox itself, when stored.
            supersedeKey: (item) => (item.entryId === undefined && item.call.supersedeKey !== undefined ? item.call.supersedeKey : undefined),
            ttl: (item) => (item.deadline === null ? Infinity : Math.max(1, item.deadline - this.#wall())),
            onEvent: (e) => {
              if (e.type === 'superseded') {
                this.#transientQueued--;
                const old = e.item;
                if (old.tracked) this.#settle(old.tracked, { status: 'rejected', id: old.call.id, reducer: old.call.reducer, error: new ReducerRejectedError(`Superseded by a newer call with key '${old.call.supersedeKey}'.`, { reducer: old.call.reducer, args: old.call.args, kind: 'superseded' }) });
              } else if (e.type === 'expired') {
                const old = e.item;
                if (old.entryId !== undefined) {
                  // The outbox decides and records it (another tab may have sent it meanwhile): the handle
                  // settles from that record, through the outbox's events or the next reconcile.
                  const id = old.entryId;
                  this.#known.delete(id);
                  const side = this.#durable;
                  if (side) {
                    void side.outbox.expire().then(
                      (expired) => {
                        if (!expired.some((e) => e.id === id)) this.#storeChanged();
                      },
                      (err) => this.options.onError?.(err instanceof Error ? err : new Error(String(err))),
                    );
                  }
                } else {
                  this.#transientQueued--;
                  if (old.tracked) this.#settle(old.tracked, { status: 'rejected', id: old.call.id, reducer: old.call.reducer, error: expiredError(old.call.reducer, old.call.args) });
                }
              }
              this.#countTransient();
            },
          }),
        )
        .subscribe((item) => this.#release(item)),
    );
  }

  /** Every outcome of every call. */
  get events$(): Observable<CallEvent> {
    return this.#events.asObservable();
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Queued and in-flight counts of the calls that are not in the durable outbox. */
  get transient$(): Observable<{ queued: number; sent: number }> {
    return this.#transientCount.asObservable();
  }

  /** Whether released calls go to the network now. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Durable calls made before `ready` resolves wait for the storage; if
   * {@link useDurable} was not called by then, they are kept in memory.
   */
  expectDurable(ready: Promise<void>): void {
    const p = (this.#durableReady = ready.catch(() => undefined).finally(() => {
      if (this.#durableReady === p) this.#durableReady = undefined;
    }));
  }

  /**
   * Use the storage outbox for durable calls. Entries it expires or
   * supersedes on its own settle the matching handles; changes (another
   * tab's calls, entries confirmed elsewhere) feed the queue while draining.
   */
  useDurable(side: DurableSide): void {
    this.#durable = side;
    this.#subs.push(
      side.outbox.events$.subscribe((e) => {
        const t = this.#byEntry.get(e.entry.id);
        if (!t) return;
        if (e.entry.attempts > 0) this.#unknown(t, e.entry.id, `${t.call.reducer} was ${e.type} after an earlier send whose answer was lost; it may have been applied then.`);
        else if (e.type === 'expired') this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: expiredError(t.call.reducer, t.call.args) });
        else this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: new ReducerRejectedError(`Superseded by a newer call with key '${e.entry.supersedeKey}'.`, { reducer: t.call.reducer, args: t.call.args, kind: 'superseded' }) });
      }),
      // A signal per committed change, not the whole outbox: reading and
      // summarizing every entry on every change (each markSent, each
      // confirmation) made a replay of n calls cost n² entry reads.
      side.outbox.changes$.subscribe({
        next: () => this.#storeChanged(),
        error: (e) => this.options.onError?.(e instanceof Error ? e : new Error(String(e))),
      }),
    );
  }

  /**
   * The outbox changed (here or in another tab): settle this session's calls
   * whose entries left it or were rejected without an answer here, and feed
   * new sendable entries. Coalesced: one pass at a time, and one more for
   * everything that changed meanwhile.
   */
  #storeChanged(): void {
    if (this.#closed) return;
    if (this.#reconciling) {
      this.#reconcileAgain = true;
      return;
    }
    const run = async (): Promise<void> => {
      do {
        this.#reconcileAgain = false;
        await this.#reconcileWithStore();
        if (this.#draining && !this.#closed) await this.feed();
      } while (this.#reconcileAgain && !this.#closed);
    };
    this.#reconciling = run()
      .catch((e) => this.options.onError?.(e instanceof Error ? e : new Error(String(e))))
      .finally(() => (this.#reconciling = undefined));
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
    const durable = opts.durable !== false && (this.#durable !== undefined || this.#durableReady !== undefined);
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
    this.#emit(t, { status: 'pending', id, reducer, queued: !this.#draining });
    if (!durable) {
      this.#transientQueued++;
      this.#queue.next({ call, tracked: t, deadline });
      this.#countTransient();
      return handle;
    }
    const store = async (): Promise<void> => {
      if (!this.#durable) await this.#durableReady;
      const side = this.#durable;
      if (!side || this.#closed) {
        // No storage after all (it could not be opened): keep the call in memory.
        if (this.#closed || t.settled) return;
        this.#transientQueued++;
        this.#queue.next({ call: { ...call, durable: false }, tracked: t, deadline });
        this.#countTransient();
        return;
      }
      const { entry, superseded } = await side.outbox.enqueue(side.canonical(reducer), prepared.args as Record<string, unknown>, {
        priority: call.priority,
        supersedeKey: opts.supersedeKey,
        deadline: deadline ?? undefined,
        id: prepared.mutationId,
      });
      t.entryId = entry.id;
      handle.mutationId = entry.id;
      // The outbox filled in a mutation id the caller left out: send what it stored.
      if (prepared.mutationId === undefined && side.outbox.takesMutationId(entry.reducer)) t.call = { ...t.call, args: side.outbox.decodeArgs(entry) };
      if (!t.settled) this.#byEntry.set(entry.id, t);
      for (const old of superseded) {
        const o = this.#byEntry.get(old.id);
        if (!o) continue;
        if (old.attempts > 0) this.#unknown(o, old.id, `${o.call.reducer} was superseded after an earlier send whose answer was lost; it may have been applied then.`);
        else this.#settle(o, { status: 'rejected', id: o.call.id, reducer: o.call.reducer, error: new ReducerRejectedError(`Superseded by a newer call with key '${old.supersedeKey}'.`, { reducer: o.call.reducer, args: o.call.args, kind: 'superseded' }) });
      }
      // Straight into the send queue (the entry is at hand): no read of the outbox per call.
      const sendable = entry.status === 'queued' && entry.quarantine === null && entry.identity !== '' && entry.identity === side.outbox.identity;
      if (this.#draining && sendable && !t.settled && !this.#known.has(entry.id)) {
        this.#known.add(entry.id);
        this.#queue.next({ call: t.call, tracked: t, entryId: entry.id, deadline: entry.deadline });
      }
    };
    const stored = store().catch((error: unknown) => this.#settle(t, { status: 'rejected', id, reducer, error: error instanceof Error ? error : new Error(String(error)) }));
    this.#storing.add(stored);
    void stored.finally(() => this.#storing.delete(stored));
    return handle;
  }

  /** The connection is live (`send` set) or gone (`undefined`). Sending starts with {@link startDrain}. */
  setSender(send: CallSender | undefined): void {
    this.#sender = send;
    if (!send) this.stopDrain();
  }

  /**
   * Start sending: resolve durable entries lost in flight by the module's
   * receipts (`receiptIds`: mutation ids this identity's receipts show) —
   * they took effect, their calls are confirmed — put the other lost ones
   * back in the queue, feed every sendable outbox entry into the send queue
   * in drain order, and open the gate.
   */
  async startDrain(receiptIds: Iterable<string> = []): Promise<void> {
    if (this.#closed || !this.#sender || this.#draining) return;
    if (this.#starting) {
      // The one starting may be for a connection already lost: this one runs after it (unless a stopDrain comes first).
      this.#startAgain = receiptIds;
      return;
    }
    const sender = this.#sender;
    const gen = this.#drainGen;
    this.#starting = true;
    try {
      const side = this.#durable;
      if (side) {
        const { confirmed } = await side.outbox.recoverAfterReconnect(receiptIds);
        for (const entry of confirmed) this.#confirmEntry(entry.id, 'receipt');
        if (this.#sender !== sender || this.#closed || gen !== this.#drainGen) return;
        this.#draining = true;
        await this.feed();
      }
      if (this.#sender !== sender || this.#closed || gen !== this.#drainGen) return;
      this.#draining = true;
      this.#gate.next(true);
    } catch (e) {
      this.options.onError?.(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#starting = false;
      const again = this.#startAgain;
      this.#startAgain = undefined;
      if (again !== undefined) await this.startDrain(again);
    }
  }

  /** Stop sending (connection lost, lease lost, identity changing): calls wait in the queue. */
  stopDrain(): void {
    this.#startAgain = undefined;
    this.#drainGen++;
    this.#draining = false;
    if (this.#gate.value) this.#gate.next(false);
  }

  /**
   * Push the outbox's sendable entries the queue does not hold yet, in drain
   * order. Runs one at a time; a request while running runs it once more.
   */
  feed(): Promise<void> {
    const side = this.#durable;
    if (!side) return Promise.resolve();
    if (this.#feeding) {
      this.#feedAgain = true;
      return this.#feeding;
    }
    const run = async (): Promise<void> => {
      do {
        this.#feedAgain = false;
        if (!this.#draining || this.#closed) return;
        let entries: OutboxEntry[];
        try {
          entries = await side.outbox.nextBatch(Number.MAX_SAFE_INTEGER);
        } catch (e) {
          this.options.onError?.(e as Error);
          return;
        }
        if (!this.#draining || this.#closed) return;
        for (const entry of entries) {
          if (this.#known.has(entry.id)) continue;
          let call: OutboxCall;
          const t = this.#byEntry.get(entry.id);
          if (t) call = t.call;
          else {
            try {
              call = { id: entry.id, reducer: side.accessor(entry.reducer), args: side.outbox.decodeArgs(entry), priority: entry.priority, supersedeKey: entry.supersedeKey || undefined, enqueuedAt: entry.createdAt, durable: true };
            } catch (e) {
              this.options.onError?.(e as Error);
              continue;
            }
          }
          this.#known.add(entry.id);
          this.#queue.next({ call, tracked: t, entryId: entry.id, deadline: entry.deadline });
        }
      } while (this.#feedAgain);
    };
    const p = (this.#feeding = run().finally(() => (this.#feeding = undefined)));
    return p;
  }

  #release(item: Item): void {
    if (item.entryId === undefined) {
      this.#transientQueued--;
      if (item.tracked?.settled) {
        this.#countTransient();
        return; // dropped while queued (sign-out)
      }
      this.#send(item, item.call.id);
      this.#countTransient();
      return;
    }
    this.#released.push(item);
    if (this.#released.length === 1) queueMicrotask(() => void this.#markAndSend());
  }

  /** One `markSent` for every durable item released in this task, then send them in order. */
  async #markAndSend(): Promise<void> {
    const batch = this.#released;
    this.#released = [];
    const side = this.#durable!;
    const sender = this.#sender;
    let sent: Set<string>;
    try {
      sent = new Set((await side.outbox.markSent(batch.map((i) => i.entryId!))).map((e) => e.id));
    } catch (e) {
      this.options.onError?.(e as Error);
      for (const item of batch) this.#known.delete(item.entryId!);
      return;
    }
    const lost: string[] = [];
    let gone = false;
    for (const item of batch) {
      const id = item.entryId!;
      if (!sent.has(id)) {
        // Superseded, expired, confirmed, of another identity, or taken by another tab meanwhile.
        this.#known.delete(id);
        if (this.#byEntry.has(id)) gone = true;
        continue;
      }
      if (this.#sender !== sender || !this.#draining || this.#closed) {
        this.#known.delete(id);
        lost.push(id);
        continue;
      }
      this.#send(item, id);
    }
    // A call of this session whose entry changed under it: find out how (reconcile).
    if (gone) this.#storeChanged();
    if (lost.length) await side.outbox.requeueSent(lost).catch((e) => this.options.onError?.(e as Error));
  }

  #send(item: Item, key: string): void {
    const send = this.#sender;
    if (!send) {
      // Only transient calls get here without a sender (a release racing a disconnect).
      this.#lostInFlight(item, 'close');
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
    if (item.tracked) item.tracked.startedAt = this.#now();
    this.options.log?.(() => `call ${item.call.reducer} (${key})`);
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
   * Reject the calls waiting in memory (not the durable ones: they stay in
   * the outbox with their identity). Used on sign-out, so nothing queued
   * under one identity goes out under the next.
   */
  rejectQueuedTransient(error: () => Error): void {
    const inFlight = new Set<Tracked | undefined>();
    for (const item of this.#inFlight.values()) inFlight.add(item.tracked);
    for (const t of [...this.#tracked.values()]) {
      if (t.call.durable || t.entryId !== undefined) continue;
      if (!inFlight.has(t)) this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: error() });
    }
  }

  /** Settle every transient call in flight as lost; durable ones wait for the next drain (receipts or a resend). */
  connectionLost(reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    this.#sender = undefined;
    this.stopDrain();
    for (const [key, item] of [...this.#inFlight]) {
      this.#forgetInFlight(key, item);
      if (item.entryId !== undefined) {
        this.#known.delete(item.entryId);
        continue;
      }
      this.#lostInFlight(item, reason, cause);
    }
    this.#countTransient();
  }

  #lostInFlight(item: Item, reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    const t = item.tracked;
    if (!t) return;
    this.#settle(t, {
      status: 'rejected',
      id: t.call.id,
      reducer: t.call.reducer,
      error: new ConnectionLostError(`The connection was lost while '${t.call.reducer}' was in flight; its outcome is unknown.`, { reason, reducer: t.call.reducer }, { cause }),
    });
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

  #forgetInFlight(key: string, item: Item): void {
    this.#inFlight.delete(key);
    if (item.entryId === undefined) this.#transientSent--;
    const keys = this.#inFlightByArgs.get(item.call.args);
    if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.#inFlightByArgs.delete(item.call.args);
    }
  }

  /**
   * Confirmed entries leave the outbox in batches: one `markConfirmed` (one
   * transaction) for every answer that arrived while the previous one was
   * being written — one transaction per answer cost a commit (and, with
   * fake-indexeddb, a round of index work) per call.
   */
  #confirmStored(id: string): void {
    this.#toConfirm.push(id);
    if (this.#confirming) return;
    const side = this.#durable!;
    const run = async (): Promise<void> => {
      while (this.#toConfirm.length > 0) {
        const ids = this.#toConfirm;
        this.#toConfirm = [];
        try {
          await side.outbox.markConfirmed(ids);
        } catch (e) {
          this.options.onError?.(e as Error);
        }
        for (const id of ids) this.#known.delete(id);
      }
    };
    const p = (this.#confirming = run().finally(() => (this.#confirming = undefined)));
    this.#storing.add(p);
    void p.finally(() => this.#storing.delete(p));
  }

  #answered(key: string, err: unknown) {
    const item = this.#inFlight.get(key);
    if (!item) return; // already settled, or lost with its connection
    this.#forgetInFlight(key, item);
    const t = item.tracked;
    const rejection =
      err === undefined
        ? undefined
        : new ReducerRejectedError(`${item.call.reducer} rejected: ${err instanceof Error ? err.message : String(err)}`, { reducer: item.call.reducer, args: item.call.args, kind: err instanceof SenderError ? 'sender' : err instanceof InternalError ? 'internal' : 'internal' }, { cause: err });
    if (item.entryId !== undefined) {
      const side = this.#durable!;
      const id = item.entryId;
      if (rejection === undefined) this.#confirmStored(id);
      else
        void side.outbox.markRejected(id, rejection).then(
          () => this.#known.delete(id),
          (e) => this.options.onError?.(e as Error),
        );
      this.#byEntry.delete(id);
      // An entry of an earlier session or another tab has no handle: report its rejection.
      if (!t && rejection) this.options.onError?.(rejection);
    } else this.#countTransient();
    if (!t) return;
    if (rejection === undefined) this.#settle(t, { status: 'confirmed', id: t.call.id, reducer: t.call.reducer, latencyMs: this.#now() - t.startedAt, via: 'answer' });
    else this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: rejection });
  }

  /** Confirmed without an answer seen here: by this client's receipts, or by another tab's record. No latency. */
  #confirmEntry(entryId: string, via: ConfirmedVia) {
    const t = this.#byEntry.get(entryId);
    this.#byEntry.delete(entryId);
    if (t) this.#settle(t, { status: 'confirmed', id: t.call.id, reducer: t.call.reducer, latencyMs: undefined, via });
  }

  /**
   * Settle this session's durable calls whose entries left the outbox
   * without an answer here (another tab sent, expired, superseded,
   * discarded or dismissed them) or were rejected there — from the outcome
   * record the remover wrote, never from the mere absence of the entry. An
   * entry gone without a record (it aged out before this tab looked) settles
   * with an {@link OutcomeUnknownError}.
   * Reads only those entries (one bulk read by id): the ones this session
   * tracks that are neither in flight here nor in its send pipeline — while
   * this tab drains its own calls that is next to none.
   */
  async #reconcileWithStore(): Promise<void> {
    const side = this.#durable;
    if (!side || this.#byEntry.size === 0) return;
    const ids: string[] = [];
    // While draining, entries in the send pipeline are this tab's to send (markSent reports the ones taken meanwhile).
    const skip = (id: string) => this.#inFlight.has(id) || (this.#draining && this.#known.has(id));
    for (const id of this.#byEntry.keys()) if (!skip(id)) ids.push(id);
    if (ids.length === 0) return;
    const found = new Map((await side.outbox.get(ids)).map((e) => [e.id, e]));
    const gone = ids.filter((id) => !found.has(id));
    // Written in the same transaction as the removal: a missing entry has its record, unless it aged out.
    const records = new Map((await side.outbox.outcomes(gone)).map((o) => [o.id, o]));
    for (const id of ids) {
      const t = this.#byEntry.get(id);
      if (!t || skip(id)) continue;
      const e = found.get(id);
      if (e) {
        if (e.status === 'rejected') this.#rejectEntry(id, t, e);
        continue;
      }
      const o = records.get(id);
      if (!o) this.#unknown(t, id, `${t.call.reducer} left the outbox and no outcome is recorded for it (outcomes are kept ${side.outbox.outcomeTtlMs} ms, and none is recorded for a call that may have been applied); it may or may not have been applied.`);
      else this.#settleFromRecord(t, o);
    }
  }

  /** Settle with {@link OutcomeUnknownError}: nobody knows whether the server applied it. */
  #unknown(t: Tracked, entryId: string, message: string) {
    if (this.#byEntry.get(entryId) === t) this.#byEntry.delete(entryId);
    this.#settle(t, {
      status: 'rejected',
      id: t.call.id,
      reducer: t.call.reducer,
      error: new OutcomeUnknownError(message, { reducer: t.call.reducer, mutationId: entryId, outcomeTtlMs: this.#durable?.outbox.outcomeTtlMs }),
    });
  }

  /** Settle a handle from the outcome another tab (or this one) recorded for its entry. */
  #settleFromRecord(t: Tracked, o: OutcomeRecord) {
    if (t.entryId !== undefined) this.#byEntry.delete(t.entryId);
    const { reducer, args } = t.call;
    const reject = (error: Error) => this.#settle(t, { status: 'rejected', id: t.call.id, reducer, error });
    switch (o.outcome) {
      case 'confirmed':
        this.#settle(t, { status: 'confirmed', id: t.call.id, reducer, latencyMs: undefined, via: o.by === 'receipt' ? 'receipt' : 'record' });
        return;
      case 'expired':
        return reject(expiredError(reducer, args));
      case 'superseded':
        return reject(new ReducerRejectedError(`Superseded by a newer call with the same supersede key${o.supersededBy ? ` (entry ${o.supersededBy})` : ''}.`, { reducer, args, kind: 'superseded' }));
      case 'discarded':
        return reject(
          new ReducerRejectedError(
            o.by === 'migration' ? `${reducer} was dropped by a migrator and never sent: ${o.error?.message ?? 'no reason given'}` : `${reducer} was discarded from the outbox before the server applied it.`,
            { reducer, args, kind: 'discarded' },
          ),
        );
      default:
        return reject(new ReducerRejectedError(`${reducer} rejected: ${o.error?.message ?? 'rejected'}`, { reducer, args, kind: 'sender' }));
    }
  }

  #rejectEntry(id: string, t: Tracked, entry: OutboxEntry) {
    this.#byEntry.delete(id);
    this.#settle(t, { status: 'rejected', id: t.call.id, reducer: t.call.reducer, error: new ReducerRejectedError(`${t.call.reducer} rejected: ${entry.error?.message ?? 'rejected'}`, { reducer: t.call.reducer, args: t.call.args, kind: 'sender' }) });
  }

  #countTransient() {
    const sent = this.#transientSent;
    const cur = this.#transientCount.value;
    if (cur.queued !== this.#transientQueued || cur.sent !== sent) this.#transientCount.next({ queued: this.#transientQueued, sent });
  }

  #emit(t: Tracked, o: CallOutcome) {
    t.outcomes.next(o);
    this.#events.next({ ...o, call: t.call });
  }

  #settle(t: Tracked, o: CallOutcome) {
    if (t.settled) return;
    t.settled = true;
    this.#tracked.delete(t.call.id);
    if (t.entryId !== undefined && this.#byEntry.get(t.entryId) === t) this.#byEntry.delete(t.entryId);
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
    await Promise.allSettled([...this.#storing]);
    this.connectionLost('closed');
    this.#closed = true;
    for (const s of this.#subs) s.unsubscribe();
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
    this.#transientCount.complete();
    this.#gate.complete();
  }
}
