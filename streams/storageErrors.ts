/**
 * Errors of the storage layer, in two named families.
 *
 * - {@link StorageError}: the storage itself failed (quota, IndexedDB
 *   unavailable, a blocked upgrade, a failed read or write). These are
 *   reported through `errors$` and never thrown into the game loop: the
 *   storage falls back to memory and carries on.
 * - {@link OutboxError}: a call was refused at once, before anything was
 *   stored (bad arguments, unknown reducer, an online-only reducer while
 *   offline). These reject the caller's own promise: they are misuse or
 *   policy, not infrastructure.
 *
 * Every error carries the cause it wraps in `inner` (RxDB and Dexie keep the
 * same habit), so nothing of the original failure is lost — as a detached
 * copy (name, message, code, formatted stack, nested causes), so a kept error
 * never keeps the database or outbox that raised it.
 */
import { detachCause, settleError } from './errorCause.ts';

/** What went wrong with the storage. */
export type StorageErrorCode =
  /** The browser refused a write: the origin's storage quota is used up. */
  | 'quota-exceeded'
  /** IndexedDB is missing or refuses to open (private mode, disabled storage, Node without a factory). */
  | 'unavailable'
  /** Opening needs a schema upgrade that another tab blocks by keeping an older version open. */
  | 'upgrade-blocked'
  /** The database connection was closed under us (another tab upgraded or deleted it). */
  | 'closed'
  /** Any other failed read or write. */
  | 'failed';

/** Base of the storage failure family. */
export class StorageError extends Error {
  override readonly name: string = 'StorageError';
  /**
   * @param code What went wrong.
   * @param operation The storage operation that failed (`outbox.enqueue`, `snapshots.flush`, …).
   * @param inner The original cause (a Dexie or DOM error).
   */
  constructor(
    readonly code: StorageErrorCode,
    readonly operation: string,
    message: string,
    readonly inner?: unknown,
  ) {
    super(message);
    // Keep what the cause said, not the Dexie/DOM objects (and stack frames) it reaches.
    this.inner = detachCause(inner);
    settleError(this);
  }
}

/** The storage quota is exhausted. */
export class StorageQuotaError extends StorageError {
  override readonly name = 'StorageQuotaError';
  constructor(operation: string, inner?: unknown) {
    super('quota-exceeded', operation, `storage quota exceeded during ${operation}; continuing in memory`, inner);
  }
}

/** IndexedDB cannot be used at all. */
export class StorageUnavailableError extends StorageError {
  override readonly name = 'StorageUnavailableError';
  constructor(operation: string, inner?: unknown) {
    super('unavailable', operation, `IndexedDB is unavailable (${describe(inner)}); continuing in memory`, inner);
  }
}

/** A schema upgrade waits for another tab to close an older version of the database. */
export class StorageUpgradeBlockedError extends StorageError {
  override readonly name = 'StorageUpgradeBlockedError';
  constructor(operation: string, inner?: unknown) {
    super(
      'upgrade-blocked',
      operation,
      'the database upgrade is blocked by another tab that keeps an older version open',
      inner,
    );
  }
}

/** The connection was closed under us. */
export class StorageClosedError extends StorageError {
  override readonly name = 'StorageClosedError';
  constructor(operation: string, inner?: unknown) {
    super('closed', operation, `the database was closed during ${operation} (${describe(inner)}); continuing in memory`, inner);
  }
}

/** Any other read or write failure. */
export class StorageFailedError extends StorageError {
  override readonly name = 'StorageFailedError';
  constructor(operation: string, inner?: unknown) {
    super('failed', operation, `${operation} failed: ${describe(inner)}; continuing in memory`, inner);
  }
}

/** Why the outbox refused a call. */
export type OutboxErrorCode =
  /** The arguments do not match the reducer's parameter types. */
  | 'invalid-args'
  /** The bindings have no reducer of that name. */
  | 'unknown-reducer'
  /** The reducer's policy is `online-only` and the client is offline. */
  | 'offline'
  /** A migrator could not carry a queued entry to the new schema (the entry is quarantined, not dropped). */
  | 'migration'
  /** The mutation id is already in the outbox. */
  | 'duplicate-id';

/** Base of the refused-call family. */
export class OutboxError extends Error {
  override readonly name: string = 'OutboxError';
  constructor(
    readonly code: OutboxErrorCode,
    readonly reducer: string,
    message: string,
    readonly inner?: unknown,
  ) {
    super(message);
    // Keep what the cause said, not the Dexie/DOM objects (and stack frames) it reaches.
    this.inner = detachCause(inner);
    settleError(this);
  }
}

/** Arguments that the reducer's parameter types do not accept; nothing was stored. */
export class InvalidArgsError extends OutboxError {
  override readonly name = 'InvalidArgsError';
  /**
   * @param path Where in the arguments the mismatch is (`args.events[2].value`).
   */
  constructor(
    reducer: string,
    readonly path: string,
    readonly expected: string,
    readonly actual: unknown,
    inner?: unknown,
  ) {
    super('invalid-args', reducer, `${reducer}: ${path} must be ${expected}, got ${show(actual)}`, inner);
  }
}

/** The bindings do not declare this reducer. */
export class UnknownReducerError extends OutboxError {
  override readonly name = 'UnknownReducerError';
  constructor(reducer: string) {
    super('unknown-reducer', reducer, `unknown reducer ${JSON.stringify(reducer)}: it is not in the bindings`);
  }
}

/** An `online-only` reducer was called while offline. */
export class OfflineRefusedError extends OutboxError {
  override readonly name = 'OfflineRefusedError';
  constructor(reducer: string) {
    super('offline', reducer, `${reducer} is online-only and the client is offline: the call was refused, not queued`);
  }
}

/** A call reusing a mutation id that is already in the outbox. */
export class DuplicateMutationIdError extends OutboxError {
  override readonly name = 'DuplicateMutationIdError';
  constructor(reducer: string, readonly mutationId: string) {
    super('duplicate-id', reducer, `${reducer}: mutation id ${JSON.stringify(mutationId)} is already in the outbox`);
  }
}

/** A queued entry that no migrator could carry to the new schema. */
export class MigrationError extends OutboxError {
  override readonly name = 'MigrationError';
  constructor(reducer: string, message: string, inner?: unknown) {
    super('migration', reducer, message, inner);
  }
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const ctor = (value as object).constructor?.name;
  return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
}

function describe(inner: unknown): string {
  if (inner instanceof Error) return `${inner.name}: ${inner.message}`;
  if (inner && typeof inner === 'object' && 'name' in inner) return String((inner as { name: unknown }).name);
  return String(inner);
}

/**
 * Names of `error` and of every cause nested in it (Dexie wraps the DOM
 * error in `inner`; a failed bulk operation lists them in `failures`).
 */
export function errorNames(error: unknown, depth = 0): string[] {
  if (depth > 5 || error === null || typeof error !== 'object') return [];
  const e = error as { name?: unknown; inner?: unknown; cause?: unknown; failures?: unknown };
  const names = typeof e.name === 'string' ? [e.name] : [];
  for (const nested of [e.inner, e.cause]) names.push(...errorNames(nested, depth + 1));
  if (Array.isArray(e.failures)) for (const f of e.failures) names.push(...errorNames(f, depth + 1));
  return names;
}

/** Turn any failure of IndexedDB or Dexie into a member of the {@link StorageError} family. */
export function toStorageError(operation: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const names = errorNames(error);
  if (names.includes('QuotaExceededError')) return new StorageQuotaError(operation, error);
  if (names.some(n => n === 'MissingAPIError' || n === 'SecurityError' || n === 'OpenFailedError' || n === 'InvalidStateError')) {
    return new StorageUnavailableError(operation, error);
  }
  if (names.includes('DatabaseClosedError') || names.includes('VersionChangeError')) {
    return new StorageClosedError(operation, error);
  }
  return new StorageFailedError(operation, error);
}
