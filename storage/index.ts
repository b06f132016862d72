/**
 * stdb-rx storage: durable outbox, offline snapshot cache, token storage and
 * migrations for SpacetimeDB clients, on Dexie 4 / IndexedDB with an
 * in-memory fallback. See docs/storage.md.
 */
export { openStorage, type Storage, type StorageOptions } from './openStorage.ts';
export type { ReducerNames } from './outboxQueue.ts';
export {
  Outbox,
  PRIORITY,
  drainOrder,
  type EnqueueOptions,
  type EnqueueResult,
  type OfflinePolicy,
  type OutboxEntry,
  type OutboxEvent,
  type OutboxOptions,
  type OutboxState,
  type Priority,
  type ReducerPolicy,
} from './outbox.ts';
export { SnapshotCache, type LoadedTable, type Row, type SnapshotCacheOptions, type TableChanges } from './snapshotCache.ts';
export { TokenStore, type Session } from './tokenStore.ts';
export {
  DROP,
  Migrations,
  type MigratableEntry,
  type MigrationCheck,
  type MigrationPhase,
  type MigrationProgress,
  type Migrator,
  type OutboxMigrationResult,
} from './migrations.ts';
export { StoreLease, WebLocksLease, browserLocks, type DrainLease, type LockManagerLike, type StoreLeaseOptions } from './lease.ts';
export { StdbRxDB, databaseName, type OutboxRecord, type OutboxStatus, type OutcomeKind, type OutcomeRecord, type RowRecord, type TableRecord } from './db.ts';
export { MemoryStore, type Store, type StorageMode } from './store.ts';
export { DexieStore } from './dexieStore.ts';
export { FailoverStore } from './failover.ts';
export { ModuleCodecs, describeSchema, diffSchemas, moduleFromBindings, type SchemaRecord, type StorageModule } from './schema.ts';
export { checkValue, encodeArgs, productCodec, type ProductCodec } from './codec.ts';
export { systemClock, systemTimers, type Clock, type Timers } from './clock.ts';
export * from './errors.ts';
