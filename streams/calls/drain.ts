/**
 * The durable drain: durable calls are written to a {@link DurableQueue}
 * first, and the send queue is fed from it — this session's calls, an
 * earlier session's, another tab's — when draining starts and whenever the
 * queue changes.
 *
 * - **start** ({@link Drain.start}): calls lost in flight are resolved by
 *   the module's receipts (they took effect: confirmed) or put back in the
 *   queue; then every sendable call is fed, in drain order, and the gate
 *   opens. A start asked for while one is starting runs after it; a stop
 *   cancels it.
 * - **release → send**: released calls are marked sent in one write per
 *   task, then sent; ones taken meanwhile (another tab, a supersede, an
 *   expiry) are skipped, ones whose connection died are put back.
 * - **answers**: confirmations leave the queue in batches (one write for
 *   every answer that arrived during the previous write); a refusal stays,
 *   rejected.
 * - **settling without an answer**: a call whose entry left the queue
 *   without an answer here, or was rejected there, settles from the outcome
 *   record its remover wrote — never from the entry's mere absence; without
 *   a record, with an {@link OutcomeUnknownError}.
 *
 * A durable call in flight when the connection dies stays pending: the next
 * start resolves it by receipts or sends it again.
 *
 * @module
 */
import type { Subscription } from 'rxjs';
import type { DurableQueue, StoredCall } from '../durableQueue.ts';
import { OutcomeUnknownError, type ReducerRejectedError } from '../errors.ts';
import { Serial } from '../serial.ts';
import type { OutboxCall, Settle, Tracked } from './handle.ts';
import { expiredError, recordedError, storedRejection, supersededError } from './rejections.ts';
import type { DurableHooks, Item, SendQueue } from './sendQueue.ts';

export interface DrainOptions {
  readonly queue: SendQueue;
  readonly settle: Settle;
  /** Failures that belong to no call. */
  readonly onError: (error: Error) => void;
  /** Whether the call queue is closed. */
  readonly closed: () => boolean;
}

/** What the drain needs to store one call. */
export interface DurableCall {
  readonly tracked: Tracked;
  readonly mutationId: string | undefined;
  readonly deadline: number | null;
}

export class Drain implements DurableHooks {
  readonly #queue: SendQueue;
  readonly #settle: Settle;
  readonly #onError: (error: Error) => void;
  readonly #closed: () => boolean;
  readonly #subs: Subscription[] = [];
  #durable: DurableQueue | undefined;
  /** Set while the storage is opening: durable calls wait for it. */
  #durableReady: Promise<void> | undefined;
  /** This session's calls by their stored id, until settled. */
  readonly #byEntry = new Map<string, Tracked>();
  /** Stored ids in the send queue, waiting for markSent, or in flight. */
  readonly #known = new Set<string>();
  /** Durable items released by the queue, waiting for one `markSent`. */
  #released: Item[] = [];
  #draining = false;
  /** The drain start: one at a time, the latest receipts for one asked for meanwhile; cancelled by a stop. */
  readonly #starter: Serial<Iterable<string>>;
  /** Feeds the send queue from the durable queue. */
  readonly #feeder: Serial;
  /** After a change: settle what left the queue, then feed. */
  readonly #changed: Serial;
  /** Confirmed ids, one write for all that arrived during the previous one. */
  readonly #confirmer: Serial<string[]>;

  constructor(options: DrainOptions) {
    this.#queue = options.queue;
    this.#settle = options.settle;
    this.#onError = options.onError;
    this.#closed = options.closed;
    const onError = this.#onError;
    this.#starter = new Serial((receiptIds, run) => this.#start(receiptIds, run), { onError });
    this.#feeder = new Serial(() => this.#feed(), { onError });
    this.#changed = new Serial(
      async () => {
        await this.#reconcile();
        if (this.#draining && !this.#closed()) await this.#feeder.request();
      },
      { onError },
    );
    this.#confirmer = new Serial(
      async (ids) => {
        try {
          await this.#durable!.confirm(ids);
        } finally {
          for (const id of ids) this.#known.delete(id);
        }
      },
      { onError, merge: (pending, next) => (pending.push(...next), pending) },
    );
  }

  /** Whether released calls go to the network now. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Whether calls made now are durable (storage in use, or being opened). */
  get expected(): boolean {
    return this.#durable !== undefined || this.#durableReady !== undefined;
  }

  /** Durable calls made before `ready` resolves wait for the storage. */
  expect(ready: Promise<void>): void {
    const p = (this.#durableReady = ready.catch(() => undefined).finally(() => {
      if (this.#durableReady === p) this.#durableReady = undefined;
    }));
  }

  /**
   * Use this durable queue. Calls it expires or supersedes on its own
   * settle the matching handles; its changes (another tab's calls, calls
   * confirmed elsewhere) feed the send queue while draining.
   */
  use(durable: DurableQueue): void {
    this.#durable = durable;
    this.#subs.push(
      durable.events$.subscribe(({ type, call }) => this.#decided(type, call)),
      // A signal per committed change, not the whole queue: reading every
      // entry on every change (each markSent, each confirmation) made a
      // replay of n calls cost n² entry reads.
      durable.changes$.subscribe({
        next: () => void this.#changed.request(),
        error: (e) => this.#onError(e instanceof Error ? e : new Error(String(e))),
      }),
    );
  }

  /**
   * Store a durable call, then — while draining and sendable — push it
   * straight into the send queue (the entry is at hand: no read per call).
   * Without storage after all (it could not be opened) the call is kept in
   * memory. Rejects when storing fails.
   */
  async store({ tracked: t, mutationId, deadline }: DurableCall): Promise<void> {
    if (!this.#durable) await this.#durableReady;
    const durable = this.#durable;
    if (!durable || this.#closed()) {
      if (this.#closed() || t.settled) return;
      this.#queue.push({ call: { ...t.call, durable: false }, tracked: t, deadline });
      return;
    }
    const { reducer, args: given, priority, supersedeKey } = t.call;
    const { call: entry, args, sendable, superseded } = await durable.enqueue({ reducer, args: given, priority, supersedeKey, deadline, mutationId });
    t.entryId = entry.id;
    t.handle.mutationId = entry.id;
    if (args !== t.call.args) t.call = { ...t.call, args };
    if (!t.settled) this.#byEntry.set(entry.id, t);
    for (const old of superseded) this.#decided('superseded', old);
    if (this.#draining && sendable && !t.settled && !this.#known.has(entry.id)) {
      this.#known.add(entry.id);
      this.#queue.push({ call: t.call, tracked: t, entryId: entry.id, deadline: entry.deadline });
    }
  }

  /** The durable queue expired or superseded a call on its own: settle its handle, if it is this session's. */
  #decided(type: 'expired' | 'superseded', call: StoredCall): void {
    const t = this.#byEntry.get(call.id);
    if (!t) return;
    if (call.attempts > 0) this.#unknown(t, call.id, `${t.call.reducer} was ${type} after an earlier send whose answer was lost; it may have been applied then.`);
    else this.#settle.reject(t, type === 'expired' ? expiredError(t.call) : supersededError(t.call, call.supersedeKey));
  }

  /** A settled call's record leaves the index. */
  forget(t: Tracked): void {
    if (t.entryId !== undefined && this.#byEntry.get(t.entryId) === t) this.#byEntry.delete(t.entryId);
  }

  /**
   * Start sending: resolve durable calls lost in flight by the module's
   * receipts (`receiptIds`: mutation ids this identity's receipts show),
   * put the other lost ones back in the queue, feed every sendable call in
   * drain order, and open the gate. Resolves once started (or given up).
   */
  start(receiptIds: Iterable<string>): Promise<void> {
    if (this.#closed() || !this.#queue.sender || this.#draining) return Promise.resolve();
    // One starting may be for a connection already lost: a new one runs after it (unless a stop comes first).
    return this.#starter.request(receiptIds);
  }

  /** Without storage the gate opens in the same step (no promise): a stop and a start in one task stay in order. */
  #start(receiptIds: Iterable<string>, run: { readonly cancelled: boolean }): Promise<void> | void {
    if (this.#closed() || !this.#queue.sender || this.#draining) return;
    const sender = this.#queue.sender;
    const stale = () => this.#queue.sender !== sender || this.#closed() || run.cancelled;
    const open = () => {
      if (stale()) return;
      this.#draining = true;
      this.#queue.gate(true);
    };
    const durable = this.#durable;
    if (!durable) return open();
    return (async () => {
      const confirmed = await durable.recover(receiptIds);
      for (const id of confirmed) {
        const t = this.#byEntry.get(id);
        this.#byEntry.delete(id);
        if (t) this.#settle.confirm(t, 'receipt');
      }
      if (stale()) return;
      this.#draining = true;
      await this.#feeder.request();
      open();
    })();
  }

  /** Stop sending (connection lost, lease lost, identity changing): calls wait in the queue; a start under way gives up. */
  stop(): void {
    this.#starter.cancel();
    this.#draining = false;
    this.#queue.gate(false);
  }

  /** The connection died with these stored calls in flight: they are no longer this drain's (the next start requeues them). */
  lost(ids: readonly string[]): void {
    for (const id of ids) this.#known.delete(id);
  }

  /** Push the durable queue's sendable calls the send queue does not hold yet, in drain order. */
  async #feed(): Promise<void> {
    const durable = this.#durable;
    if (!durable || !this.#draining || this.#closed()) return;
    // The whole set, not `toSend(lastSeq)`: a call put back (requeued, retried, rehomed, adopted by a
    // new identity) keeps its old seq, and a change signal does not say which of those happened.
    const calls = await durable.toSend();
    if (!this.#draining || this.#closed()) return;
    for (const stored of calls) {
      if (this.#known.has(stored.id)) continue;
      const t = this.#byEntry.get(stored.id);
      let call: OutboxCall;
      if (t) call = t.call;
      else {
        try {
          call = this.#callOf(stored);
        } catch (e) {
          this.#onError(e as Error);
          continue;
        }
      }
      this.#known.add(stored.id);
      this.#queue.push({ call, tracked: t, entryId: stored.id, deadline: stored.deadline });
    }
  }

  /** A call of an earlier session or another tab: no handle here. */
  #callOf(stored: StoredCall): OutboxCall {
    return { id: stored.id, reducer: stored.reducer, args: stored.args(), priority: stored.priority, supersedeKey: stored.supersedeKey, enqueuedAt: stored.createdAt, durable: true };
  }

  /** Released by the gate: one `markSent` for every item released in this task, then send them in order. */
  released(item: Item): void {
    this.#released.push(item);
    if (this.#released.length === 1) queueMicrotask(() => void this.#markAndSend());
  }

  async #markAndSend(): Promise<void> {
    const batch = this.#released;
    this.#released = [];
    const durable = this.#durable!;
    const sender = this.#queue.sender;
    let sent: Set<string>;
    try {
      sent = new Set(await durable.markSent(batch.map((i) => i.entryId!)));
    } catch (e) {
      this.#onError(e as Error);
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
      if (this.#queue.sender !== sender || !this.#draining || this.#closed()) {
        this.#known.delete(id);
        lost.push(id);
        continue;
      }
      this.#queue.send(item, id);
    }
    // A call of this session whose entry changed under it: find out how (reconcile).
    if (gone) void this.#changed.request();
    if (lost.length) await durable.requeue(lost).catch((e) => this.#onError(e as Error));
  }

  /** Its deadline passed in the send queue: the durable queue decides and records it (another tab may have sent it meanwhile). */
  expired(item: Item): void {
    const id = item.entryId!;
    this.#known.delete(id);
    const durable = this.#durable;
    if (!durable) return;
    // The handle settles from that record, through the queue's events or the next reconcile.
    void durable.expire().then(
      (expired) => {
        if (!expired.includes(id)) void this.#changed.request();
      },
      (err) => this.#onError(err instanceof Error ? err : new Error(String(err))),
    );
  }

  /** The server answered a stored call: confirmations leave the queue in batches; a refusal stays, rejected. */
  answered(item: Item, rejection: ReducerRejectedError | undefined): void {
    const durable = this.#durable!;
    const id = item.entryId!;
    if (rejection === undefined) void this.#confirmer.request([id]);
    else
      void durable.reject(id, rejection).then(
        () => this.#known.delete(id),
        (e) => this.#onError(e as Error),
      );
    this.#byEntry.delete(id);
    // A call of an earlier session or another tab has no handle: report its rejection.
    if (!item.tracked && rejection) this.#onError(rejection);
  }

  /**
   * Settle this session's durable calls whose entries left the queue
   * without an answer here (another tab sent, expired, superseded,
   * discarded or dismissed them) or were rejected there. Reads only those
   * (one bulk lookup): the ones this session tracks that are neither in
   * flight here nor in its send pipeline — while this tab drains its own
   * calls that is next to none.
   */
  async #reconcile(): Promise<void> {
    const durable = this.#durable;
    if (!durable || this.#byEntry.size === 0) return;
    const ids: string[] = [];
    // While draining, entries in the send pipeline are this tab's to send (markSent reports the ones taken meanwhile).
    const skip = (id: string) => this.#queue.inFlight(id) || (this.#draining && this.#known.has(id));
    for (const id of this.#byEntry.keys()) if (!skip(id)) ids.push(id);
    if (ids.length === 0) return;
    const states = await durable.lookup(ids);
    for (const id of ids) {
      const t = this.#byEntry.get(id);
      const s = states.get(id);
      if (!t || !s || skip(id)) continue;
      if (s.state === 'waiting') continue;
      if (s.state === 'rejected') {
        this.#byEntry.delete(id);
        this.#settle.reject(t, storedRejection(t.call, s.message));
      } else if (!s.record) {
        this.#unknown(t, id, `${t.call.reducer} left the outbox and no outcome is recorded for it (outcomes are kept ${durable.outcomeTtlMs} ms, and none is recorded for a call that may have been applied); it may or may not have been applied.`);
      } else {
        this.#byEntry.delete(id);
        const error = recordedError(t.call, s.record);
        if (error) this.#settle.reject(t, error);
        else this.#settle.confirm(t, s.record.by === 'receipt' ? 'receipt' : 'record');
      }
    }
  }

  /** Settle with {@link OutcomeUnknownError}: nobody knows whether the server applied it. */
  #unknown(t: Tracked, entryId: string, message: string): void {
    if (this.#byEntry.get(entryId) === t) this.#byEntry.delete(entryId);
    this.#settle.reject(t, new OutcomeUnknownError(message, { reducer: t.call.reducer, mutationId: entryId, outcomeTtlMs: this.#durable?.outcomeTtlMs }));
  }

  /** Resolves when every confirmation is written. */
  confirmed(): Promise<void> {
    return this.#confirmer.idle();
  }

  /** Stop listening to the durable queue and start nothing more. */
  close(): void {
    for (const s of this.#subs) s.unsubscribe();
    for (const s of [this.#starter, this.#feeder, this.#changed, this.#confirmer]) void s.close();
  }
}
