/**
 * The outbox as the call queue's {@link DurableQueue}: what
 * `Storage.callQueue` hands to the client. It translates names (the
 * bindings' accessors ↔ the module's reducer names), decodes arguments
 * lazily, applies the mutation-id rule to what is sent, and reads outcome
 * records; the bookkeeping itself stays in {@link Outbox}.
 *
 * @module
 */
import { map, type Observable } from 'rxjs';
import type { DurableCallRequest, DurableQueue, DurableQueueEvent, Enqueued, StoredCall, StoredCallState } from '../streams/durableQueue.ts';
import type { Outbox, OutboxEntry } from './outbox.ts';

/** The bindings' reducer names, both ways. */
export interface ReducerNames {
  /** Accessor (`sendChat`) → the module's reducer name (`send_chat`). */
  canonical(accessor: string): string;
  /** The module's reducer name → accessor. */
  accessor(canonical: string): string;
}

/** Names as given: for bindings whose accessors are the module's names. */
const sameNames: ReducerNames = { canonical: (a) => a, accessor: (c) => c };

class OutboxQueue implements DurableQueue {
  readonly changes$: Observable<void>;
  readonly events$: Observable<DurableQueueEvent>;

  constructor(
    private readonly outbox: Outbox,
    private readonly names: ReducerNames,
  ) {
    this.changes$ = outbox.changes$;
    this.events$ = outbox.events$.pipe(map((e) => ({ type: e.type, call: this.stored(e.entry) })));
  }

  get outcomeTtlMs(): number {
    return this.outbox.outcomeTtlMs;
  }

  private stored(entry: OutboxEntry): StoredCall {
    const outbox = this.outbox;
    return {
      id: entry.id,
      seq: entry.seq,
      reducer: this.names.accessor(entry.reducer),
      priority: entry.priority,
      supersedeKey: entry.supersedeKey || undefined,
      deadline: entry.deadline,
      createdAt: entry.createdAt,
      attempts: entry.attempts,
      args: () => outbox.decodeArgs(entry),
    };
  }

  async enqueue(request: DurableCallRequest): Promise<Enqueued> {
    const { entry, superseded } = await this.outbox.enqueue(this.names.canonical(request.reducer), request.args as Record<string, unknown>, {
      priority: request.priority,
      supersedeKey: request.supersedeKey,
      deadline: request.deadline ?? undefined,
      id: request.mutationId,
    });
    // The outbox filled in a mutation id the caller left out: send what it stored.
    const args = request.mutationId === undefined && this.outbox.takesMutationId(entry.reducer) ? this.outbox.decodeArgs(entry) : request.args;
    const sendable = entry.status === 'queued' && entry.quarantine === null && entry.identity !== '' && entry.identity === this.outbox.identity;
    return { call: this.stored(entry), args, sendable, superseded: superseded.map((e) => this.stored(e)) };
  }

  async toSend(afterSeq?: number): Promise<StoredCall[]> {
    const entries = await this.outbox.nextBatch(Number.MAX_SAFE_INTEGER);
    return (afterSeq === undefined ? entries : entries.filter((e) => e.seq > afterSeq)).map((e) => this.stored(e));
  }

  async markSent(ids: readonly string[]): Promise<string[]> {
    return (await this.outbox.markSent(ids)).map((e) => e.id);
  }

  async requeue(ids: readonly string[]): Promise<void> {
    await this.outbox.requeueSent(ids);
  }

  async confirm(ids: readonly string[]): Promise<void> {
    await this.outbox.markConfirmed(ids);
  }

  async reject(id: string, error: Error): Promise<void> {
    await this.outbox.markRejected(id, error);
  }

  async expire(): Promise<string[]> {
    return (await this.outbox.expire()).map((e) => e.id);
  }

  async recover(receiptIds: Iterable<string>): Promise<string[]> {
    const { confirmed } = await this.outbox.recoverAfterReconnect(receiptIds);
    return confirmed.map((e) => e.id);
  }

  async lookup(ids: readonly string[]): Promise<Map<string, StoredCallState>> {
    const found = new Map((await this.outbox.get(ids)).map((e) => [e.id, e]));
    const gone = ids.filter((id) => !found.has(id));
    // Written in the same transaction as the removal: a missing entry has its record, unless it aged out.
    const records = new Map((await this.outbox.outcomes(gone)).map((o) => [o.id, o]));
    const states = new Map<string, StoredCallState>();
    for (const id of ids) {
      const e = found.get(id);
      if (e) {
        states.set(id, e.status === 'rejected' ? { state: 'rejected', message: e.error?.message } : { state: 'waiting' });
        continue;
      }
      const o = records.get(id);
      states.set(id, { state: 'removed', record: o && { outcome: o.outcome, by: o.by, message: o.error?.message, supersededBy: o.supersededBy } });
    }
    return states;
  }
}

/** The outbox as a {@link DurableQueue} for the call queue. @param names @default accessors are the module's names */
export function outboxQueue(outbox: Outbox, names: ReducerNames = sameNames): DurableQueue {
  return new OutboxQueue(outbox, names);
}
