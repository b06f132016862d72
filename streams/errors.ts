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
   * (`drop-if-stale`) passed while it waited to be sent.
   */
  readonly kind: 'sender' | 'internal' | 'superseded' | 'expired';
}

/** The server rejected a reducer call. */
export class ReducerRejectedError extends Error {
  override readonly name = 'ReducerRejectedError';
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
  constructor(message: string, readonly info: ProtocolErrorInfo, options?: { cause?: unknown }) {
    super(message, detachedOptions(options));
    settleError(this);
  }
}
