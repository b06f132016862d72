/**
 * The spectator client: watches one stream of a relay (see docs/spectator.md)
 * with the sync client's shapes — `table$`, `changes$`, `status$` — read-only.
 *
 * Browser-safe: it needs a WebSocket (the global one, undici's in Node 20, or
 * one passed in) and nothing else from the platform.
 *
 * @module
 */
import {
  BehaviorSubject,
  Observable,
  Subject,
  Subscription,
  asyncScheduler,
  defer,
  filter,
  from,
  map,
  switchMap,
  type SchedulerLike,
} from 'rxjs';
import type { DeltaOperation } from '../operators/jsonPatchDelta.ts';
import { heartbeat } from '../operators/heartbeat.ts';
import { unescapeKey, escapeKey, type JsonValue } from '../operators/jsonCodec.ts';
import { applyDelta, encodeValue } from '../streams/spacetimeJson.ts';
import { retryBackoff, type RetryBackoffConfig } from '../operators/retryBackoff.ts';
import { ConnectionLostError, withUserMessage, type PlayerFacingError } from '../streams/errors.ts';
import type { WebSocketCtor } from '../streams/socketAdapter.ts';
import { initialStatus, reduceStatus, type LifecycleEvent, type SyncStatus } from '../streams/status.ts';
import type { RowChange, RowKey } from '../streams/tableView.ts';
import type { KeyType, PatchMessage, RelayMessage, SnapshotMessage } from '../relay/protocol.ts';

/** Close codes after which the spectator stops instead of retrying (see `relay/protocol.ts`). */
const REFUSED_CODES: Record<number, SpectatorRefusedInfo['kind']> = {
  4400: 'bad-message',
  4401: 'unauthorized',
  4403: 'forbidden',
  4404: 'unknown-stream',
};

/** Why the relay refused a spectator. */
export interface SpectatorRefusedInfo {
  readonly kind: 'bad-message' | 'unauthorized' | 'forbidden' | 'unknown-stream';
  readonly code: number;
  readonly reason: string;
  readonly stream: string;
}

/**
 * The relay refused to serve this spectator (token, stream name, or a message
 * it could not understand). Not retried: `status$` goes `offline` with this
 * as `lastError` until `reconnectNow()`.
 */
export class SpectatorRefusedError extends Error {
  override readonly name = 'SpectatorRefusedError';
  constructor(readonly info: SpectatorRefusedInfo) {
    super(`relay refused stream ${info.stream}: ${info.reason || info.kind} (close ${info.code})`);
  }
}

/** What `status$` emits: the sync client's status plus the stream's delay, version and upstream state. */
export interface SpectatorStatus extends SyncStatus {
  /** The stream's broadcast delay in ms (0: live), once known. */
  readonly delayMs: number;
  /** The version the spectator's rows are at (undefined before the first snapshot). */
  readonly version: string | undefined;
  /** The relay's own connection to SpacetimeDB: `live`, or what it is doing instead. */
  readonly upstream: string;
}

/** Options of {@link createSpectator}. */
export interface SpectatorOptions {
  /** The relay's WebSocket URL, e.g. `ws://relay.example:4000`. */
  url: string | URL;
  /** The stream to watch, e.g. `match/7`. */
  stream: string;
  /** Token for the relay's `authorize` hook: a string or a function asked before every connection. @default none */
  token?: string | (() => string | Promise<string>);
  /**
   * Reconnect policy (`retryBackoff`).
   * @default { initialInterval: 500, maxInterval: 30_000, jitter: 'full' }
   */
  retry?: Partial<Omit<RetryBackoffConfig, 'onRetry' | 'resetOnSuccess' | 'scheduler'>>;
  /** Probe (a `ping` message) after `interval` ms of silence; reconnect when nothing comes within `timeout`. @default { interval: 15_000, timeout: 10_000 } */
  heartbeat?: { interval?: number; timeout?: number } | false;
  /** Time allowed from opening the socket to the first snapshot or patch. @default 15_000 */
  connectTimeout?: number;
  /** WebSocket implementation. @default global WebSocket, else undici's */
  WebSocket?: WebSocketCtor;
  /** Scheduler for retries and the heartbeat. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/** A read-only view of one relay stream. */
export interface Spectator {
  /** Connection status (replays the current one); completes on `close()`. */
  readonly status$: Observable<SpectatorStatus>;
  readonly status: SpectatorStatus;
  /** Errors that did not end anything (a lost connection before a retry, a desynchronised patch). */
  readonly errors$: Observable<Error>;
  /**
   * Rows of a stream table (the name the relay's stream definition gives it):
   * current rows first, then one snapshot per transaction. A name the stream
   * does not have errors with `SpectatorUnknownTableError` once the first
   * snapshot arrived.
   */
  table$<R = Record<string, unknown>>(name: string): Observable<ReadonlyMap<RowKey, R>>;
  /** Change batches, one per transaction; the first batch holds the current rows as inserts. */
  changes$<R = Record<string, unknown>>(name: string): Observable<readonly RowChange<R>[]>;
  /** Skip the retry wait (or leave `offline`) and connect now. */
  reconnectNow(): void;
  /** Closes the socket and completes every stream. */
  close(): Promise<void>;
}

let cachedCtor: WebSocketCtor | undefined;
async function resolveWebSocket(): Promise<WebSocketCtor> {
  if (cachedCtor) return cachedCtor;
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (g) return (cachedCtor = g);
  const specifier = 'undici';
  const mod = (await import(/* @vite-ignore */ specifier)) as { WebSocket: WebSocketCtor };
  return (cachedCtor = mod.WebSocket);
}

function keyParser(type: KeyType | undefined): (s: string) => RowKey {
  switch (type) {
    case 'bigint':
      return (s) => BigInt(s);
    case 'number':
      return Number;
    case 'boolean':
      return (s) => s === 'true';
    default:
      return (s) => s;
  }
}

/** Deep equality of JSON values, ignoring object key order. */
function sameJson(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as JsonValue[];
    return a.length === bb.length && a.every((v, i) => sameJson(v, bb[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, JsonValue>;
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && sameJson((a as Record<string, JsonValue>)[k], bo[k]));
}

/** One table's rows, rebuilt from the relay's operations with `applyDelta`. */
class TableState {
  readonly rows$ = new BehaviorSubject<ReadonlyMap<RowKey, any> | undefined>(undefined);
  readonly changes = new Subject<readonly RowChange<any>[]>();
  keyType: KeyType | undefined;
  #input!: Subject<readonly DeltaOperation[]>;
  #pipeline: Subscription | undefined;
  #failure: unknown;

  constructor() {
    this.#build();
  }

  get rows(): ReadonlyMap<RowKey, any> {
    return this.rows$.value ?? new Map();
  }

  #build(): void {
    this.#pipeline?.unsubscribe();
    this.#input = new Subject();
    this.#failure = undefined;
    this.#pipeline = this.#input.pipe(applyDelta<RowKey, any>({ keyFromString: (s) => keyParser(this.keyType)(s) })).subscribe({
      next: (rows) => this.#emit(rows),
      error: (err) => (this.#failure = err),
    });
  }

  /** Applies table-relative operations; throws when they do not apply (the rows stay as they were). */
  apply(ops: readonly DeltaOperation[]): void {
    const before = this.rows;
    this.#input.next(ops);
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      // Rebuild the pipeline on the last good rows.
      this.#build();
      const seed = [...before].map(([k, row]) => ({ op: 'add' as const, path: `/${escapeKey(String(k))}`, value: encodeValue(row) }));
      const current = this.rows$.value;
      this.#silent = true;
      this.#input.next(seed);
      this.#silent = false;
      if (current === undefined) this.rows$.next(undefined);
      throw failure;
    }
  }

  #silent = false;

  #emit(next: ReadonlyMap<RowKey, any>): void {
    if (this.#silent) return;
    const prev = this.rows$.value;
    const batch: RowChange<any>[] = [];
    if (prev === undefined) {
      for (const [key, row] of next) batch.push({ op: 'insert', key, oldRow: undefined, newRow: row });
    } else if (next !== prev) {
      for (const [key, row] of next) {
        if (!prev.has(key)) batch.push({ op: 'insert', key, oldRow: undefined, newRow: row });
        else if (prev.get(key) !== row) batch.push({ op: 'update', key, oldRow: prev.get(key), newRow: row });
      }
      for (const [key, row] of prev) if (!next.has(key)) batch.push({ op: 'delete', key, oldRow: row, newRow: undefined });
    }
    this.rows$.next(next);
    if (prev === undefined || batch.length > 0) this.changes.next(batch);
  }

  /** Operations turning the current rows into `doc` (only what differs). */
  diffTo(doc: Record<string, JsonValue>): DeltaOperation[] {
    const ops: DeltaOperation[] = [];
    const current = this.rows$.value;
    const seen = new Set<string>();
    for (const [k, row] of current ?? []) {
      const ks = String(k);
      seen.add(ks);
      const path = `/${escapeKey(ks)}`;
      if (!Object.prototype.hasOwnProperty.call(doc, ks)) ops.push({ op: 'remove', path });
      else if (!sameJson(encodeValue(row), doc[ks])) ops.push({ op: 'replace', path, value: doc[ks] });
    }
    for (const ks of Object.keys(doc)) if (!seen.has(ks)) ops.push({ op: 'add', path: `/${escapeKey(ks)}`, value: doc[ks] });
    return ops;
  }

  complete(): void {
    this.#pipeline?.unsubscribe();
    this.rows$.complete();
    this.changes.complete();
  }

  fail(error: Error): void {
    this.#pipeline?.unsubscribe();
    this.rows$.error(error);
    this.changes.error(error);
  }
}

/** `table$`/`changes$` named a table the stream does not have. */
export class SpectatorUnknownTableError extends Error {
  override readonly name = 'SpectatorUnknownTableError';
  constructor(readonly info: { readonly stream: string; readonly table: string; readonly tables: readonly string[] }) {
    super(`stream ${info.stream} has no table ${JSON.stringify(info.table)} (it has ${info.tables.map((t) => JSON.stringify(t)).join(', ')})`);
  }
}

/** A patch or snapshot did not fit the rows the spectator has. */
export class SpectatorDesyncError extends Error {
  override readonly name = 'SpectatorDesyncError';
  constructor(message: string, readonly info: { readonly stream: string; readonly expected: string | undefined; readonly from: string }) {
    super(message);
  }
}

/**
 * Watch a relay stream. Connects at once and keeps connecting (with
 * `retryBackoff`) until `close()`, resuming from the last version it saw.
 *
 * ```ts
 * const spectator = createSpectator({ url: 'ws://localhost:4000', stream: 'match/7' });
 * spectator.table$('members').subscribe((members) => drawScores(members));
 * spectator.status$.subscribe((s) => badge(s.state, s.delayMs));
 * ```
 */
export function createSpectator(options: SpectatorOptions): Spectator {
  if (!options || (typeof options.url !== 'string' && !(options.url instanceof URL))) throw new TypeError('createSpectator: `url` must be the relay\'s ws:// URL.');
  if (typeof options.stream !== 'string' || options.stream.length === 0) throw new TypeError('createSpectator: `stream` must be a stream name, e.g. "match/7".');
  const url = String(options.url);
  const stream = options.stream;
  const scheduler = options.scheduler ?? asyncScheduler;
  const hb = options.heartbeat === false ? undefined : { interval: 15_000, timeout: 10_000, ...options.heartbeat };
  const connectTimeout = options.connectTimeout ?? 15_000;
  const retry = { initialInterval: 500, maxInterval: 30_000, jitter: 'full' as const, ...options.retry };

  const tables = new Map<string, TableState>();
  const errors$ = new Subject<Error>();
  let version: string | undefined;
  let delayMs = 0;
  let upstream = 'live';
  let shown = false;
  let connection = 0;
  let base: SyncStatus = { ...initialStatus(Date.now()), lastError: null, stale: false, storage: 'none' };
  const status$ = new BehaviorSubject<SpectatorStatus>({ ...base, delayMs, version, upstream });
  const publish = () => status$.next({ ...base, stale: shown && base.state !== 'live', delayMs, version, upstream });
  /** Whether this spectator was ever live: failures before that read "Can't reach the server". */
  let everLive = false;
  const lifecycle = (e: LifecycleEvent) => {
    if (e.type === 'lost' || e.type === 'failed' || e.type === 'offline') withUserMessage(e.error, { connectedBefore: everLive });
    const next = reduceStatus(base, e);
    if (next.state === 'live') everLive = true;
    // The error was given its userMessage above (withUserMessage sets it on the error itself).
    base = { ...base, ...next, lastError: next.lastError as PlayerFacingError | null };
    publish();
  };

  /** The stream's tables, once the first snapshot named them. */
  let known: readonly string[] | undefined;
  const tableState = (name: string) => {
    let t = tables.get(name);
    if (!t) {
      tables.set(name, (t = new TableState()));
      if (known && !known.includes(name)) t.fail(new SpectatorUnknownTableError({ stream, table: name, tables: known }));
    }
    return t;
  };

  function applySnapshot(m: SnapshotMessage): void {
    delayMs = m.delayMs;
    if (!known) {
      known = Object.keys(m.data);
      for (const [name, t] of tables) if (!known.includes(name)) t.fail(new SpectatorUnknownTableError({ stream, table: name, tables: known }));
    }
    for (const [name, kt] of Object.entries(m.keys ?? {})) tableState(name).keyType = kt;
    for (const [name, doc] of Object.entries(m.data)) {
      const t = tableState(name);
      const ops = t.diffTo(doc);
      if (ops.length > 0 || t.rows$.value === undefined) t.apply(ops);
    }
    version = m.version;
    shown = true;
  }

  function applyPatch(m: PatchMessage): void {
    if (m.from !== version) {
      throw new SpectatorDesyncError(`patch from ${m.from} does not follow version ${version ?? '(none)'}`, { stream, expected: version, from: m.from });
    }
    for (const [name, kt] of Object.entries(m.keys ?? {})) tableState(name).keyType = kt;
    const byTable = new Map<string, DeltaOperation[]>();
    for (const op of m.ops) {
      const slash = op.path.indexOf('/', 1);
      if (slash === -1) throw new SpectatorDesyncError(`patch path ${op.path} names no row`, { stream, expected: version, from: m.from });
      const name = unescapeKey(op.path.slice(1, slash));
      let list = byTable.get(name);
      if (!list) byTable.set(name, (list = []));
      list.push({ ...op, path: op.path.slice(slash) } as DeltaOperation);
    }
    for (const [name, ops] of byTable) tableState(name).apply(ops);
    version = m.version;
  }

  /** One connection: opens, watches, applies messages; errors when it ends. Emits after every applied message. */
  const session = (WebSocketImpl: WebSocketCtor) =>
    new Observable<void>((subscriber) => {
      const id = ++connection;
      lifecycle({ type: 'connecting', at: Date.now() });
      let ws: WebSocket;
      try {
        ws = new WebSocketImpl(url);
      } catch (err) {
        subscriber.error(err);
        return;
      }
      const activity$ = new Subject<void>();
      const subs = new Subscription();
      let synced = false;
      let ended = false;
      const fail = (err: Error) => {
        if (ended) return;
        ended = true;
        if (!(err instanceof SpectatorRefusedError)) {
          errors$.next(err);
          lifecycle({ type: 'lost', at: Date.now(), error: err });
        }
        subscriber.error(err);
      };
      const timer = scheduler.schedule(
        () => fail(new ConnectionLostError(`no snapshot from the relay within ${connectTimeout} ms`, { reason: 'connect-failed' })),
        connectTimeout,
      );
      subs.add(timer);
      ws.onopen = () => {
        lifecycle({ type: 'opened', at: Date.now() });
        const token = options.token;
        void Promise.resolve(typeof token === 'function' ? token() : token).then(
          (tok) => {
            if (ended || id !== connection) return;
            lifecycle({ type: 'connected', at: Date.now(), identity: undefined as never, token: '' });
            ws.send(JSON.stringify({ t: 'watch', stream, ...(version ? { since: version } : {}), ...(tok ? { token: tok } : {}) }));
          },
          (err) => fail(err instanceof Error ? err : new Error(String(err))),
        );
        if (hb) {
          subs.add(
            activity$.pipe(heartbeat({ interval: hb.interval, timeout: hb.timeout, scheduler, probe: () => ws.send('{"t":"ping"}') })).subscribe({
              error: (err) => fail(err),
            }),
          );
        }
      };
      ws.onmessage = (ev: MessageEvent) => {
        if (ended) return;
        activity$.next();
        let message: RelayMessage;
        try {
          message = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)) as RelayMessage;
          if (message.t === 'snapshot') applySnapshot(message);
          else if (message.t === 'patch') applyPatch(message);
          else if (message.t === 'upstream') {
            upstream = message.state;
            publish();
            return;
          } else return;
        } catch (err) {
          // A message that does not fit our rows: start over from a snapshot.
          version = undefined;
          const error = err instanceof Error ? err : new Error(String(err));
          ws.close(4000, 'desync');
          fail(error);
          return;
        }
        if (!synced) {
          synced = true;
          timer.unsubscribe();
          if (upstream !== 'live' && message.t === 'snapshot') upstream = 'live';
          lifecycle({ type: 'synced', at: Date.now() });
        } else publish();
        subscriber.next();
      };
      ws.onclose = (ev: CloseEvent) => {
        const kind = REFUSED_CODES[ev.code];
        if (kind) fail(new SpectatorRefusedError({ kind, code: ev.code, reason: ev.reason, stream }));
        else fail(new ConnectionLostError(`relay connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`, { reason: 'close' }));
      };
      ws.onerror = () => {
        /* the close event follows with the details */
      };
      return () => {
        ended = true;
        subs.unsubscribe();
        ws.onopen = ws.onmessage = ws.onclose = null;
        ws.onerror = () => {};
        if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000, 'spectator closed');
      };
    });

  let closed = false;
  const start = () =>
    from(options.WebSocket ? Promise.resolve(options.WebSocket) : resolveWebSocket())
      .pipe(
        switchMap((WS) =>
          defer(() => session(WS)).pipe(
            retryBackoff({
              ...retry,
              resetOnSuccess: true,
              scheduler,
              shouldRetry: (err) => !(err instanceof SpectatorRefusedError),
              onRetry: ({ attempt, delay }) => lifecycle({ type: 'retry-scheduled', at: Date.now(), attempt, delay }),
            }),
          ),
        ),
      )
      .subscribe({
        error: (err: Error) => {
          if (!closed) lifecycle({ type: 'failed', at: Date.now(), error: err });
        },
      });
  let mainSub = start();

  return {
    status$: status$.asObservable(),
    get status() {
      return status$.value;
    },
    errors$: errors$.asObservable(),
    table$<R>(name: string) {
      return tableState(name).rows$.pipe(filter((rows): rows is ReadonlyMap<RowKey, R> => rows !== undefined));
    },
    changes$<R>(name: string) {
      return defer(() => {
        const t = tableState(name);
        const current = t.rows$.value;
        const first: readonly RowChange<R>[] | undefined = current
          ? [...current].map(([key, row]) => ({ op: 'insert' as const, key, oldRow: undefined, newRow: row as R }))
          : undefined;
        return new Observable<readonly RowChange<R>[]>((subscriber) => {
          if (first) subscriber.next(first);
          return (t.changes as Subject<readonly RowChange<R>[]>).pipe(map((b) => b)).subscribe(subscriber);
        });
      });
    },
    reconnectNow() {
      if (closed) return;
      mainSub.unsubscribe();
      mainSub = start();
    },
    async close() {
      if (closed) return;
      closed = true;
      mainSub.unsubscribe();
      lifecycle({ type: 'closed', at: Date.now() });
      status$.complete();
      errors$.complete();
      for (const t of tables.values()) t.complete();
    },
  };
}

