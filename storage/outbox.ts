/**
 * The durable outbox: every reducer call is stored before it is sent, and
 * drained after (re)connect in priority-then-FIFO order.
 *
 * The client owns the network; the outbox owns the bookkeeping. The sync
 * client's call queue reaches it through `storage/outboxQueue.ts` (the
 * outbox as the `DurableQueue` that `streams/calls/drain.ts` drains): store a
 * call, list what to send, mark a batch sent, confirm or reject it, resolve
 * calls lost in flight from the module's receipts after a reconnect. An app
 * that sends reducer calls itself can use the same steps directly
 * ({@link Outbox.enqueue}, {@link Outbox.claim}, {@link Outbox.markConfirmed},
 * {@link Outbox.markRejected}, {@link Outbox.recoverAfterReconnect}).
 *
 * Delivery is at-least-once. For reducers that record receipts (see
 * docs/storage.md) the effect is exactly-once: an entry whose outcome was
 * lost in flight is either found among the receipts (confirmed) or sent
 * again (a duplicate is skipped by the module). Reducers without receipts
 * (`receipts: false`) may run twice.
 *
 * Entries belong to the identity that created them. Entries of another
 * identity are never returned for sending; they wait in `quarantined` until
 * the app calls {@link Outbox.discard} or {@link Outbox.rehome}.
 */
import { Subject, combineLatest, map, shareReplay, startWith, type Observable } from 'rxjs';
import { systemClock, type Clock } from './clock.ts';
import type { OutboxRecord, OutboxStatus, OutcomeRecord } from './db.ts';
import { UnknownReducerError } from './errors.ts';
import type { DrainLease } from './lease.ts';
import type { ModuleCodecs } from './schema.ts';
import { maybeApplied, type OutcomeWrite, type Store } from './store.ts';
import { priorityOf, ReducerCatalogue, type Priority, type ReducerPolicy } from '../streams/reducers.ts';

/** A stored outbox entry (see {@link OutboxRecord} for every field). */
export type OutboxEntry = OutboxRecord;

export { PRIORITY, type OfflinePolicy, type Priority, type ReducerPolicy } from '../streams/reducers.ts';

/** Per-call options. */
export interface EnqueueOptions {
  /** @default the reducer's policy priority */
  priority?: Priority;
  /** A newer queued call with the same key replaces the older one (latest wins, e.g. "move to"). */
  supersedeKey?: string;
  /** Epoch ms after which the call is expired instead of sent. */
  deadline?: number;
  /** `false` for per-frame input: checked and encoded, but not stored (and never drained). @default true */
  durable?: boolean;
  /** Use this mutation id instead of a generated one. */
  id?: string;
}

export interface EnqueueResult {
  entry: OutboxEntry;
  /** Whether it was stored (false with `durable: false`). */
  stored: boolean;
  /** Queued entries this one replaced (by supersede key): settle their promises as superseded. */
  superseded: OutboxEntry[];
}

/** The outbox as the UI sees it. */
export interface OutboxState {
  /** The current identity's entries waiting to be sent or confirmed, in drain order. */
  pending: OutboxEntry[];
  queued: number;
  sent: number;
  /** Rejected by the server; stay until dismissed. */
  rejected: OutboxEntry[];
  /** Of another identity, or not carried by a migration: never sent until rehomed, fixed or discarded. */
  quarantined: OutboxEntry[];
}

/** Something the outbox decided on its own; the client settles the matching call promises. */
export type OutboxEvent =
  | { type: 'expired'; entry: OutboxEntry }
  | { type: 'superseded'; entry: OutboxEntry; by: OutboxEntry };

export interface OutboxOptions {
  store: Store;
  codecs: ModuleCodecs;
  clock?: Clock;
  /** Per-reducer policies, by the module's reducer name (`send_chat`) or the bindings' accessor (`sendChat`). */
  reducers?: Record<string, ReducerPolicy>;
  /** Name of the parameter that carries the mutation id. @default 'mutationId' */
  mutationIdParam?: string;
  /** Mutation id generator. @default crypto.randomUUID */
  newId?: () => string;
  /** Drain lease; without one, `claim` never holds back. */
  lease?: DrainLease;
  /**
   * Whether entries created before any identity was known (first start,
   * offline, no token) are adopted by the first identity set.
   * @default true
   */
  adoptUnowned?: boolean;
  /**
   * How long the outcome of an entry that left the outbox (confirmed,
   * rejected, expired, superseded, discarded) is kept for the tabs whose
   * call handles wait for it. A handle that looks later gets an
   * `OutcomeUnknownError`. @default 86_400_000 (one day)
   */
  outcomeTtlMs?: number;
}

type IdentityLike = string | { toHexString(): string };

function hexOf(identity: IdentityLike): string {
  return (typeof identity === 'string' ? identity : identity.toHexString()).toLowerCase().replace(/^0x/, '');
}

/** A rejected entry keeps its outcome (and the server's reason) when it is removed; others get `other`. */
function rejectedOr(other: OutcomeRecord['outcome']): (e: OutboxEntry) => Pick<OutcomeRecord, 'outcome' | 'error'> {
  return e => (e.status === 'rejected' ? { outcome: 'rejected', error: e.error } : { outcome: other, error: null });
}

/** Priority (higher first), then FIFO. */
export function drainOrder(a: OutboxEntry, b: OutboxEntry): number {
  return b.priority - a.priority || a.seq - b.seq;
}

export class Outbox {
  private readonly store: Store;
  private readonly codecs: ModuleCodecs;
  private readonly clock: Clock;
  /** Reducer names, policies, argument checks and the mutation-id rule. */
  /** The reducer catalogue this outbox checks calls with (its policies and mutation-id parameter). */
  readonly catalogue: ReducerCatalogue;
  private readonly newId: () => string;
  private readonly lease: DrainLease | undefined;
  private readonly adoptUnowned: boolean;
  /** How long outcome records are kept (ms). */
  readonly outcomeTtlMs: number;
  /** When aged outcome records were last pruned (epoch ms). */
  private lastPrune = -Infinity;
  private identityHex: string | null = null;
  private online = false;
  private readonly identitySubject = new Subject<void>();
  private readonly eventSubject = new Subject<OutboxEvent>();

  /** Expired and superseded entries, as they happen. */
  readonly events$: Observable<OutboxEvent> = this.eventSubject.asObservable();

  constructor(options: OutboxOptions) {
    this.store = options.store;
    this.codecs = options.codecs;
    this.clock = options.clock ?? systemClock;
    this.catalogue = new ReducerCatalogue(
      options.codecs.module.reducers.map(r => ({ ...r, paramsType: options.codecs.schema.reducers[r.name].paramsType })),
      { policies: options.reducers, mutationIdParam: options.mutationIdParam },
    );
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.lease = options.lease;
    this.adoptUnowned = options.adoptUnowned ?? true;
    this.outcomeTtlMs = options.outcomeTtlMs ?? 86_400_000;
    if (!(this.outcomeTtlMs >= 0)) throw new TypeError(`outcomeTtlMs must be a number ≥ 0, got ${options.outcomeTtlMs}`);
    this.outbox$ = combineLatest([this.store.outbox$(), this.identitySubject.pipe(startWith(undefined))]).pipe(
      map(([all]) => this.summarize(all)),
      shareReplay({ bufferSize: 1, refCount: true }),
    );
  }

  /**
   * The module's reducer name for a name as the bindings' accessor
   * (`sendChat` → `send_chat`); a module name (or an unknown one) as is.
   * Entries, their errors and the outbox state show the module's names.
   */
  canonical(reducer: string): string {
    return this.catalogue.canonical(reducer);
  }

  /** The identity whose entries are drained (hex), or null when signed out / not yet known. */
  get identity(): string | null {
    return this.identityHex;
  }

  /**
   * Set the current identity (after connect, sign-in, sign-out). With
   * `adoptUnowned`, entries created before any identity was known become
   * this identity's. Returns the adopted entries.
   */
  async setIdentity(identity: IdentityLike | null): Promise<OutboxEntry[]> {
    this.identityHex = identity === null ? null : hexOf(identity);
    let adopted: OutboxEntry[] = [];
    if (this.identityHex !== null && this.adoptUnowned) {
      const owner = this.identityHex;
      const now = this.clock.now();
      ({ updated: adopted } = await this.store.outboxModify({ identity: '' }, e => ({ ...e, identity: owner, updatedAt: now })));
    }
    this.identitySubject.next();
    return adopted;
  }

  /** Tell the outbox whether the client is connected (for `online-only` reducers). */
  setOnline(online: boolean): void {
    this.online = online;
  }

  /** The policy in force for a reducer, with defaults filled in. */
  policy(reducer: string): Required<ReducerPolicy> {
    return this.catalogue.policy(reducer);
  }

  /**
   * Check, encode and describe a call without storing it. Throws at once
   * ({@link UnknownReducerError}, {@link InvalidArgsError},
   * {@link OfflineRefusedError}) — nothing is stored for a refused call.
   * When the reducer takes a mutation id parameter and `args` leaves it out,
   * the generated id is filled in.
   */
  prepare(reducer: string, args: Record<string, unknown>, options: EnqueueOptions = {}): Omit<OutboxEntry, 'seq'> {
    const { reducer: name, id, bytes, policy } = this.catalogue.check(reducer, args, this.online, this.newId, options.id);
    reducer = name;
    const now = this.clock.now();
    const deadline =
      options.deadline ?? (policy.offline === 'drop-if-stale' ? now + policy.staleAfterMs : null);
    return {
      id,
      reducer,
      args: bytes,
      priority: priorityOf(options.priority ?? policy.priority),
      supersedeKey: options.supersedeKey ?? '',
      deadline,
      identity: this.identityHex ?? '',
      createdAt: now,
      updatedAt: now,
      sentAt: null,
      attempts: 0,
      status: 'queued',
      receipts: policy.receipts,
      schema: this.codecs.schema.fingerprint,
      error: null,
      quarantine: null,
    };
  }

  /**
   * Store a call before it is sent. Rejects at once, storing nothing, when
   * {@link prepare} refuses it. Storage failures never reject: the storage
   * falls back to memory and reports them on `errors$`.
   */
  async enqueue(reducer: string, args: Record<string, unknown>, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    const prepared = this.prepare(reducer, args, options);
    if (options.durable === false) return { entry: { ...prepared, seq: 0 }, stored: false, superseded: [] };
    const { entry, superseded } = await this.store.outboxInsert(prepared, prepared.supersedeKey === '' ? undefined : this.pruneBefore(prepared.createdAt));
    for (const old of superseded) this.eventSubject.next({ type: 'superseded', entry: old, by: entry });
    return { entry, stored: true, superseded };
  }

  /** Decode an entry's arguments with the current bindings. */
  decodeArgs(entry: Pick<OutboxEntry, 'reducer' | 'args'>): Record<string, unknown> {
    const codec = this.codecs.reducer(entry.reducer);
    if (!codec) throw new UnknownReducerError(entry.reducer);
    return codec.decode(entry.args);
  }

  /**
   * When aged outcome records should be dropped by this write: at most once
   * a minute (or once per lifetime, when that is shorter).
   */
  private pruneBefore(now: number): number | undefined {
    if (now - this.lastPrune < Math.min(60_000, this.outcomeTtlMs)) return undefined;
    this.lastPrune = now;
    return now - this.outcomeTtlMs;
  }

  /** The outcome records of the entries a write deletes. */
  private recording(
    outcome: OutcomeRecord['outcome'] | ((e: OutboxEntry) => Pick<OutcomeRecord, 'outcome' | 'error'> | undefined),
    by: OutcomeRecord['by'],
    now: number,
  ): OutcomeWrite {
    return {
      record: e => {
        const o = typeof outcome === 'function' ? outcome(e) : { outcome, error: null };
        return o && { id: e.id, reducer: e.reducer, at: now, by, outcome: o.outcome, error: o.error };
      },
      pruneBefore: this.pruneBefore(now),
    };
  }

  /**
   * What became of entries that left the outbox (confirmed, rejected,
   * expired, superseded or discarded), as recorded by whichever tab removed
   * them; kept for `outcomeTtlMs`. Entries still in the outbox, and ones
   * whose record aged out, are left out. One bulk read.
   */
  outcomes(ids: readonly string[]): Promise<OutcomeRecord[]> {
    return ids.length === 0 ? Promise.resolve([]) : this.store.outcomesGet(ids);
  }

  private sendable(e: OutboxEntry): boolean {
    return this.identityHex !== null && e.identity === this.identityHex && e.quarantine === null;
  }

  /** Expire the current identity's queued entries whose deadline has passed; returns them. */
  async expire(): Promise<OutboxEntry[]> {
    if (this.identityHex === null) return [];
    const now = this.clock.now();
    const { deleted } = await this.store.outboxModify(
      { identity: this.identityHex, status: 'queued' },
      e => (e.deadline !== null && e.deadline <= now ? null : undefined),
      this.recording(e => (maybeApplied(e) ? undefined : { outcome: 'expired', error: null }), 'deadline', now),
    );
    const expired = deleted.map(e => ({ ...e, status: 'expired' as OutboxStatus, updatedAt: now }));
    for (const entry of expired) this.eventSubject.next({ type: 'expired', entry });
    return expired;
  }

  /**
   * The next `n` entries to send, in priority-then-FIFO order, without
   * claiming them. Expires stale entries first. Empty while signed out.
   */
  async nextBatch(n: number): Promise<OutboxEntry[]> {
    if (this.identityHex === null || n <= 0) return [];
    // One read of this identity's queued entries; the stale ones among them
    // are expired by id (an expire() first would read the same range twice).
    const now = this.clock.now();
    const queued = await this.store.outboxList({ identity: this.identityHex, status: 'queued' });
    const stale = queued.filter(e => e.deadline !== null && e.deadline <= now);
    if (stale.length > 0) {
      const { deleted } = await this.store.outboxModify(
        { ids: stale.map(e => e.id), status: 'queued' },
        e => (e.deadline !== null && e.deadline <= now ? null : undefined),
        this.recording(e => (maybeApplied(e) ? undefined : { outcome: 'expired', error: null }), 'deadline', now),
      );
      for (const e of deleted) this.eventSubject.next({ type: 'expired', entry: { ...e, status: 'expired', updatedAt: now } });
    }
    return queued.filter(e => this.sendable(e) && !(e.deadline !== null && e.deadline <= now)).sort(drainOrder).slice(0, n);
  }

  /** The stored entries with these ids (missing ones left out), in seq order: one bulk read. */
  get(ids: readonly string[]): Promise<OutboxEntry[]> {
    return ids.length === 0 ? Promise.resolve([]) : this.store.outboxList({ ids });
  }

  /**
   * {@link nextBatch} and {@link markSent} together: the entries returned are
   * this tab's to send. Returns nothing while another tab holds the drain
   * lease, and never an entry another tab claimed in between.
   */
  async claim(n: number): Promise<OutboxEntry[]> {
    if (this.lease && !this.lease.held) return [];
    const next = await this.nextBatch(n);
    if (next.length === 0) return [];
    const sent = await this.markSent(next.map(e => e.id));
    return sent.sort(drainOrder);
  }

  /** `queued → sent` (attempts + 1); returns the entries that were still queued. */
  async markSent(ids: readonly string[]): Promise<OutboxEntry[]> {
    if (this.identityHex === null || ids.length === 0) return []; // nothing is sendable while signed out
    // Sendable: this identity's, queued, not quarantined. In IndexedDB, one mark for the batch (no rewrite per entry).
    return this.store.outboxMarkSent(ids, this.identityHex, this.clock.now());
  }

  /** The server applied them: they leave the outbox. Returns them with status `confirmed`. */
  async markConfirmed(ids: readonly string[]): Promise<OutboxEntry[]> {
    const now = this.clock.now();
    const { deleted } = await this.store.outboxModify({ ids }, () => null, this.recording('confirmed', 'answer', now));
    return deleted.map(e => ({ ...e, status: 'confirmed' as OutboxStatus, updatedAt: now }));
  }

  /** The server refused it: it stays, `rejected`, until dismissed or retried. */
  async markRejected(id: string, reason: unknown): Promise<OutboxEntry | undefined> {
    const now = this.clock.now();
    const error = {
      code: typeof reason === 'object' && reason !== null && 'name' in reason ? String((reason as Error).name) : 'rejected',
      message: reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : String(reason),
    };
    const { updated } = await this.store.outboxModify({ ids: [id] }, e =>
      e.status === 'queued' || e.status === 'sent' ? { ...e, status: 'rejected', error, updatedAt: now } : undefined,
    );
    return updated[0];
  }

  /**
   * After a reconnect: entries sent but never answered go back to `queued`
   * (of every identity — an entry sent under a previous identity then waits
   * in quarantine). Call it after {@link resolveByReceipts}. With `ids`,
   * only those.
   */
  async requeueSent(ids?: readonly string[]): Promise<OutboxEntry[]> {
    const now = this.clock.now();
    const { updated } = await this.store.outboxModify({ ids, status: 'sent' }, e => ({ ...e, status: 'queued', updatedAt: now }));
    return updated;
  }

  /** Whether the reducer takes the mutation-id parameter (and so can record receipts). */
  takesMutationId(reducer: string): boolean {
    return this.catalogue.takesMutationId(reducer);
  }

  /**
   * Confirm the current identity's unresolved entries whose mutation id is
   * among the receipts the client sees for itself (`mutation_receipt WHERE
   * sender = :sender`): their effect already happened. Returns them.
   */
  async resolveByReceipts(receiptMutationIds: Iterable<string>): Promise<OutboxEntry[]> {
    if (this.identityHex === null) return [];
    const ids = [...new Set(receiptMutationIds)];
    if (ids.length === 0) return [];
    const owner = this.identityHex;
    const now = this.clock.now();
    const { deleted } = await this.store.outboxModify(
      { ids },
      e => (e.identity === owner && e.receipts && (e.status === 'sent' || e.status === 'queued') ? null : undefined),
      this.recording('confirmed', 'receipt', now),
    );
    return deleted.map(e => ({ ...e, status: 'confirmed' as OutboxStatus, updatedAt: now }));
  }

  /** {@link resolveByReceipts} then {@link requeueSent}: the whole reconnect step. */
  async recoverAfterReconnect(receiptMutationIds: Iterable<string>): Promise<{ confirmed: OutboxEntry[]; requeued: OutboxEntry[] }> {
    const confirmed = await this.resolveByReceipts(receiptMutationIds);
    const requeued = await this.requeueSent();
    return { confirmed, requeued };
  }

  /** Put rejected entries back in the queue (e.g. after the user fixed the cause). */
  async retry(ids: readonly string[]): Promise<OutboxEntry[]> {
    const now = this.clock.now();
    const { updated } = await this.store.outboxModify({ ids, status: 'rejected' }, e => ({ ...e, status: 'queued', error: null, updatedAt: now }));
    return updated;
  }

  /** Forget rejected entries the user has seen (their outcome stays `rejected`, with the server's reason). */
  async dismiss(ids: readonly string[]): Promise<OutboxEntry[]> {
    const { deleted } = await this.store.outboxModify({ ids, status: 'rejected' }, () => null, this.recording(rejectedOr('rejected'), 'dismiss', this.clock.now()));
    return deleted;
  }

  /**
   * Delete entries for good, whatever their state (quarantined ones
   * included). A queued entry was never applied: its call's handle, in
   * every tab, is rejected as `discarded`; a rejected entry keeps its
   * `rejected` outcome. An entry already handed to the network (`sent`) may
   * still be applied by the server, so no outcome is recorded for it: its
   * handle gets an `OutcomeUnknownError`. Discard queued or quarantined
   * entries.
   */
  async discard(ids: readonly string[]): Promise<OutboxEntry[]> {
    const outcome = (e: OutboxEntry) => (e.status === 'sent' ? undefined : rejectedOr('discarded')(e));
    const { deleted } = await this.store.outboxModify({ ids }, () => null, this.recording(outcome, 'discard', this.clock.now()));
    return deleted;
  }

  /**
   * Give entries of another identity to `identity` (default: the current
   * one), so they drain under it. Migration quarantine is not lifted: such an
   * entry's arguments do not fit the bindings.
   */
  async rehome(ids: readonly string[], identity: IdentityLike | null = this.identityHex): Promise<OutboxEntry[]> {
    if (identity === null) throw new TypeError('rehome needs an identity (none is current)');
    const owner = hexOf(identity);
    const now = this.clock.now();
    const { updated } = await this.store.outboxModify({ ids }, e => (e.identity === owner ? undefined : { ...e, identity: owner, updatedAt: now }));
    return updated;
  }

  /** Every entry, in seq order. */
  entries(): Promise<OutboxEntry[]> {
    return this.store.outboxList();
  }

  /** Entries that will not be sent as things stand: another identity's, or migration-quarantined. */
  async quarantined(): Promise<OutboxEntry[]> {
    return (await this.store.outboxList()).filter(e => this.isQuarantined(e));
  }

  private isQuarantined(e: OutboxEntry): boolean {
    if (e.quarantine !== null) return true;
    if (e.identity === '') return !this.adoptUnowned && this.identityHex !== null;
    return e.identity !== this.identityHex;
  }

  /** Summarise entries for the UI. */
  summarize(all: readonly OutboxEntry[]): OutboxState {
    const mine = all.filter(e => !this.isQuarantined(e));
    const pending = mine.filter(e => e.status === 'queued' || e.status === 'sent').sort(drainOrder);
    return {
      pending,
      queued: pending.filter(e => e.status === 'queued').length,
      sent: pending.filter(e => e.status === 'sent').length,
      rejected: mine.filter(e => e.status === 'rejected'),
      quarantined: all.filter(e => this.isQuarantined(e)),
    };
  }

  /**
   * The outbox for the UI ("3 changes queued"), live from the database
   * (changes made by other tabs included), recomputed when the identity
   * changes.
   */
  readonly outbox$: Observable<OutboxState>;

  /**
   * A signal after every committed outbox change (this tab's or another's),
   * reading nothing: what the sync client listens to, then reading only the
   * entries it needs. {@link outbox$} reads and summarizes the whole outbox
   * on every change — for the UI, not for per-call bookkeeping.
   */
  get changes$(): Observable<void> {
    return this.store.outboxChanges$();
  }
}
