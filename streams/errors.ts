/**
 * The sync client's error family. Every error carries the context it was
 * raised in as a readonly `info` object (as the operators' errors do), and the
 * underlying failure, when there is one, as `cause`.
 *
 * `HeartbeatTimeoutError` belongs to the operators and is re-exported from the
 * package entry next to these.
 *
 * Every error formats its stack when made and keeps only a detached copy
 * of its cause (see `errorCause.ts`), so an error kept by an app (a log, the
 * last error in its state) never keeps a dead connection, storage or cache.
 *
 * @module
 */
import { detachedOptions, settleError } from './errorCause.ts';

/** What {@link AuthError} knows about a refused token. */
export interface AuthErrorInfo {
  /** HTTP status the server answered the token exchange with (401, 403…), if known. */
  readonly status?: number;
  /** Whether a fresh token was requested from the token provider before giving up. */
  readonly refreshed: boolean;
}

/** The server refused the token. Not retried: the client stops in `offline` with this as `lastError`. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  /** The player-facing text, once the client reported this error (see {@link userMessage}). */
  declare readonly userMessage?: string;
  constructor(message: string, readonly info: AuthErrorInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}

/** What {@link ConnectionLostError} knows about the connection that went away. */
export interface ConnectionLostInfo {
  /** Why: a socket close, a socket error, a heartbeat timeout, the browser going offline, a page resume, a forced reconnect, or `close()`. */
  readonly reason: 'close' | 'error' | 'heartbeat' | 'offline' | 'resume' | 'reconnect' | 'closed' | 'connect-failed';
  /** The reducer whose call was in flight, when this error settles a call. */
  readonly reducer?: string;
}

/** The socket went away (retried). Also settles reducer calls that were in flight when it happened. */
export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError';
  /** The player-facing text, once the client reported this error (see {@link userMessage}). */
  declare readonly userMessage?: string;
  constructor(message: string, readonly info: ConnectionLostInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}

/** What {@link SubscriptionError} knows about the failed query. */
export interface SubscriptionErrorInfo {
  readonly sql: readonly string[];
  readonly table: string;
}

/** The server refused or dropped a subscription. Reported on `errors$` and as the error of that query's streams. */
export class SubscriptionError extends Error {
  override readonly name = 'SubscriptionError';
  /** The player-facing text, once the client reported this error (see {@link userMessage}). */
  declare readonly userMessage?: string;
  constructor(message: string, readonly info: SubscriptionErrorInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}

/** What {@link ReducerRejectedError} knows about the rejected call. */
export interface ReducerRejectedInfo {
  readonly reducer: string;
  readonly args: unknown;
  /**
   * `sender`: the reducer threw a `SenderError`; `internal`: it panicked or
   * does not exist; `superseded`: a newer queued call with the same
   * `supersedeKey` replaced it before it was sent; `expired`: its deadline
   * (`drop-if-stale`) passed while it waited to be sent; `discarded`: the
   * app deleted its outbox entry (`storage.outbox.discard`) or a migrator
   * dropped it — the server never applied it.
   */
  readonly kind: 'sender' | 'internal' | 'superseded' | 'expired' | 'discarded';
}

/** The server rejected a reducer call. */
export class ReducerRejectedError extends Error {
  override readonly name = 'ReducerRejectedError';
  /** The player-facing text, once the client reported this error (see {@link userMessage}). */
  declare readonly userMessage?: string;
  constructor(message: string, readonly info: ReducerRejectedInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}

/** What {@link ProtocolError} knows about the frame it could not read. */
export interface ProtocolErrorInfo {
  readonly direction: 'in' | 'out';
  readonly bytes: number;
}

/** A frame could not be read (bad compression tag, truncated message…). The connection is dropped and retried. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  /** The player-facing text, once the client reported this error (see {@link userMessage}). */
  declare readonly userMessage?: string;
  constructor(message: string, readonly info: ProtocolErrorInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}

/** What {@link OutcomeUnknownError} knows about the call. */
export interface OutcomeUnknownInfo {
  readonly reducer: string;
  /** The outbox entry (mutation id) that left the outbox. */
  readonly mutationId: string;
  /** How long outcomes are kept (ms): this handle looked after that. */
  readonly outcomeTtlMs?: number;
}

/**
 * A durable call's outbox entry is gone and no tab's record says what became
 * of it (the record aged out before this tab looked, e.g. after a long
 * suspension). The call may or may not have been applied: look at the
 * server's tables (or the module's receipts) before calling again.
 */
export class OutcomeUnknownError extends Error {
  override readonly name = 'OutcomeUnknownError';
  constructor(message: string, readonly info: OutcomeUnknownInfo, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** What {@link ReceiptsNotFoundError} knows about the missing receipts. */
export interface ReceiptsNotFoundInfo {
  /** Reducers (as the bindings name them) that take a mutation id, so were written to record receipts. */
  readonly reducers: readonly string[];
  /** The receipts table the client looked for in the bindings. */
  readonly table: string;
}

/**
 * A warning, on `errors$` and in the log at start-up: some reducers take a
 * mutation id (they record receipts for an exactly-once effect), but the
 * client has no receipts table to subscribe to. Replays are still skipped by
 * the module, but calls lost in flight are not resolved from receipts after
 * a reconnect. Pass `receipts: { table: tables.yourReceipts }` (or name the
 * table `mutation_receipt`), or `receipts: false` to say you mean it.
 */
export class ReceiptsNotFoundError extends Error {
  override readonly name = 'ReceiptsNotFoundError';
  constructor(message: string, readonly info: ReceiptsNotFoundInfo, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The application callbacks whose exceptions {@link CallbackError} reports. */
export type CallbackName = 'onToken' | 'token' | 'subscriber' | 'predict';

/** What {@link CallbackError} knows about the callback that threw. */
export interface CallbackErrorInfo {
  /**
   * Which callback threw: `onToken`; `token` (the token provider);
   * `subscriber` (a `next`/`error`/`complete` handler subscribed to one of the
   * client's streams); `predict` (an optimistic prediction, which is then
   * rolled back).
   */
  readonly callback: CallbackName;
  /** The stream whose subscriber threw (`table$`, `status$`…), for `subscriber`. */
  readonly stream?: string;
}

/**
 * Application code passed to the client threw. Reported on `errors$` (the
 * thrown value is the `cause`); never treated as a network or protocol
 * failure, never retried.
 */
export class CallbackError extends Error {
  override readonly name = 'CallbackError';
  constructor(message: string, readonly info: CallbackErrorInfo, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An error as `errors$` and `status.lastError` carry it: with a short text a game can show a player as is. */
export type PlayerFacingError = Error & {
  /**
   * A short sentence in the player's language ("Connection lost — reconnecting",
   * "Can't reach the server", "The server rejected this change: …"): no
   * timestamps, protocol message names or exception class names.
   */
  readonly userMessage: string;
};

/** What {@link userMessage} needs to know beyond the error itself. */
export interface UserMessageContext {
  /**
   * Whether this client was ever live. A network failure before that reads
   * "Can't reach the server", after it "Connection lost — reconnecting".
   * @default true
   */
  readonly connectedBefore?: boolean;
}

const REJECTION_DETAIL_MAX = 120;

/** The server's own rejection text, when it reads like a sentence for people (no stack, no tags), else ''. */
function rejectionDetail(err: ReducerRejectedError): string {
  const cause = err.cause as { message?: unknown } | undefined;
  let text = typeof cause?.message === 'string' ? cause.message : err.message.replace(/^[\w.]+ rejected: /, '');
  text = text.split('\n')[0].trim();
  if (!text || text.length > REJECTION_DETAIL_MAX || /\w*(Error|Exception)\b|\bpanic|[{}<>]|\bat \w+ \(|\d{10,}/.test(text)) return '';
  return text;
}

/**
 * The short, player-facing sentence for an error of this package (or any
 * other error: a generic one). Pure: the same error and context always give
 * the same text.
 *
 * | error                                   | text                                                   |
 * |-----------------------------------------|--------------------------------------------------------|
 * | network failure, never live yet         | Can't reach the server                                 |
 * | network failure after being live        | Connection lost — reconnecting                         |
 * | a call in flight when the link died     | Connection lost — this change may not have been saved  |
 * | browser offline                         | You're offline                                         |
 * | token refused                           | Sign-in was refused — please sign in again             |
 * | reducer rejected (`SenderError`)        | The server rejected this change: <its message>         |
 * | unreadable frame                        | Sync problem — reconnecting                            |
 * | storage failure                         | Can't save on this device — changes are kept until you close the game |
 */
export function userMessage(error: unknown, context: UserMessageContext = {}): string {
  const connectedBefore = context.connectedBefore ?? true;
  const name = (error as { name?: unknown } | null)?.name;
  if (error instanceof ConnectionLostError) {
    if (error.info.reducer !== undefined) return 'Connection lost — this change may not have been saved';
    switch (error.info.reason) {
      case 'offline':
        return "You're offline";
      case 'closed':
        return 'Disconnected';
      case 'reconnect':
      case 'resume':
        return 'Reconnecting…';
      default:
        return connectedBefore ? 'Connection lost — reconnecting' : "Can't reach the server";
    }
  }
  if (error instanceof AuthError) return 'Sign-in was refused — please sign in again';
  if (error instanceof ReducerRejectedError) {
    switch (error.info.kind) {
      case 'superseded':
        return 'Replaced by a newer change';
      case 'expired':
        return 'This change expired before it could be sent';
      case 'discarded':
        return 'This change was discarded before it was sent';
      case 'internal':
        return 'The server could not apply this change';
      case 'sender': {
        const detail = rejectionDetail(error);
        return detail ? `The server rejected this change: ${detail}` : 'The server rejected this change';
      }
    }
  }
  if (error instanceof OutcomeUnknownError) return "We couldn't confirm whether this change was saved";
  if (error instanceof ReceiptsNotFoundError) return 'Some changes may be applied twice after a reconnect';
  if (error instanceof CallbackError) return 'Something went wrong in the game';
  if (error instanceof ProtocolError) return connectedBefore ? 'Sync problem — reconnecting' : "Can't reach the server";
  if (error instanceof SubscriptionError) return "Some game data couldn't be loaded";
  switch (name) {
    case 'HeartbeatTimeoutError':
      return connectedBefore ? 'Connection lost — reconnecting' : "Can't reach the server";
    case 'StorageQuotaError':
      return 'This device is out of space — changes are kept until you close the game';
    case 'StorageUpgradeBlockedError':
      return 'Close the other tabs of this game to finish updating';
    case 'MigrationError':
      return "A saved change couldn't be carried over to this version";
    case 'InvalidArgsError':
    case 'UnknownReducerError':
      return "This action isn't possible";
    case 'OfflineRefusedError':
      return "This action needs a connection — you're offline";
    case 'SpectatorRefusedError':
      return "This match can't be watched right now";
    case 'SpectatorDesyncError':
    case 'SpectatorUnknownTableError':
      return connectedBefore ? 'Sync problem — reconnecting' : "Can't reach the server";
  }
  if (typeof name === 'string' && name.startsWith('Storage')) return "Can't save on this device — changes are kept until you close the game";
  return 'Something went wrong';
}

/**
 * Give `error` its `userMessage` ({@link PlayerFacingError}) (kept when it already
 * has one) and return it. The property is not enumerable, so the error logs
 * and compares as before.
 */
export function withUserMessage(error: unknown, context?: UserMessageContext): PlayerFacingError {
  const err = error instanceof Error ? error : new Error(String(error));
  if (typeof (err as Partial<PlayerFacingError>).userMessage !== 'string') {
    Object.defineProperty(err, 'userMessage', { value: userMessage(err, context), enumerable: false, configurable: true, writable: false });
  }
  return err as PlayerFacingError;
}
