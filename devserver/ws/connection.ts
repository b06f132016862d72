/**
 * One client connection after its upgrade: the greeting, decoding incoming
 * frames and dispatching their messages, the send queue (everything queued in
 * one tick leaves together), the slow-reader and message-size limits, and
 * keep-alive. What each message does lives in `./queries.ts` and
 * `../transactions.ts`.
 */
import type { ConnectionId, Identity } from 'spacetimedb';
import type { HostLogger } from '../host/instance.ts';
import { decodeClientFrame, ServerFrameBatcher, type Compression, type WsProtocol } from '../protocol/framing.ts';
import { encodeServerMessage, ProtocolDecodeError, type ClientMessage, type ServerMessage } from '../protocol/messages.ts';
import type { QuerySet } from '../subscriptions.ts';
import type { ClientSocket } from './socket.ts';

const CLOSE_INTERNAL_ERROR = 1011;
const CLOSE_POLICY = 1008;

/** Who is connected, as the upgrade established it. */
export interface Session {
  readonly id: ConnectionId;
  readonly identity: Identity;
  readonly token: string;
  /** The token's claims as JSON, for the module's `ctx.senderAuth`. */
  readonly jwtPayload: string;
  readonly protocol: WsProtocol;
  readonly compression: Compression;
}

/** What each client message does. */
export interface ClientRequests {
  subscribe(conn: ClientConnection, requestId: number, querySetId: number, queryStrings: string[]): void;
  unsubscribe(conn: ClientConnection, requestId: number, querySetId: number, sendDroppedRows: boolean): void;
  oneOffQuery(conn: ClientConnection, requestId: number, sql: string): void;
  callReducer(conn: ClientConnection, requestId: number, name: string, args: Uint8Array): void;
  callProcedure(conn: ClientConnection, requestId: number, name: string, args: Uint8Array): void;
}

/** What a connection needs from the server. */
export interface ConnectionHost {
  /** Incoming message cap in bytes. */
  readonly maxMessageBytes: number;
  /** Most a client may owe (unsent bytes) before it is disconnected as a slow reader. */
  readonly maxSendQueueBytes: number;
  readonly counters: { framesIn: number; bytesIn: number; limitCloses: number };
  readonly requests: ClientRequests;
  readonly log: HostLogger;
  /** The module's clientConnected: undefined to let the client in, else why not. */
  admit(conn: ClientConnection): string | undefined;
  /** The connection is gone (however it ended); called once. */
  closed(conn: ClientConnection): void;
}

export class ClientConnection implements Session {
  readonly id: ConnectionId;
  readonly identity: Identity;
  readonly token: string;
  readonly jwtPayload: string;
  readonly protocol: WsProtocol;
  readonly compression: Compression;
  /** The client's subscribed query sets by id. */
  readonly querySets = new Map<number, QuerySet>();
  readonly #socket: ClientSocket;
  readonly #host: ConnectionHost;
  readonly #batcher: ServerFrameBatcher;
  /** Time of the last frame or pong from the client. */
  #lastSeen = Date.now();
  #flushScheduled = false;
  #closed = false;

  constructor(socket: ClientSocket, session: Session, host: ConnectionHost) {
    this.id = session.id;
    this.identity = session.identity;
    this.token = session.token;
    this.jwtPayload = session.jwtPayload;
    this.protocol = session.protocol;
    this.compression = session.compression;
    this.#socket = socket;
    this.#host = host;
    this.#batcher = new ServerFrameBatcher({ protocol: session.protocol, compression: session.compression });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Ask the module whether the client may stay (closing with 1008 and its
   * reason if not), then start reading and send `InitialConnection`.
   */
  open(): boolean {
    const refusal = this.#host.admit(this);
    if (refusal !== undefined) {
      this.#log('info', `clientConnected refused ${short(this.identity)}: ${refusal}`);
      this.#socket.close(CLOSE_POLICY, truncateReason(refusal));
      return false;
    }
    this.#socket.listen({
      message: (data, isBinary) => this.#onMessage(data, isBinary),
      ping: (data) => {
        this.#lastSeen = Date.now();
        this.#socket.pong(data);
      },
      pong: () => {
        this.#lastSeen = Date.now();
      },
      close: () => this.#onClose(),
      error: (e) => this.#log('debug', `socket error: ${e.message}`),
      // Close with 1011 and a reason, as for every other refused message.
      oversized: () => {
        if (this.#closed) return;
        this.#host.counters.limitCloses++;
        this.closeWithError(`message exceeds the ${this.#host.maxMessageBytes}-byte limit`);
      },
    });
    this.#log('debug', `client connected: ${short(this.identity)} (${this.protocol}, ${this.compression})`);
    this.send({ tag: 'InitialConnection', value: { identity: this.identity, connectionId: this.id, token: this.token } });
    return true;
  }

  // ---- sending ------------------------------------------------------------

  send(msg: ServerMessage): void {
    this.sendBytes(encodeServerMessage(msg));
  }

  /** Queue an encoded server message; everything queued in this tick leaves together (one frame under v3). */
  sendBytes(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#batcher.push(bytes);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush() {
    this.#flushScheduled = false;
    for (const frame of this.#batcher.flush()) {
      if (this.#closed) return;
      this.#socket.send(frame);
      if (this.#overSendLimit()) return;
    }
  }

  /** Disconnect a client that owes more than the limit; true if it did. */
  #overSendLimit(): boolean {
    const owed = this.#socket.bufferedAmount;
    if (owed <= this.#host.maxSendQueueBytes) return false;
    this.#host.counters.limitCloses++;
    this.#log('info', `disconnecting ${short(this.identity)}: ${owed} bytes unsent (it stopped reading)`);
    this.terminate();
    return true;
  }

  // ---- closing ------------------------------------------------------------

  /** Drop the socket at once, as a crash looks to the client. */
  terminate(): void {
    this.#socket.terminate();
    this.#onClose();
  }

  /** Close with 1011 and `message` as the reason, after the answers already queued. */
  closeWithError(message: string): void {
    this.#log('info', `closing a client socket: ${message}`);
    // Answers already queued (the messages before a bad one in a v3 frame)
    // leave before the close frame; after close() they could not.
    if (this.#flushScheduled) this.#flush();
    this.#socket.close(CLOSE_INTERNAL_ERROR, truncateReason(message));
  }

  /** Ping the client, or close it if nothing came from it for longer than `idleMs`. */
  keepAlive(now: number, idleMs: number): void {
    if (now - this.#lastSeen > idleMs) {
      this.#host.counters.limitCloses++;
      this.#log('info', `closing ${short(this.identity)}: nothing received for ${now - this.#lastSeen} ms`);
      this.terminate();
    } else {
      this.#socket.ping();
    }
  }

  #onClose() {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.closed(this);
    this.querySets.clear();
    this.#log('debug', `client disconnected: ${short(this.identity)}`);
  }

  // ---- receiving ----------------------------------------------------------

  #onMessage(data: Buffer, isBinary: boolean) {
    if (this.#closed) return;
    this.#lastSeen = Date.now();
    const { counters, maxMessageBytes } = this.#host;
    counters.framesIn++;
    counters.bytesIn += data.length;
    if (data.length > maxMessageBytes) {
      counters.limitCloses++;
      return this.closeWithError(`message of ${data.length} bytes exceeds the ${maxMessageBytes}-byte limit`);
    }
    if (!isBinary) return this.closeWithError('text frames are not supported by the BSATN protocol');
    let messages: ClientMessage[];
    try {
      messages = decodeClientFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), this.protocol);
    } catch (e) {
      // Messages before a bad one in a v3 frame still run, as on the real server.
      const decoded = e instanceof ProtocolDecodeError ? ((e.decoded as ClientMessage[] | undefined) ?? []) : [];
      for (const m of decoded) if (!this.#handleSafely(m)) return;
      return this.closeWithError(e instanceof Error ? e.message : String(e));
    }
    for (const m of messages) {
      if (this.#closed) return;
      if (!this.#handleSafely(m)) return;
    }
  }

  /**
   * Handle one message; a bug in its handling closes this client's socket
   * (1011) and is logged as an error, instead of escaping into the socket's
   * event handler, where it would crash the process. False when it failed.
   */
  #handleSafely(msg: ClientMessage): boolean {
    try {
      this.#dispatch(msg);
      return true;
    } catch (e) {
      this.#log('error', `internal error handling ${msg.tag} from ${short(this.identity)}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      this.#socket.close(CLOSE_INTERNAL_ERROR, `internal error handling ${msg.tag}`);
      return false;
    }
  }

  #dispatch(msg: ClientMessage) {
    const r = this.#host.requests;
    switch (msg.tag) {
      case 'Subscribe':
        return r.subscribe(this, msg.value.requestId, msg.value.querySetId.id, msg.value.queryStrings);
      case 'Unsubscribe':
        return r.unsubscribe(this, msg.value.requestId, msg.value.querySetId.id, msg.value.flags.tag === 'SendDroppedRows');
      case 'OneOffQuery':
        return r.oneOffQuery(this, msg.value.requestId, msg.value.queryString);
      case 'CallReducer':
        return r.callReducer(this, msg.value.requestId, msg.value.reducer, msg.value.args);
      case 'CallProcedure':
        return r.callProcedure(this, msg.value.requestId, msg.value.procedure, msg.value.args);
    }
  }

  #log(level: Parameters<HostLogger['log']>[0], message: string) {
    this.#host.log.log(level, message);
  }
}

/** The start of an identity, for log lines. */
function short(identity: Identity): string {
  return `${identity.toHexString().slice(0, 16)}…`;
}

/** WebSocket close reasons are limited to 123 bytes. */
function truncateReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}
