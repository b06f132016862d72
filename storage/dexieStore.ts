/**
 * The durable {@link Store}: Dexie over IndexedDB. Every operation is one
 * Dexie transaction with nothing but Dexie calls inside it.
 */
import { from, Observable } from 'rxjs';
import { Dexie, liveQuery, type Collection } from 'dexie';
import { outcomeOf, outcomeSets, type OutboxRecord, type OutboxStatus, type OutcomeRecord, type OutcomeSetRecord, type SendRecord, type StdbRxDB } from './db.ts';
import { DuplicateMutationIdError } from './errors.ts';
import { matcher, supersededBy, supersededOutcome, type OutboxModify, type OutboxQuery, type OutcomeWrite, type Store, type TableWrite } from './store.ts';

/** Every status an entry can be stored with (`confirmed` and `expired` entries leave the outbox, but the type allows them). */
const STATUSES: readonly OutboxStatus[] = ['queued', 'sent', 'rejected', 'confirmed', 'expired'];

/** The meta key of the sent marks' version. */
const MARKS_VERSION = 'sendsVersion';

/** Most ids in one sent mark. */
const MARK_SIZE = 32;

/** From this many ids on, a read by id considers one range read instead. */
const RANGE_READ_MIN = 16;
/** A range read is chosen when the range holds at most this many entries per listed id. */
const RANGE_READ_FACTOR = 3;

async function countAll(ranges: readonly Collection<OutboxRecord, string>[]): Promise<number> {
  let n = 0;
  for (const r of ranges) n += await r.count();
  return n;
}

async function readAll(ranges: readonly Collection<OutboxRecord, string>[]): Promise<OutboxRecord[]> {
  if (ranges.length === 1) return ranges[0].toArray();
  return (await Promise.all(ranges.map(r => r.toArray()))).flat();
}

/** An entry as marked sent at `at` (see {@link DexieStore.outboxMarkSent}). */
function sentAs(e: OutboxRecord, at: number): OutboxRecord {
  return { ...e, status: 'sent', attempts: e.attempts + 1, sentAt: at, updatedAt: at };
}

/** A stored entry as it stands: a queued entry with a sent mark is sent. */
function asMarked(e: OutboxRecord, marks: Map<string, SendRecord>): OutboxRecord {
  if (e.status !== 'queued') return e;
  const mark = marks.get(e.id);
  return mark ? sentAs(e, mark.at) : e;
}

type InsertResult = { value: { entry: OutboxRecord; superseded: OutboxRecord[] } } | { error: Error };

interface PendingInsert {
  entry: Omit<OutboxRecord, 'seq'>;
  pruneBefore?: number;
  resolve: (r: { entry: OutboxRecord; superseded: OutboxRecord[] }) => void;
  reject: (error: unknown) => void;
}

export class DexieStore implements Store {
  readonly kind = 'durable' as const;

  /** The sent marks as last read, and the version they were read at (see {@link marks}). */
  private marksCache: { version: unknown; byId: Map<string, SendRecord> } | undefined;
  /** Makes this store's mark versions unique among tabs. */
  private readonly token = typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  private markWrites = 0;

  constructor(readonly db: StdbRxDB) {}

  /**
   * The stored entries of some statuses and/or an identity, by the
   * `[status+identity]` index: one exact key per status (or a `[status]`
   * prefix) — one range read (`getAll`) each. An identity alone reads one
   * key per status (adopting the entries created before any identity was
   * known read the whole outbox to find them). `undefined`: no index fits.
   */
  private ranges(statuses: readonly OutboxStatus[] | undefined, identity: string | undefined): Collection<OutboxRecord, string>[] | undefined {
    const index = () => this.db.outbox.where('[status+identity]');
    if (statuses === undefined && identity === undefined) return undefined;
    // Not `anyOf`: that walks the index with a cursor, one step per entry.
    return (statuses ?? STATUSES).map(s =>
      identity !== undefined ? index().equals([s, identity]) : index().between([s, Dexie.minKey], [s, Dexie.maxKey], true, true),
    );
  }

  /**
   * The stored entries with these ids. A read by id is one IndexedDB
   * request per id; a range read is one request for the whole range. For a
   * large batch (marking a drained queue sent, confirming a burst of
   * answers) reading the range the entries live in and keeping the listed
   * ones costs far less, as long as the range is not much larger than the
   * batch (one count to know).
   */
  private async readIds(ids: readonly string[], ranges: Collection<OutboxRecord, string>[] | undefined): Promise<OutboxRecord[]> {
    if (ids.length >= RANGE_READ_MIN) {
      const candidates = ranges ?? [this.db.outbox.toCollection()];
      if (ids.length * RANGE_READ_FACTOR >= (await countAll(candidates))) return readAll(candidates);
    }
    return (await this.db.outbox.bulkGet([...ids])).filter((e): e is OutboxRecord => e !== undefined);
  }

  /**
   * The sent marks by entry id, inside a transaction over `sends` and
   * `meta`. Kept in memory between transactions and re-read only when the
   * marks' version (a meta record every mark write replaces with a token no
   * other write uses, in this tab or another) is not the one the copy was
   * read at: reading every mark per transaction made one-at-a-time
   * confirmations cost O(marked entries) each.
   */
  private async marks(): Promise<Map<string, SendRecord>> {
    const version = (await this.db.meta.get(MARKS_VERSION))?.value ?? null;
    if (this.marksCache !== undefined && this.marksCache.version === version) return this.marksCache.byId;
    const byId = new Map<string, SendRecord>();
    for (const mark of await this.db.sends.toArray()) for (const id of mark.ids) byId.set(id, mark);
    this.marksCache = { version, byId };
    return byId;
  }

  /**
   * Before a transaction changes the marks (and the map {@link marks}
   * returned for it): a fresh version, stored with the change. Should the
   * transaction fail, the stored version stays the old one, differs from
   * the copy's, and the next transaction reads the marks again.
   */
  private async marksChanging(marks: Map<string, SendRecord>): Promise<void> {
    const version = `${this.token}:${++this.markWrites}`;
    if (this.marksCache?.byId === marks) this.marksCache.version = version;
    else this.marksCache = undefined;
    await this.db.meta.put({ key: MARKS_VERSION, value: version });
  }

  /**
   * The matching entries as they stand (sent marks applied), in seq order,
   * using the narrowest index available. A marked entry is stored `queued`,
   * so a query for `sent` also reads the marked ones.
   */
  private async select(q: OutboxQuery, marks: Map<string, SendRecord>): Promise<OutboxRecord[]> {
    const stored = q.status === 'sent' ? (['sent', 'queued'] as const) : q.status === undefined ? undefined : [q.status];
    let found: OutboxRecord[];
    if (q.ids) found = await this.readIds([...new Set(q.ids)], this.ranges(stored, q.identity));
    else if (q.status === 'sent') {
      found = await readAll(this.ranges(['sent'], q.identity)!);
      if (marks.size > 0) found = found.concat(await this.readIds([...marks.keys()], this.ranges(['queued'], q.identity)));
    } else if (q.status === 'queued' && marks.size > 0) {
      // Marked entries are stored `queued` but are sent: the keys of the range
      // first (no values copied), then the values of the unmarked ones only.
      // The drain's refill reads this range after every outbox change.
      const ranges = this.ranges(stored, q.identity)!;
      const keys = (await Promise.all(ranges.map(r => r.primaryKeys()))).flat().filter(id => !marks.has(id));
      found = keys.length === 0 ? [] : await this.readIds(keys, ranges);
    } else found = await readAll(this.ranges(stored, q.identity) ?? [this.db.outbox.toCollection()]);
    // One set of ids for the whole filter: `ids.includes` per entry made a batch of n ids cost n² comparisons.
    const test = matcher(q);
    const result: OutboxRecord[] = [];
    for (const e of found) {
      const current = asMarked(e, marks);
      if (test(current)) result.push(current);
    }
    return result.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Inside a transaction over `sends`: these entries are being rewritten or
   * deleted, so their marks go (the rewrite carries what the mark said).
   */
  private async unmark(ids: Iterable<string>, marks: Map<string, SendRecord>): Promise<void> {
    const touched = new Map<SendRecord, Set<string>>();
    for (const id of ids) {
      const mark = marks.get(id);
      if (!mark) continue;
      let set = touched.get(mark);
      if (!set) touched.set(mark, (set = new Set()));
      set.add(id);
    }
    if (touched.size === 0) return;
    const dropped: number[] = [];
    const kept: SendRecord[] = [];
    for (const [mark, gone] of touched) {
      for (const id of gone) marks.delete(id);
      const rest = mark.ids.filter(id => !gone.has(id));
      if (rest.length === 0) dropped.push(mark.key!);
      else {
        const smaller: SendRecord = { ...mark, ids: rest };
        for (const id of rest) marks.set(id, smaller);
        kept.push(smaller);
      }
    }
    // Issued together: one round of requests, not one await per mark.
    await Promise.all([
      this.marksChanging(marks),
      dropped.length > 0 ? this.db.sends.bulkDelete(dropped) : undefined,
      kept.length > 0 ? this.db.sends.bulkPut(kept) : undefined,
    ]);
  }

  /** Inserts waiting for the next insert transaction, in call order. */
  private pendingInserts: PendingInsert[] = [];
  private inserting = false;

  /**
   * Inserts are write-combined: every insert requested while one
   * transaction runs goes into the next one (ids checked with one `bulkGet`,
   * supersede candidates read with one `anyOf`, one `bulkAdd`), in call
   * order, with the same result per call as one transaction each. A
   * transaction per insert made a burst of n calls queue n read-write
   * transactions (fake-indexeddb rescans its pending transactions for each).
   */
  outboxInsert(entry: Omit<OutboxRecord, 'seq'>, pruneBefore?: number): Promise<{ entry: OutboxRecord; superseded: OutboxRecord[] }> {
    return new Promise((resolve, reject) => {
      this.pendingInserts.push({ entry, pruneBefore, resolve, reject });
      if (!this.inserting) {
        this.inserting = true;
        void this.flushInserts();
      }
    });
  }

  private async flushInserts(): Promise<void> {
    await Promise.resolve(); // gather the inserts requested in this same task
    while (this.pendingInserts.length > 0) {
      const batch = this.pendingInserts;
      this.pendingInserts = [];
      let results: InsertResult[];
      try {
        const prunes = batch.map(b => b.pruneBefore).filter((p): p is number => p !== undefined);
        results = await this.insertBatch(batch.map(b => b.entry), prunes.length > 0 ? Math.max(...prunes) : undefined);
      } catch (error) {
        for (const b of batch) b.reject(error);
        continue;
      }
      batch.forEach((b, i) => {
        const r = results[i];
        if ('error' in r) b.reject(r.error);
        else b.resolve(r.value);
      });
    }
    this.inserting = false;
  }

  private insertBatch(entries: Omit<OutboxRecord, 'seq'>[], pruneBefore: number | undefined): Promise<InsertResult[]> {
    const { db } = this;
    return db.transaction('rw', [db.outbox, db.meta, db.outcomeSets, db.sends], async () => {
      const existing = await db.outbox.bulkGet(entries.map(e => e.id));
      const taken = new Set(existing.filter((e): e is OutboxRecord => e !== undefined).map(e => e.id));
      const keys = [...new Set(entries.map(e => e.supersedeKey).filter(k => k !== ''))];
      /** Supersede key → entries with it (stored, or added earlier in this batch). */
      const byKey = new Map<string, OutboxRecord[]>();
      if (keys.length > 0) {
        // As they stand: a marked entry is sent, and a sent entry is never superseded.
        const marks = await this.marks();
        for (const stored of await db.outbox.where('supersedeKey').anyOf(keys).toArray()) {
          const e = asMarked(stored, marks);
          const list = byKey.get(e.supersedeKey) ?? [];
          list.push(e);
          byKey.set(e.supersedeKey, list);
        }
        for (const list of byKey.values()) list.sort((a, b) => a.seq - b.seq);
      }
      let seq = Number((await db.meta.get('seq'))?.value ?? 0);
      const added = new Map<string, OutboxRecord>();
      const deleted: string[] = [];
      const outcomes: OutcomeRecord[] = [];
      const results: InsertResult[] = [];
      for (const entry of entries) {
        if (taken.has(entry.id)) {
          results.push({ error: new DuplicateMutationIdError(entry.reducer, entry.id) });
          continue;
        }
        taken.add(entry.id);
        let superseded: OutboxRecord[] = [];
        if (entry.supersedeKey !== '') {
          const list = byKey.get(entry.supersedeKey) ?? [];
          superseded = list.filter(e => supersededBy(e, entry));
          byKey.set(entry.supersedeKey, list.filter(e => !superseded.includes(e)));
          for (const e of superseded) {
            if (!added.delete(e.id)) deleted.push(e.id);
            const record = supersededOutcome(e, entry);
            if (record) outcomes.push(record);
          }
        }
        seq += 1;
        // Not `{ ...entry, seq }` (a spread then a new key: V8's slow path on Node 20).
        const stored = Object.assign({}, entry) as OutboxRecord;
        stored.seq = seq;
        added.set(stored.id, stored);
        if (stored.supersedeKey !== '') byKey.get(stored.supersedeKey)!.push(stored);
        results.push({ value: { entry: stored, superseded } });
      }
      if (deleted.length) await db.outbox.bulkDelete(deleted);
      if (outcomes.length) await this.putOutcomes(outcomes, pruneBefore);
      await db.meta.put({ key: 'seq', value: seq });
      if (added.size) await db.outbox.bulkAdd([...added.values()]);
      return results;
    });
  }

  outboxList(query: OutboxQuery = {}) {
    const { db } = this;
    return db.transaction('r', [db.outbox, db.sends, db.meta], async () => this.select(query, await this.marks()));
  }

  /** Inside a transaction over `outcomeSets`: drop the aged records, then write these (one set per distinct outcome). */
  private async putOutcomes(records: readonly OutcomeRecord[], pruneBefore: number | undefined): Promise<void> {
    if (pruneBefore !== undefined) await this.db.outcomeSets.where('at').below(pruneBefore).delete();
    if (records.length > 0) await this.db.outcomeSets.bulkAdd(outcomeSets(records));
  }

  /**
   * What became of these ids, in the order asked (missing ones left out),
   * by the multi-entry id index of the outcome sets.
   */
  outcomesGet(ids: readonly string[]) {
    if (ids.length === 0) return Promise.resolve([]);
    const { db } = this;
    const unique = [...new Set(ids)];
    return db.transaction('r', db.outcomeSets, async () => {
      // The keys of the sets naming each id (a keys-only read per id), then each set read once:
      // a set lists a whole write's ids, so reading it per id would copy it again for each.
      const keysById = await Promise.all(unique.map(id => db.outcomeSets.where('ids').equals(id).primaryKeys()));
      const setKeys = [...new Set(keysById.flat())];
      const sets = new Map<number, OutcomeSetRecord>();
      (await db.outcomeSets.bulkGet(setKeys)).forEach((set, i) => set && sets.set(setKeys[i], set));
      const latest = new Map<string, OutcomeSetRecord>();
      unique.forEach((id, n) => {
        // The latest set wins for an id recorded twice.
        const key = Math.max(...keysById[n].filter(k => sets.has(k)));
        if (key !== -Infinity) latest.set(id, sets.get(key)!);
      });
      const records: OutcomeRecord[] = [];
      for (const id of unique) {
        const set = latest.get(id);
        if (set) records.push(outcomeOf(set, set.ids.indexOf(id)));
      }
      return records;
    });
  }

  async outcomesList() {
    const byId = new Map<string, OutcomeRecord>();
    for (const set of await this.db.outcomeSets.toArray()) {
      // In key order: a later set replaces an earlier record of the same id.
      for (let i = 0; i < set.ids.length; i++) byId.set(set.ids[i], outcomeOf(set, i));
    }
    return [...byId.values()];
  }

  outboxModify(query: OutboxQuery, fn: OutboxModify, outcomes?: OutcomeWrite) {
    const { db } = this;
    // Only a write that may delete entries with an outcome takes the outcomes table too.
    const tables = outcomes ? [db.outbox, db.sends, db.meta, db.outcomeSets] : [db.outbox, db.sends, db.meta];
    return db.transaction('rw', tables, async () => {
      const marks = await this.marks();
      const updated: OutboxRecord[] = [];
      const deleted: OutboxRecord[] = [];
      for (const entry of await this.select(query, marks)) {
        const next = fn(entry);
        if (next === undefined) continue;
        if (next === null) deleted.push(entry);
        else updated.push(next);
      }
      // The writes are issued together (one round of requests, not one await each).
      const writes: Promise<unknown>[] = [];
      if (marks.size > 0) writes.push(this.unmark([...deleted, ...updated].map(e => e.id), marks));
      if (deleted.length) writes.push(db.outbox.bulkDelete(deleted.map(e => e.id)));
      if (updated.length) writes.push(db.outbox.bulkPut(updated));
      if (outcomes && deleted.length) {
        const records = deleted.map(e => outcomes.record(e)).filter((o): o is OutcomeRecord => o !== undefined);
        writes.push(this.putOutcomes(records, outcomes.pruneBefore));
      }
      await Promise.all(writes);
      return { updated, deleted };
    });
  }

  /**
   * `queued → sent` without rewriting the entries: one read of the
   * identity's queued range (or of the ids) and one write — a mark listing
   * the ids, with the time. Every read applies the marks (status `sent`,
   * attempts + 1, `sentAt` and `updatedAt` the mark's time), and any later
   * write of a marked entry folds its mark into it. Rewriting each entry
   * cost one IndexedDB put per call (with its index updates); in Chromium
   * that was most of a replay.
   */
  outboxMarkSent(ids: readonly string[], identity: string, now: number) {
    const { db } = this;
    return db.transaction('rw', [db.outbox, db.sends, db.meta], async () => {
      const marks = await this.marks();
      const wanted = new Set(ids);
      const marked: OutboxRecord[] = [];
      for (const e of await this.readIds([...wanted], this.ranges(['queued'], identity))) {
        if (wanted.has(e.id) && e.status === 'queued' && !marks.has(e.id) && e.identity === identity && e.quarantine === null) marked.push(e);
      }
      if (marked.length === 0) return [];
      marked.sort((a, b) => a.seq - b.seq);
      // In marks of at most MARK_SIZE ids: confirming one entry rewrites its mark without it.
      const marksToAdd: SendRecord[] = [];
      for (let i = 0; i < marked.length; i += MARK_SIZE) marksToAdd.push({ ids: marked.slice(i, i + MARK_SIZE).map(e => e.id), at: now });
      await this.marksChanging(marks);
      const keys = await db.sends.bulkAdd(marksToAdd, { allKeys: true });
      marksToAdd.forEach((mark, i) => {
        mark.key = keys[i];
        for (const id of mark.ids) marks.set(id, mark);
      });
      return marked.map(e => sentAs(e, now));
    });
  }

  outbox$(): Observable<OutboxRecord[]> {
    // In seq order, sorted here (no seq index since v4).
    return from(
      liveQuery(() =>
        this.db.transaction('r', [this.db.outbox, this.db.sends, this.db.meta], async () => {
          const marks = await this.marks();
          return (await this.db.outbox.toArray()).map(e => asMarked(e, marks)).sort((a, b) => a.seq - b.seq);
        }),
      ),
    );
  }

  outboxChanges$(): Observable<void> {
    // Dexie fires 'storagemutated' after every committed write of this
    // database handle and, through its BroadcastChannel, of other tabs; the
    // parts are keyed `idb://<database>/<table>/<index>`.
    const prefix = `idb://${this.db.name}/outbox/`;
    const marksPrefix = `idb://${this.db.name}/sends/`;
    return new Observable<void>(subscriber => {
      const listener = (parts: Record<string, unknown>) => {
        for (const key in parts) {
          if (key.startsWith(prefix) || key.startsWith(marksPrefix)) {
            subscriber.next();
            return;
          }
        }
      };
      Dexie.on('storagemutated', listener);
      return () => Dexie.on('storagemutated').unsubscribe(listener);
    });
  }

  rowsApply(writes: readonly TableWrite[]) {
    const { db } = this;
    return db.transaction('rw', db.rows, db.snapshotMeta, async () => {
      for (const w of writes) {
        if (w.clear) await db.rows.where('table').equals(w.table).delete();
        if (w.delete.length) await db.rows.bulkDelete(w.delete.map(key => [w.table, key] as [string, string]));
        if (w.put.length) await db.rows.bulkPut(w.put);
        const count = await db.rows.where('table').equals(w.table).count();
        await db.snapshotMeta.put({ table: w.table, asOf: w.asOf, rowTypeHash: w.rowTypeHash, count });
      }
    });
  }

  rowsLoad(table: string) {
    const { db } = this;
    return db.transaction('r', db.rows, db.snapshotMeta, async () => ({
      rows: await db.rows.where('table').equals(table).toArray(),
      meta: await db.snapshotMeta.get(table),
    }));
  }

  rowsDrop(tables: readonly string[] | 'all') {
    const { db } = this;
    return db.transaction('rw', db.rows, db.snapshotMeta, async () => {
      const known = (await db.snapshotMeta.toArray()).map(t => t.table);
      const names = tables === 'all' ? known : tables.filter(t => known.includes(t));
      for (const t of names) {
        await db.rows.where('table').equals(t).delete();
        await db.snapshotMeta.delete(t);
      }
      return names;
    });
  }

  tablesList() {
    return this.db.snapshotMeta.toArray();
  }

  async metaGet(key: string) {
    return (await this.db.meta.get(key))?.value;
  }

  async metaSet(key: string, value: unknown) {
    await this.db.meta.put({ key, value });
  }

  async metaDelete(key: string) {
    await this.db.meta.delete(key);
  }

  leaseTake(name: string, owner: string, now: number, ttlMs: number) {
    const { db } = this;
    return db.transaction('rw', db.leases, async () => {
      const held = await db.leases.get(name);
      if (!held || held.owner === owner || held.expiresAt <= now) {
        const lease = { name, owner, expiresAt: now + ttlMs };
        await db.leases.put(lease);
        return lease;
      }
      return held;
    });
  }

  leaseRelease(name: string, owner: string) {
    const { db } = this;
    return db.transaction('rw', db.leases, async () => {
      if ((await db.leases.get(name))?.owner === owner) await db.leases.delete(name);
    });
  }

  close() {
    this.db.close();
  }
}
