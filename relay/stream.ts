/**
 * One live stream inside a relay: its upstream queries, the grouping of their
 * emissions into transactions, the broadcast delay, the published document,
 * the history, and the spectators watching it.
 *
 * @module
 */
import { Subscription, map } from 'rxjs';
import { defaultKeyToString, type DeltaOperation } from '../operators/jsonPatchDelta.ts';
import { jsonPatchDelta } from '../streams/spacetimeJson.ts';
import type { SyncClient } from '../src/client.ts';
import type { RowKey } from '../streams/tableView.ts';
import { VersionedDocument, prefixPath } from './document.ts';
import { History, type HistoryLimits } from './history.ts';
import type { KeyType, PatchMessage, SnapshotMessage } from './protocol.ts';
import { CloseCode } from './protocol.ts';
import type { Spectator } from './spectator.ts';
import type { MatchedStream } from './streams.ts';

export interface LiveStreamOptions {
  delayMs: number;
  history: HistoryLimits;
  /** How long a resume from an unknown version waits for this relay to reach it before a snapshot is sent. */
  resumeWaitMs: number;
  /** Per-spectator byte budget: a catch-up larger than this is sent as a snapshot instead. */
  maxBufferBytes: number;
  onError: (stream: LiveStream, error: Error) => void;
}

interface Release {
  readonly at: number;
  readonly ops: readonly DeltaOperation[];
  readonly keys: Record<string, KeyType> | undefined;
}

interface PendingResume {
  readonly spectator: Spectator;
  readonly since: string;
  readonly timer: ReturnType<typeof setTimeout>;
}

function keyType(key: RowKey): KeyType {
  const t = typeof key;
  return t === 'number' || t === 'bigint' || t === 'boolean' ? t : 'string';
}

export class LiveStream {
  readonly tables: readonly string[];
  readonly spectators = new Set<Spectator>();
  readonly delayMs: number;
  /** The document as spectators see it (after the delay). */
  #doc: VersionedDocument;
  #history: History | undefined;
  #keys: Record<string, KeyType> = {};
  #subscription = new Subscription();
  /** Tables that have delivered their first rows. */
  #started = new Set<string>();
  /** Operations of the transaction being assembled, by table. */
  #pending = new Map<string, readonly DeltaOperation[]>();
  #pendingKeys: Record<string, KeyType> | undefined;
  #commitScheduled = false;
  /** Operations gathered before every table had its first rows. */
  #initial: DeltaOperation[] = [];
  #queue: Release[] = [];
  #releaseTimer: ReturnType<typeof setTimeout> | undefined;
  #waiting: { spectator: Spectator; since: string | undefined }[] = [];
  #resumes = new Set<PendingResume>();
  #snapshotText: string | undefined;
  #closed = false;
  /** Transactions published. */
  transactions = 0;
  /** Snapshots sent to spectators. */
  snapshotsSent = 0;
  /** Spectators resumed from the history (with a patch instead of a snapshot). */
  resumes = 0;
  /** Wall-clock ms spent handing published patches to spectators' transports. */
  fanOutMs = 0;

  constructor(
    readonly stream: MatchedStream,
    client: SyncClient<any>,
    private readonly options: LiveStreamOptions,
  ) {
    this.delayMs = stream.definition.delayMs ?? options.delayMs;
    const specs = stream.definition.tables(stream.params);
    if (specs === null || typeof specs !== 'object' || Object.keys(specs).length === 0) {
      throw new TypeError(`stream ${stream.pattern}: tables() must return at least one table`);
    }
    this.tables = Object.keys(specs);
    this.#doc = new VersionedDocument(this.tables);
    for (const [name, spec] of Object.entries(specs)) {
      let snapshot: ReadonlyMap<RowKey, unknown> = new Map();
      this.#subscription.add(
        client
          .table$(spec.table, spec.where ? { where: spec.where } : undefined)
          .pipe(
            map((rows) => {
              snapshot = rows as ReadonlyMap<RowKey, unknown>;
              return snapshot;
            }),
            jsonPatchDelta<RowKey, unknown>({ keyToString: defaultKeyToString }),
          )
          .subscribe({
            next: (ops) => this.#onTable(name, snapshot, ops),
            error: (err) => this.#fail(err instanceof Error ? err : new Error(String(err))),
          }),
      );
    }
  }

  /** Whether every table delivered its first rows and the base document is published. */
  get ready(): boolean {
    return this.#history !== undefined;
  }

  get version(): string | undefined {
    return this.#history?.head;
  }

  get historyLength(): number {
    return this.#history?.length ?? 0;
  }

  // ─── upstream side ────────────────────────────────────────────────────────

  #onTable(name: string, snapshot: ReadonlyMap<RowKey, unknown>, ops: readonly DeltaOperation[]): void {
    if (this.#closed) return;
    // A table emitting twice before the commit means a second transaction began.
    if (this.#pending.has(name)) this.#commit();
    if (this.#keys[name] === undefined && snapshot.size > 0) {
      const kt = keyType(snapshot.keys().next().value as RowKey);
      this.#keys[name] = kt;
      (this.#pendingKeys ??= {})[name] = kt;
    }
    this.#pending.set(name, ops.map((op) => ({ ...op, path: prefixPath(name, op.path) }) as DeltaOperation));
    this.#started.add(name);
    if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      queueMicrotask(() => this.#commit());
    }
  }

  /** Closes the transaction being assembled: one patch for everything the tables emitted together. */
  #commit(): void {
    this.#commitScheduled = false;
    if (this.#closed || this.#pending.size === 0) return;
    const ops: DeltaOperation[] = [];
    for (const tableOps of this.#pending.values()) for (const op of tableOps) ops.push(op);
    const keys = this.#pendingKeys;
    this.#pending.clear();
    this.#pendingKeys = undefined;
    if (!this.#baseQueued) {
      for (const op of ops) this.#initial.push(op);
      if (this.#started.size < this.tables.length) return;
      // Every table has its first rows: the base document (released after the delay like any patch).
      this.#baseQueued = true;
      const base = this.#initial;
      this.#initial = [];
      this.#enqueue({ at: Date.now() + this.delayMs, ops: base, keys: { ...this.#keys } });
      return;
    }
    if (ops.length === 0) return;
    this.#enqueue({ at: Date.now() + this.delayMs, ops, keys });
  }

  #baseQueued = false;

  #enqueue(release: Release): void {
    if (this.delayMs === 0) return this.#release(release);
    this.#queue.push(release);
    if (this.#releaseTimer === undefined) this.#armRelease();
  }

  #armRelease(): void {
    const first = this.#queue[0];
    if (first === undefined) return;
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      const now = Date.now();
      while (this.#queue.length > 0 && this.#queue[0].at <= now) this.#release(this.#queue.shift()!);
      this.#armRelease();
    }, Math.max(0, first.at - Date.now()));
  }

  // ─── published side ───────────────────────────────────────────────────────

  #release({ ops, keys }: Release): void {
    if (this.#closed) return;
    const from = this.#doc.version;
    try {
      this.#doc.apply(ops);
    } catch (err) {
      return this.#fail(err as Error);
    }
    this.#snapshotText = undefined;
    if (this.#history === undefined) {
      // The base document.
      this.#history = new History(this.#doc.version, this.options.history);
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const { spectator, since } of waiting) this.join(spectator, since);
      return;
    }
    const version = this.#doc.version;
    const message: PatchMessage = keys ? { t: 'patch', from, version, n: 1, keys, ops } : { t: 'patch', from, version, n: 1, ops };
    const text = JSON.stringify(message);
    this.#history.push({ from, version, ops, keys, bytes: text.length });
    this.transactions++;
    const started = performance.now();
    for (const spectator of this.spectators) {
      if (spectator.version === from) spectator.deliver(text, version);
      else if (!spectator.lagging && spectator.version !== undefined) spectator.markLagging();
    }
    this.fanOutMs += performance.now() - started;
    for (const resume of this.#resumes) this.#tryResume(resume, false);
  }

  /** The snapshot message of the published document (serialized once per version). */
  snapshotText(): string {
    if (this.#snapshotText === undefined) {
      const message: SnapshotMessage = {
        t: 'snapshot',
        stream: this.stream.name,
        version: this.#doc.version,
        delayMs: this.delayMs,
        keys: this.#keys,
        data: this.#doc.data,
      };
      this.#snapshotText = JSON.stringify(message);
    }
    return this.#snapshotText;
  }

  // ─── spectators ───────────────────────────────────────────────────────────

  /** Starts serving a spectator: a snapshot, or (with `since`) the patches it missed. */
  join(spectator: Spectator, since: string | undefined): void {
    if (this.#closed) return;
    this.spectators.add(spectator);
    if (this.#history === undefined) {
      this.#waiting.push({ spectator, since });
      return;
    }
    if (since === undefined) return this.#sendSnapshot(spectator);
    const catchup = this.#history.since(since, this.options.maxBufferBytes);
    if (catchup) {
      this.resumes++;
      return this.#sendCatchup(spectator, catchup);
    }
    // Unknown version: this relay may be behind the one the spectator came from. Wait a little.
    const resume: PendingResume = {
      spectator,
      since,
      timer: setTimeout(() => this.#tryResume(resume, true), this.options.resumeWaitMs),
    };
    this.#resumes.add(resume);
  }

  #tryResume(resume: PendingResume, timedOut: boolean): void {
    if (!this.spectators.has(resume.spectator)) {
      clearTimeout(resume.timer);
      this.#resumes.delete(resume);
      return;
    }
    const catchup = this.#history!.since(resume.since, this.options.maxBufferBytes);
    if (!catchup && !timedOut) return;
    clearTimeout(resume.timer);
    this.#resumes.delete(resume);
    if (catchup) {
      this.resumes++;
      this.#sendCatchup(resume.spectator, catchup);
    } else this.#sendSnapshot(resume.spectator);
  }

  #sendSnapshot(spectator: Spectator): void {
    this.snapshotsSent++;
    spectator.deliver(this.snapshotText(), this.#doc.version, true);
  }

  #sendCatchup(spectator: Spectator, c: NonNullable<ReturnType<History['since']>>): void {
    const message: PatchMessage = c.keys
      ? { t: 'patch', from: c.from, version: c.version, n: c.n, keys: c.keys, ops: c.ops }
      : { t: 'patch', from: c.from, version: c.version, n: c.n, ops: c.ops };
    spectator.deliver(JSON.stringify(message), c.version, true);
  }

  /** Brings a spectator that fell behind up to the head: one folded patch, or a snapshot. */
  catchUp(spectator: Spectator): void {
    if (this.#history === undefined || spectator.version === undefined) return;
    if (spectator.version === this.#history.head) return;
    const c = this.#history.since(spectator.version, this.options.maxBufferBytes);
    if (c) this.#sendCatchup(spectator, c);
    else this.#sendSnapshot(spectator);
  }

  leave(spectator: Spectator): void {
    this.spectators.delete(spectator);
    this.#waiting = this.#waiting.filter((w) => w.spectator !== spectator);
    for (const r of this.#resumes) if (r.spectator === spectator) this.#tryResume(r, false);
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.options.onError(this, error);
    for (const s of [...this.spectators]) s.close(CloseCode.StreamFailed, `stream failed: ${error.message}`.slice(0, 120));
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscription.unsubscribe();
    if (this.#releaseTimer !== undefined) clearTimeout(this.#releaseTimer);
    for (const r of this.#resumes) clearTimeout(r.timer);
    this.#resumes.clear();
  }
}
