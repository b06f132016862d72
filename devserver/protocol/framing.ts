/**
 * Websocket framing for the v2 and v3 binary subprotocols (docs/protocol.md,
 * "Subprotocols and framing").
 *
 * Server → client: every binary frame is a 1-byte compression tag
 * (0 none, 1 brotli, 2 gzip) followed by the (possibly compressed) body. The
 * body is exactly one v2 `ServerMessage` under v2, and one or more v2
 * `ServerMessage`s back to back under v3. Like the real server, a body is
 * compressed only when it is longer than {@link COMPRESS_THRESHOLD} bytes;
 * shorter bodies go out with tag 0 whatever compression the client asked for.
 *
 * Client → server: no compression tag. v2: one `ClientMessage` per frame;
 * v3: one or more back to back.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import {
  ProtocolDecodeError,
  StrictReader,
  encodeClientMessage,
  encodeServerMessage,
  readClientMessage,
  readServerMessage,
  decodeClientMessage,
  decodeServerMessage,
  type ClientMessage,
  type ServerMessage,
} from './messages.ts';

// ---------------------------------------------------------------------------
// Subprotocols

export const V2_PROTOCOL = 'v2.bsatn.spacetimedb';
export const V3_PROTOCOL = 'v3.bsatn.spacetimedb';
export type WsProtocol = typeof V2_PROTOCOL | typeof V3_PROTOCOL;
/** In order of preference. */
export const SUPPORTED_PROTOCOLS: readonly WsProtocol[] = [V3_PROTOCOL, V2_PROTOCOL];

/**
 * Pick the subprotocol for an upgrade: v3 if offered, else v2, else `null`
 * (the real server then answers 400). Accepts the offered names as a list or
 * set (entries may also be raw comma-separated header values).
 */
export function negotiateProtocol(offered: Iterable<string>): WsProtocol | null {
  const names = new Set<string>();
  for (const entry of offered) for (const part of entry.split(',')) names.add(part.trim());
  for (const p of SUPPORTED_PROTOCOLS) if (names.has(p)) return p;
  return null;
}

// ---------------------------------------------------------------------------
// Compression

export type Compression = 'None' | 'Brotli' | 'Gzip';

export const COMPRESSION_TAG = { None: 0, Brotli: 1, Gzip: 2 } as const;

/** Bodies longer than this (strictly) are compressed, as in SpacetimeDB's `decide_compression`. */
export const COMPRESS_THRESHOLD = 1024;

/** Target for a v3 payload body (uncompressed, tag not counted), as in the real server. */
export const V3_MAX_PAYLOAD_BYTES = 512 * 1024;

/** Bodies at least this big are compressed on the libuv thread pool by the async paths. */
export const ASYNC_COMPRESS_MIN_BYTES = 64 * 1024;

/**
 * The `compression` query parameter of `/v1/database/:name/subscribe`.
 * Absent → `Brotli` (the real server's default). An unknown value → `null`
 * (the real server rejects the request with 400).
 */
export function parseCompression(param: string | null | undefined): Compression | null {
  if (param === null || param === undefined) return 'Brotli';
  return param === 'None' || param === 'Brotli' || param === 'Gzip' ? param : null;
}

/** The compression actually applied to a body of `length` bytes. */
export function chooseCompression(length: number, requested: Compression): Compression {
  return length > COMPRESS_THRESHOLD ? requested : 'None';
}

// The real server favours speed: brotli quality 1, gzip "fast" (level 1).
function brotliOptions(length: number): zlib.BrotliOptions {
  return {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 1,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: length,
    },
  };
}
const GZIP_OPTIONS: zlib.ZlibOptions = { level: 1 };

const gzipAsync = promisify(zlib.gzip);
const brotliAsync = promisify(zlib.brotliCompress);

function withTag(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

/** Prefix `body` with its compression tag, compressing it if it is over the threshold. */
export function frameServerPayload(body: Uint8Array, compression: Compression): Uint8Array {
  switch (chooseCompression(body.length, compression)) {
    case 'None':
      return withTag(COMPRESSION_TAG.None, body);
    case 'Gzip':
      return withTag(COMPRESSION_TAG.Gzip, zlib.gzipSync(body, GZIP_OPTIONS));
    case 'Brotli':
      return withTag(COMPRESSION_TAG.Brotli, zlib.brotliCompressSync(body, brotliOptions(body.length)));
  }
}

/** Like {@link frameServerPayload}, but large bodies are compressed off the main thread. */
export async function frameServerPayloadAsync(body: Uint8Array, compression: Compression): Promise<Uint8Array> {
  const chosen = chooseCompression(body.length, compression);
  if (chosen === 'None' || body.length < ASYNC_COMPRESS_MIN_BYTES) return frameServerPayload(body, compression);
  if (chosen === 'Gzip') return withTag(COMPRESSION_TAG.Gzip, await gzipAsync(body, GZIP_OPTIONS));
  return withTag(COMPRESSION_TAG.Brotli, await brotliAsync(body, brotliOptions(body.length)));
}

export interface UnframeOptions {
  /** Refuse to inflate a body beyond this many bytes (default 64 MiB). */
  maxOutputLength?: number;
}
const DEFAULT_MAX_INFLATE = 64 * 1024 * 1024;

/**
 * Strip the compression tag of a server frame and decompress its body
 * (what the SDK's decompress adapter does). Throws {@link ProtocolDecodeError}
 * on an empty frame, an unknown tag or a corrupt compressed body.
 */
export function unframeServerPayload(frame: Uint8Array, options: UnframeOptions = {}): Uint8Array {
  if (frame.length === 0) throw new ProtocolDecodeError('empty server frame (missing compression tag)', 0);
  const tag = frame[0]!;
  const body = frame.subarray(1);
  const maxOutputLength = options.maxOutputLength ?? DEFAULT_MAX_INFLATE;
  try {
    switch (tag) {
      case COMPRESSION_TAG.None:
        return body;
      case COMPRESSION_TAG.Brotli:
        return new Uint8Array(zlib.brotliDecompressSync(body, { maxOutputLength }));
      case COMPRESSION_TAG.Gzip:
        return new Uint8Array(zlib.gunzipSync(body, { maxOutputLength }));
    }
  } catch (e) {
    throw new ProtocolDecodeError(`cannot decompress server frame (tag ${tag}): ${(e as Error).message}`, 1);
  }
  throw new ProtocolDecodeError(`unknown compression tag ${tag} (expected 0 none, 1 brotli, 2 gzip)`, 0);
}

// ---------------------------------------------------------------------------
// Server → client

/**
 * Group encoded messages into payload bodies: one per message under v2;
 * under v3 as many consecutive messages as fit in `maxPayloadBytes` (a
 * message bigger than that travels alone), in order, like the real server.
 */
export function packServerPayloads(
  messages: readonly Uint8Array[],
  protocol: WsProtocol,
  maxPayloadBytes: number = V3_MAX_PAYLOAD_BYTES,
): Uint8Array[] {
  if (protocol === V2_PROTOCOL) return messages.slice();
  const out: Uint8Array[] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number) => {
    if (end > start) out.push(concat(messages, start, end, size));
    start = end;
    size = 0;
  };
  for (let i = 0; i < messages.length; i++) {
    const len = messages[i]!.length;
    if (size !== 0 && size + len > maxPayloadBytes) flush(i);
    size += len;
  }
  flush(messages.length);
  return out;
}

function concat(parts: readonly Uint8Array[], start: number, end: number, total: number): Uint8Array {
  if (end - start === 1) return parts[start]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = start; i < end; i++) {
    out.set(parts[i]!, at);
    at += parts[i]!.length;
  }
  return out;
}

export interface ServerFrameOptions {
  protocol: WsProtocol;
  compression: Compression;
  /** v3 payload budget (default {@link V3_MAX_PAYLOAD_BYTES}). */
  maxPayloadBytes?: number;
}

/** Encode server messages into ready-to-send binary frames. */
export function encodeServerFrames(messages: readonly (ServerMessage | Uint8Array)[], options: ServerFrameOptions): Uint8Array[] {
  const bodies = packServerPayloads(messages.map(asBytes), options.protocol, options.maxPayloadBytes);
  return bodies.map(b => frameServerPayload(b, options.compression));
}

/** Like {@link encodeServerFrames}, compressing large payloads off the main thread. */
export async function encodeServerFramesAsync(
  messages: readonly (ServerMessage | Uint8Array)[],
  options: ServerFrameOptions,
): Promise<Uint8Array[]> {
  const bodies = packServerPayloads(messages.map(asBytes), options.protocol, options.maxPayloadBytes);
  return Promise.all(bodies.map(b => frameServerPayloadAsync(b, options.compression)));
}

function asBytes(m: ServerMessage | Uint8Array): Uint8Array {
  return m instanceof Uint8Array ? m : encodeServerMessage(m);
}

/**
 * Collects a connection's outgoing server messages (e.g. everything produced
 * in one tick) and turns them into frames on `flush()`. Under v2 every message
 * becomes its own frame; under v3 they are coalesced up to the payload budget.
 * Message order is preserved, also across `flushAsync()` calls that overlap.
 */
export class ServerFrameBatcher {
  readonly options: Required<ServerFrameOptions>;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: ServerFrameOptions) {
    this.options = { maxPayloadBytes: V3_MAX_PAYLOAD_BYTES, ...options };
  }

  /** Queue one message (or its already-encoded bytes). */
  push(message: ServerMessage | Uint8Array): void {
    const bytes = asBytes(message);
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
  }

  get pendingMessages(): number {
    return this.#queue.length;
  }
  get pendingBytes(): number {
    return this.#queuedBytes;
  }

  #take(): Uint8Array[] {
    const bodies = packServerPayloads(this.#queue, this.options.protocol, this.options.maxPayloadBytes);
    this.#queue = [];
    this.#queuedBytes = 0;
    return bodies;
  }

  /** Frames for everything queued so far, compressed synchronously. */
  flush(): Uint8Array[] {
    return this.#take().map(b => frameServerPayload(b, this.options.compression));
  }

  /**
   * Frames for everything queued so far; large bodies are compressed on the
   * thread pool. Each call resolves after every earlier call, so sending
   * frames as the promises resolve keeps them in order.
   */
  flushAsync(): Promise<Uint8Array[]> {
    const bodies = this.#take();
    const work = Promise.all(bodies.map(b => frameServerPayloadAsync(b, this.options.compression)));
    const result = this.#tail.then(() => work);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Decode a whole server frame (tag + body) into its messages: exactly one
 * under v2, one or more under v3. For tests and for a client-side socket
 * adapter. On failure the thrown error's `decoded` holds the messages that
 * preceded the bad one.
 */
export function decodeServerFrame(frame: Uint8Array, protocol: WsProtocol, options?: UnframeOptions): ServerMessage[] {
  const body = unframeServerPayload(frame, options);
  if (protocol === V2_PROTOCOL) return [decodeServerMessage(body)];
  return readAll(body, readServerMessage, 'server');
}

// ---------------------------------------------------------------------------
// Client → server

/**
 * Encode client messages as one frame. Under v2 exactly one message is
 * allowed; under v3 at least one.
 */
export function encodeClientFrame(messages: readonly (ClientMessage | Uint8Array)[], protocol: WsProtocol): Uint8Array {
  if (messages.length === 0) throw new RangeError('a client frame needs at least one message');
  if (protocol === V2_PROTOCOL && messages.length !== 1) {
    throw new RangeError(`v2 frames carry exactly one message, got ${messages.length}`);
  }
  const parts = messages.map(m => (m instanceof Uint8Array ? m : encodeClientMessage(m)));
  return concat(parts, 0, parts.length, parts.reduce((n, p) => n + p.length, 0));
}

/**
 * Decode every client message in one incoming frame. v2: exactly one message,
 * no trailing bytes. v3: one or more back to back; an empty frame is an error.
 * Throws {@link ProtocolDecodeError}; for v3 its `decoded` holds the messages
 * before the bad one (the real server executes those before closing).
 */
export function decodeClientFrame(bytes: Uint8Array, protocol: WsProtocol): ClientMessage[] {
  if (protocol === V2_PROTOCOL) return [decodeClientMessage(bytes)];
  return readAll(bytes, readClientMessage, 'client');
}

function readAll<T>(bytes: Uint8Array, read: (r: StrictReader) => T, side: string): T[] {
  if (bytes.length === 0) {
    throw new ProtocolDecodeError(`v3 ${side} payload must contain at least one message`, 0);
  }
  const reader = new StrictReader(bytes);
  const out: T[] = [];
  while (reader.remaining > 0) {
    try {
      out.push(read(reader));
    } catch (e) {
      if (e instanceof ProtocolDecodeError) e.decoded = out;
      throw e;
    }
  }
  return out;
}
