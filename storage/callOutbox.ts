/**
 * The durable outbox behind the sync client's `CallOutbox` seam
 * (`streams/calls.ts`): `createSyncClient({ outbox: storage.callOutbox() })`.
 *
 * The types here are declared structurally (storage does not import the
 * client); test/storage/callOutbox.test.ts checks at compile time that
 * {@link DurableCallOutbox} satisfies the client's `CallOutbox`.
 *
 * Mapping:
 * - `enqueue(call)` checks and stores the call ({@link Outbox.enqueue}); the
 *   entry gets its own mutation id (the client's call ids restart at `c1`
 *   every session and cannot key a durable store). Bad arguments and
 *   `online-only` refusals reject the promise; the client settles the call.
 * - `claim(max)` claims entries (priority, then FIFO; only while this tab
 *   holds the drain lease). This session's calls come back as the very
 *   objects enqueued, with the mutation id filled into a copy of `args`
 *   when the caller left it out. Entries from an earlier session (or put
 *   back after a lost connection) come back decoded, with the entry id as
 *   call id: the client must send these too, without a handle.
 * - `settle(id, 'confirmed' | 'rejected' | 'lost')`: confirmed entries
 *   leave, rejected ones stay inspectable until dismissed, lost ones go back
 *   to the queue to be sent again — a duplicate of a reducer with receipts is
 *   skipped by the module, so the effect stays exactly-once.
 * - `drain()` (on `close()`) returns this session's queued calls so the
 *   client can settle their handles, but keeps them stored: they are sent
 *   by the next session.
 * - A call with `durable: false` (per-frame input) is kept in memory only.
 */
import type { Outbox, OutboxEntry } from './outbox.ts';

/** The client's `OutboxCall`, structurally. */
export interface CallLike {
  readonly id: string;
  /** Accessor (`joinMatch`) or canonical (`join_match`) reducer name. */
  readonly reducer: string;
  readonly args: unknown;
  readonly priority: number;
  readonly supersedeKey?: string;
  readonly enqueuedAt: number;
  /** `false` keeps the call out of IndexedDB. @default true */
  readonly durable?: boolean;
}

export interface DurableCallOutboxOptions {
  /** Accessor name → canonical name (from the bindings' reducers: `{ accessorName, name }`). */
  reducerNames?: Record<string, string>;
  /** Name of the parameter that carries the mutation id. @default 'mutationId' */
  mutationIdParam?: string;
  /** The storage this outbox belongs to (so `createSyncClient({ outbox })` can use all of it). */
  storage?: unknown;
}

export class DurableCallOutbox {
  private readonly toCanonical: Map<string, string>;
  private readonly toAccessor: Map<string, string>;
  private readonly mutationIdParam: string;
  /** This session's calls by entry id, and the entry id of each call id. */
  private readonly calls = new Map<string, CallLike>();
  private readonly entryOf = new Map<string, string>();
  /** Non-durable calls, in memory, in drain order. */
  private transient: { call: CallLike; seq: number }[] = [];
  private transientSeq = 0;
  private recoveredPromise: Promise<unknown> | undefined;
  /** The storage this outbox belongs to, when made by `storage.callOutbox()`. */
  readonly storage: unknown;

  constructor(
    private readonly outbox: Outbox,
    options: DurableCallOutboxOptions = {},
  ) {
    this.toCanonical = new Map(Object.entries(options.reducerNames ?? {}));
    this.toAccessor = new Map([...this.toCanonical].map(([a, c]) => [c, a]));
    this.mutationIdParam = options.mutationIdParam ?? 'mutationId';
    this.storage = options.storage;
  }

  /**
   * A new session: whatever an earlier one left in flight is sent again. Run
   * on first use, not at construction: the sync client never drains through
   * this seam (it uses the storage itself), and requeueing at construction
   * would put back another tab's calls in flight.
   */
  private get recovered(): Promise<unknown> {
    return (this.recoveredPromise ??= this.outbox.requeueSent().catch(() => undefined));
  }

  private canonical(reducer: string): string {
    return this.toCanonical.get(reducer) ?? reducer;
  }

  async enqueue(call: CallLike): Promise<readonly CallLike[]> {
    const reducer = this.canonical(call.reducer);
    const args = (call.args ?? {}) as Record<string, unknown>;
    const options = { priority: call.priority, supersedeKey: call.supersedeKey };
    if (call.durable === false) {
      this.outbox.prepare(reducer, args, options); // check now, like a durable call
      const superseded =
        call.supersedeKey === undefined ? [] : this.transient.filter(t => t.call.supersedeKey === call.supersedeKey).map(t => t.call);
      this.transient = this.transient.filter(t => !superseded.includes(t.call));
      this.transient.push({ call, seq: ++this.transientSeq });
      return superseded;
    }
    await this.recovered;
    const { entry, superseded } = await this.outbox.enqueue(reducer, args, options);
    this.calls.set(entry.id, call);
    this.entryOf.set(call.id, entry.id);
    return superseded.map(old => this.forget(old) ?? this.toCall(old));
  }

  private forget(entry: OutboxEntry): CallLike | undefined {
    const call = this.calls.get(entry.id);
    this.calls.delete(entry.id);
    if (call) this.entryOf.delete(call.id);
    return call;
  }

  /** An entry as a call the client can send. */
  private toCall(entry: OutboxEntry): CallLike {
    const own = this.calls.get(entry.id);
    if (own) {
      const args = own.args as Record<string, unknown> | undefined;
      const needsId = args && this.outbox.takesMutationId(entry.reducer) && !args[this.mutationIdParam];
      return needsId ? { ...own, args: { ...args, [this.mutationIdParam]: entry.id } } : own;
    }
    return {
      id: entry.id,
      reducer: this.toAccessor.get(entry.reducer) ?? entry.reducer,
      args: this.outbox.decodeArgs(entry),
      priority: entry.priority,
      supersedeKey: entry.supersedeKey || undefined,
      enqueuedAt: entry.createdAt,
    };
  }

  async claim(max: number): Promise<readonly CallLike[]> {
    await this.recovered;
    const transient = this.transient.sort((a, b) => b.call.priority - a.call.priority || a.seq - b.seq).splice(0, max).map(t => t.call);
    const durable = transient.length < max ? (await this.outbox.claim(max - transient.length)).map(e => this.toCall(e)) : [];
    return [...transient, ...durable].sort((a, b) => b.priority - a.priority);
  }

  async settle(id: string, outcome: 'confirmed' | 'rejected' | 'lost'): Promise<void> {
    const entryId = this.entryOf.get(id) ?? id;
    if (outcome === 'confirmed') await this.outbox.markConfirmed([entryId]);
    else if (outcome === 'rejected') await this.outbox.markRejected(entryId, 'rejected by the server');
    else {
      // The handle is settled as lost by the client; the entry goes back to
      // the queue and is sent again on the next claim.
      const call = this.calls.get(entryId);
      if (call) {
        this.calls.delete(entryId);
        this.entryOf.delete(call.id);
      }
      await this.outbox.requeueSent([entryId]);
    }
    if (outcome !== 'lost') this.forget({ id: entryId } as OutboxEntry);
  }

  /** This session's calls not yet sent (their handles get settled); the entries stay stored. */
  async drain(): Promise<readonly CallLike[]> {
    const transient = this.transient.splice(0).map(t => t.call);
    const queued = new Set((await this.outbox.entries()).filter(e => e.status === 'queued').map(e => e.id));
    const own: CallLike[] = [];
    for (const [entryId, call] of this.calls) {
      if (queued.has(entryId)) {
        own.push(call);
        this.calls.delete(entryId);
        this.entryOf.delete(call.id);
      }
    }
    return [...transient, ...own];
  }
}
