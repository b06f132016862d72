/**
 * A {@link Store} that uses IndexedDB until it fails, then carries on in
 * memory with the same API. The failure is reported once as a
 * {@link StorageError} on `errors$`, and `mode$` says `'memory'` from then on.
 *
 * On the switch it copies what the durable store can still read (outbox
 * entries, outcome records and meta: a full quota still allows reads) into the memory store,
 * and retries the failed operation there, so the call that hit the quota is
 * not lost. Snapshot rows are not copied: they only matter for the next cold
 * start, which memory cannot serve anyway.
 */
import { BehaviorSubject, ReplaySubject, catchError, concat, defer, EMPTY, of, switchMap, type Observable } from 'rxjs';
import { OutboxError, toStorageError, type StorageError } from './errors.ts';
import type { OutboxRecord, OutcomeRecord } from './db.ts';
import { MemoryStore, type OutboxModify, type OutboxQuery, type OutcomeWrite, type Store, type StorageMode, type TableWrite } from './store.ts';

/** Meta keys copied to memory on a failover. */
const COPIED_META = ['seq', 'schema', 'token', 'session'];

export class FailoverStore implements Store {
  private current: Store;
  private degrading: Promise<void> | undefined;
  private readonly modeSubject: BehaviorSubject<StorageMode>;
  private readonly errorSubject = new ReplaySubject<StorageError>(16);

  /** `'durable'` while IndexedDB works, `'memory'` after a failure. */
  readonly mode$: Observable<StorageMode>;
  /** Every storage failure, already wrapped in the {@link StorageError} family; the last 16 are replayed to late subscribers. */
  readonly errors$: Observable<StorageError> = this.errorSubject.asObservable();

  /**
   * @param durable The IndexedDB store, or `null` when IndexedDB could not be opened.
   * @param onError Called with every failure, besides `errors$`.
   */
  constructor(durable: Store | null, private readonly onError?: (error: StorageError) => void) {
    this.current = durable ?? new MemoryStore();
    this.modeSubject = new BehaviorSubject<StorageMode>(this.current.kind);
    this.mode$ = this.modeSubject.asObservable();
  }

  get kind(): StorageMode {
    return this.current.kind;
  }

  /** Report a failure (also used for failures found outside an operation, such as a blocked open). */
  report(error: StorageError): void {
    this.onError?.(error);
    this.errorSubject.next(error);
  }

  /** Put an error that was already passed to `onError` on `errors$` only. */
  replay(error: StorageError): void {
    this.errorSubject.next(error);
  }

  /** Switch to memory (once), seeding it with what the durable store still yields. */
  degrade(): Promise<void> {
    if (this.current.kind === 'memory') return Promise.resolve();
    this.degrading ??= (async () => {
      const durable = this.current;
      let outbox: OutboxRecord[] = [];
      let outcomes: OutcomeRecord[] = [];
      const meta: Record<string, unknown> = {};
      try {
        outbox = await durable.outboxList();
        // The outcomes too: a handle waiting on an entry removed before the switch still settles from its record.
        outcomes = await durable.outcomesList().catch(() => []);
        for (const key of COPIED_META) {
          const value = await durable.metaGet(key);
          if (value !== undefined) meta[key] = value;
        }
      } catch {
        // Unreadable too: start empty. The failure itself is already reported.
      }
      this.current = new MemoryStore({ outbox, outcomes, meta });
      try {
        durable.close();
      } catch {
        // closing a broken connection may throw; nothing more to do
      }
      this.modeSubject.next('memory');
    })();
    return this.degrading;
  }

  private async run<T>(operation: string, f: (store: Store) => Promise<T>): Promise<T> {
    const store = this.current;
    try {
      return await f(store);
    } catch (error) {
      // Memory failures are bugs, and a refused call is the caller's: neither is a storage failure.
      if (store.kind === 'memory' || error instanceof OutboxError) throw error;
      this.report(toStorageError(operation, error));
      await this.degrade();
      return f(this.current);
    }
  }

  outboxInsert(entry: Omit<OutboxRecord, 'seq'>, pruneBefore?: number) {
    return this.run('outbox.insert', s => s.outboxInsert(entry, pruneBefore));
  }

  outboxList(query?: OutboxQuery) {
    return this.run('outbox.list', s => s.outboxList(query));
  }

  outboxModify(query: OutboxQuery, fn: OutboxModify, outcomes?: OutcomeWrite) {
    return this.run('outbox.modify', s => s.outboxModify(query, fn, outcomes));
  }

  outboxMarkSent(ids: readonly string[], identity: string, now: number) {
    return this.run('outbox.markSent', s => s.outboxMarkSent(ids, identity, now));
  }

  outcomesGet(ids: readonly string[]) {
    return this.run('outcomes.get', s => s.outcomesGet(ids));
  }

  outcomesList() {
    return this.run('outcomes.list', s => s.outcomesList());
  }

  outbox$(): Observable<OutboxRecord[]> {
    return this.modeSubject.pipe(
      switchMap(() => {
        const store = this.current;
        return defer(() => store.outbox$()).pipe(
          catchError(error => {
            if (store.kind === 'memory') throw error;
            this.report(toStorageError('outbox.observe', error));
            void this.degrade();
            return EMPTY; // the mode switch re-subscribes to the memory store
          }),
        );
      }),
    );
  }

  outboxChanges$(): Observable<void> {
    return this.modeSubject.pipe(
      switchMap((_, i) => {
        const store = this.current;
        const changes = defer(() => store.outboxChanges$()).pipe(catchError(() => EMPTY));
        // After a switch to memory the outbox is another one: that is a change too.
        return i === 0 ? changes : concat(of(undefined), changes);
      }),
    );
  }

  rowsApply(writes: readonly TableWrite[]) {
    return this.run('snapshots.flush', s => s.rowsApply(writes));
  }

  rowsLoad(table: string) {
    return this.run('snapshots.load', s => s.rowsLoad(table));
  }

  rowsDrop(tables: readonly string[] | 'all') {
    return this.run('snapshots.discard', s => s.rowsDrop(tables));
  }

  tablesList() {
    return this.run('snapshots.tables', s => s.tablesList());
  }

  metaGet(key: string) {
    return this.run(`meta.get(${key})`, s => s.metaGet(key));
  }

  metaSet(key: string, value: unknown) {
    return this.run(`meta.set(${key})`, s => s.metaSet(key, value));
  }

  metaDelete(key: string) {
    return this.run(`meta.delete(${key})`, s => s.metaDelete(key));
  }

  leaseTake(name: string, owner: string, now: number, ttlMs: number) {
    return this.run('lease.take', s => s.leaseTake(name, owner, now, ttlMs));
  }

  leaseRelease(name: string, owner: string) {
    return this.run('lease.release', s => s.leaseRelease(name, owner));
  }

  close() {
    this.current.close();
    this.modeSubject.complete();
    this.errorSubject.complete();
  }
}
