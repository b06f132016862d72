/**
 * The IndexedDB schema: one Dexie database per (server, database name).
 *
 * Every version stays declared. Dexie replays them in order on a database it
 * finds at an older version, running `upgrade` only where data moves.
 *
 * - v1 (first release): the outbox ordered by `createdAt`.
 * - v2: entries get a `seq` (strict FIFO — two tabs can enqueue within one
 *   millisecond, and a clock can step backwards), `updatedAt`, a
 *   `quarantine` field, and an `[identity+status]` index for draining one
 *   identity's queue. The upgrade numbers existing entries in their
 *   `createdAt` order.
 * - v3: an `outcomes` table: what became of every entry that left the
 *   outbox (confirmed, rejected, expired, superseded, discarded), kept for
 *   a bounded time so every tab's call handles settle from what happened,
 *   not from a guess. Nothing moves: the table starts empty.
 * - v4: the outbox keeps two indexes instead of four. One compound
 *   `[status+identity]` index answers both "one identity's entries in a
 *   status" (an exact key) and "every entry in a status" (a key prefix), so
 *   the `status` and `[identity+status]` indexes go; the unique `seq` index
 *   goes too (seq is assigned inside the insert transaction from one
 *   counter, and FIFO order is sorted in memory). Every write of an entry
 *   (enqueue, mark sent, confirm) updated every index: with fewer, each costs
 *   less, in IndexedDB and in fake-indexeddb. Nothing moves: IndexedDB
 *   rebuilds the indexes. (A sparse supersede-key index — entries without a
 *   key stored without the field — was measured too: no gain in Chromium,
 *   and fake-indexeddb throws and catches an error per record it leaves out
 *   of an index, so it cost time in Node.)
 * - v5: outcome records are written one record per write, not one per
 *   entry: an `outcomeSets` record lists the ids (and reducers) of every
 *   entry a write removed with the same outcome, and a multi-entry index on
 *   the ids answers "what became of these ids". Confirming a burst of n
 *   answers wrote n outcome records (n IndexedDB requests, each with its own
 *   serialisation and two index entries); it now writes one. The upgrade
 *   moves every v3/v4 outcome record into a set of its own and empties the
 *   old `outcomes` table (kept declared, so a v4 database opens without a
 *   table deletion). And a `sends` table of sent marks: marking a batch of
 *   entries sent writes one record listing their ids instead of rewriting
 *   each entry (see `SendRecord`); nothing moves, the table starts empty.
 */
import { Dexie, type Table, type Transaction } from 'dexie';

/** Lifecycle of an outbox entry: `queued → sent → confirmed | rejected | expired`. */
export type OutboxStatus = 'queued' | 'sent' | 'confirmed' | 'rejected' | 'expired';

/** One stored reducer call. */
export interface OutboxRecord {
  /** Client-generated mutation id (also the reducer's `mutationId` argument when it takes one). */
  id: string;
  /** Enqueue order, unique and increasing within the database (FIFO within one priority). */
  seq: number;
  /** Canonical reducer name. */
  reducer: string;
  /** BSATN-encoded arguments, checked against the reducer's parameter types at enqueue. */
  args: Uint8Array;
  /** Higher drains first. */
  priority: number;
  /** A newer queued entry with the same key and identity replaces this one; '' for none. */
  supersedeKey: string;
  /** Epoch ms after which the entry is not sent but expired; null for none. */
  deadline: number | null;
  /** Hex identity that created the entry; '' when it was created before any identity was known. */
  identity: string;
  createdAt: number;
  updatedAt: number;
  /** When it was last handed to the network. */
  sentAt: number | null;
  /** How many times it was handed to the network. */
  attempts: number;
  status: OutboxStatus;
  /** Whether the reducer records receipts (exactly-once effect); false means at-least-once. */
  receipts: boolean;
  /** Schema fingerprint the args were encoded with. */
  schema: string;
  /** Why the server rejected it (status `rejected`). */
  error: { code: string; message: string } | null;
  /** Set when a schema migration could not carry the entry: it is kept but never sent. */
  quarantine: { code: 'migration'; message: string } | null;
}

/** How an entry left the outbox (the call handle's outcome follows from it). */
export type OutcomeKind = 'confirmed' | 'rejected' | 'expired' | 'superseded' | 'discarded';

/**
 * What became of an outbox entry, written in the same transaction that
 * removed it, and kept for a bounded time (`outcomeTtlMs`) so that every
 * tab sharing the storage can settle its call handle from it.
 */
export interface OutcomeRecord {
  /** The entry's id (its mutation id). */
  id: string;
  outcome: OutcomeKind;
  /** Canonical reducer name. */
  reducer: string;
  /** Epoch ms when it was recorded (records older than the lifetime are pruned). */
  at: number;
  /**
   * What removed it: `answer` (the server's answer to a send), `receipt`
   * (found among the module's receipts after a reconnect), `dismiss`,
   * `discard`, `migration` (a migrator dropped it), `deadline`, or
   * `supersede`.
   */
  by: 'answer' | 'receipt' | 'dismiss' | 'discard' | 'migration' | 'deadline' | 'supersede';
  /** The server's reason (`rejected`), or the app's / migrator's note. */
  error: { code: string; message: string } | null;
  /** `superseded`: the id of the entry that replaced it. */
  supersededBy?: string;
}

/**
 * The outcome records of one write (v5): every entry that write removed
 * with the same outcome, cause, time and reason. `ids[i]` was a call of
 * `reducers[i]`. Expanded into {@link OutcomeRecord}s when read.
 */
export interface OutcomeSetRecord {
  /** Auto-incremented: a later set wins when an id appears in two. */
  key?: number;
  ids: string[];
  reducers: string[];
  outcome: OutcomeRecord['outcome'];
  at: number;
  by: OutcomeRecord['by'];
  error: OutcomeRecord['error'];
  supersededBy?: string;
}

/**
 * A sent mark (v5): these queued entries were handed to the network at
 * `at`. An entry listed in a mark reads as `sent` (attempts + 1, `sentAt`
 * and `updatedAt` = `at`) although its stored record still says `queued`;
 * the next write of the entry folds the mark into the record and takes the
 * id out of the mark. An id is in at most one mark.
 */
export interface SendRecord {
  key?: number;
  ids: string[];
  at: number;
}

/** Group outcome records into sets: one per distinct (outcome, by, at, error, supersededBy). */
export function outcomeSets(records: readonly OutcomeRecord[]): OutcomeSetRecord[] {
  const sets = new Map<string, OutcomeSetRecord>();
  for (const r of records) {
    const group = `${r.outcome}\u0000${r.by}\u0000${r.at}\u0000${r.supersededBy ?? ''}\u0000${r.error === null ? '' : JSON.stringify([r.error.code, r.error.message])}`;
    let set = sets.get(group);
    if (!set) {
      set = { ids: [], reducers: [], outcome: r.outcome, at: r.at, by: r.by, error: r.error };
      if (r.supersededBy !== undefined) set.supersededBy = r.supersededBy;
      sets.set(group, set);
    }
    set.ids.push(r.id);
    set.reducers.push(r.reducer);
  }
  return [...sets.values()];
}

/** The outcome record of `ids[i]` of a set. */
export function outcomeOf(set: OutcomeSetRecord, i: number): OutcomeRecord {
  const record: OutcomeRecord = { id: set.ids[i], outcome: set.outcome, reducer: set.reducers[i], at: set.at, by: set.by, error: set.error };
  if (set.supersededBy !== undefined) record.supersededBy = set.supersededBy;
  return record;
}

/** A v1 outbox entry (no seq, updatedAt or quarantine). */
export type OutboxRecordV1 = Omit<OutboxRecord, 'seq' | 'updatedAt' | 'quarantine'>;

/** One cached row of a subscribed table. */
export interface RowRecord {
  /** Canonical table name. */
  table: string;
  /** Hex of the BSATN primary key, or of the whole row for a table without one. */
  key: string;
  /** BSATN-encoded row (the table's row type). */
  row: Uint8Array;
}

/** Per cached table: when its rows were last written and with which schema. */
export interface TableRecord {
  table: string;
  /** Epoch ms of the last flush: the rows are the server's state "as of" then. */
  asOf: number;
  /** Hash of the row type the rows were encoded with. */
  rowTypeHash: string;
  count: number;
}

/** Small key/value facts: the schema record, the token, the next seq. */
export interface MetaRecord {
  key: string;
  value: unknown;
}

/** A drain lease held by one tab until `expiresAt`. */
export interface LeaseRecord {
  name: string;
  owner: string;
  expiresAt: number;
}

/** The schema of version 1, kept so tests (and Dexie) can build a real v1 database. */
export const SCHEMA_V1 = {
  outbox: '&id, status, createdAt',
  rows: '[table+key], table',
  snapshotMeta: '&table',
  meta: '&key',
  leases: '&name',
} as const;

export const SCHEMA_V2 = {
  outbox: '&id, &seq, status, [identity+status], supersedeKey',
} as const;

/** v3 adds the outcome records, indexed by time for pruning. */
export const SCHEMA_V3 = {
  outcomes: '&id, at',
} as const;

/** v4: the outbox indexed by `[status+identity]` and supersede key only. */
export const SCHEMA_V4 = {
  outbox: '&id, [status+identity], supersedeKey',
} as const;

/** v5: outcome records grouped per write, found by a multi-entry index on their ids; sent marks. */
export const SCHEMA_V5 = {
  outcomeSets: '++key, at, *ids',
  sends: '++key',
} as const;

/** Move every v3/v4 outcome record into an outcome set of its own (same id, outcome, time and reason). */
export async function upgradeToV5(tx: Transaction): Promise<void> {
  const old = tx.table<OutcomeRecord, string>('outcomes');
  const records = (await old.toArray()).sort((a, b) => a.at - b.at);
  if (records.length === 0) return;
  await tx.table<OutcomeSetRecord, number>('outcomeSets').bulkAdd(records.flatMap(r => outcomeSets([r])));
  await old.clear();
}

/** Number the v1 entries in their `createdAt` order (ties broken by id). */
export async function upgradeToV2(tx: Transaction): Promise<void> {
  const table = tx.table<OutboxRecordV1 & Partial<OutboxRecord>, string>('outbox');
  const all = await table.toArray();
  all.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let seq = 0;
  for (const entry of all) {
    seq += 1;
    await table.update(entry.id, { seq, updatedAt: entry.createdAt, quarantine: null });
  }
  await tx.table<MetaRecord, string>('meta').put({ key: 'seq', value: seq });
}

/** Connection options: tests pass a fresh fake factory, browsers use their own IndexedDB. */
export interface DexieFactory {
  indexedDB?: { open: Function };
  IDBKeyRange?: { bound: Function; lowerBound: Function; upperBound: Function };
}

/** The storage database of one (server, database name). */
export class StdbRxDB extends Dexie {
  outbox!: Table<OutboxRecord, string>;
  rows!: Table<RowRecord, [string, string]>;
  snapshotMeta!: Table<TableRecord, string>;
  meta!: Table<MetaRecord, string>;
  leases!: Table<LeaseRecord, string>;
  /** v3/v4 outcome records; emptied by the v5 upgrade (see {@link outcomeSets}). */
  outcomes!: Table<OutcomeRecord, string>;
  outcomeSets!: Table<OutcomeSetRecord, number>;
  sends!: Table<SendRecord, number>;

  constructor(name: string, factory: DexieFactory = {}) {
    super(name, { ...factory, autoOpen: true });
    // Dexie's liveQuery stays silent unless Dexie knows a global IndexedDB
    // (it checks `Dexie.dependencies.indexedDB`). Where there is none (Node
    // with an injected factory), register the injected one; in a browser the
    // global one is already there and nothing changes.
    if (!Dexie.dependencies.indexedDB && factory.indexedDB && factory.IDBKeyRange) {
      Dexie.dependencies.indexedDB = factory.indexedDB as IDBFactory;
      Dexie.dependencies.IDBKeyRange = factory.IDBKeyRange as typeof IDBKeyRange;
    }
    this.version(1).stores(SCHEMA_V1);
    this.version(2).stores(SCHEMA_V2).upgrade(upgradeToV2);
    this.version(3).stores(SCHEMA_V3);
    this.version(4).stores(SCHEMA_V4);
    this.version(5).stores(SCHEMA_V5).upgrade(upgradeToV5);
  }
}

/** The IndexedDB name used for one (server, database): `stdb-rx:<server>/<database>`. */
export function databaseName(server: string, database: string): string {
  return `stdb-rx:${server.replace(/\/+$/, '')}/${database}`;
}
