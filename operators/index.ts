export { retryBackoff, type RetryBackoffConfig, type RetryScheduled } from './retryBackoff.ts';
export { computeBackoffDelay, exponentialBackoffDelay, type Jitter, type BackoffInput } from './backoff.ts';
export * from './errors.ts';
export { heartbeat, type HeartbeatConfig, type HeartbeatMeasurement } from './heartbeat.ts';
export { jsonPatchDelta, defaultKeyToString, type JsonPatchDeltaConfig, type DeltaOperation } from './jsonPatchDelta.ts';
export { applyDelta, type ApplyDeltaConfig } from './applyDelta.ts';
export { encodeValue, decodeValue, type JsonValue } from './jsonCodec.ts';
