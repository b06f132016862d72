/**
 * The stdb-rx dev server: hosts one SpacetimeDB TypeScript module and serves
 * it over SpacetimeDB's HTTP and WebSocket protocol (v2/v3 BSATN) to the
 * unmodified official SDK. This file is the wiring and the public API —
 * start, stop, restart, reload, recovery from the data folder, stats; each
 * job lives in its own module (see "Where things live" in docs/devserver.md).
 */
import { createServer, type Server } from 'node:http';
import { basename, dirname, extname, resolve } from 'node:path';
import type { WebSocket, WebSocketServer } from 'ws';
import { Identity } from 'spacetimedb';
import { identityFromClaims, TokenAuthority } from './auth.ts';
import { ModuleInstance, type HostLogger, type LogLevel } from './host/instance.ts';
import { DataDir, type RecoveredState } from './persistence.ts';
import { migrateRows, MigrationRefusedError, planMigration } from './host/migrate.ts';
import { watchModule, type ModuleWatcher, type ReloadEvent } from './watch.ts';
import type { DevServerFaults } from './faults/controls.ts';
import { FaultInjector } from './faults/injector.ts';
import { systemClock, type DevClock } from './host/scheduler.ts';
import { accessFor, type Access } from './subscriptions.ts';
import type { HttpApiHost } from './http/databaseApi.ts';
import { requestHandler } from './http/routes.ts';
import { Transactions, type TransactionsHost } from './transactions.ts';
import { ClientConnection, type ClientRequests, type Session } from './ws/connection.ts';
import { Queries } from './ws/queries.ts';
import { wsSocket } from './ws/socket.ts';
import { createWsServer, upgradeHandler } from './ws/upgrade.ts';

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
  readonly #connections = new Set<ClientConnection>();
  readonly #faults: FaultInjector;
  readonly #transactions: Transactions;
  readonly #requests: ClientRequests;
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
    this.#faults = new FaultInjector({
      counters: this.#stats,
      maxHeldInBytes: this.#maxSendQueueBytes,
      log: this.#log,
      dropAll: () => this.#dropAll(),
      restart: () => this.restart(),
    });
    this.faults = this.#faults.controls;
    const server = this;
    const hosted: TransactionsHost = {
      // The module as it is now: a reload or a restart replaces it.
      get module() {
        return server.#module;
      },
      get access() {
        return server.#access;
      },
      clock: this.#clock,
      databaseIdentity,
      data,
      snapshotEvery: options.snapshotEvery ?? 1000,
      clientReducerCall: this.#faults.reducerCall((reducer, call) => this.#module.callReducer(reducer, call)),
      subscribers: () => this.#connections,
      counters: this.#stats,
      log: this.#log,
    };
    const tx = new Transactions(hosted);
    const queries = new Queries(hosted);
    this.#transactions = tx;
    this.#requests = {
      subscribe: (...a) => queries.subscribe(...a),
      unsubscribe: (...a) => queries.unsubscribe(...a),
      oneOffQuery: (...a) => queries.oneOffQuery(...a),
      callReducer: (...a) => tx.callReducer(...a),
      callProcedure: (...a) => tx.callProcedure(...a),
    };
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
    server.#transactions.startScheduler();
    if (fresh) server.#transactions.init();
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
      this.#transactions.startScheduler();
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
    for (const c of this.#connections) subs += c.querySets.size;
    return { ...this.#stats, connections: this.#connections.size, subscriptions: subs, delayedBytes: this.#faults.delayedBytes };
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
    const http = createServer(this.#faults.requests(requestHandler(this.#routesHost)));
    const wss = createWsServer(this.#maxMessageBytes);
    http.on('upgrade', this.#faults.upgrades(upgradeHandler(this.#upgradeHost)));
    this.#http = http;
    this.#wss = wss;
    const interval = this.#options.pingIntervalMs ?? 15_000;
    this.#pingTimer = setInterval(this.#faults.outsideBlackhole(() => this.#keepAlive()), interval);
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

  get #maxSendQueueBytes(): number {
    return this.#options.maxSendQueueBytes ?? 16 * 1024 * 1024;
  }

  /** Close every connection (running clientDisconnected for each) and stop listening. */
  async #shutdown(): Promise<void> {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#faults.endBlackhole();
    this.#dropAll();
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
    this.#transactions.stopScheduler();
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
    this.#transactions.stopScheduler();
    await this.#reloading?.catch(() => undefined);
    await this.#shutdown();
    this.#stats.restarts++;
    if (this.#data) {
      this.#data.close();
      this.#module.dispose();
      this.#module = await ModuleInstance.load(this.#options.module, { databaseIdentity: this.#databaseIdentity, logger: this.#options.logger });
      this.#recover();
    }
    this.#transactions.startScheduler();
    await this.#listen(this.#port);
    this.#logLine('info', `restarted on port ${this.#port}`);
  }

  /** Close every client socket abruptly, running clientDisconnected for each; how many. */
  #dropAll(): number {
    const all = [...this.#connections];
    for (const c of all) c.terminate();
    return all.length;
  }

  /** Ping every client; close those silent for longer than the idle timeout. */
  #keepAlive() {
    const idle = this.#options.idleTimeoutMs ?? 30_000;
    const now = Date.now();
    for (const c of [...this.#connections]) c.keepAlive(now, idle);
  }

  /** A client is through the upgrade: wrap its socket and let the module admit it. */
  #connected(ws: WebSocket, session: Session) {
    const socket = this.#faults.socket(wsSocket(ws, this.#stats));
    new ClientConnection(socket, session, this.#connectionHost).open();
  }

  get #connectionHost() {
    return {
      maxMessageBytes: this.#maxMessageBytes,
      maxSendQueueBytes: this.#maxSendQueueBytes,
      counters: this.#stats,
      requests: this.#requests,
      log: this.#log,
      admit: (conn: ClientConnection) => {
        const refusal = this.#transactions.connect(conn);
        if (refusal === undefined) this.#connections.add(conn);
        return refusal;
      },
      closed: (conn: ClientConnection) => {
        this.#connections.delete(conn);
        this.#transactions.disconnect(conn);
      },
    };
  }

  get #upgradeHost() {
    const server = this;
    return {
      database: this.database,
      auth: this.#auth,
      get wss() {
        return server.#wss;
      },
      log: this.#log,
      connected: (ws: WebSocket, session: Session) => this.#connected(ws, session),
    };
  }

  get #routesHost() {
    const server = this;
    return {
      database: this.database,
      databaseIdentity: this.#databaseIdentity.toHexString(),
      maxBodyBytes: this.#options.maxHttpBodyBytes ?? 64 * 1024,
      auth: this.#auth,
      get moduleHttpRoutes() {
        return server.#module.description.httpRoutes;
      },
      get databaseApi() {
        return server.#httpApiHost;
      },
      dev: {
        admin: this.#options.admin ?? false,
        faults: this.faults,
        stats: () => this.stats(),
        restart: () => this.restart(),
        log: this.#log,
      },
      log: this.#log,
    };
  }

  /** What the HTTP database API (sql, call, schema) needs from the server. */
  get #httpApiHost(): HttpApiHost {
    const tx = this.#transactions;
    return {
      database: this.database,
      module: this.#module,
      access: this.#access,
      authenticate: async (token) => (token ? { ...(await this.#auth.verify(token)), token } : this.#auth.mint()),
      asConnection: (caller, fn) => tx.asConnection(caller, fn),
      runReducer: (reducer, caller, connectionId, args) => tx.runReducer(reducer, caller, connectionId, args),
    };
  }

  /** Visibility filters, views and owner of the hosted module. */
  get #access(): Access {
    return accessFor(this.#module, this.#options.owner ? Identity.fromString(this.#options.owner) : undefined);
  }

  #logLine(level: LogLevel, message: string) {
    this.#log.log(level, message);
  }
}

/** Start a dev server; resolves once it listens. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  return DevServer.start(options);
}
