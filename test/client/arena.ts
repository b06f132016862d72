/**
 * Fixtures of the client's storage tests: the arena demo module on the dev
 * server, a sync client on its bindings with storage on a fresh fake
 * IndexedDB, and counting the module's effects on the server.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { fileURLToPath } from 'node:url';
import { startDevServer, type DevServer, type DevServerOptions } from '../../devserver/index.ts';
import { createSyncClient, type SyncClient, type SyncClientOptions } from '../../src/index.ts';
import { openStorage, type Storage, type StorageOptions } from '../../storage/openStorage.ts';
import { moduleFromBindings } from '../../storage/schema.ts';
import { DbConnection, reducers, tables } from '../../demo/arena/bindings/index.ts';
import { testClientOptions } from '../helpers/syncClient.ts';

export { tables };
export const ARENA_MODULE = fileURLToPath(new URL('../../demo/arena/module.ts', import.meta.url));
export const arenaModule = moduleFromBindings({ tables, reducers });

export type ArenaClient = SyncClient<DbConnection>;

export function startArena(options: Partial<DevServerOptions> = {}): Promise<DevServer> {
  return startDevServer({ module: ARENA_MODULE, port: 0, ...options });
}

/** One browser profile: a fresh IndexedDB and a server name of its own (Dexie shares same-named databases in one process). */
export interface Profile {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  server: string;
}

let counter = 0;
export function freshProfile(): Profile {
  counter += 1;
  return { indexedDB: new IDBFactory(), IDBKeyRange, server: `ws://client-test-${process.pid}-${counter}.local` };
}

/** Open the arena storage in a profile (a "tab"). */
export function openArenaStorage(profile: Profile, options: Partial<StorageOptions> = {}): Promise<Storage> {
  return openStorage({ database: 'arena', module: arenaModule, lease: 'store', snapshotThrottleMs: 10, ...profile, ...options });
}

/** A client on the arena bindings with test-friendly timings. */
export function arenaClient(server: DevServer | { wsUrl: string; database: string }, options: Partial<SyncClientOptions<DbConnection>> = {}): ArenaClient {
  return createSyncClient<DbConnection>({
    builder: DbConnection.builder,
    ...testClientOptions(server),
    heartbeat: { interval: 500, timeout: 1000 },
    ...options,
  });
}

/** Rows of a table (canonical name) as the module sees them. */
export function serverRows(server: DevServer, table: string): Record<string, any>[] {
  const ds = server.module.datastore;
  return ds.scanTable(ds.tableIdFromName(table)).map((r) => r.value as Record<string, any>);
}

/** Chat texts on the server, in insertion (id) order. */
export function chatTexts(server: DevServer): string[] {
  return serverRows(server, 'chat_message')
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((r) => r.text as string);
}
