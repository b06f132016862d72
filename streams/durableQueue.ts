/**
 * What the call queue needs from durable storage, in the call queue's own
 * terms: {@link DurableQueue}.
 *
 * Streams never import storage. `stdb-rx/storage` implements this interface
 * over its outbox (`storage/outboxQueue.ts`) and the client hands that to
 * the call queue; tests hand it an in-memory one. Calls are named as the
 * bindings' accessors (`sendChat`), arguments are decoded values, and every
 * write takes a list of ids so a burst of answers costs one write.
 *
 * @module
 */
import type { Observable } from 'rxjs';

/** A call stored in the durable queue. */
export interface StoredCall {
  /** The entry's id: the call's mutation id. */
  readonly id: string;
  /** Storage order: a later call has a higher seq. */
  readonly seq: number;
  /** Reducer accessor name (`sendChat`). */
  readonly reducer: string;
  /** Higher is sent first. */
  readonly priority: number;
  readonly supersedeKey: string | undefined;
  /** Epoch ms after which it is expired instead of sent, or null. */
  readonly deadline: number | null;
  /** Epoch ms. */
  readonly createdAt: number;
  /** How many times it was handed to the network before (answers lost). */
  readonly attempts: number;
  /** The arguments, decoded with the current bindings; throws when they no longer fit them. */
  args(): unknown;
}

/** A call to store, as the call queue prepared it. */
export interface DurableCallRequest {
  /** Reducer accessor name. */
  readonly reducer: string;
  readonly args: unknown;
  readonly priority: number;
  readonly supersedeKey?: string;
  /** Epoch ms, or null. */
  readonly deadline: number | null;
  /** The mutation id to use; the queue chooses one when undefined. */
  readonly mutationId: string | undefined;
}

export interface Enqueued {
  readonly call: StoredCall;
  /** What to send: the request's arguments, with the mutation id the queue chose filled in. */
  readonly args: unknown;
  /** Whether this tab may send it now (queued under the current identity, not quarantined). */
  readonly sendable: boolean;
  /** Queued calls it replaced (same supersede key). */
  readonly superseded: readonly StoredCall[];
}

/** Something the queue decided on its own. */
export interface DurableQueueEvent {
  readonly type: 'expired' | 'superseded';
  readonly call: StoredCall;
}

/** What became of a call that left the queue, as recorded by whoever removed it. */
export interface RecordedOutcome {
  readonly outcome: 'confirmed' | 'rejected' | 'expired' | 'superseded' | 'discarded';
  /** What removed it. */
  readonly by: 'answer' | 'receipt' | 'dismiss' | 'discard' | 'migration' | 'deadline' | 'supersede';
  /** The server's reason, or the app's / migrator's note. */
  readonly message: string | undefined;
  /** `superseded`: the id of the call that replaced it. */
  readonly supersededBy?: string;
}

/**
 * Where a call is now: still waiting (queued or sent), rejected by the
 * server and kept until dismissed, or removed — with the outcome its
 * remover recorded, or none (it aged out, or nobody can know).
 */
export type StoredCallState =
  | { readonly state: 'waiting' }
  | { readonly state: 'rejected'; readonly message: string | undefined }
  | { readonly state: 'removed'; readonly record: RecordedOutcome | undefined };

/** Durable storage for calls, shared by every tab of one database. */
export interface DurableQueue {
  /** A signal after every committed change (this tab's or another's); carries nothing. */
  readonly changes$: Observable<void>;
  /** Calls the queue expired or superseded on its own. */
  readonly events$: Observable<DurableQueueEvent>;
  /** How long outcome records are kept (ms). */
  readonly outcomeTtlMs: number;
  /** Store a call before it is sent. */
  enqueue(request: DurableCallRequest): Promise<Enqueued>;
  /**
   * The queued calls this tab may send, in drain order (priority, then
   * first in, first out); stale ones are expired first. With `afterSeq`,
   * only calls stored after that seq.
   */
  toSend(afterSeq?: number): Promise<StoredCall[]>;
  /** `queued → sent` for these ids; returns the ids that were still queued (the others were taken, removed or changed meanwhile). */
  markSent(ids: readonly string[]): Promise<string[]>;
  /** `sent → queued` for these ids: handed to a connection that died before sending them. */
  requeue(ids: readonly string[]): Promise<void>;
  /** The server applied them: they leave the queue (outcome `confirmed`, by `answer`). */
  confirm(ids: readonly string[]): Promise<void>;
  /** The server refused it: it stays, rejected, until dismissed or retried. */
  reject(id: string, error: Error): Promise<void>;
  /** Expire the queued calls whose deadline passed; returns their ids. */
  expire(): Promise<string[]>;
  /**
   * After a reconnect: confirm the calls found among this identity's
   * receipts (`receiptIds`: their mutation ids), put the other sent ones
   * back in the queue. Returns the confirmed ids.
   */
  recover(receiptIds: Iterable<string>): Promise<string[]>;
  /** Where these calls are now (one read of the calls, one of the records). */
  lookup(ids: readonly string[]): Promise<Map<string, StoredCallState>>;
}
