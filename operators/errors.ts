/**
 * Error classes raised by the stdb-rx operators. Each one carries the context
 * it was raised in as a readonly `info` object, in the manner of RxJS's
 * `TimeoutError.info`, so that a handler can report or recover without parsing
 * the message.
 *
 * @module
 */

/** What {@link HeartbeatTimeoutError} knows about the connection that went silent. */
export interface HeartbeatTimeoutInfo {
  /** Scheduler time of the last inbound activity, or `null` if nothing ever arrived. */
  readonly lastActivityAt: number | null;
  /** Scheduler time at which the unanswered (follow-up) probe was sent. */
  readonly probeAt: number;
  /** Number of probes sent during this subscription, the unanswered one included. */
  readonly probesSent: number;
  /** The wait (ms) after that probe that elapsed without any activity. */
  readonly timeout: number;
}

/**
 * Raised by {@link heartbeat} when the link was degraded, a follow-up probe was
 * sent, and no activity of any kind arrived within `info.timeout` after it.
 */
export class HeartbeatTimeoutError extends Error {
  override readonly name = 'HeartbeatTimeoutError';
  constructor(readonly info: HeartbeatTimeoutInfo) {
    super(
      `No activity within ${info.timeout} ms after heartbeat probe #${info.probesSent} ` +
        `(last activity at ${info.lastActivityAt ?? 'never'}).`,
    );
  }
}

/** What {@link QueueOverflowError} knows about the rejected item. */
export interface QueueOverflowInfo<T = unknown> {
  /** The configured capacity of the queue. */
  readonly capacity: number;
  /** The item that did not fit. */
  readonly item: T;
}

/**
 * Raised by {@link prioritize} with `overflow: 'error'` when an item arrives
 * while the queue already holds `capacity` items.
 */
export class QueueOverflowError<T = unknown> extends Error {
  override readonly name = 'QueueOverflowError';
  constructor(readonly info: QueueOverflowInfo<T>) {
    super(`Queue is full (capacity ${info.capacity}); overflow policy is 'error'.`);
  }
}

/** What {@link DeltaEncodingError} knows about the value that could not be encoded or decoded. */
export interface DeltaEncodingInfo {
  /** JSON Pointer (RFC 6901) of the offending value, relative to the snapshot. */
  readonly path: string;
  /** The offending value. */
  readonly value: unknown;
}

/**
 * Raised by {@link jsonPatchDelta} for a row value that has no JSON encoding
 * (a function, a symbol, a `Map`, an instance of an unknown class…), and by
 * {@link applyDelta} for a malformed tagged value.
 */
export class DeltaEncodingError extends Error {
  override readonly name = 'DeltaEncodingError';
  constructor(
    message: string,
    readonly info: DeltaEncodingInfo,
  ) {
    super(`${message} at '${info.path}'`);
  }
}

/** What {@link ReconcileError} knows about the offending mutation event. */
export interface ReconcileErrorInfo {
  /** Id of the mutation the event refers to. */
  readonly id: unknown;
  /** The event that could not be applied. */
  readonly event: unknown;
}

/**
 * Raised by {@link reconcile} when the mutation stream breaks its contract,
 * e.g. a second `pending` event reuses the id of a mutation still pending.
 */
export class ReconcileError extends Error {
  override readonly name = 'ReconcileError';
  constructor(
    message: string,
    readonly info: ReconcileErrorInfo,
  ) {
    super(message);
  }
}
