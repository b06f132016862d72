/**
 * The socket adapter the sync client hands to the SDK through
 * `DbConnectionBuilder.withWSFn`. It replaces the SDK's own
 * `WebsocketDecompressAdapter` and sees every frame in both directions:
 *
 * - it performs the same handshake as the SDK (token exchange at
 *   `/v1/identity/websocket-token`, then the `subscribe` upgrade; see
 *   docs/protocol.md, "Connecting"), but turns a refused token into an
 *   {@link AuthError} carrying the HTTP status;
 * - it strips the compression byte and decompresses **in arrival order** (the
 *   SDK's adapter awaits each frame independently, so a small uncompressed
 *   frame can overtake a large gzip one);
 * - it walks every decompressed payload with the client-side frame reader and
 *   reports bytes, message kinds and per-table row bytes;
 * - it sends heartbeat probes (`OneOffQuery`) and swallows their results, so the
 *   SDK never sees them, measuring the round trip;
 * - it tells the session when the SDK has finished processing a frame (the SDK
 *   handles a frame synchronously), which is where table snapshots are flushed.
 *
 * @module
 */
import { AuthError, ProtocolError } from './errors.ts';
import { encodeOneOffQuery, scanServerPayload, describeClientPayload, type ScannedMessage, type ClientMessageKind } from './frameReader.ts';

/** The arguments the SDK passes to a `withWSFn` factory (structurally the SDK's `WebSocketArgs`). */
export interface SocketArgs {
  url: URL;
  wsProtocol: string[];
  nameOrAddress: string;
  authToken?: string;
  compression: 'gzip' | 'brotli' | 'none';
  lightMode: boolean;
  confirmedReads?: boolean;
}

/** Structurally the SDK's `WebSocketAdapter`. */
export interface SdkSocket {
  readonly protocol: string;
  readonly readyState?: number;
  send(msg: Uint8Array<ArrayBuffer>): void;
  close(): void;
  set onclose(handler: (ev: CloseEvent) => void);
  set onopen(handler: () => void);
  set onmessage(handler: (msg: { data: Uint8Array }) => void);
  set onerror(handler: (msg: ErrorEvent) => void);
}

/** A minimal WebSocket constructor (the browser's, Node 22's, or undici's). */
export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocket;

/** One inbound frame, as seen on the wire and after decompression. */
export interface FrameInInfo {
  /** Bytes on the wire, compression byte included. */
  readonly wireBytes: number;
  /** Bytes after decompression. */
  readonly bytes: number;
  readonly compressed: boolean;
  readonly messages: readonly ScannedMessage[];
}

/** One outbound frame. */
export interface FrameOutInfo {
  readonly bytes: number;
  readonly messages: readonly { kind: ClientMessageKind | 'unknown'; reducer?: string }[];
  /** True for the adapter's own heartbeat probes. */
  readonly probe: boolean;
}

/** What the adapter reports to the session that owns it. All optional. */
export interface SocketObserver {
  opened?(protocol: string): void;
  /**
   * An inbound frame, reported once the SDK has processed it and
   * {@link afterFrame} has run (or once its probe results were taken, when
   * it held nothing else): the bookkeeping stays off the path from the
   * socket to the streams.
   */
  frameIn?(info: FrameInInfo): void;
  frameOut?(info: FrameOutInfo): void;
  /** A probe's result arrived `rttMs` after it was sent. */
  probeAnswered?(rttMs: number, requestId: number): void;
  /** A frame is about to be handed to the SDK; {@link afterFrame} follows, whatever the SDK does with it. */
  beforeFrame?(): void;
  /** The SDK has processed every message of a frame. */
  afterFrame?(): void;
  /** The socket closed; `code`/`reason` from the close event. */
  closed?(code: number | undefined, reason: string | undefined): void;
  protocolError?(error: ProtocolError): void;
}

/** Options of {@link createSocketAdapter}. */
export interface SocketAdapterOptions {
  observer: SocketObserver;
  /** WebSocket implementation. @default globalThis.WebSocket, else undici's */
  WebSocket?: WebSocketCtor;
  /** `fetch` used for the token exchange. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Clock for RTT. @default performance.now */
  now?: () => number;
  /** Largest inbound frame accepted (wire bytes, and again after decompression); a larger one is a protocol error. @default 64 MiB */
  maxFrameBytes?: number;
  /** Table names (wire names) of the bindings; a server message naming another table is a protocol error. @default any */
  knownTables?: ReadonlySet<string>;
}

/** The adapter of one connection: the factory for `withWSFn`, plus the probe the heartbeat uses. */
export interface SocketAdapter {
  /** Pass to `builder.withWSFn(...)`. */
  readonly factory: (args: SocketArgs) => Promise<SdkSocket>;
  /** Send a heartbeat probe. Returns false when the socket is not open. */
  probe(query: string): boolean;
  /** Close the underlying socket now, whatever the SDK thinks. */
  close(): void;
  /** True once the socket is open, until it closes. */
  readonly isOpen: boolean;
}

/** The probe used when the bindings name no table: answered with an error, so only for servers that log none. */
export const FALLBACK_PROBE = 'SELECT * FROM __stdb_rx_heartbeat__';

/**
 * The heartbeat probe for a module: a `OneOffQuery` that is valid SQL on a
 * table the client may read, and answers with no rows (`WHERE FALSE`), so it
 * costs the server almost nothing and shows up nowhere as an error.
 */
export function probeQuery(tables: Iterable<string>): string {
  for (const t of tables) return `SELECT * FROM "${t.replace(/"/g, '""')}" WHERE FALSE`;
  return FALLBACK_PROBE;
}

/** Probe request ids live in the top of the u32 range, far from the SDK's counter. */
export const PROBE_ID_BASE = 0xf000_0000;

let cachedCtor: WebSocketCtor | undefined;
async function resolveWebSocket(): Promise<WebSocketCtor> {
  if (cachedCtor) return cachedCtor;
  const g = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (g) return (cachedCtor = g);
  const specifier = 'undici';
  const mod = (await import(/* @vite-ignore */ specifier)) as { WebSocket: WebSocketCtor };
  return (cachedCtor = mod.WebSocket);
}

async function decompress(data: Uint8Array, format: 'gzip' | 'brotli'): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream(format as CompressionFormat));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Create the adapter for one connection attempt. The session creates a new one
 * for every `DbConnection` it builds.
 */
export function createSocketAdapter(options: SocketAdapterOptions): SocketAdapter {
  const obs = options.observer;
  const now = options.now ?? (() => performance.now());
  let ws: WebSocket | undefined;
  let open = false;
  let closedByUs = false;
  let protocol: 'v2' | 'v3' = 'v2';
  let nextProbeId = PROBE_ID_BASE;
  const probesInFlight = new Map<number, number>();

  const factory = async (args: SocketArgs): Promise<SdkSocket> => {
    const fetchFn = options.fetch ?? globalThis.fetch;
    let shortLived: string | undefined;
    if (args.authToken) {
      const tokenUrl = new URL('v1/identity/websocket-token', args.url);
      tokenUrl.protocol = args.url.protocol === 'wss:' ? 'https:' : 'http:';
      const response = await fetchFn(tokenUrl, { method: 'POST', headers: { Authorization: `Bearer ${args.authToken}` } });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        throw new AuthError(`The server refused the token (HTTP ${response.status}).`, { status: response.status, refreshed: false });
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`Token exchange failed: HTTP ${response.status} ${response.statusText}`);
      }
      shortLived = ((await response.json()) as { token: string }).token;
    }
    const url = new URL(`v1/database/${args.nameOrAddress}/subscribe`, args.url);
    if (shortLived) url.searchParams.set('token', shortLived);
    url.searchParams.set('compression', { gzip: 'Gzip', brotli: 'Brotli', none: 'None' }[args.compression] ?? 'None');
    if (args.lightMode) url.searchParams.set('light', 'true');
    if (args.confirmedReads !== undefined) url.searchParams.set('confirmed', String(args.confirmedReads));
    const WS = options.WebSocket ?? (await resolveWebSocket());
    if (closedByUs) throw new Error('socket adapter closed before the socket opened');
    const socket = new WS(url.toString(), args.wsProtocol);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    return makeSdkSocket(socket);
  };

  function makeSdkSocket(socket: WebSocket): SdkSocket {
    let chain: Promise<void> = Promise.resolve();
    let sdkOnMessage: ((msg: { data: Uint8Array }) => void) | undefined;

    const maxBytes = options.maxFrameBytes ?? 64 * 1024 * 1024;
    /** Frames waiting in `chain` (decompressing, or behind one that is). */
    let queued = 0;

    /** Check, report and hand one decompressed frame to the SDK. */
    const handle = (frame: Uint8Array, tag: number, data: Uint8Array): void => {
      if (!open) return;
      if (data.length > maxBytes) {
        fail(new ProtocolError(`A frame decompressed to ${data.length} bytes, over the ${maxBytes}-byte limit.`, { direction: 'in', bytes: data.length }));
        return;
      }
      let messages: ScannedMessage[];
      try {
        messages = scanServerPayload(data, protocol);
      } catch (e) {
        fail(new ProtocolError(`Could not read a frame: ${(e as Error).message}`, { direction: 'in', bytes: data.length }, { cause: e }));
        return;
      }
      const known = options.knownTables;
      if (known) {
        for (const m of messages) {
          if (m.kind === 'OneOffQueryResult') continue;
          for (const table of m.tableBytes?.keys() ?? []) {
            if (!known.has(table)) {
              fail(new ProtocolError(`The server sent rows of table '${table}', which the bindings do not have.`, { direction: 'in', bytes: data.length }));
              return;
            }
          }
        }
      }
      // Swallow the results of our own probes.
      let forward: Uint8Array | undefined = data;
      const probes = messages.filter((m) => m.kind === 'OneOffQueryResult' && m.requestId !== undefined && probesInFlight.has(m.requestId));
      if (probes.length) {
        const t = now();
        for (const p of probes) {
          const sentAt = probesInFlight.get(p.requestId!)!;
          probesInFlight.delete(p.requestId!);
          obs.probeAnswered?.(t - sentAt, p.requestId!);
        }
        const keep = messages.filter((m) => !probes.includes(m));
        if (keep.length === 0) forward = undefined;
        else {
          const parts = keep.map((m) => data.subarray(m.start, m.end));
          const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let off = 0;
          for (const p of parts) {
            out.set(p, off);
            off += p.length;
          }
          forward = out;
        }
      }
      if (forward && sdkOnMessage) {
        try {
          obs.beforeFrame?.();
          sdkOnMessage({ data: forward });
        } catch (e) {
          // The SDK throws from its message handler on what it cannot apply
          // (an unknown table, a row that does not decode): contain it.
          fail(new ProtocolError(`The SDK could not apply a frame: ${(e as Error)?.message ?? e}`, { direction: 'in', bytes: data.length }, { cause: e }));
        } finally {
          obs.afterFrame?.();
        }
      }
      obs.frameIn?.({ wireBytes: frame.length, bytes: data.length, compressed: tag !== 0, messages });
    };

    const deliver = (frame: Uint8Array) => {
      if (frame.length === 0 || frame.length > maxBytes) {
        queued++;
        chain = chain.then(() => {
          queued--;
          fail(new ProtocolError(frame.length === 0 ? 'Received an empty frame.' : `Received a frame of ${frame.length} bytes, over the ${maxBytes}-byte limit.`, { direction: 'in', bytes: frame.length }));
        });
        return;
      }
      const tag = frame[0];
      const body = frame.subarray(1);
      const decoded: Promise<Uint8Array> | Uint8Array =
        tag === 0 ? body : tag === 2 ? decompress(body, 'gzip') : tag === 1 ? decompress(body, 'brotli') : Promise.reject(new Error(`unknown compression tag ${tag}`));
      // An uncompressed frame with nothing queued before it is handed on at
      // once, in this task: no promise hops between the socket and the SDK.
      if (tag === 0 && queued === 0) {
        try {
          handle(frame, tag, body);
        } catch (e) {
          fail(new ProtocolError(`Could not process a frame: ${(e as Error)?.message ?? e}`, { direction: 'in', bytes: frame.length }, { cause: e }));
        }
        return;
      }
      // Keep frames in arrival order even when decompression is asynchronous.
      queued++;
      chain = chain.then(async () => {
        let data: Uint8Array;
        try {
          data = await decoded;
        } catch (e) {
          fail(new ProtocolError(`Could not decompress a frame: ${(e as Error).message}`, { direction: 'in', bytes: frame.length }, { cause: e }));
          return;
        } finally {
          queued--;
        }
        handle(frame, tag, data);
      });
      // Nothing above may break the chain (or reach the process as an unhandled rejection).
      chain = chain.catch((e) => fail(new ProtocolError(`Could not process a frame: ${(e as Error)?.message ?? e}`, { direction: 'in', bytes: frame.length }, { cause: e })));
    };

    let failed = false;
    const fail = (err: ProtocolError) => {
      if (failed) return;
      failed = true;
      open = false;
      obs.protocolError?.(err);
      try {
        socket.close(1002, 'protocol error');
      } catch {
        socket.close();
      }
    };

    return {
      get protocol() {
        return socket.protocol;
      },
      get readyState() {
        return socket.readyState;
      },
      send(msg) {
        if (obs.frameOut) obs.frameOut({ bytes: msg.length, messages: describeClientPayload(msg, protocol), probe: false });
        socket.send(msg);
      },
      close() {
        socket.close();
      },
      set onclose(handler: (ev: CloseEvent) => void) {
        socket.onclose = (ev: CloseEvent) => {
          open = false;
          probesInFlight.clear();
          obs.closed?.(ev?.code, ev?.reason);
          handler(ev);
        };
      },
      set onopen(handler: () => void) {
        socket.onopen = () => {
          open = true;
          protocol = socket.protocol === 'v3.bsatn.spacetimedb' ? 'v3' : 'v2';
          obs.opened?.(socket.protocol);
          handler();
        };
      },
      set onmessage(handler: (msg: { data: Uint8Array }) => void) {
        sdkOnMessage = handler;
        socket.onmessage = (ev: MessageEvent<ArrayBuffer>) => deliver(new Uint8Array(ev.data));
      },
      set onerror(handler: (msg: ErrorEvent) => void) {
        socket.onerror = handler as (ev: Event) => void;
      },
    };
  }

  return {
    factory,
    get isOpen() {
      return open;
    },
    probe(query) {
      if (!ws || !open || ws.readyState !== 1) return false;
      const id = nextProbeId++;
      if (nextProbeId > 0xffff_ffff) nextProbeId = PROBE_ID_BASE;
      const msg = encodeOneOffQuery(id, query);
      probesInFlight.set(id, now());
      obs.frameOut?.({ bytes: msg.length, messages: [{ kind: 'OneOffQuery' }], probe: true });
      ws.send(msg);
      return true;
    },
    close() {
      closedByUs = true;
      open = false;
      try {
        ws?.close();
      } catch {
        /* already closing */
      }
    },
  };
}
