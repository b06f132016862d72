/**
 * stdb-rx: the reactive network layer between TypeScript multiplayer games and
 * SpacetimeDB.
 *
 * @module
 */
export {
  createSyncClient,
  mergeRetry,
  type SyncClient,
  type SyncClientOptions,
  type TokenProvider,
  type TokenRequest,
  type HeartbeatOptions,
  type TableQueryOptions,
  type WhereOf,
  type RowOf,
  type CallOptions,
  type Optimistic,
  type ClientStorageOptions,
  type ReceiptsOptions,
} from './client.ts';
export type { SyncStatus } from '../streams/status.ts';
export type { OutboxState, OutboxEntry, ReducerPolicy, OfflinePolicy } from '../storage/outbox.ts';
export {
  StorageError,
  StorageQuotaError,
  StorageUnavailableError,
  StorageUpgradeBlockedError,
  StorageClosedError,
  StorageFailedError,
  OutboxError,
  InvalidArgsError,
  UnknownReducerError,
  OfflineRefusedError,
  MigrationError,
} from '../streams/storageErrors.ts';
export type { ConnectionStatus, ConnectionState, ConnectionQuality, Phase, LifecycleEvent } from '../streams/status.ts';
export type { SyncProgress } from '../streams/liveQueries.ts';
export type { RowChange, RowKey } from '../streams/tableView.ts';
export type { ClientMetrics, LatencyStats } from '../streams/metrics.ts';
export { CallHandle, type CallOutcome, type ConfirmedVia, type OutboxCall } from '../streams/calls.ts';
export { PersistentMap } from '../streams/persistentMap.ts';
export { createLogger, redact, type Logger, type LoggerOptions, type LogLevel, type LogSink } from '../streams/logger.ts';
export {
  AuthError,
  ConnectionLostError,
  SubscriptionError,
  ReducerRejectedError,
  OutcomeUnknownError,
  ReceiptsNotFoundError,
  ProtocolError,
  CallbackError,
  type CallbackErrorInfo,
  type CallbackName,
  userMessage,
  withUserMessage,
  type PlayerFacingError,
  type UserMessageContext,
  type AuthErrorInfo,
  type ConnectionLostInfo,
  type SubscriptionErrorInfo,
  type ReducerRejectedInfo,
  type OutcomeUnknownInfo,
  type ReceiptsNotFoundInfo,
  type ProtocolErrorInfo,
} from '../streams/errors.ts';
export * from '../operators/index.ts';
// The delta operators and the value codec under the names `stdb-rx/operators`
// uses, but knowing the SpacetimeDB types by default (these take precedence
// over the SDK-free ones the line above re-exports).
export { jsonPatchDelta, applyDelta, encodeValue, decodeValue, spacetimeJson, spacetimeTypes } from '../streams/spacetimeJson.ts';
export {
  createSpectator,
  SpectatorRefusedError,
  SpectatorDesyncError,
  SpectatorUnknownTableError,
  type Spectator,
  type SpectatorOptions,
  type SpectatorStatus,
  type SpectatorRefusedInfo,
} from './spectator.ts';
