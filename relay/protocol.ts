/**
 * The spectator wire protocol: JSON text messages between a relay and its
 * spectators. Browser-safe (no Node imports): the spectator client shares
 * these types and the parser.
 *
 * Spectator → relay (WebSocket only; SSE spectators put the same fields in
 * the URL query):
 * - `{ "t": "watch", "stream": "match/7", "since"?: "<version>", "token"?: "…" }` — first message, exactly once.
 * - `{ "t": "ping" }` — answered by a `pong` (the spectator's heartbeat probe).
 *
 * Relay → spectator:
 * - `snapshot`: the stream's whole document and its version.
 * - `patch`: RFC 6902 operations turning the document at `from` into the one at `version`.
 * - `upstream`: the relay's own connection to SpacetimeDB changed state.
 * - `pong`.
 *
 * @module
 */
import type { DeltaOperation } from '../operators/jsonPatchDelta.ts';
import type { JsonValue } from '../operators/jsonCodec.ts';

/** How row keys of a table travel: paths carry keys as strings; this says how to turn them back. */
export type KeyType = 'string' | 'number' | 'bigint' | 'boolean';

/** The stream's document: table name → row key (string) → encoded row (`spacetimeJson`, `streams/spacetimeJson.ts`). */
export type StreamDocument = Record<string, Record<string, JsonValue>>;

export interface SnapshotMessage {
  readonly t: 'snapshot';
  readonly stream: string;
  readonly version: string;
  /** The stream's broadcast delay in ms (0: live). */
  readonly delayMs: number;
  readonly keys: Record<string, KeyType>;
  readonly data: StreamDocument;
}

export interface PatchMessage {
  readonly t: 'patch';
  /** The version the operations apply to. */
  readonly from: string;
  readonly version: string;
  /** Transactions folded into this message (1 normally; more after a resume or for a slow spectator). */
  readonly n: number;
  /** Key types of tables whose first rows appear in this patch. */
  readonly keys?: Record<string, KeyType>;
  /** Paths are `/<table>/<key>` and `/<table>/<key>/<field>`. */
  readonly ops: readonly DeltaOperation[];
}

export interface UpstreamMessage {
  readonly t: 'upstream';
  /** `live`: the relay is in sync with SpacetimeDB; anything else: patches pause until it is again. */
  readonly state: string;
}

export interface PongMessage {
  readonly t: 'pong';
}

export type RelayMessage = SnapshotMessage | PatchMessage | UpstreamMessage | PongMessage;

export interface WatchMessage {
  readonly t: 'watch';
  readonly stream: string;
  readonly since?: string;
  readonly token?: string;
}

export interface PingMessage {
  readonly t: 'ping';
}

export type SpectatorMessage = WatchMessage | PingMessage;

/**
 * Close codes a relay uses (WebSocket close frames; SSE spectators get an
 * `event: close` with the same code and reason before the response ends).
 */
export const CloseCode = {
  /** The relay shuts down; reconnect (possibly to another relay). */
  GoingAway: 1001,
  /** A spectator message larger than `maxMessageBytes`. */
  MessageTooBig: 1009,
  /** The stream's upstream queries failed (e.g. refused by the server); the reason says why. */
  StreamFailed: 1011,
  /** The relay is at `maxSpectators`; try again later or elsewhere. */
  RelayFull: 1013,
  /** A malformed or unexpected spectator message. */
  BadMessage: 4400,
  /** The token hook refused the token (or none was given and one is needed). */
  Unauthorized: 4401,
  /** The token hook refused this stream for this token. */
  Forbidden: 4403,
  /** No configured stream matches the name. */
  UnknownStream: 4404,
  /** No `watch` arrived in time. */
  WatchTimeout: 4408,
  /** The spectator stayed behind its buffer limit for longer than `maxLagMs`. */
  TooSlow: 4409,
} as const;

/** Close codes after which reconnecting cannot help without a change (token, stream name, client bug). */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.BadMessage,
  CloseCode.Unauthorized,
  CloseCode.Forbidden,
  CloseCode.UnknownStream,
]);

/** A spectator message that could not be understood. */
export class BadMessageError extends Error {
  override readonly name = 'BadMessageError';
  constructor(message: string) {
    super(message);
  }
}

const VERSION_RE = /^[0-9a-f]{16}$/;
const MAX_STREAM_NAME = 256;
const MAX_TOKEN = 8192;

/** True for a well-formed version string (16 lowercase hex digits). */
export function isVersion(value: unknown): value is string {
  return typeof value === 'string' && VERSION_RE.test(value);
}

/**
 * Parses one spectator message.
 * @throws {BadMessageError} For anything but a well-formed `watch` or `ping`.
 */
export function parseSpectatorMessage(text: string): SpectatorMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadMessageError('message is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadMessageError('message is not a JSON object');
  const m = value as Record<string, unknown>;
  switch (m.t) {
    case 'ping':
      return { t: 'ping' };
    case 'watch': {
      if (typeof m.stream !== 'string' || m.stream.length === 0 || m.stream.length > MAX_STREAM_NAME) {
        throw new BadMessageError(`watch: stream must be a non-empty string of at most ${MAX_STREAM_NAME} characters`);
      }
      if (m.since !== undefined && !isVersion(m.since)) throw new BadMessageError('watch: since must be a version (16 hex digits)');
      if (m.token !== undefined && (typeof m.token !== 'string' || m.token.length > MAX_TOKEN)) {
        throw new BadMessageError(`watch: token must be a string of at most ${MAX_TOKEN} characters`);
      }
      for (const k of Object.keys(m)) {
        if (!['t', 'stream', 'since', 'token'].includes(k)) throw new BadMessageError(`watch: unknown field ${JSON.stringify(k.slice(0, 40))}`);
      }
      return { t: 'watch', stream: m.stream, since: m.since as string | undefined, token: m.token as string | undefined };
    }
    default:
      throw new BadMessageError(`unknown message type ${JSON.stringify(String(m.t).slice(0, 40))}`);
  }
}
