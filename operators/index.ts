export { retryBackoff, type RetryBackoffConfig, type RetryScheduled } from './retryBackoff.ts';
export { computeBackoffDelay, exponentialBackoffDelay, type Jitter, type BackoffInput } from './backoff.ts';
export * from './errors.ts';
export { heartbeat, type HeartbeatConfig, type HeartbeatMeasurement } from './heartbeat.ts';
export { jsonPatchDelta, defaultKeyToString, type JsonPatchDeltaConfig, type DeltaOperation } from './jsonPatchDelta.ts';
export { applyDelta, type ApplyDeltaConfig } from './applyDelta.ts';
export { encodeValue, decodeValue, type JsonValue } from './jsonCodec.ts';
export {
  reconcile,
  valueEquals,
  type ReconcileConfig,
  type ReconciledView,
  type ReconcileEvent,
  type MutationEvent,
  type PendingMutation,
  type MutationId,
  type RowChanges,
  type ConflictPolicy,
  type FieldConflict,
} from './reconcile.ts';
export { prioritize, type PrioritizeConfig, type PrioritizeEvent, type OverflowPolicy } from './prioritize.ts';
