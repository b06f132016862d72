/**
 * The relay: one upstream sync client, the configured streams, and the HTTP
 * server spectators connect to (WebSocket on any path, SSE on `/sse`).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { createSyncClient, type SyncClient, type SyncClientOptions } from '../src/client.ts';
import type { ConnectionState } from '../streams/status.ts';
import { BadMessageError, CloseCode, isVersion, parseSpectatorMessage, type WatchMessage } from './protocol.ts';
import { Spectator } from './spectator.ts';
import { LiveStream } from './stream.ts';
import { StreamCatalog, type MatchedStream, type StreamDefinition } from './streams.ts';
import { COMPRESS_THRESHOLD, sseSink, webSocketSink } from './transports.ts';

/** What the token hook is asked. */
export interface AuthorizeRequest {
  /** The stream name the spectator asked for. */
  readonly stream: string;
  /** The pattern it matched (`match/:id`) and the parameter values. */
  readonly pattern: string;
  readonly params: Readonly<Record<string, string>>;
  /** The spectator's token (`watch.token`, or the SSE `token` query parameter / `Authorization: Bearer` header). */
  readonly token: string | undefined;
  readonly transport: 'websocket' | 'sse';
  readonly remoteAddress: string | undefined;
}

/** `true` allows; `false` refuses the stream (`Forbidden`); `'unauthorized'` refuses the token (`Unauthorized`). */
export type AuthorizeResult = boolean | 'unauthorized';

/** Options of {@link createRelay}. */
export interface RelayOptions {
  /**
   * The relay's one connection to SpacetimeDB: `createSyncClient` options (the
   * relay creates the client and closes it on `close()`), or a client the
   * caller owns. Its identity is what row-level security sees: spectators
   * never see more than it may.
   */
  upstream: SyncClientOptions<any> | SyncClient<any>;
  /** Stream patterns and their queries, e.g. `{ 'match/:id': { tables: ({ id }) => ({ … }) } }`. */
  streams: Record<string, StreamDefinition>;
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** Decides who may watch which stream. @default everyone may watch every configured stream */
  authorize?: (request: AuthorizeRequest) => AuthorizeResult | Promise<AuthorizeResult>;
  /** Broadcast delay (ms) of streams that set none. @default 0 */
  delayMs?: number;
  /** Most spectators at once; one more is closed with `RelayFull` (1013). @default 10_000 */
  maxSpectators?: number;
  /** Largest spectator message; a larger one closes that spectator with 1009. @default 16 KiB */
  maxMessageBytes?: number;
  /** Per-spectator budget of unsent bytes (see `relay/spectator.ts`). @default 1 MiB */
  maxBufferBytes?: number;
  /** How long a spectator may stay over its budget before it is closed with `TooSlow`. @default 30_000 */
  maxLagMs?: number;
  /** Time allowed between connecting and the `watch` message. @default 10_000 */
  watchTimeoutMs?: number;
  /** History kept per stream for resuming spectators. @default { maxEntries: 1000, maxBytes: 4 MiB } */
  history?: { maxEntries?: number; maxBytes?: number };
  /** How long a resume from a version this relay has not seen waits before a snapshot. @default 1000 */
  resumeWaitMs?: number;
  /** A stream nobody watches is closed (upstream queries released) after this. @default 30_000 */
  idleMs?: number;
  /** WebSocket permessage-deflate for spectators. @default true */
  compression?: boolean;
  /** Where stream failures are reported. @default console.error */
  onError?: (error: Error, stream: string) => void;
}

/** Counters of a running relay. */
export interface RelayStats {
  spectators: number;
  streams: number;
  /** Bytes and messages written to spectators (before compression). */
  bytesSent: number;
  messagesSent: number;
  /** Transactions published, over all streams. */
  transactions: number;
  /**
   * Wall-clock ms spent writing published patches to spectators (the
   * broadcast loop: one socket write per spectator), over all streams.
   * Divided by `transactions`, the fan-out time of one transaction.
   */
  fanOutMs: number;
  /** Snapshots sent, and spectators resumed from a stream's history instead. */
  snapshots: number;
  resumes: number;
  /** Spectators currently over their buffer budget. */
  lagging: number;
  upstream: ConnectionState;
}

/** A running relay. */
export interface Relay {
  /** `http://host:port` (WebSocket spectators use the `ws://` form, SSE ones `/sse`). */
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  /** The upstream sync client. */
  readonly client: SyncClient<any>;
  stats(): RelayStats;
  /** The current version of a stream this relay serves, if it is open and ready. */
  version(stream: string): string | undefined;
  /** Closes every spectator (1001), the streams, the server and (if the relay created it) the upstream client. */
  close(): Promise<void>;
}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`createRelay: ${name} must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(value)}.`);
  }
  return value;
}

/**
 * Starts a relay: connects upstream once and serves the configured streams to
 * spectators. Resolves once the HTTP server listens (streams open lazily, on
 * their first spectator).
 */
export async function createRelay(options: RelayOptions): Promise<Relay> {
  if (!options || typeof options !== 'object') throw new TypeError('createRelay: options are required.');
  if (!options.upstream || typeof options.upstream !== 'object') throw new TypeError('createRelay: `upstream` must be sync client options or a sync client.');
  const catalog = new StreamCatalog(options.streams);
  const cfg = {
    delayMs: positive('delayMs', options.delayMs, 0, true),
    maxSpectators: positive('maxSpectators', options.maxSpectators, 10_000),
    maxMessageBytes: positive('maxMessageBytes', options.maxMessageBytes, 16 * 1024),
    maxBufferBytes: positive('maxBufferBytes', options.maxBufferBytes, 1024 * 1024),
    maxLagMs: positive('maxLagMs', options.maxLagMs, 30_000),
    watchTimeoutMs: positive('watchTimeoutMs', options.watchTimeoutMs, 10_000),
    resumeWaitMs: positive('resumeWaitMs', options.resumeWaitMs, 1000, true),
    idleMs: positive('idleMs', options.idleMs, 30_000, true),
    history: {
      maxEntries: positive('history.maxEntries', options.history?.maxEntries, 1000),
      maxBytes: positive('history.maxBytes', options.history?.maxBytes, 4 * 1024 * 1024),
    },
  };
  const onError = options.onError ?? ((error: Error, stream: string) => console.error(`[relay] stream ${stream}: ${error.message}`));
  const ownsClient = !('table$' in options.upstream);
  const client: SyncClient<any> = ownsClient ? createSyncClient(options.upstream as SyncClientOptions<any>) : (options.upstream as SyncClient<any>);

  const streams = new Map<string, LiveStream>();
  const idleTimers = new Map<string, ReturnType<typeof setTimeout>>();
  const spectators = new Set<Spectator>();
  const lagging = new Set<Spectator>();
  let closedBytes = 0;
  let closedMessages = 0;
  let closedTransactions = 0;
  let closedSnapshots = 0;
  let closedResumes = 0;
  let closedFanOutMs = 0;
  const retire = (s: LiveStream) => {
    closedTransactions += s.transactions;
    closedFanOutMs += s.fanOutMs;
    closedSnapshots += s.snapshotsSent;
    closedResumes += s.resumes;
  };
  let upstreamState: ConnectionState = client.status.state;
  let closing = false;

  const statusSub = client.status$.subscribe((s) => {
    if (s.state === upstreamState) return;
    upstreamState = s.state;
    const text = JSON.stringify({ t: 'upstream', state: s.state });
    for (const sp of spectators) if (sp.stream) sp.notify(text);
  });

  // Slow spectators: resume them once their transport drained, close them after maxLagMs.
  const lagTimer = setInterval(() => {
    const now = Date.now();
    for (const sp of lagging) {
      if (sp.closed) {
        lagging.delete(sp);
      } else if (sp.sink.buffered() <= cfg.maxBufferBytes / 2) {
        lagging.delete(sp);
        sp.lagging = false;
        sp.stream?.catchUp(sp);
      } else if (now - sp.lagSince > cfg.maxLagMs) {
        lagging.delete(sp);
        sp.close(CloseCode.TooSlow, `too slow: over ${cfg.maxBufferBytes} unsent bytes for ${cfg.maxLagMs} ms`);
      }
    }
  }, 50);
  lagTimer.unref();

  function openStream(matched: MatchedStream): LiveStream {
    let stream = streams.get(matched.name);
    if (stream) {
      const idle = idleTimers.get(matched.name);
      if (idle) clearTimeout(idle);
      idleTimers.delete(matched.name);
      return stream;
    }
    stream = new LiveStream(matched, client, {
      delayMs: cfg.delayMs,
      history: cfg.history,
      resumeWaitMs: cfg.resumeWaitMs,
      maxBufferBytes: cfg.maxBufferBytes,
      onError: (s, error) => {
        onError(error, s.stream.name);
        if (streams.get(s.stream.name) === s) {
          streams.delete(s.stream.name);
          retire(s);
        }
      },
    });
    streams.set(matched.name, stream);
    return stream;
  }

  function released(spectator: Spectator): void {
    spectators.delete(spectator);
    lagging.delete(spectator);
    closedBytes += spectator.bytesSent;
    closedMessages += spectator.messagesSent;
    const stream = spectator.stream;
    spectator.stream?.leave(spectator);
    spectator.stream = undefined;
    if (stream && stream.spectators.size === 0 && streams.get(stream.stream.name) === stream && !closing) {
      const name = stream.stream.name;
      idleTimers.set(
        name,
        setTimeout(() => {
          idleTimers.delete(name);
          if (stream.spectators.size > 0) return;
          streams.delete(name);
          retire(stream);
          stream.close();
        }, cfg.idleMs),
      );
    }
  }

  /** Admission: the token hook, then the stream. Closes the spectator on refusal. */
  async function admit(spectator: Spectator, watch: WatchMessage, remoteAddress: string | undefined): Promise<void> {
    const matched = catalog.match(watch.stream);
    if (!matched) return spectator.close(CloseCode.UnknownStream, `unknown stream ${watch.stream.slice(0, 80)}`);
    if (options.authorize) {
      let verdict: AuthorizeResult;
      try {
        verdict = await options.authorize({
          stream: matched.name,
          pattern: matched.pattern,
          params: matched.params,
          token: watch.token,
          transport: spectator.sink.transport,
          remoteAddress,
        });
      } catch (err) {
        onError(err instanceof Error ? err : new Error(String(err)), matched.name);
        return spectator.close(CloseCode.Unauthorized, 'authorization failed');
      }
      if (verdict === 'unauthorized') return spectator.close(CloseCode.Unauthorized, 'token refused');
      if (verdict !== true) return spectator.close(CloseCode.Forbidden, `not allowed to watch ${matched.name.slice(0, 80)}`);
    }
    if (spectator.closed || closing) return;
    let stream: LiveStream;
    try {
      stream = openStream(matched);
    } catch (err) {
      onError(err as Error, matched.name);
      return spectator.close(CloseCode.StreamFailed, `stream failed: ${(err as Error).message}`.slice(0, 120));
    }
    spectator.stream = stream;
    if (upstreamState !== 'live') spectator.notify(JSON.stringify({ t: 'upstream', state: upstreamState }));
    stream.join(spectator, watch.since);
  }

  function admitOrRefuse(): boolean {
    return spectators.size < cfg.maxSpectators && !closing;
  }

  // ─── HTTP: SSE and a small status endpoint ────────────────────────────────
  const server: Server = createServer((req, res) => void handleHttp(req, res));
  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats()));
      return;
    }
    if (req.method !== 'GET' || url.pathname !== '/sse') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: spectators connect over WebSocket, or GET /sse?stream=NAME\n');
      return;
    }
    const stream = url.searchParams.get('stream') ?? '';
    const lastEventId = req.headers['last-event-id'];
    const since = url.searchParams.get('since') ?? (typeof lastEventId === 'string' ? lastEventId : undefined);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = url.searchParams.get('token') ?? bearer;
    let watch: WatchMessage;
    try {
      if ((req.url ?? '').length > cfg.maxMessageBytes) throw new BadMessageError('request too large');
      watch = parseSpectatorMessage(JSON.stringify({ t: 'watch', stream, ...(since ? { since } : {}), ...(token ? { token } : {}) })) as WatchMessage;
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
      return;
    }
    if (!admitOrRefuse()) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end('relay full\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    const spectator = new Spectator(sseSink(res), cfg.maxBufferBytes, (s) => lagging.add(s));
    spectators.add(spectator);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(keepAlive);
      spectator.closed = true;
      released(spectator);
    });
    await admit(spectator, watch, req.socket.remoteAddress);
  }

  // ─── WebSocket ────────────────────────────────────────────────────────────
  const wss = new WebSocketServer({
    server,
    maxPayload: cfg.maxMessageBytes,
    // Compressed once per message for all spectators (transports.ts), hence no context takeover.
    perMessageDeflate: options.compression === false ? false : { serverNoContextTakeover: true, threshold: COMPRESS_THRESHOLD },
  });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    if (!admitOrRefuse()) {
      ws.close(CloseCode.RelayFull, closing ? 'relay shutting down' : `relay full (${cfg.maxSpectators} spectators)`);
      return;
    }
    const spectator = new Spectator(webSocketSink(ws), cfg.maxBufferBytes, (s) => lagging.add(s));
    spectators.add(spectator);
    let watched = false;
    let alive = true;
    const watchTimer = setTimeout(() => spectator.close(CloseCode.WatchTimeout, 'no watch message in time'), cfg.watchTimeoutMs);
    const pinger = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, 20_000);
    ws.on('pong', () => (alive = true));
    ws.on('message', (data, isBinary) => {
      alive = true;
      if (spectator.closed) return;
      try {
        if (isBinary) throw new BadMessageError('binary messages are not accepted');
        const message = parseSpectatorMessage(data.toString());
        if (message.t === 'ping') return spectator.notify('{"t":"pong"}');
        if (watched) throw new BadMessageError('watch: already watching (one stream per connection)');
        watched = true;
        clearTimeout(watchTimer);
        void admit(spectator, message, req.socket.remoteAddress);
      } catch (err) {
        spectator.close(CloseCode.BadMessage, (err as Error).message.slice(0, 120));
      }
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      clearTimeout(watchTimer);
      clearInterval(pinger);
      spectator.closed = true;
      released(spectator);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  function stats(): RelayStats {
    let bytesSent = closedBytes;
    let messagesSent = closedMessages;
    for (const sp of spectators) {
      bytesSent += sp.bytesSent;
      messagesSent += sp.messagesSent;
    }
    let transactions = closedTransactions;
    let snapshots = closedSnapshots;
    let resumes = closedResumes;
    let fanOutMs = closedFanOutMs;
    for (const s of streams.values()) {
      transactions += s.transactions;
      fanOutMs += s.fanOutMs;
      snapshots += s.snapshotsSent;
      resumes += s.resumes;
    }
    return { spectators: spectators.size, streams: streams.size, bytesSent, messagesSent, transactions, fanOutMs, snapshots, resumes, lagging: lagging.size, upstream: upstreamState };
  }

  return {
    url: `http://${host}:${address.port}`,
    wsUrl: `ws://${host}:${address.port}`,
    port: address.port,
    client,
    stats,
    version: (name) => streams.get(name)?.version,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(lagTimer);
      statusSub.unsubscribe();
      for (const sp of [...spectators]) sp.close(CloseCode.GoingAway, 'relay shutting down');
      for (const t of idleTimers.values()) clearTimeout(t);
      for (const s of streams.values()) s.close();
      streams.clear();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownsClient) await client.close();
    },
  };
}

