/**
 * An in-memory {@link DurableQueue} for the call queue's unit tests: no
 * storage, every write logged, and any method can be held on a gate the
 * test opens — so each step of the drain is an awaited signal.
 */
import { Subject } from 'rxjs';
import type { DurableCallRequest, DurableQueue, DurableQueueEvent, Enqueued, RecordedOutcome, StoredCall, StoredCallState } from '../../streams/durableQueue.ts';

interface Entry {
  id: string;
  seq: number;
  reducer: string;
  args: unknown;
  priority: number;
  supersedeKey: string | undefined;
  deadline: number | null;
  createdAt: number;
  attempts: number;
  status: 'queued' | 'sent' | 'rejected';
  message?: string;
  /** Of another identity (never sendable). */
  foreign?: boolean;
}

type Method = 'enqueue' | 'toSend' | 'markSent' | 'requeue' | 'confirm' | 'reject' | 'expire' | 'recover' | 'lookup';

export class MemoryQueue implements DurableQueue {
  readonly entries = new Map<string, Entry>();
  readonly records = new Map<string, RecordedOutcome>();
  /** Every call of a method, with its ids where it takes some. */
  readonly log: { method: Method; ids?: string[] }[] = [];
  readonly #changes = new Subject<void>();
  readonly #events = new Subject<DurableQueueEvent>();
  readonly changes$ = this.#changes.asObservable();
  readonly events$ = this.#events.asObservable();
  readonly outcomeTtlMs = 60_000;
  #seq = 0;
  #ids = 0;
  readonly #holds = new Map<Method, { release: Promise<void>; reached: () => void }>();

  constructor(private readonly now: () => number = () => 0) {}

  /**
   * Hold the next call of `method` until `open()`; `reached` resolves once
   * that call has begun.
   */
  hold(method: Method): { reached: Promise<void>; open: () => void } {
    let open!: () => void;
    let reached!: () => void;
    const release = new Promise<void>((r) => (open = r));
    const reachedP = new Promise<void>((r) => (reached = r));
    this.#holds.set(method, { release, reached });
    return { reached: reachedP, open };
  }

  async #enter(method: Method, ids?: readonly string[]): Promise<void> {
    this.log.push({ method, ids: ids && [...ids] });
    const h = this.#holds.get(method);
    if (h) {
      this.#holds.delete(method);
      h.reached();
      await h.release;
    }
    await Promise.resolve();
  }

  /** A change was committed: tell the listeners, as storage does, after the write. */
  #changed(): void {
    this.#changes.next();
  }

  #stored(e: Entry): StoredCall {
    return { id: e.id, seq: e.seq, reducer: e.reducer, priority: e.priority, supersedeKey: e.supersedeKey, deadline: e.deadline, createdAt: e.createdAt, attempts: e.attempts, args: () => e.args };
  }

  /** Put an entry in as another session or tab would (no handle here). */
  add(fields: Partial<Entry> & { reducer: string; args: unknown }): string {
    const id = fields.id ?? `m${++this.#ids}`;
    this.entries.set(id, { id, seq: ++this.#seq, priority: 0, supersedeKey: undefined, deadline: null, createdAt: this.now(), attempts: 0, status: 'queued', ...fields });
    this.#changed();
    return id;
  }

  /** Remove an entry as another tab would, recording its outcome (or not). */
  remove(id: string, record?: RecordedOutcome): void {
    this.entries.delete(id);
    if (record) this.records.set(id, record);
    this.#changed();
  }

  async enqueue(request: DurableCallRequest): Promise<Enqueued> {
    await this.#enter('enqueue');
    const id = request.mutationId ?? `m${++this.#ids}`;
    const superseded: StoredCall[] = [];
    if (request.supersedeKey !== undefined) {
      for (const e of [...this.entries.values()]) {
        if (e.status === 'queued' && e.supersedeKey === request.supersedeKey) {
          this.entries.delete(e.id);
          this.records.set(e.id, { outcome: 'superseded', by: 'supersede', message: undefined, supersededBy: id });
          superseded.push(this.#stored(e));
        }
      }
    }
    const entry: Entry = { id, seq: ++this.#seq, reducer: request.reducer, args: request.args, priority: request.priority, supersedeKey: request.supersedeKey, deadline: request.deadline, createdAt: this.now(), attempts: 0, status: 'queued' };
    this.entries.set(id, entry);
    for (const s of superseded) this.#events.next({ type: 'superseded', call: s });
    this.#changed();
    return { call: this.#stored(entry), args: request.args, sendable: true, superseded };
  }

  async toSend(afterSeq?: number): Promise<StoredCall[]> {
    await this.#enter('toSend');
    await this.expire();
    return [...this.entries.values()]
      .filter((e) => e.status === 'queued' && !e.foreign && (afterSeq === undefined || e.seq > afterSeq))
      .sort((a, b) => b.priority - a.priority || a.seq - b.seq)
      .map((e) => this.#stored(e));
  }

  async markSent(ids: readonly string[]): Promise<string[]> {
    await this.#enter('markSent', ids);
    const taken: string[] = [];
    for (const id of ids) {
      const e = this.entries.get(id);
      if (!e || e.status !== 'queued' || e.foreign) continue;
      e.status = 'sent';
      e.attempts++;
      taken.push(id);
    }
    if (taken.length) this.#changed();
    return taken;
  }

  async requeue(ids: readonly string[]): Promise<void> {
    await this.#enter('requeue', ids);
    for (const id of ids) {
      const e = this.entries.get(id);
      if (e?.status === 'sent') e.status = 'queued';
    }
    this.#changed();
  }

  async confirm(ids: readonly string[]): Promise<void> {
    await this.#enter('confirm', ids);
    for (const id of ids) if (this.entries.delete(id)) this.records.set(id, { outcome: 'confirmed', by: 'answer', message: undefined, supersededBy: undefined });
    this.#changed();
  }

  async reject(id: string, error: Error): Promise<void> {
    await this.#enter('reject', [id]);
    const e = this.entries.get(id);
    if (e && (e.status === 'queued' || e.status === 'sent')) {
      e.status = 'rejected';
      e.message = error.message;
    }
    this.#changed();
  }

  async expire(): Promise<string[]> {
    const now = this.now();
    const gone: string[] = [];
    for (const e of [...this.entries.values()]) {
      if (e.status !== 'queued' || e.deadline === null || e.deadline > now) continue;
      this.entries.delete(e.id);
      // One sent before may have been applied then: no outcome is recorded for it.
      if (e.attempts === 0) this.records.set(e.id, { outcome: 'expired', by: 'deadline', message: undefined, supersededBy: undefined });
      gone.push(e.id);
      this.#events.next({ type: 'expired', call: this.#stored(e) });
    }
    if (gone.length) this.#changed();
    return gone;
  }

  async recover(receiptIds: Iterable<string>): Promise<string[]> {
    await this.#enter('recover');
    const receipts = new Set(receiptIds);
    const confirmed: string[] = [];
    for (const e of [...this.entries.values()]) {
      if (receipts.has(e.id) && (e.status === 'sent' || e.status === 'queued')) {
        this.entries.delete(e.id);
        this.records.set(e.id, { outcome: 'confirmed', by: 'receipt', message: undefined, supersededBy: undefined });
        confirmed.push(e.id);
      } else if (e.status === 'sent') e.status = 'queued';
    }
    this.#changed();
    return confirmed;
  }

  async lookup(ids: readonly string[]): Promise<Map<string, StoredCallState>> {
    await this.#enter('lookup', ids);
    const states = new Map<string, StoredCallState>();
    for (const id of ids) {
      const e = this.entries.get(id);
      if (e) states.set(id, e.status === 'rejected' ? { state: 'rejected', message: e.message } : { state: 'waiting' });
      else states.set(id, { state: 'removed', record: this.records.get(id) });
    }
    return states;
  }

  /** The calls of `method` so far, as their id lists. */
  calls(method: Method): string[][] {
    return this.log.filter((l) => l.method === method).map((l) => l.ids ?? []);
  }
}
