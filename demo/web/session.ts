/**
 * One signed-in session of the page: a sync client for the arena database
 * with the storage's durable outbox behind it, plus the bookkeeping the page
 * adds on top (its mutation ids, the token kept in IndexedDB).
 */
import type { Identity } from 'spacetimedb';
import { createSyncClient, type CallHandle, type CallOptions, type SyncClient } from '../../src/index.ts';
import { moduleFromBindings, openStorage, type Storage } from '../../storage/index.ts';
import { DbConnection, reducers, tables } from '../arena/bindings/index.ts';
import type { PageConfig } from './config.ts';

export type ArenaClient = SyncClient<DbConnection>;
type Reducer = keyof DbConnection['reducers'] & string;

/** The storage of this (server, database): outbox, token, snapshots. Opened once per page load. */
export function openArenaStorage(config: PageConfig): Promise<Storage> {
  return openStorage({
    server: config.uri,
    database: config.database,
    module: moduleFromBindings({ tables, reducers }),
  });
}

export interface SessionOptions {
  config: PageConfig;
  storage: Storage;
}

export class Session {
  readonly client: ArenaClient;
  /** Mutation ids this page load issued (the rest of the outbox came from an earlier load). */
  readonly issued = new Set<string>();
  #identity: Identity | undefined;

  /**
   * The token comes from the storage (kept there by the client after every
   * login); without one the server mints an anonymous identity.
   */
  constructor(options: SessionOptions) {
    const { config, storage } = options;
    this.client = createSyncClient<DbConnection>({
      builder: DbConnection.builder,
      uri: config.uri,
      database: config.database,
      storage,
      onToken: (_token, identity) => (this.#identity = identity),
      heartbeat: config.heartbeat,
      retry: config.retry,
      connectTimeout: config.connectTimeout,
      // Only the owner moves a node: a pending move stays on top of newer server rows until answered.
      reconcile: { conflict: 'client-wins' },
      sdkLogLevel: 'warn',
    });
  }

  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** Call a mutating reducer with a fresh mutation id (exactly-once on the server). */
  mutate(reducer: Reducer, args: Record<string, unknown>, options?: CallOptions, mutationId: string = crypto.randomUUID()): { handle: CallHandle; mutationId: string } {
    this.issued.add(mutationId);
    const handle = this.client.call(reducer, { ...args, mutationId } as never, options);
    return { handle, mutationId };
  }

  /** Call again with the same arguments (same mutation id: applied at most once). */
  again(reducer: Reducer, args: unknown, options?: CallOptions): CallHandle {
    return this.client.call(reducer, args as Parameters<ArenaClient['call']>[1], options);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

export { tables };
export type { DbConnection };
