/**
 * stdb-rx operators: pure RxJS 7 operators with no knowledge of SpacetimeDB
 * (nothing here imports the SDK). Each lives in its own file, named after the
 * function it exports.
 *
 * @module
 */
export { retryBackoff, type RetryBackoffConfig, type RetryScheduled } from './retryBackoff.ts';
export { computeBackoffDelay, exponentialBackoffDelay, type BackoffInput, type Jitter } from './backoff.ts';
export { heartbeat, type HeartbeatConfig, type HeartbeatMeasurement, type HeartbeatDegraded, type HeartbeatRecovered, type HeartbeatEvent } from './heartbeat.ts';
export { jsonPatchDelta, defaultKeyToString, type DeltaOperation, type JsonPatchDeltaConfig } from './jsonPatchDelta.ts';
export { applyDelta, type ApplyDeltaConfig } from './applyDelta.ts';
export { encodeValue, decodeValue, jsonCodec, plainJson, type JsonCodec, type JsonValue, type TaggedType } from './jsonCodec.ts';
export {
  reconcile,
  valueEquals,
  type ConflictPolicy,
  type FieldConflict,
  type MutationEvent,
  type MutationId,
  type PendingMutation,
  type ReconcileConfig,
  type ReconciledView,
  type ReconcileEvent,
  type RowChanges,
} from './reconcile.ts';
export { prioritize, type OverflowPolicy, type PrioritizeConfig, type PrioritizeEvent } from './prioritize.ts';
export {
  DeltaEncodingError,
  HeartbeatTimeoutError,
  QueueOverflowError,
  ReconcileError,
  type DeltaEncodingInfo,
  type HeartbeatTimeoutInfo,
  type QueueOverflowInfo,
  type ReconcileErrorInfo,
} from './errors.ts';
