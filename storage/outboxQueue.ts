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

/** The outbox as a {@link DurableQueue} for the call queue. @param names @default accessors are the module's names */
export function outboxQueue(outbox: Outbox, names: ReducerNames = sameNames): DurableQueue {
  // The entry's own fields, with the accessor's name, no empty key, and its arguments decoded on demand.
  const stored = (entry: OutboxEntry): StoredCall => ({
    ...entry,
    reducer: names.accessor(entry.reducer),
    supersedeKey: entry.supersedeKey || undefined,
    args: () => outbox.decodeArgs(entry),
  });
  const ids = (entries: readonly OutboxEntry[]) => entries.map((e) => e.id);
  return {
    changes$: outbox.changes$,
    events$: outbox.events$.pipe(map((e): DurableQueueEvent => ({ type: e.type, call: stored(e.entry) }))),
    outcomeTtlMs: outbox.outcomeTtlMs,
    async enqueue(request: DurableCallRequest): Promise<Enqueued> {
      const { entry, superseded } = await outbox.enqueue(names.canonical(request.reducer), request.args as Record<string, unknown>, {
        priority: request.priority,
        supersedeKey: request.supersedeKey,
        deadline: request.deadline ?? undefined,
        id: request.mutationId,
      });
      return {
        call: stored(entry),
        // The outbox filled in a mutation id the caller left out: send what it stored.
        args: request.mutationId === undefined && outbox.takesMutationId(entry.reducer) ? outbox.decodeArgs(entry) : request.args,
        sendable: entry.status === 'queued' && entry.quarantine === null && entry.identity !== '' && entry.identity === outbox.identity,
        superseded: superseded.map(stored),
      };
    },
    async toSend(afterSeq?: number) {
      const entries = await outbox.nextBatch(Number.MAX_SAFE_INTEGER);
      return (afterSeq === undefined ? entries : entries.filter((e) => e.seq > afterSeq)).map(stored);
    },
    markSent: async (list) => ids(await outbox.markSent(list)),
    requeue: async (list) => void (await outbox.requeueSent(list)),
    confirm: async (list) => void (await outbox.markConfirmed(list)),
    reject: async (id, error) => void (await outbox.markRejected(id, error)),
    expire: async () => ids(await outbox.expire()),
    recover: async (receiptIds) => ids((await outbox.recoverAfterReconnect(receiptIds)).confirmed),
    async lookup(list) {
      const found = new Map((await outbox.get(list)).map((e) => [e.id, e]));
      // Written in the same transaction as the removal: a missing entry has its record, unless it aged out.
      const records = new Map((await outbox.outcomes(list.filter((id) => !found.has(id)))).map((o) => [o.id, o]));
      const states = new Map<string, StoredCallState>();
      for (const id of list) {
        const e = found.get(id);
        const o = records.get(id);
        states.set(
          id,
          e ? (e.status === 'rejected' ? { state: 'rejected', message: e.error?.message } : { state: 'waiting' }) : { state: 'removed', record: o && { ...o, message: o.error?.message } },
        );
      }
      return states;
    },
  };
}
