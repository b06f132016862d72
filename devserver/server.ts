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
import type { ReducerDesc } from './host/moduleDef.ts';
import { negotiateProtocol, parseCompression, ServerFrameBatcher, decodeClientFrame, type Compression, type WsProtocol } from './protocol/framing.ts';
import { ProtocolDecodeError, encodeServerMessage, type ClientMessage, type ServerMessage } from './protocol/messages.ts';
import { SqlError } from './sql/errors.ts';
import { compileQuerySet, querySetRows, TransactionEffects, type QuerySet } from './subscriptions.ts';
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
  /** Incoming WebSocket message cap in bytes. @default 32 MiB */
  readonly maxMessageBytes?: number;
}

export interface DevServerStats {
  connections: number;
  subscriptions: number;
  transactionsCommitted: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** Derive a database name from a module path: `demo/arena/module.ts` → `arena`, `chat.ts` → `chat`. */
export function databaseNameFor(modulePath: string): string {
  const base = basename(modulePath, extname(modulePath)).replace(/\.module$/, '');
  const name = base === 'module' || base === 'index' ? basename(dirname(resolve(modulePath))) : base;
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
}

const REAL_CLOSE_INTERNAL_ERROR = 1011;

interface Connection {
  readonly id: ConnectionId;
  readonly identity: Identity;
  readonly token: string;
  readonly jwtPayload: string;
  readonly ws: WebSocket;
  readonly protocol: WsProtocol;
  readonly batcher: ServerFrameBatcher;
  readonly querySets: Map<number, QuerySet>;
  flushScheduled: boolean;
  closed: boolean;
}

export class DevServer {
  readonly database: string;
  readonly module: ModuleInstance;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #auth: TokenAuthority;
  readonly #log: HostLogger;
  readonly #connections = new Set<Connection>();
  readonly #maxMessageBytes: number;
  readonly #stats: DevServerStats = {
    connections: 0,
    subscriptions: 0,
    transactionsCommitted: 0,
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
  #port = 0;
  readonly #host: string;

  private constructor(module: ModuleInstance, options: DevServerOptions, auth: TokenAuthority, database: string) {
    this.module = module;
    this.database = database;
    this.#auth = auth;
    this.#log = options.logger ?? { log: () => {} };
    this.#host = options.host ?? '127.0.0.1';
    this.#maxMessageBytes = options.maxMessageBytes ?? 32 * 1024 * 1024;
    this.#http = createServer((req, res) => this.#onRequest(req, res));
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#maxMessageBytes,
      perMessageDeflate: false,
      handleProtocols: (protocols) => negotiateProtocol(protocols) ?? false,
    });
    this.#http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
  }

  static async start(options: DevServerOptions): Promise<DevServer> {
    const database = options.database ?? databaseNameFor(options.module);
    const databaseIdentity = identityFromClaims('stdb-rx-devserver', `database:${database}`);
    const logger = options.logger;
    const module = await ModuleInstance.load(options.module, { databaseIdentity, logger });
    const server = new DevServer(module, options, TokenAuthority.ephemeral(), database);
    server.#runLifecycle('init', Identity.zero(), null);
    await server.#listen(options.port ?? 3000);
    return server;
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

  stats(): DevServerStats {
    let subs = 0;
    for (const c of this.#connections) subs += c.querySets.size;
    return { ...this.#stats, connections: this.#connections.size, subscriptions: subs };
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolveListen, reject) => {
      this.#http.once('error', reject);
      this.#http.listen(port, this.#host, () => {
        this.#http.off('error', reject);
        const addr = this.#http.address();
        this.#port = typeof addr === 'object' && addr ? addr.port : port;
        resolveListen();
      });
    });
  }

  /** Close every connection and stop listening. */
  async stop(): Promise<void> {
    for (const c of this.#connections) c.ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
    await new Promise<void>((r) => this.#http.close(() => r()));
    this.#http.closeAllConnections?.();
  }

  #logLine(level: LogLevel, message: string) {
    this.#log.log(level, message);
  }

  // ---- HTTP ---------------------------------------------------------------

  #onRequest(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body?: unknown) => {
      const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' || body === undefined ? 'text/plain' : 'application/json' });
      res.end(text);
    };
    // Request bodies are not used by these endpoints; drain and cap them.
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > 64 * 1024) req.destroy();
    });
    const path = url.pathname;
    if (path === '/v1/ping' && req.method === 'GET') return send(200);
    if (path === '/v1/identity' && req.method === 'POST') {
      const minted = this.#auth.mint();
      return send(200, { identity: minted.identity.toHexString(), token: minted.token });
    }
    if (path === '/v1/identity/websocket-token' && req.method === 'POST') {
      const token = bearer(req);
      if (!token) return send(401, 'Authorization: Bearer <token> required');
      try {
        this.#auth.verify(token);
        return send(200, { token: this.#auth.shortLived(token) });
      } catch (e) {
        return send(401, e instanceof AuthError ? e.message : 'invalid token');
      }
    }
    const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(path);
    if (m) {
      if (decodeURIComponent(m[1]) !== this.database) return send(404, `no such database: ${m[1]}`);
      return send(400, 'expected a WebSocket upgrade');
    }
    return send(404, 'not found');
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const reject = (status: number, message: string) => {
      socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(message)}\r\nconnection: close\r\n\r\n${message}`);
    };
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(url.pathname);
    if (!m) return reject(404, 'not found');
    if (decodeURIComponent(m[1]) !== this.database) return reject(404, `no such database: ${m[1]}`);
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const protocol = negotiateProtocol(offered);
    if (!protocol) return reject(400, `unsupported WebSocket subprotocol (offer ${'v3.bsatn.spacetimedb'} or ${'v2.bsatn.spacetimedb'})`);
    const compression = parseCompression(url.searchParams.get('compression') ?? 'None');
    if (!compression) return reject(400, `unknown compression: ${url.searchParams.get('compression')}`);
    const token = url.searchParams.get('token') ?? bearer(req);
    let auth: VerifiedToken & { token: string };
    try {
      auth = token ? { ...this.#auth.verify(token), token } : this.#auth.mint();
    } catch (e) {
      return reject(401, e instanceof AuthError ? e.message : 'invalid token');
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, protocol, compression, auth));
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
      flushScheduled: false,
      closed: false,
    };
    // The module's clientConnected hook decides whether the client may stay.
    const connected = this.#runLifecycle('onConnect', conn.identity, conn.id, conn.jwtPayload);
    if (connected && connected.status === 'failed') {
      this.#logLine('info', `clientConnected refused ${conn.identity.toHexString().slice(0, 16)}…: ${connected.message}`);
      ws.close(1008, truncateReason(connected.message));
      return;
    }
    this.#connections.add(conn);
    this.#logLine('debug', `client connected: ${conn.identity.toHexString().slice(0, 16)}… (${protocol})`);
    ws.on('message', (data, isBinary) => this.#onMessage(conn, data as Buffer, isBinary));
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
    this.#connections.delete(conn);
    conn.querySets.clear();
    this.#runLifecycle('onDisconnect', conn.identity, conn.id, conn.jwtPayload);
    this.#logLine('debug', `client disconnected: ${conn.identity.toHexString().slice(0, 16)}…`);
  }

  #closeWithError(conn: Connection, message: string) {
    this.#logLine('info', `closing a client socket: ${message}`);
    conn.ws.close(REAL_CLOSE_INTERNAL_ERROR, truncateReason(message));
  }

  #onMessage(conn: Connection, data: Buffer, isBinary: boolean) {
    this.#stats.framesIn++;
    this.#stats.bytesIn += data.length;
    if (!isBinary) return this.#closeWithError(conn, 'text frames are not supported by the BSATN protocol');
    let messages: ClientMessage[];
    try {
      messages = decodeClientFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), conn.protocol);
    } catch (e) {
      // Messages before a bad one in a v3 frame still run, as on the real server.
      const decoded = e instanceof ProtocolDecodeError ? ((e.decoded as ClientMessage[] | undefined) ?? []) : [];
      for (const m of decoded) this.#handle(conn, m);
      return this.#closeWithError(conn, e instanceof Error ? e.message : String(e));
    }
    for (const m of messages) {
      if (conn.closed) return;
      this.#handle(conn, m);
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
        return this.#send(conn, {
          tag: 'ProcedureResult',
          value: {
            requestId: msg.value.requestId,
            status: { tag: 'InternalError', value: `procedure ${msg.value.procedure}: procedures are not supported by the stdb-rx dev server` },
            timestamp: now(),
            totalHostExecutionDuration: new TimeDuration(0n),
          },
        });
    }
  }

  #subscribe(conn: Connection, requestId: number, setId: number, queryStrings: string[]) {
    const fail = (error: string) =>
      this.#send(conn, { tag: 'SubscriptionError', value: { requestId, querySetId: { id: setId }, error } });
    if (conn.querySets.has(setId)) return fail(`query set ${setId} is already subscribed on this connection`);
    let queries;
    try {
      queries = compileQuerySet(queryStrings, conn.identity, this.module.description.tables);
    } catch (e) {
      if (e instanceof SqlError) return fail(e.message);
      throw e;
    }
    conn.querySets.set(setId, { id: setId, queries });
    this.#send(conn, {
      tag: 'SubscribeApplied',
      value: { requestId, querySetId: { id: setId }, rows: querySetRows(queries, this.module.datastore) },
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
        rows: sendDroppedRows ? querySetRows(set.queries, this.module.datastore) : undefined,
      },
    });
  }

  #oneOffQuery(conn: Connection, requestId: number, sql: string) {
    let result: ServerMessage & { tag: 'OneOffQueryResult' };
    try {
      const queries = compileQuerySet([sql], conn.identity, this.module.description.tables);
      result = {
        tag: 'OneOffQueryResult',
        value: { requestId, result: { tag: 'Ok', value: querySetRows(queries, this.module.datastore) } },
      };
    } catch (e) {
      if (!(e instanceof SqlError)) throw e;
      result = { tag: 'OneOffQueryResult', value: { requestId, result: { tag: 'Err', value: e.message } } };
    }
    this.#send(conn, result);
  }

  #callReducer(conn: Connection, requestId: number, name: string, args: Uint8Array) {
    const reducer = this.module.reducer(name);
    const reply = (result: ServerMessage & { tag: 'ReducerResult' }) => this.#send(conn, result);
    if (!reducer || !reducer.clientCallable) {
      const why = !reducer ? `no such reducer: ${name}` : `reducer ${name} cannot be called by clients`;
      return reply({ tag: 'ReducerResult', value: { requestId, timestamp: now(), result: { tag: 'InternalError', value: why } } });
    }
    const timestamp = now();
    const outcome = this.module.callReducer(reducer, {
      sender: conn.identity,
      connectionId: conn.id,
      timestamp: timestamp.__timestamp_micros_since_unix_epoch__,
      args,
      jwtPayload: conn.jwtPayload,
    });
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
   * After a commit: send every connection but `caller` the updates of its
   * query sets that the transaction changed. Returns the effects so the caller
   * can read its own.
   */
  #commit(changes: ChangeSet, caller: Connection | undefined): TransactionEffects | undefined {
    this.#stats.transactionsCommitted++;
    if (changes.size === 0) return undefined;
    const effects = new TransactionEffects(changes, this.module.datastore);
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
    this.module.datastore.dropEventRows();
    return effects;
  }

  #runLifecycle(kind: 'init' | 'onConnect' | 'onDisconnect', sender: Identity, connectionId: ConnectionId | null, jwtPayload?: string): ReducerOutcome | undefined {
    const reducer = this.module.lifecycleReducer(kind);
    if (!reducer) return undefined;
    const outcome = this.#runInternal(reducer, sender, connectionId, new Uint8Array(0), jwtPayload);
    if (outcome.status === 'failed' && kind !== 'onConnect') {
      this.#logLine('warn', `${kind} reducer ${reducer.name} failed: ${outcome.message}`);
    }
    return outcome;
  }

  #runInternal(reducer: ReducerDesc, sender: Identity, connectionId: ConnectionId | null, args: Uint8Array, jwtPayload?: string): ReducerOutcome {
    const outcome = this.module.callReducer(reducer, {
      sender,
      connectionId,
      timestamp: now().__timestamp_micros_since_unix_epoch__,
      args,
      jwtPayload,
    });
    if (outcome.status === 'committed') {
      this.#commit(outcome.changes, undefined);
      this.#runScheduledImmediate();
    }
    return outcome;
  }

  #runScheduledImmediate() {
    const queue = this.module.scheduledImmediate;
    let guard = 0;
    while (queue.length > 0 && guard++ < 1000) {
      const { reducer: name, args } = queue.shift()!;
      const reducer = this.module.reducer(name);
      if (!reducer) {
        this.#logLine('warn', `scheduled call to unknown reducer ${name} dropped`);
        continue;
      }
      this.#runInternal(reducer, this.module.databaseIdentity, null, args);
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
      this.#stats.framesOut++;
      this.#stats.bytesOut += frame.length;
      conn.ws.send(frame, { binary: true });
    }
  }
}

/** Start a dev server; resolves once it listens. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  return DevServer.start(options);
}

function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m ? m[1].trim() : undefined;
}

function randomU128(): bigint {
  const b = randomBytes(16);
  return b.readBigUInt64LE(0) | (b.readBigUInt64LE(8) << 64n);
}

function now(): Timestamp {
  return new Timestamp(BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)));
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
