/**
 * The stdb-rx dev server: hosts one SpacetimeDB TypeScript module and serves
 * it over SpacetimeDB's HTTP and WebSocket protocol (v2/v3 BSATN) to the
 * unmodified official SDK.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { basename, dirname, extname, resolve } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConnectionId, Identity, Timestamp, TimeDuration, BinaryWriter } from 'spacetimedb';
import { AuthError, identityFromClaims, TokenAuthority, type VerifiedToken } from './auth.ts';
import { ModuleInstance, type HostLogger, type LogLevel, type ReducerOutcome } from './host/instance.ts';
import { DataDir, type RecoveredState } from './persistence.ts';
import { migrateRows, MigrationRefusedError, planMigration } from './host/migrate.ts';
import { watchModule, type ModuleWatcher, type ReloadEvent } from './watch.ts';
import { DelayQueue, DevServerFaults, FaultState } from './faults.ts';
import type { ReducerDesc } from './host/moduleDef.ts';
import { Scheduler, systemClock, type DevClock, type DueSchedule } from './host/scheduler.ts';
import type { ProcedureOutcome } from './host/procedures.ts';
import { negotiateProtocol, parseCompression, ServerFrameBatcher, decodeClientFrame, type Compression, type WsProtocol } from './protocol/framing.ts';
import { ProtocolDecodeError, encodeServerMessage, type ClientMessage, type ServerMessage } from './protocol/messages.ts';
import { SqlError } from './sql/errors.ts';
import { accessFor, compileQuerySet, querySetRows, TransactionEffects, type Access, type QuerySet } from './subscriptions.ts';
import { ViewError } from './views.ts';
import { bearer, decodePathSegment, handleDatabaseApi, type HttpApiHost } from './httpApi.ts';
import type { ChangeSet } from './types.ts';

export interface DevServerOptions {
  /** Path of the module file (TypeScript written against `spacetimedb/server`). */
  readonly module: string;
  /** Port to listen on; 0 picks a free one. @default 3000 */
  readonly port?: number;
  /** Interface to bind. @default '127.0.0.1' */
  readonly host?: string;
  /** Database name clients connect to. @default derived from the module file name */
  readonly database?: string;
  /** Where log lines go. @default silent */
  readonly logger?: HostLogger;
  /** Incoming WebSocket message cap in bytes; larger messages close the socket with 1011. @default 32 MiB */
  readonly maxMessageBytes?: number;
  /**
   * Folder for durable state: the commit log, snapshots and the token
   * signing key. Without it the server keeps everything in memory.
   */
  readonly dataDir?: string;
  /** Serve the fault-injection endpoints under `/_dev/` (to loopback callers only). @default false */
  readonly admin?: boolean;
  /** WebSocket ping interval. @default 15000 */
  readonly pingIntervalMs?: number;
  /** Close a socket that sent nothing (not even a pong) for this long. @default 30000 */
  readonly idleTimeoutMs?: number;
  /**
   * Disconnect a client whose unsent data (including frames held back by
   * injected latency) exceeds this (it stopped reading). Also the most a
   * connection's incoming frames held back by latency may take: over it, the
   * server stops reading that socket until they drain. @default 16 MiB
   */
  readonly maxSendQueueBytes?: number;
  /** Largest HTTP request body accepted. @default 64 KiB */
  readonly maxHttpBodyBytes?: number;
  /** Take a snapshot (and restart the commit log) after this many transactions. @default 1000 */
  readonly snapshotEvery?: number;
  /**
   * Time source for reducer timestamps and scheduled tables. Tests pass a
   * `ManualClock` and move it with `advance(ms)` instead of sleeping.
   * @default the wall clock
   */
  readonly clock?: DevClock;
  /**
   * Reload the module when its file (or a file it imports) changes, keeping
   * the data when SpacetimeDB would migrate the change automatically. @default false
   */
  readonly watch?: boolean;
  /**
   * Identity (hex) of the database owner, as the one who publishes a database
   * on SpacetimeDB: its clients read private tables and no client visibility
   * filter applies to them. @default no owner: every client is filtered
   */
  readonly owner?: string;
}

export interface DevServerStats {
  connections: number;
  subscriptions: number;
  transactionsCommitted: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Frames swallowed by a blackhole, both ways. */
  framesDropped: number;
  /** Sockets closed by the server's limits (idle, oversized, slow reader). */
  limitCloses: number;
  /** Bytes currently held back by injected latency, both ways, all connections. */
  delayedBytes: number;
  restarts: number;
}

/** Derive a database name from a module path: `demo/arena/module.ts` → `arena`, `chat.ts` → `chat`. */
export function databaseNameFor(modulePath: string): string {
  const base = basename(modulePath, extname(modulePath)).replace(/\.module$/, '');
  const name = base === 'module' || base === 'index' ? basename(dirname(resolve(modulePath))) : base;
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
}

/** Header every `POST /_dev/…` must carry (see {@link DevServer} admin). */
export const ADMIN_HEADER = 'x-stdb-rx-admin';

const CLOSE_INTERNAL_ERROR = 1011;
const CLOSE_POLICY = 1008;

interface Connection {
  readonly id: ConnectionId;
  readonly identity: Identity;
  readonly token: string;
  readonly jwtPayload: string;
  readonly ws: WebSocket;
  readonly protocol: WsProtocol;
  readonly batcher: ServerFrameBatcher;
  readonly querySets: Map<number, QuerySet>;
  /** Frames held back by injected latency, each way. */
  readonly outDelay: DelayQueue<Uint8Array>;
  readonly inDelay: DelayQueue<Buffer>;
  /** Time of the last frame or pong from the client. */
  lastSeen: number;
  /** Set when the socket lived through a blackhole: it is closed when the blackhole ends. */
  blackholed: boolean;
  flushScheduled: boolean;
  closed: boolean;
}

export class DevServer {
  readonly database: string;
  /** Fault injection: see {@link DevServerFaults}. */
  readonly faults: DevServerFaults;
  readonly #options: DevServerOptions;
  readonly #databaseIdentity: Identity;
  #module: ModuleInstance;
  #watcher: ModuleWatcher | undefined;
  readonly #reloadListeners = new Set<(event: ReloadEvent) => void>();
  #reloading: Promise<ReloadEvent> | undefined;
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  readonly #auth: TokenAuthority;
  readonly #data: DataDir | undefined;
  readonly #log: HostLogger;
  readonly #connections = new Set<Connection>();
  readonly #faultState = new FaultState();
  readonly #held = new Set<Duplex>();
  #blackholeTimer: ReturnType<typeof setTimeout> | undefined;
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  readonly #stats: DevServerStats = {
    connections: 0,
    subscriptions: 0,
    transactionsCommitted: 0,
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    framesDropped: 0,
    limitCloses: 0,
    delayedBytes: 0,
    restarts: 0,
  };
  #recovery: RecoveredState | undefined;
  #scheduler: Scheduler | undefined;
  readonly #clock: DevClock;
  #port = 0;
  readonly #host: string;

  private constructor(options: DevServerOptions, module: ModuleInstance, auth: TokenAuthority, data: DataDir | undefined, database: string, databaseIdentity: Identity) {
    this.#options = options;
    this.#module = module;
    this.database = database;
    this.#databaseIdentity = databaseIdentity;
    this.#auth = auth;
    this.#data = data;
    this.#log = options.logger ?? { log: () => {} };
    this.#host = options.host ?? '127.0.0.1';
    this.#clock = options.clock ?? systemClock;
    this.faults = new DevServerFaults(this.#faultState, {
      dropAll: () => this.#dropAll(),
      startBlackhole: (ms) => this.#startBlackhole(ms),
      endBlackhole: () => this.#endBlackhole(),
      restart: () => this.restart(),
    });
  }

  static async start(options: DevServerOptions): Promise<DevServer> {
    if (options.owner !== undefined && !/^(0x)?[0-9a-fA-F]{64}$/.test(options.owner)) {
      throw new TypeError(`owner must be an identity as 64 hex digits, got ${JSON.stringify(options.owner)}`);
    }
    const database = options.database ?? databaseNameFor(options.module);
    const databaseIdentity = identityFromClaims('stdb-rx-devserver', `database:${database}`);
    const data = options.dataDir ? new DataDir(options.dataDir) : undefined;
    const auth = options.dataDir ? TokenAuthority.fromDataDir(options.dataDir) : TokenAuthority.ephemeral();
    const module = await ModuleInstance.load(options.module, { databaseIdentity, logger: options.logger });
    const server = new DevServer(options, module, auth, data, database, databaseIdentity);
    void server.#access; // refuse a module whose visibility filters are invalid before serving anything
    const fresh = server.#recover();
    server.#startScheduler();
    if (fresh) server.#runLifecycle('init', Identity.zero(), null);
    await server.#listen(options.port ?? 3000);
    if (options.watch) server.#watcher = await watchModule(options.module, () => server.reload());
    return server;
  }

  /** Be told about every reload (`--watch` or {@link reload}); returns the unsubscribe function. */
  onReload(listener: (event: ReloadEvent) => void): () => void {
    this.#reloadListeners.add(listener);
    return () => this.#reloadListeners.delete(listener);
  }

  /**
   * Rebuild and load the module file again. When the schema change is one
   * SpacetimeDB migrates automatically, every client is disconnected (they
   * reconnect), the rows move to the new version (added columns get their
   * defaults) and the new version serves from then on; otherwise the
   * previous version keeps running and the event says why.
   */
  reload(): Promise<ReloadEvent> {
    const job = (this.#reloading ?? Promise.resolve()).then(() => this.#reloadNow());
    this.#reloading = job;
    return job;
  }

  async #reloadNow(): Promise<ReloadEvent> {
    const emit = (event: ReloadEvent) => {
      if (event.status === 'reloaded') this.#logLine('info', `module reloaded: ${event.steps.length ? event.steps.join('; ') : 'no schema change'}`);
      else if (event.status === 'refused') {
        this.#logLine('error', `module change refused, still running the previous version: ${event.reasons.join('; ')}. Undo the change, or stop the server and start over without the old data.`);
      } else this.#logLine('error', `module reload failed, still running the previous version: ${event.error}`);
      for (const l of this.#reloadListeners) l(event);
      return event;
    };
    let next: ModuleInstance;
    try {
      next = await ModuleInstance.load(this.#options.module, { databaseIdentity: this.#databaseIdentity, logger: this.#options.logger });
    } catch (e) {
      return emit({ status: 'failed', error: e instanceof Error ? e.message : String(e) });
    }
    const old = this.#module;
    try {
      const plan = planMigration(old.description, next.description, next.describeRaw());
      // Clients first: their disconnect reducers run on the version they used.
      this.#dropAll();
      migrateRows(old.datastore, next.datastore, plan);
      this.#module = next;
      old.dispose();
      // The scheduler reads the schedule tables of the version it was armed for: re-arm it on the new one.
      this.#startScheduler();
      if (this.#data) this.#data.snapshot(next.datastore.allRows());
      return emit({ status: 'reloaded', steps: plan.steps });
    } catch (e) {
      next.dispose();
      if (e instanceof MigrationRefusedError) return emit({ status: 'refused', reasons: e.info.reasons });
      return emit({ status: 'failed', error: e instanceof Error ? e.message : String(e) });
    }
  }

  /** The hosted module (a new instance after a restart with a data folder). */
  get module(): ModuleInstance {
    return this.#module;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return `http://${host}:${this.#port}`;
  }

  /** The `ws://` address the SDK's `withUri` takes. */
  get wsUrl(): string {
    return this.url.replace(/^http/, 'ws');
  }

  /** What the last start recovered from the data folder. */
  get recovery(): RecoveredState | undefined {
    return this.#recovery;
  }

  stats(): DevServerStats {
    let subs = 0;
    let delayed = 0;
    for (const c of this.#connections) {
      subs += c.querySets.size;
      delayed += c.inDelay.bytes + c.outDelay.bytes;
    }
    return { ...this.#stats, connections: this.#connections.size, subscriptions: subs, delayedBytes: delayed };
  }

  /** Load the data folder into the datastore; true when there was nothing (a new database). */
  #recover(): boolean {
    if (!this.#data) return true;
    const rec = this.#data.recover();
    this.#recovery = rec;
    const ds = this.#module.datastore;
    for (const [table, rows] of rec.tables) {
      const t = ds.tableByName(table);
      if (!t) {
        this.#logLine('warn', `the data folder has rows of table ${table}, which the module no longer declares; they are ignored`);
        continue;
      }
      for (const bytes of rows) ds.restoreRow(t.desc.id, bytes);
    }
    ds.resyncSequences();
    if (rec.truncated) {
      this.#logLine(
        'warn',
        `commit log: ${rec.truncated.reason} at byte ${rec.truncated.atByte}; cut off ${rec.truncated.droppedBytes} bytes, kept every transaction before it`,
      );
    }
    if (rec.existed) this.#logLine('info', `recovered transaction ${rec.txOffset} (${rec.replayed} replayed from the commit log)`);
    return !rec.existed;
  }

  #listen(port: number): Promise<void> {
    const http = createServer((req, res) => this.#onRequest(req, res));
    const wss = new WebSocketServer({
      noServer: true,
      // ws stops reading a message as soon as its header says it is over the
      // cap; #onConnection makes that close 1011 with a reason, like ours.
      // (ws coerces maxPayload to an int32: keep it positive.)
      maxPayload: Math.min(this.#maxMessageBytes, 2 ** 31 - 1),
      // Text frames are refused (1011) whatever they hold; don't let invalid UTF-8 get 1007 first.
      skipUTF8Validation: true,
      perMessageDeflate: false,
      autoPong: false,
      handleProtocols: (protocols) => negotiateProtocol(protocols) ?? false,
    });
    http.on('upgrade', (req, socket, head) => {
      try {
        this.#onUpgrade(req, socket, head);
      } catch (e) {
        // A bug here must not crash the process for every other client.
        this.#logLine('error', `upgrade ${requestUrl(req.url)?.pathname ?? '(bad target)'}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        socket.destroy();
      }
    });
    this.#http = http;
    this.#wss = wss;
    const interval = this.#options.pingIntervalMs ?? 15_000;
    this.#pingTimer = setInterval(() => this.#liveness(), interval);
    this.#pingTimer.unref();
    return new Promise((resolveListen, reject) => {
      http.once('error', reject);
      http.listen(port, this.#host, () => {
        http.off('error', reject);
        const addr = http.address();
        this.#port = typeof addr === 'object' && addr ? addr.port : port;
        resolveListen();
      });
    });
  }

  get #maxMessageBytes(): number {
    return this.#options.maxMessageBytes ?? 32 * 1024 * 1024;
  }

  /** Close every connection (running clientDisconnected for each) and stop listening. */
  async #shutdown(): Promise<void> {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#endBlackhole();
    for (const c of [...this.#connections]) {
      c.ws.terminate();
      this.#onClose(c);
    }
    const wss = this.#wss;
    const http = this.#http;
    this.#wss = undefined;
    this.#http = undefined;
    if (wss) await new Promise<void>((r) => wss.close(() => r()));
    if (http) {
      const closed = new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      await closed;
    }
  }

  /** Close every connection and stop listening. Committed state stays in the data folder. */
  async stop(): Promise<void> {
    this.#scheduler?.stop();
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#reloading?.catch(() => undefined);
    await this.#shutdown();
    this.#data?.close();
    this.#module.dispose();
  }

  /**
   * Stop and start again on the same port. With a data folder the module is
   * loaded afresh and its state recovered from disk, as after a real restart;
   * without one the in-memory state is kept.
   */
  async restart(): Promise<void> {
    this.#scheduler?.stop();
    await this.#reloading?.catch(() => undefined);
    await this.#shutdown();
    this.#stats.restarts++;
    if (this.#data) {
      this.#data.close();
      this.#module.dispose();
      this.#module = await ModuleInstance.load(this.#options.module, { databaseIdentity: this.#databaseIdentity, logger: this.#options.logger });
      this.#recover();
    }
    this.#startScheduler();
    await this.#listen(this.#port);
    this.#logLine('info', `restarted on port ${this.#port}`);
  }

  /** What the HTTP database API (sql, call, schema) needs from the server. */
  get #httpApiHost(): HttpApiHost {
    return {
      database: this.database,
      module: this.#module,
      access: this.#access,
      authenticate: async (token) => (token ? { ...(await this.#auth.verify(token)), token } : this.#auth.mint()),
      asConnection: (caller, fn) => {
        const id = new ConnectionId(randomU128());
        const jwt = JSON.stringify(caller.claims);
        const connected = this.#runLifecycle('onConnect', caller.identity, id, jwt);
        if (connected && connected.status === 'failed') return { refused: connected.message };
        try {
          return { value: fn(id) };
        } finally {
          this.#runLifecycle('onDisconnect', caller.identity, id, jwt);
        }
      },
      runReducer: (reducer, caller, connectionId, args) => this.#runInternal(reducer, caller.identity, connectionId, args, JSON.stringify(caller.claims)),
    };
  }

  /** Visibility filters, views and owner of the hosted module. */
  get #access(): Access {
    return accessFor(this.#module, this.#options.owner ? Identity.fromString(this.#options.owner) : undefined);
  }

  #logLine(level: LogLevel, message: string) {
    this.#log.log(level, message);
  }

  // ---- faults -------------------------------------------------------------

  #dropAll(): number {
    const all = [...this.#connections];
    for (const c of all) {
      c.ws.terminate();
      this.#onClose(c);
    }
    return all.length;
  }

  #startBlackhole(ms: number) {
    this.#faultState.blackholeUntil = Date.now() + ms;
    for (const c of this.#connections) c.blackholed = true;
    if (this.#blackholeTimer) clearTimeout(this.#blackholeTimer);
    this.#blackholeTimer = setTimeout(() => this.#endBlackhole(), ms);
    this.#logLine('info', `blackhole for ${ms} ms`);
  }

  #endBlackhole() {
    if (this.#blackholeTimer) clearTimeout(this.#blackholeTimer);
    this.#blackholeTimer = undefined;
    this.#faultState.blackholeUntil = 0;
    for (const c of [...this.#connections]) {
      if (c.blackholed) {
        c.ws.terminate();
        this.#onClose(c);
      }
    }
    for (const s of this.#held) s.destroy();
    this.#held.clear();
  }

  /** Hold a request's socket while a blackhole lasts; true when held. */
  #holdIfBlackholed(socket: Duplex): boolean {
    if (!this.#faultState.blackholed()) return false;
    this.#held.add(socket);
    socket.once('close', () => this.#held.delete(socket));
    return true;
  }

  // ---- HTTP ---------------------------------------------------------------

  #onRequest(req: IncomingMessage, res: ServerResponse) {
    const url = requestUrl(req.url);
    // The fault endpoints are never subject to the faults they control: a blackhole must be endable.
    if (!url?.pathname.startsWith('/_dev/') && this.#holdIfBlackholed(req.socket)) return;
    // The public API answers pages of any origin, as SpacetimeDB does: a browser
    // app exchanges its token (POST with Authorization) before every connection.
    // The admin endpoints (`/_dev/`) stay same-origin.
    const cors = url?.pathname.startsWith('/v1/') ?? false;
    if (cors) {
      res.setHeader('access-control-allow-origin', '*');
      if (req.method === 'OPTIONS') {
        res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
        res.setHeader('access-control-allow-headers', String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'));
        res.setHeader('access-control-max-age', '600');
      }
    }
    const send = (status: number, body?: unknown, headers?: Record<string, string>) => {
      if (res.headersSent) return;
      const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' || body === undefined ? 'text/plain' : 'application/json', ...headers });
      res.end(text);
    };
    const limit = this.#options.maxHttpBodyBytes ?? 64 * 1024;
    const chunks: Buffer[] = [];
    let received = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit && !refused) {
        refused = true;
        res.setHeader('connection', 'close');
        send(413, `request body over ${limit} bytes`);
        req.destroy();
      } else if (!refused) {
        chunks.push(chunk);
      }
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (refused) return;
      if (!url) return send(400, 'malformed request target');
      try {
        this.#route(req, url, send, Buffer.concat(chunks));
      } catch (e) {
        this.#logLine('error', `HTTP ${req.method} ${url.pathname}: ${String(e)}`);
        send(500, 'internal error');
      }
    });
  }

  #route(req: IncomingMessage, url: URL, send: (status: number, body?: unknown, headers?: Record<string, string>) => void, body: Buffer) {
    const path = url.pathname;
    const api = path.startsWith('/v1/database/') && req.method !== 'OPTIONS' ? handleDatabaseApi(this.#httpApiHost, req, url, body) : undefined;
    if (api) {
      void api.then(
        (reply) => send(reply.status, reply.body, { ...reply.headers, 'content-type': reply.contentType }),
        (e) => {
          this.#logLine('error', `HTTP ${req.method} ${path}: ${String(e)}`);
          send(500, 'internal error');
        },
      );
      return;
    }
    if (path.startsWith('/_dev/')) return this.#admin(req, url, send);
    if (req.method === 'OPTIONS' && path.startsWith('/v1/')) return send(204); // CORS preflight (headers set in #onRequest)
    if (path === '/v1/ping' && req.method === 'GET') return send(200);
    const route = /^\/v1\/database\/([^/]+)\/route(?:\/.*)?$/.exec(path);
    if (route) return this.#moduleRoute(decodePathSegment(route[1]), send);
    if (path === '/v1/identity' && req.method === 'POST') {
      void this.#auth.mint().then(
        (minted) => send(200, { identity: minted.identity.toHexString(), token: minted.token }),
        (e) => send(500, `could not mint a token: ${String(e)}`),
      );
      return;
    }
    if (path === '/v1/identity/websocket-token' && req.method === 'POST') {
      const token = bearer(req);
      if (!token) return send(401, 'Authorization: Bearer <token> required');
      void this.#auth.shortLived(token).then(
        (short) => send(200, { token: short }),
        (e) => send(401, e instanceof AuthError ? e.message : 'invalid token'),
      );
      return;
    }
    const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(path);
    if (m) {
      if (decodePathSegment(m[1]) !== this.database) return send(404, `no such database: ${m[1]}`);
      return send(400, 'expected a WebSocket upgrade');
    }
    return send(404, 'not found');
  }

  /** `/_dev/…`: the fault controls over HTTP, for the demo page. Loopback callers only. */
  /** `/v1/database/:name/route/…`: a module's own HTTP routes, which the dev server does not serve. */
  #moduleRoute(name: string | undefined, send: (status: number, body?: unknown) => void) {
    if (name !== this.database && name !== this.#databaseIdentity.toHexString()) return send(404, `no such database: ${name ?? '(malformed)'}`);
    const { httpRoutes } = this.#module.description;
    const declared = httpRoutes.length > 0 ? `the module declares ${httpRoutes.map((r) => `${r.method} ${r.path}`).join(', ')}` : 'the module declares none';
    return send(501, `module HTTP routes are not served by the stdb-rx dev server (${declared})`);
  }

  #admin(req: IncomingMessage, url: URL, send: (status: number, body?: unknown) => void) {
    if (!this.#options.admin) return send(404, 'not found');
    if (!isLoopback(req.socket.remoteAddress)) return send(403, 'the dev server admin endpoints answer loopback callers only');
    const num = (name: string, fallback?: number) => {
      const v = url.searchParams.get(name);
      if (v === null) {
        if (fallback === undefined) throw new RangeError(`missing query parameter ${name}`);
        return fallback;
      }
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`query parameter ${name} must be a non-negative number`);
      return n;
    };
    const op = url.pathname.slice('/_dev/'.length);
    if (op === 'stats' && req.method === 'GET') return send(200, this.stats());
    if (req.method !== 'POST') return send(405, 'use POST');
    // A custom header cannot be sent cross-origin without a CORS preflight,
    // which /_dev/ never grants: other web pages open in the same browser
    // cannot drive the faults with a simple form POST.
    if (req.headers[ADMIN_HEADER] !== '1') return send(403, `send the header ${ADMIN_HEADER}: 1 to use the dev controls`);
    this.#logLine('info', `fault: ${op}${url.search ? ` ${decodeURIComponent(url.search.slice(1)).replace(/&/g, ' ')}` : ''}`);
    try {
      switch (op) {
        case 'drop-all':
          return send(200, { dropped: this.faults.dropAll() });
        case 'blackhole':
          this.faults.blackhole(num('ms'));
          return send(200, { ok: true });
        case 'latency':
          this.faults.latency(num('ms'), num('jitter', 0));
          return send(200, { ok: true });
        case 'fail-next-reducers':
          this.faults.failNextReducers(num('n', 1), url.searchParams.get('message') ?? undefined);
          return send(200, { ok: true });
        case 'corrupt-next-frame':
          this.faults.corruptNextFrame();
          return send(200, { ok: true });
        case 'clear':
          this.faults.clear();
          return send(200, { ok: true });
        case 'restart':
          // Answer first: the restart closes this very connection.
          send(202, { restarting: true });
          setTimeout(() => void this.restart().catch((e) => this.#logLine('error', `restart failed: ${String(e)}`)), 10);
          return;
        default:
          return send(404, `no such dev operation: ${op}`);
      }
    } catch (e) {
      if (e instanceof RangeError) return send(400, e.message);
      throw e;
    }
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    if (this.#holdIfBlackholed(socket)) return;
    const reject = (status: number, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(message)}\r\nconnection: close\r\n\r\n${message}`);
    };
    const url = requestUrl(req.url);
    if (!url) return reject(400, 'malformed request target');
    const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(url.pathname);
    if (!m) return reject(404, 'not found');
    if (decodePathSegment(m[1]) !== this.database) return reject(404, `no such database: ${m[1]}`);
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const protocol = negotiateProtocol(offered);
    if (!protocol) return reject(400, 'unsupported WebSocket subprotocol (offer v3.bsatn.spacetimedb or v2.bsatn.spacetimedb)');
    const compression = parseCompression(url.searchParams.get('compression'));
    if (!compression) return reject(400, `unknown compression: ${url.searchParams.get('compression')}`);
    const token = url.searchParams.get('token') ?? bearer(req);
    const verified: Promise<VerifiedToken & { token: string }> = token
      ? this.#auth.verify(token).then((v) => ({ ...v, token }))
      : this.#auth.mint();
    verified.then(
      (auth) => {
        const wss = this.#wss;
        if (!wss) return reject(404, 'server is stopping');
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, protocol, compression, auth));
      },
      (e) => reject(401, e instanceof AuthError ? e.message : 'invalid token'),
    ).catch((e) => {
      this.#logLine('error', `upgrade ${url.pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      socket.destroy();
    });
  }

  // ---- connections --------------------------------------------------------

  #onConnection(ws: WebSocket, protocol: WsProtocol, compression: Compression, auth: VerifiedToken & { token: string }) {
    const conn: Connection = {
      id: new ConnectionId(randomU128()),
      identity: auth.identity,
      token: auth.token,
      jwtPayload: JSON.stringify(auth.claims),
      ws,
      protocol,
      batcher: new ServerFrameBatcher({ protocol, compression }),
      querySets: new Map(),
      outDelay: new DelayQueue((frame) => this.#write(conn, frame)),
      inDelay: new DelayQueue((data) => {
        this.#process(conn, data);
        // Read again once what latency holds has drained to half the limit.
        if (conn.ws.isPaused && !conn.closed && conn.inDelay.bytes <= this.#sendQueueLimit / 2) conn.ws.resume();
      }),
      lastSeen: Date.now(),
      blackholed: false,
      flushScheduled: false,
      closed: false,
    };
    // The module's clientConnected hook decides whether the client may stay.
    const connected = this.#runLifecycle('onConnect', conn.identity, conn.id, conn.jwtPayload);
    if (connected && connected.status === 'failed') {
      this.#logLine('info', `clientConnected refused ${short(conn.identity)}: ${connected.message}`);
      ws.close(CLOSE_POLICY, truncateReason(connected.message));
      return;
    }
    this.#connections.add(conn);
    // ws refuses a message over maxPayload itself, with 1009 and no reason,
    // without telling us first; its receiver's error comes just before: close
    // with 1011 and a reason, as for every other refused message.
    const receiver = (ws as unknown as { _receiver?: { prependListener(event: 'error', f: (e: { code?: string }) => void): void } })._receiver;
    receiver?.prependListener('error', (e) => {
      if (e.code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || conn.closed) return;
      this.#stats.limitCloses++;
      this.#closeWithError(conn, `message exceeds the ${this.#maxMessageBytes}-byte limit`);
    });
    this.#logLine('debug', `client connected: ${short(conn.identity)} (${protocol}, ${compression})`);
    ws.on('message', (data: Buffer, isBinary) => this.#onMessage(conn, data, isBinary));
    ws.on('ping', (data) => {
      if (this.#faultState.blackholed()) return;
      conn.lastSeen = Date.now();
      ws.pong(data);
    });
    ws.on('pong', () => {
      if (!this.#faultState.blackholed()) conn.lastSeen = Date.now();
    });
    ws.on('close', () => this.#onClose(conn));
    ws.on('error', (e) => this.#logLine('debug', `socket error: ${e.message}`));
    this.#send(conn, {
      tag: 'InitialConnection',
      value: { identity: conn.identity, connectionId: conn.id, token: conn.token },
    });
  }

  #onClose(conn: Connection) {
    if (conn.closed) return;
    conn.closed = true;
    conn.outDelay.clear();
    conn.inDelay.clear();
    this.#connections.delete(conn);
    conn.querySets.clear();
    this.#runLifecycle('onDisconnect', conn.identity, conn.id, conn.jwtPayload);
    this.#logLine('debug', `client disconnected: ${short(conn.identity)}`);
  }

  #closeWithError(conn: Connection, message: string) {
    this.#logLine('info', `closing a client socket: ${message}`);
    // Answers already queued (the messages before a bad one in a v3 frame)
    // leave before the close frame; after ws.close() they could not.
    if (conn.flushScheduled) this.#flush(conn);
    conn.ws.close(CLOSE_INTERNAL_ERROR, truncateReason(message));
  }

  /** Ping every client; close those silent for longer than the idle timeout. */
  #liveness() {
    if (this.#faultState.blackholed()) return;
    const idle = this.#options.idleTimeoutMs ?? 30_000;
    const now = Date.now();
    for (const c of [...this.#connections]) {
      if (now - c.lastSeen > idle) {
        this.#stats.limitCloses++;
        this.#logLine('info', `closing ${short(c.identity)}: nothing received for ${now - c.lastSeen} ms`);
        c.ws.terminate();
        this.#onClose(c);
      } else {
        c.ws.ping();
      }
    }
  }

  #onMessage(conn: Connection, data: Buffer, isBinary: boolean) {
    if (this.#faultState.blackholed()) {
      this.#stats.framesDropped++;
      return;
    }
    conn.lastSeen = Date.now();
    this.#stats.framesIn++;
    this.#stats.bytesIn += data.length;
    if (data.length > this.#maxMessageBytes) {
      this.#stats.limitCloses++;
      return this.#closeWithError(conn, `message of ${data.length} bytes exceeds the ${this.#maxMessageBytes}-byte limit`);
    }
    if (!isBinary) return this.#closeWithError(conn, 'text frames are not supported by the BSATN protocol');
    const delay = this.#faultState.delay();
    if (delay > 0 || conn.inDelay.size > 0) {
      conn.inDelay.push(data, delay);
      // Backpressure, as a slow link gives: stop reading while too much waits.
      if (conn.inDelay.bytes > this.#sendQueueLimit && !conn.ws.isPaused) conn.ws.pause();
    } else {
      this.#process(conn, data);
    }
  }

  #process(conn: Connection, data: Buffer) {
    if (conn.closed) return;
    let messages: ClientMessage[];
    try {
      messages = decodeClientFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), conn.protocol);
    } catch (e) {
      // Messages before a bad one in a v3 frame still run, as on the real server.
      const decoded = e instanceof ProtocolDecodeError ? ((e.decoded as ClientMessage[] | undefined) ?? []) : [];
      for (const m of decoded) if (!this.#handleSafely(conn, m)) return;
      return this.#closeWithError(conn, e instanceof Error ? e.message : String(e));
    }
    for (const m of messages) {
      if (conn.closed) return;
      if (!this.#handleSafely(conn, m)) return;
    }
  }

  /**
   * Handle one message; a bug in its handling closes this client's socket
   * (1011) and is logged as an error, instead of escaping into the socket's
   * event handler, where it would crash the process. False when it failed.
   */
  #handleSafely(conn: Connection, msg: ClientMessage): boolean {
    try {
      this.#handle(conn, msg);
      return true;
    } catch (e) {
      this.#logLine('error', `internal error handling ${msg.tag} from ${short(conn.identity)}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      conn.ws.close(CLOSE_INTERNAL_ERROR, `internal error handling ${msg.tag}`);
      return false;
    }
  }

  #handle(conn: Connection, msg: ClientMessage) {
    switch (msg.tag) {
      case 'Subscribe':
        return this.#subscribe(conn, msg.value.requestId, msg.value.querySetId.id, msg.value.queryStrings);
      case 'Unsubscribe':
        return this.#unsubscribe(conn, msg.value.requestId, msg.value.querySetId.id, msg.value.flags.tag === 'SendDroppedRows');
      case 'OneOffQuery':
        return this.#oneOffQuery(conn, msg.value.requestId, msg.value.queryString);
      case 'CallReducer':
        return this.#callReducer(conn, msg.value.requestId, msg.value.reducer, msg.value.args);
      case 'CallProcedure':
        return this.#callProcedure(conn, msg.value.requestId, msg.value.procedure, msg.value.args);
    }
  }

  #subscribe(conn: Connection, requestId: number, setId: number, queryStrings: string[]) {
    const fail = (error: string) =>
      this.#send(conn, { tag: 'SubscriptionError', value: { requestId, querySetId: { id: setId }, error } });
    if (conn.querySets.has(setId)) return fail(`query set ${setId} is already subscribed on this connection`);
    let queries;
    try {
      queries = compileQuerySet(queryStrings, conn.identity, this.#module.description.tables, this.#access);
    } catch (e) {
      if (e instanceof SqlError) return fail(e.message);
      throw e;
    }
    let rows;
    try {
      rows = querySetRows(queries, this.#module.datastore);
    } catch (e) {
      if (e instanceof ViewError) return fail(e.message);
      throw e;
    }
    conn.querySets.set(setId, { id: setId, queries });
    this.#send(conn, {
      tag: 'SubscribeApplied',
      value: { requestId, querySetId: { id: setId }, rows },
    });
  }

  #unsubscribe(conn: Connection, requestId: number, setId: number, sendDroppedRows: boolean) {
    const set = conn.querySets.get(setId);
    if (!set) {
      return this.#send(conn, {
        tag: 'SubscriptionError',
        value: { requestId, querySetId: { id: setId }, error: `query set ${setId} is not subscribed on this connection` },
      });
    }
    conn.querySets.delete(setId);
    this.#send(conn, {
      tag: 'UnsubscribeApplied',
      value: {
        requestId,
        querySetId: { id: setId },
        rows: sendDroppedRows ? querySetRows(set.queries, this.#module.datastore) : undefined,
      },
    });
  }

  #oneOffQuery(conn: Connection, requestId: number, sql: string) {
    let result: ServerMessage & { tag: 'OneOffQueryResult' };
    try {
      const queries = compileQuerySet([sql], conn.identity, this.#module.description.tables, this.#access);
      result = {
        tag: 'OneOffQueryResult',
        value: { requestId, result: { tag: 'Ok', value: querySetRows(queries, this.#module.datastore) } },
      };
    } catch (e) {
      if (!(e instanceof SqlError) && !(e instanceof ViewError)) throw e;
      result = { tag: 'OneOffQueryResult', value: { requestId, result: { tag: 'Err', value: e.message } } };
    }
    this.#send(conn, result);
  }

  #callReducer(conn: Connection, requestId: number, name: string, args: Uint8Array) {
    const reducer = this.#module.reducer(name);
    const reply = (result: ServerMessage & { tag: 'ReducerResult' }) => this.#send(conn, result);
    if (!reducer || !reducer.clientCallable) {
      const why = !reducer ? `no such reducer: ${name}` : `reducer ${name} cannot be called by clients`;
      return reply({ tag: 'ReducerResult', value: { requestId, timestamp: this.#now(), result: { tag: 'InternalError', value: why } } });
    }
    const timestamp = this.#now();
    let outcome: ReducerOutcome;
    if (this.#faultState.failReducers > 0) {
      this.#faultState.failReducers--;
      outcome = { status: 'failed', kind: 'user', message: this.#faultState.failMessage, durationMicros: 0 };
    } else {
      outcome = this.#module.callReducer(reducer, {
        sender: conn.identity,
        connectionId: conn.id,
        timestamp: timestamp.__timestamp_micros_since_unix_epoch__,
        args,
        jwtPayload: conn.jwtPayload,
      });
    }
    if (outcome.status === 'failed') {
      const result =
        outcome.kind === 'user'
          ? ({ tag: 'Err', value: bsatnString(outcome.message) } as const)
          : ({ tag: 'InternalError', value: outcome.message } as const);
      return reply({ tag: 'ReducerResult', value: { requestId, timestamp, result } });
    }
    const effects = this.#commit(outcome.changes, conn);
    const querySets = [];
    for (const set of conn.querySets.values()) {
      const u = effects?.querySetUpdate(set);
      if (u) querySets.push(u);
    }
    reply({
      tag: 'ReducerResult',
      value: {
        requestId,
        timestamp,
        result: { tag: 'Ok', value: { retValue: new Uint8Array(0), transactionUpdate: { querySets } } },
      },
    });
    this.#runScheduledImmediate();
  }

  /**
   * After a commit: make it durable, then send every connection but `caller`
   * the updates of its query sets that the transaction changed. Returns the
   * effects so the caller can read its own.
   */
  #commit(changes: ChangeSet, caller: Connection | undefined): TransactionEffects | undefined {
    this.#stats.transactionsCommitted++;
    if (changes.size === 0) return undefined;
    if (this.#data) {
      this.#data.append(persistentChanges(changes, this.#module));
      if (this.#data.snapshotDue(this.#options.snapshotEvery ?? 1000)) this.#data.snapshot(this.#module.datastore.allRows());
    }
    try {
      this.#scheduler?.onCommit(changes);
    } catch (e) {
      this.#logLine('error', `scheduling the rows of a committed transaction failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#access.views.invalidate(changes);
    const effects = new TransactionEffects(changes, this.#module.datastore, (e) =>
      this.#logLine('warn', `${e.message}; its subscribers keep the rows they have`),
    );
    const encoded = new Map<string, Uint8Array>();
    for (const conn of this.#connections) {
      if (conn === caller || conn.querySets.size === 0) continue;
      const querySets = [];
      const signature: string[] = [];
      for (const set of conn.querySets.values()) {
        const u = effects.querySetUpdate(set);
        if (u) {
          querySets.push(u);
          signature.push(`${set.id}:${set.queries.map((q) => q.shareKey).join('\u0001')}`);
        }
      }
      if (querySets.length === 0) continue;
      // Clients with the same query sets get the same bytes: encode once.
      const key = signature.join('\u0002');
      let bytes = encoded.get(key);
      if (!bytes) {
        bytes = encodeServerMessage({ tag: 'TransactionUpdate', value: { querySets } });
        encoded.set(key, bytes);
      }
      this.#sendBytes(conn, bytes);
    }
    this.#module.datastore.dropEventRows();
    return effects;
  }

  #runLifecycle(kind: 'init' | 'onConnect' | 'onDisconnect', sender: Identity, connectionId: ConnectionId | null, jwtPayload?: string): ReducerOutcome | undefined {
    const reducer = this.#module.lifecycleReducer(kind);
    if (!reducer) return undefined;
    const outcome = this.#runInternal(reducer, sender, connectionId, new Uint8Array(0), jwtPayload);
    if (outcome.status === 'failed' && kind !== 'onConnect') {
      this.#logLine('warn', `${kind} reducer ${reducer.name} failed: ${outcome.message}`);
    }
    return outcome;
  }

  #runInternal(reducer: ReducerDesc, sender: Identity, connectionId: ConnectionId | null, args: Uint8Array, jwtPayload?: string): ReducerOutcome {
    const outcome = this.#module.callReducer(reducer, {
      sender,
      connectionId,
      timestamp: this.#clock.now(),
      args,
      jwtPayload,
    });
    if (outcome.status === 'committed') {
      this.#commit(outcome.changes, undefined);
      this.#runScheduledImmediate();
    }
    return outcome;
  }

  /** `Timestamp` of the server's clock. */
  #now(): Timestamp {
    return new Timestamp(this.#clock.now());
  }

  /** Run a client's procedure call; its transactions are broadcast as they commit, then the result goes back. */
  #callProcedure(conn: Connection, requestId: number, name: string, args: Uint8Array) {
    const procedure = this.#module.procedure(name);
    const timestamp = this.#now();
    let outcome: ProcedureOutcome;
    if (!procedure || !procedure.clientCallable) {
      const why = !procedure ? `no such procedure: ${name}` : `procedure ${name} cannot be called by clients`;
      outcome = { status: 'failed', message: why, durationMicros: 0 };
    } else {
      outcome = this.#module.callProcedure(procedure, {
        sender: conn.identity,
        connectionId: conn.id,
        timestamp: timestamp.__timestamp_micros_since_unix_epoch__,
        args,
        jwtPayload: conn.jwtPayload,
        now: () => this.#clock.now(),
        onCommit: (changes) => this.#commit(changes, undefined),
      });
    }
    this.#send(conn, {
      tag: 'ProcedureResult',
      value: {
        requestId,
        status: outcome.status === 'returned' ? { tag: 'Returned', value: outcome.value } : { tag: 'InternalError', value: outcome.message },
        timestamp,
        totalHostExecutionDuration: new TimeDuration(BigInt(outcome.durationMicros)),
      },
    });
    this.#runScheduledImmediate();
  }

  /** (Re)build the scheduler for the current module and arm every stored schedule row. */
  #startScheduler() {
    this.#scheduler?.stop();
    const { schedules, tables } = this.#module.description;
    if (schedules.length === 0) {
      this.#scheduler = undefined;
      return;
    }
    const scheduler = new Scheduler(schedules, tables, this.#clock, (due) => this.#onScheduleDue(due));
    this.#scheduler = scheduler;
    scheduler.armAll((table) => this.#module.datastore.scan(table));
  }

  #scheduleRow(due: DueSchedule) {
    for (const row of this.#module.datastore.lookup(due.schedule.table, due.schedule.idColumn, due.id)) return row;
    return undefined;
  }

  /**
   * A schedule row's time has come: call its reducer (then re-arm or delete
   * the row) or its procedure (re-arm or delete first: a procedure is not
   * retried), as the database's own identity.
   */
  #onScheduleDue(due: DueSchedule) {
    try {
      const row = this.#scheduleRow(due);
      if (!row) return;
      const { schedule } = due;
      const timestamp = this.#clock.now();
      if (schedule.kind === 'reducer') {
        const reducer = this.#module.reducer(schedule.functionName)!;
        const outcome = this.#module.callReducer(reducer, { sender: this.#databaseIdentity, connectionId: null, timestamp, args: row.bytes });
        if (outcome.status === 'committed') this.#commit(outcome.changes, undefined);
        else this.#logLine('warn', `scheduled reducer ${reducer.name} failed: ${outcome.message}`);
        this.#afterScheduleRun(due);
      } else {
        this.#afterScheduleRun(due);
        const procedure = this.#module.procedure(schedule.functionName)!;
        this.#module.callProcedure(procedure, {
          sender: this.#databaseIdentity,
          connectionId: null,
          timestamp,
          args: row.bytes,
          now: () => this.#clock.now(),
          onCommit: (changes) => this.#commit(changes, undefined),
        });
      }
      this.#runScheduledImmediate();
    } catch (e) {
      this.#logLine('error', `scheduled ${due.schedule.functionName} (table ${due.schedule.table}): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }

  /** Re-arm an interval row, or delete a one-shot row in its own transaction. */
  #afterScheduleRun(due: DueSchedule) {
    const row = this.#scheduleRow(due);
    if (this.#scheduler?.rearmAfterRun(due, row) !== 'delete' || !row) return;
    const ds = this.#module.datastore;
    ds.begin();
    ds.deleteRow(ds.tableIdFromName(due.schedule.table), row);
    this.#commit(ds.commit(), undefined);
  }

  #runScheduledImmediate() {
    const queue = this.#module.scheduledImmediate;
    let guard = 0;
    while (queue.length > 0 && guard++ < 1000) {
      const { reducer: name, args } = queue.shift()!;
      const reducer = this.#module.reducer(name);
      if (!reducer) {
        this.#logLine('warn', `scheduled call to unknown reducer ${name} dropped`);
        continue;
      }
      this.#runInternal(reducer, this.#databaseIdentity, null, args);
    }
  }

  // ---- sending ------------------------------------------------------------

  #send(conn: Connection, msg: ServerMessage) {
    this.#sendBytes(conn, encodeServerMessage(msg));
  }

  #sendBytes(conn: Connection, bytes: Uint8Array) {
    if (conn.closed) return;
    conn.batcher.push(bytes);
    if (!conn.flushScheduled) {
      conn.flushScheduled = true;
      // Everything queued in this tick leaves together (one frame under v3).
      queueMicrotask(() => this.#flush(conn));
    }
  }

  #flush(conn: Connection) {
    conn.flushScheduled = false;
    if (conn.closed) return;
    for (const frame of conn.batcher.flush()) {
      const delay = this.#faultState.delay();
      if (delay > 0 || conn.outDelay.size > 0) {
        conn.outDelay.push(frame, delay);
        if (this.#overSendLimit(conn)) return;
      } else {
        this.#write(conn, frame);
      }
    }
  }

  #write(conn: Connection, frame: Uint8Array) {
    if (conn.closed) return;
    if (this.#faultState.blackholed()) {
      this.#stats.framesDropped++;
      return;
    }
    if (this.#faultState.corruptNext) {
      this.#faultState.corruptNext = false;
      // Uncompressed, then a message tag no server message has.
      frame = new Uint8Array([0, 0xee, 0xde, 0xad, 0xbe, 0xef]);
    }
    this.#stats.framesOut++;
    this.#stats.bytesOut += frame.length;
    conn.ws.send(frame, { binary: true });
    this.#overSendLimit(conn);
  }

  get #sendQueueLimit(): number {
    return this.#options.maxSendQueueBytes ?? 16 * 1024 * 1024;
  }

  /** Disconnect a client that owes more than the limit (unsent plus held back by latency); true if it did. */
  #overSendLimit(conn: Connection): boolean {
    const owed = conn.ws.bufferedAmount + conn.outDelay.bytes;
    if (owed <= this.#sendQueueLimit) return false;
    this.#stats.limitCloses++;
    this.#logLine('info', `disconnecting ${short(conn.identity)}: ${owed} bytes unsent (it stopped reading)`);
    conn.ws.terminate();
    this.#onClose(conn);
    return true;
  }
}

/** Event tables' rows do not outlive their transaction: they are not logged. */
function persistentChanges(changes: ChangeSet, module: ModuleInstance): ChangeSet {
  let hasEvent = false;
  for (const name of changes.keys()) if (module.datastore.tableByName(name)?.desc.isEvent) hasEvent = true;
  if (!hasEvent) return changes;
  return new Map([...changes].filter(([name]) => !module.datastore.tableByName(name)?.desc.isEvent));
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function short(identity: Identity): string {
  return `${identity.toHexString().slice(0, 16)}…`;
}

/** Start a dev server; resolves once it listens. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  return DevServer.start(options);
}

/**
 * The URL of a request, or undefined when its target does not parse (`//`,
 * `//host:99999/`, a broken absolute form): Node's HTTP parser lets those
 * through, and `new URL` throws on them.
 */
function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}



function randomU128(): bigint {
  const b = randomBytes(16);
  return b.readBigUInt64LE(0) | (b.readBigUInt64LE(8) << 64n);
}

/** Wall-clock time. The server's own calls use `#now()` (its `clock` option); kept for code outside the class. */
function now(): Timestamp {
  return new Timestamp(systemClock.now());
}

function bsatnString(s: string): Uint8Array {
  const w = new BinaryWriter(s.length + 4);
  w.writeString(s);
  return w.getBuffer().slice();
}

/** WebSocket close reasons are limited to 123 bytes. */
function truncateReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

function statusText(status: number): string {
  return { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found' }[status] ?? 'Error';
}
