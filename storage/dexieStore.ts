/**
 * The durable {@link Store}: Dexie over IndexedDB. Every operation is one
 * Dexie transaction with nothing but Dexie calls inside it.
 */
import { from, Observable } from 'rxjs';
import { Dexie, liveQuery } from 'dexie';
import type { OutboxRecord, StdbRxDB } from './db.ts';
import { DuplicateMutationIdError } from './errors.ts';
import { matcher, supersededBy, type OutboxModify, type OutboxQuery, type Store, type TableWrite } from './store.ts';

export class DexieStore implements Store {
  readonly kind = 'durable' as const;

  constructor(readonly db: StdbRxDB) {}

  /** The matching entries, using the narrowest index available. */
  private async select(q: OutboxQuery): Promise<OutboxRecord[]> {
    const { outbox } = this.db;
    let found: OutboxRecord[];
    if (q.ids) found = (await outbox.bulkGet([...new Set(q.ids)])).filter((e): e is OutboxRecord => e !== undefined);
    else if (q.identity !== undefined && q.status !== undefined) {
      found = await outbox.where('[identity+status]').equals([q.identity, q.status]).toArray();
    } else if (q.status !== undefined) found = await outbox.where('status').equals(q.status).toArray();
    else found = await outbox.toArray();
    // One set of ids for the whole filter: `ids.includes` per entry made a batch of n ids cost n² comparisons.
    return found.filter(matcher(q)).sort((a, b) => a.seq - b.seq);
  }

  outboxInsert(entry: Omit<OutboxRecord, 'seq'>) {
    const { db } = this;
    return db.transaction('rw', db.outbox, db.meta, async () => {
      if ((await db.outbox.get(entry.id)) !== undefined) throw new DuplicateMutationIdError(entry.reducer, entry.id);
      let superseded: OutboxRecord[] = [];
      if (entry.supersedeKey !== '') {
        const sameKey = await db.outbox.where('supersedeKey').equals(entry.supersedeKey).toArray();
        superseded = sameKey.filter(e => supersededBy(e, entry));
        await db.outbox.bulkDelete(superseded.map(e => e.id));
      }
      const seq = Number((await db.meta.get('seq'))?.value ?? 0) + 1;
      await db.meta.put({ key: 'seq', value: seq });
      const stored: OutboxRecord = { ...entry, seq };
      await db.outbox.add(stored);
      return { entry: stored, superseded };
    });
  }

  outboxList(query: OutboxQuery = {}) {
    return this.db.transaction('r', this.db.outbox, () => this.select(query));
  }

  outboxModify(query: OutboxQuery, fn: OutboxModify) {
    const { db } = this;
    return db.transaction('rw', db.outbox, async () => {
      const updated: OutboxRecord[] = [];
      const deleted: OutboxRecord[] = [];
      for (const entry of await this.select(query)) {
        const next = fn(entry);
        if (next === undefined) continue;
        if (next === null) deleted.push(entry);
        else updated.push(next);
      }
      if (deleted.length) await db.outbox.bulkDelete(deleted.map(e => e.id));
      if (updated.length) await db.outbox.bulkPut(updated);
      return { updated, deleted };
    });
  }

  outbox$(): Observable<OutboxRecord[]> {
    return from(liveQuery(() => this.db.outbox.orderBy('seq').toArray()));
  }

  outboxChanges$(): Observable<void> {
    // Dexie fires 'storagemutated' after every committed write of this
    // database handle and, through its BroadcastChannel, of other tabs; the
    // parts are keyed `idb://<database>/<table>/<index>`.
    const prefix = `idb://${this.db.name}/outbox/`;
    return new Observable<void>(subscriber => {
      const listener = (parts: Record<string, unknown>) => {
        for (const key in parts) {
          if (key.startsWith(prefix)) {
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
