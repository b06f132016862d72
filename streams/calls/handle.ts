/**
 * A reducer call as the game sees it: its {@link CallHandle} (an Observable
 * of `pending → confirmed | rejected` that can also be awaited), the
 * outcome and option types, and the record the call queue keeps per call.
 *
 * @module
 */
import { EmptyError, Observable, ReplaySubject } from 'rxjs';

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
    // One plain subscription, ended by the outcomes' completion: `firstValueFrom` over a
    // `filter` cost a chain of subscribers to build and to tear down on every call.
    return (this.#promise ??= new Promise((resolve, reject) => {
      let settled = false;
      this.outcomes.subscribe({
        next: (o) => {
          if (o.status === 'pending') return;
          settled = true;
          if (o.status === 'confirmed') resolve(o);
          else reject(o.error);
        },
        error: reject,
        // Ended without a final outcome (never, as the call queue settles calls): as `firstValueFrom` would.
        complete: () => settled || reject(new EmptyError()),
      });
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

/** Settlement events, for the optimistic layer and metrics. */
export type CallEvent = CallOutcome & { readonly call: OutboxCall };

/** What the call queue keeps per call until it settles. */
export interface Tracked {
  call: OutboxCall;
  readonly outcomes: ReplaySubject<CallOutcome>;
  readonly handle: CallHandle;
  /** Monotonic ms of the last send (for latency). */
  startedAt: number;
  settled: boolean;
  /** The durable entry's id, once stored. */
  entryId?: string;
}

/** How the parts of the call queue settle a call (once; later settlements are ignored). */
export interface Settle {
  reject(t: Tracked, error: Error): void;
  /** `latencyMs` only from an answer this client saw. */
  confirm(t: Tracked, via: ConfirmedVia, latencyMs?: number): void;
}
