/**
 * Errors the library hands out must not keep what raised them alive. Two
 * things would: V8 keeps an error's stack frames unformatted — with their
 * functions and receivers (`this`), e.g. a `DbConnection`, an outbox or a
 * Dexie database — until someone reads `stack`; and a `cause` that is a raw
 * SDK or Dexie object pins whatever that object reaches. So every error of
 * the library formats its stack when it is made ({@link settleError}), and a
 * cause becomes a self-contained record of what it said
 * ({@link detachCause}): name, message, code, the formatted stack and its own
 * causes, nothing else.
 *
 * @module
 */
import { DeltaEncodingError, HeartbeatTimeoutError, QueueOverflowError, ReconcileError } from '../operators/errors.ts';

/** Errors known to hold only what they say (their stacks formatted): kept as they are when they become a cause. */
const settled = new WeakSet<object>();

/** Classes of the library whose instances carry only plain `info` and may be kept as causes (after formatting their stack). */
const LIBRARY_CLASSES: (abstract new (...args: any[]) => Error)[] = [HeartbeatTimeoutError, QueueOverflowError, ReconcileError, DeltaEncodingError];

/** Format `error`'s stack now, releasing the frames it captured; returns `error`. */
export function settleError<E extends Error>(error: E): E {
  try {
    void error.stack;
  } catch {
    /* a throwing stack getter: nothing to release */
  }
  settled.add(error);
  return error;
}

/** `{ cause }` options with the cause detached (see {@link detachCause}). */
export function detachedOptions(options: { cause?: unknown } | undefined): { cause?: unknown } | undefined {
  return options && 'cause' in options ? { cause: detachCause(options.cause) } : options;
}

/**
 * A copy of `cause` that keeps what it says and nothing it references:
 * errors become plain `Error`s with the same `name`, `message`, `code`,
 * formatted `stack`, and detached `cause`/`inner`/`failures`; other objects
 * become their JSON data (or their string). Primitives and the library's own
 * errors are returned as they are.
 */
export function detachCause(cause: unknown, depth = 0): unknown {
  if (cause === null || cause === undefined) return cause;
  if (typeof cause === 'function' || typeof cause === 'symbol') return String(cause);
  if (typeof cause !== 'object') return cause;
  if (settled.has(cause)) return cause;
  if (LIBRARY_CLASSES.some((c) => cause instanceof c)) return settleError(cause as Error);
  if (depth > 4) return undefined;
  const src = cause as { name?: unknown; message?: unknown; stack?: unknown; code?: unknown; inner?: unknown; cause?: unknown; failures?: unknown };
  if (cause instanceof Error || (typeof src.name === 'string' && typeof src.message === 'string')) {
    let stack: unknown;
    try {
      stack = src.stack;
    } catch {
      stack = undefined;
    }
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const out = new Error(String(src.message ?? '')) as Error & { code?: unknown; inner?: unknown; failures?: unknown };
    Error.stackTraceLimit = limit;
    out.name = String(src.name ?? 'Error');
    out.stack = typeof stack === 'string' ? stack : `${out.name}: ${out.message}`;
    if (typeof src.code === 'string' || typeof src.code === 'number') out.code = src.code;
    if (src.inner !== undefined) out.inner = detachCause(src.inner, depth + 1);
    if (src.cause !== undefined) out.cause = detachCause(src.cause, depth + 1);
    if (Array.isArray(src.failures)) out.failures = src.failures.map((f) => detachCause(f, depth + 1));
    settled.add(out);
    return out;
  }
  try {
    return JSON.parse(JSON.stringify(cause, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  } catch {
    return String(cause);
  }
}
