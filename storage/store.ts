/**
 * The storage engine's internal seam: every atomic operation the outbox,
 * snapshot cache, token store, lease and migrations need, with two
 * implementations — {@link DexieStore} (durable, IndexedDB) and
 * {@link MemoryStore} (same behaviour, gone on reload) — and the
 * {@link FailoverStore} that switches from the first to the second when
 * IndexedDB fails. The public classes only ever talk to a `Store`, which is
 * why the memory fallback has exactly the same API.
 */
import { Observable, Subject } from 'rxjs';
import { DuplicateMutationIdError } from './errors.ts';
import type { LeaseRecord, OutboxRecord, OutboxStatus, OutcomeRecord, RowRecord, TableRecord } from './db.ts';

/** Which entries an outbox operation touches; all given fields must match. */
export interface OutboxQuery {
  ids?: readonly string[];
  identity?: string;
  status?: OutboxStatus;
}

/** Returns the new entry, `null` to delete it, or `undefined` to leave it. */
export type OutboxModify = (entry: OutboxRecord) => OutboxRecord | null | undefined;

/**
 * The outcome records an outbox write keeps for the entries it deletes:
 * `record` describes each deleted entry (written in the same transaction),
 * and records older than `pruneBefore` (epoch ms) are dropped meanwhile.
 */
export interface OutcomeWrite {
  /** `undefined`: no record (the outcome is not known, e.g. a discarded entry that was already sent). */
  record(entry: OutboxRecord): OutcomeRecord | undefined;
  pruneBefore?: number;
}

/** One table's coalesced changes, written in one transaction with the others of a flush. */
export interface TableWrite {
  table: string;
  /** Delete every stored row of the table first (a fresh initial subscription). */
  clear: boolean;
  put: RowRecord[];
  delete: string[];
  asOf: number;
  rowTypeHash: string;
}

export type StorageMode = 'durable' | 'memory';

export interface Store {
  readonly kind: StorageMode;
  /**
   * Store a new entry with the next seq; with a supersede key, delete the
   * queued entries it replaces, recording each as `superseded` (records
   * older than `pruneBefore` are dropped meanwhile).
   */
  outboxInsert(entry: Omit<OutboxRecord, 'seq'>, pruneBefore?: number): Promise<{ entry: OutboxRecord; superseded: OutboxRecord[] }>;
  /** Matching entries in seq order. */
  outboxList(query?: OutboxQuery): Promise<OutboxRecord[]>;
  /**
   * Read-modify-write of the matching entries, atomically; with `outcomes`,
   * an outcome record for every deleted entry in the same transaction.
   */
  outboxModify(query: OutboxQuery, fn: OutboxModify, outcomes?: OutcomeWrite): Promise<{ updated: OutboxRecord[]; deleted: OutboxRecord[] }>;
  /**
   * `queued → sent` (attempts + 1, `sentAt` and `updatedAt` = `now`) for the
   * listed entries that are queued, of `identity` and not quarantined;
   * returns them as updated, in seq order.
   */
  outboxMarkSent(ids: readonly string[], identity: string, now: number): Promise<OutboxRecord[]>;
  /** The outcome records kept for these entry ids (missing ones left out). */
  outcomesGet(ids: readonly string[]): Promise<OutcomeRecord[]>;
  /** Every outcome record kept (copied to memory on a failover). */
  outcomesList(): Promise<OutcomeRecord[]>;
  /** Every entry in seq order, re-emitted on every change (from any tab, for the durable store). */
  outbox$(): Observable<OutboxRecord[]>;
  /**
   * A signal after every committed outbox change (from any tab, for the
   * durable store), without reading anything: for callers that then read
   * only what they need (a few ids, one index range) instead of the whole
   * outbox. Nothing is emitted on subscription.
   */
  outboxChanges$(): Observable<void>;

  rowsApply(writes: readonly TableWrite[]): Promise<void>;
  rowsLoad(table: string): Promise<{ rows: RowRecord[]; meta: TableRecord | undefined }>;
  /** Drop the cached rows of these tables (or all); returns the tables that had any. */
  rowsDrop(tables: readonly string[] | 'all'): Promise<string[]>;
  tablesList(): Promise<TableRecord[]>;

  metaGet(key: string): Promise<unknown>;
  metaSet(key: string, value: unknown): Promise<void>;
  metaDelete(key: string): Promise<void>;

  /** Take or renew the lease if it is free, expired or already ours; returns the holder afterwards. */
  leaseTake(name: string, owner: string, now: number, ttlMs: number): Promise<LeaseRecord>;
  leaseRelease(name: string, owner: string): Promise<void>;

  close(): void;
}

/** Whether an entry matches a query; the id list becomes a set once (not one linear scan per entry). */
export function matcher(q: OutboxQuery): (entry: OutboxRecord) => boolean {
  const ids = q.ids === undefined ? undefined : new Set(q.ids);
  return entry =>
    (ids === undefined || ids.has(entry.id)) &&
    (q.identity === undefined || entry.identity === q.identity) &&
    (q.status === undefined || entry.status === q.status);
}

/** Queued entries that a new entry with a supersede key replaces. */
export function supersededBy(candidate: OutboxRecord, entry: Omit<OutboxRecord, 'seq'>): boolean {
  return (
    entry.supersedeKey !== '' &&
    candidate.supersedeKey === entry.supersedeKey &&
    candidate.identity === entry.identity &&
    candidate.status === 'queued' &&
    candidate.quarantine === null
  );
}

/**
 * Whether an entry leaving the outbox unsent may still have been applied:
 * it was handed to the network before (then put back after a lost
 * connection). Its expiry or supersede then records no outcome — the handle
 * gets an `OutcomeUnknownError`, not a claim that it never applied.
 */
export function maybeApplied(entry: Pick<OutboxRecord, 'attempts'>): boolean {
  return entry.attempts > 0;
}

/** The record of an entry replaced by a newer one with the same supersede key (none when it may have been applied). */
export function supersededOutcome(old: OutboxRecord, by: Omit<OutboxRecord, 'seq'>): OutcomeRecord | undefined {
  if (maybeApplied(old)) return undefined;
  return { id: old.id, outcome: 'superseded', reducer: old.reducer, at: by.createdAt, by: 'supersede', error: null, supersededBy: by.id };
}

/** What a {@link MemoryStore} starts from (a failover copies what the durable store still holds). */
export interface MemorySeed {
  outbox?: OutboxRecord[];
  outcomes?: OutcomeRecord[];
  meta?: Record<string, unknown>;
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let ids = index.get(key);
  if (!ids) index.set(key, (ids = new Set()));
  ids.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) index.delete(key);
}

/**
 * The in-memory store: same semantics as the durable one, lost on reload.
 *
 * Entries are kept in a `Map` in seq order (a new entry gets the highest seq
 * and goes last; an update keeps its place), with indexes by supersede key,
 * status and identity + status (like the durable store's), so an insert
 * costs O(1) and never copies the queue, and a query by status reads only
 * its own entries. Entries are copied
 * once on the way in and once on the way out (callers may mutate what they
 * get); `outbox$` builds the whole list only for its subscribers.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  /** In seq order. */
  private readonly entries = new Map<string, OutboxRecord>();
  /** Supersede key → ids of the entries with that key. */
  private readonly bySupersedeKey = new Map<string, Set<string>>();
  /** Status, and identity + status → ids (what the durable store's indexes answer). */
  private readonly byStatus = new Map<string, Set<string>>();
  private readonly byIdentityStatus = new Map<string, Set<string>>();
  private readonly rowsByTable = new Map<string, Map<string, RowRecord>>();
  private readonly tableMeta = new Map<string, TableRecord>();
  private readonly meta = new Map<string, unknown>();
  private readonly leases = new Map<string, LeaseRecord>();
  /** Outcome records by entry id, in insertion (≈ time) order. */
  private readonly outcomes = new Map<string, OutcomeRecord>();
  private readonly changes = new Subject<void>();
  private closed = false;
  private seq = 0;

  constructor(seed: MemorySeed = {}) {
    for (const e of [...(seed.outbox ?? [])].sort((a, b) => a.seq - b.seq)) {
      this.put(structuredClone(e));
      this.seq = Math.max(this.seq, e.seq);
    }
    for (const o of [...(seed.outcomes ?? [])].sort((a, b) => a.at - b.at)) this.outcomes.set(o.id, structuredClone(o));
    for (const [k, v] of Object.entries(seed.meta ?? {})) this.meta.set(k, structuredClone(v));
    this.seq = Math.max(this.seq, Number(this.meta.get('seq') ?? 0));
  }

  private put(entry: OutboxRecord): void {
    const old = this.entries.get(entry.id);
    if (old) this.unindex(old);
    this.entries.set(entry.id, entry);
    if (entry.supersedeKey !== '') addTo(this.bySupersedeKey, entry.supersedeKey, entry.id);
    addTo(this.byStatus, entry.status, entry.id);
    addTo(this.byIdentityStatus, `${entry.identity}\u0000${entry.status}`, entry.id);
  }

  private remove(entry: OutboxRecord): void {
    this.entries.delete(entry.id);
    this.unindex(entry);
  }

  private unindex(entry: OutboxRecord): void {
    if (entry.supersedeKey !== '') removeFrom(this.bySupersedeKey, entry.supersedeKey, entry.id);
    removeFrom(this.byStatus, entry.status, entry.id);
    removeFrom(this.byIdentityStatus, `${entry.identity}\u0000${entry.status}`, entry.id);
  }

  /** The matching stored entries (not copies), in seq order. */
  private select(q: OutboxQuery): OutboxRecord[] {
    const test = matcher(q);
    if (q.ids !== undefined || q.status !== undefined) {
      const ids =
        q.ids !== undefined
          ? new Set(q.ids)
          : q.identity === undefined
            ? this.byStatus.get(q.status!)
            : this.byIdentityStatus.get(`${q.identity}\u0000${q.status}`);
      const found: OutboxRecord[] = [];
      for (const id of ids ?? []) {
        const e = this.entries.get(id);
        if (e && test(e)) found.push(e);
      }
      return found.sort((a, b) => a.seq - b.seq);
    }
    const found: OutboxRecord[] = [];
    for (const e of this.entries.values()) if (test(e)) found.push(e);
    return found;
  }

  private emit(): void {
    if (!this.closed) this.changes.next();
  }

  private recordOutcomes(deleted: readonly OutboxRecord[], record: (e: OutboxRecord) => OutcomeRecord | undefined, pruneBefore: number | undefined): void {
    if (pruneBefore !== undefined) {
      for (const [id, o] of this.outcomes) if (o.at < pruneBefore) this.outcomes.delete(id);
    }
    for (const e of deleted) {
      const o = record(e);
      if (!o) continue;
      this.outcomes.delete(o.id); // re-inserted last, keeping time order
      this.outcomes.set(o.id, o); // a fresh object made for this write: no copy needed
    }
  }

  async outcomesGet(ids: readonly string[]) {
    const found: OutcomeRecord[] = [];
    for (const id of ids) {
      const o = this.outcomes.get(id);
      if (o) found.push(structuredClone(o));
    }
    return found;
  }

  async outcomesList() {
    return [...this.outcomes.values()].map(o => structuredClone(o));
  }

  async outboxInsert(entry: Omit<OutboxRecord, 'seq'>, pruneBefore?: number) {
    if (this.entries.has(entry.id)) throw new DuplicateMutationIdError(entry.reducer, entry.id);
    const superseded: OutboxRecord[] = [];
    if (entry.supersedeKey !== '') {
      for (const id of this.bySupersedeKey.get(entry.supersedeKey) ?? []) {
        const e = this.entries.get(id)!;
        if (supersededBy(e, entry)) superseded.push(e);
      }
      superseded.sort((a, b) => a.seq - b.seq);
      for (const e of superseded) this.remove(e);
      if (superseded.length > 0) this.recordOutcomes(superseded, old => supersededOutcome(old, entry), pruneBefore);
    }
    this.seq += 1;
    this.meta.set('seq', this.seq);
    const stored = structuredClone(entry) as OutboxRecord;
    stored.seq = this.seq;
    this.put(stored);
    this.emit();
    return { entry: structuredClone(stored), superseded };
  }

  async outboxList(query: OutboxQuery = {}) {
    return this.select(query).map(e => structuredClone(e));
  }

  async outboxModify(query: OutboxQuery, fn: OutboxModify, outcomes?: OutcomeWrite) {
    const updated: OutboxRecord[] = [];
    const deleted: OutboxRecord[] = [];
    for (const stored of this.select(query)) {
      const entry = structuredClone(stored);
      const next = fn(entry);
      if (next === undefined) continue;
      if (next === null) {
        this.remove(stored);
        deleted.push(entry);
      } else {
        this.put(structuredClone(next));
        updated.push(next);
      }
    }
    if (outcomes && deleted.length > 0) this.recordOutcomes(deleted, outcomes.record, outcomes.pruneBefore);
    if (updated.length + deleted.length > 0) this.emit();
    return { updated, deleted };
  }

  async outboxMarkSent(ids: readonly string[], identity: string, now: number) {
    const { updated } = await this.outboxModify({ ids, status: 'queued', identity }, e =>
      e.quarantine === null ? { ...e, status: 'sent', attempts: e.attempts + 1, sentAt: now, updatedAt: now } : undefined,
    );
    return updated;
  }

  outbox$(): Observable<OutboxRecord[]> {
    return new Observable<OutboxRecord[]>(subscriber => {
      if (this.closed) return subscriber.complete();
      subscriber.next(this.select({}).map(e => structuredClone(e)));
      return this.changes.subscribe({
        next: () => subscriber.next(this.select({}).map(e => structuredClone(e))),
        complete: () => subscriber.complete(),
      });
    });
  }

  outboxChanges$(): Observable<void> {
    return this.changes.asObservable();
  }

  async rowsApply(writes: readonly TableWrite[]) {
    for (const w of writes) {
      let rows = this.rowsByTable.get(w.table);
      if (!rows || w.clear) this.rowsByTable.set(w.table, (rows = new Map()));
      for (const key of w.delete) rows.delete(key);
      for (const r of w.put) rows.set(r.key, r);
      this.tableMeta.set(w.table, { table: w.table, asOf: w.asOf, rowTypeHash: w.rowTypeHash, count: rows.size });
    }
  }

  async rowsLoad(table: string) {
    return { rows: [...(this.rowsByTable.get(table)?.values() ?? [])], meta: this.tableMeta.get(table) };
  }

  async rowsDrop(tables: readonly string[] | 'all') {
    const names = tables === 'all' ? [...this.tableMeta.keys()] : tables.filter(t => this.tableMeta.has(t));
    for (const t of names) {
      this.rowsByTable.delete(t);
      this.tableMeta.delete(t);
    }
    return names;
  }

  async tablesList() {
    return [...this.tableMeta.values()];
  }

  async metaGet(key: string) {
    return structuredClone(this.meta.get(key));
  }

  async metaSet(key: string, value: unknown) {
    this.meta.set(key, structuredClone(value));
  }

  async metaDelete(key: string) {
    this.meta.delete(key);
  }

  async leaseTake(name: string, owner: string, now: number, ttlMs: number) {
    const held = this.leases.get(name);
    if (!held || held.owner === owner || held.expiresAt <= now) {
      const lease = { name, owner, expiresAt: now + ttlMs };
      this.leases.set(name, lease);
      return { ...lease };
    }
    return { ...held };
  }

  async leaseRelease(name: string, owner: string) {
    if (this.leases.get(name)?.owner === owner) this.leases.delete(name);
  }

  close() {
    this.closed = true;
    this.changes.complete();
  }
}
