/**
 * Helpers for the sync client's integration tests: a client on the basic
 * fixture's bindings with short timings, and awaiting specific emissions.
 */
import { firstValueFrom, filter, timeout, type Observable } from 'rxjs';
import type { DevServer } from '../../devserver/index.ts';
import { createSyncClient, type SyncClient, type SyncClientOptions } from '../../src/index.ts';
import { DbConnection } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from './sdk.ts';

export type BasicClient = SyncClient<DbConnection>;

/** Options every test client shares: the server's address, fast retries, quiet SDK, no browser events. */
export function testClientOptions(server: { wsUrl: string; database: string }) {
  return {
    uri: server.wsUrl,
    database: server.database,
    compression: 'none',
    retry: { initialInterval: 20, maxInterval: 200, jitter: 'full' },
    unsubscribeGraceMs: 50,
    sdkLogLevel: 'error',
    events: null,
  } as const;
}

/** A client for the basic fixture with test-friendly timings (fast retries, 200 ms heartbeat). */
export function basicClient(server: DevServer, options: Partial<SyncClientOptions<DbConnection>> = {}): BasicClient {
  return createSyncClient<DbConnection>({
    builder: DbConnection.builder,
    ...testClientOptions(server),
    heartbeat: { interval: 200, timeout: 300 },
    ...options,
  });
}

/** The first emission of `source` that satisfies `predicate`, or an error after `ms`. */
export function next<T>(source: Observable<T>, predicate: (value: T) => boolean = () => true, ms = 5000, what = 'emission'): Promise<T> {
  return firstValueFrom(
    source.pipe(
      filter(predicate),
      timeout({ first: ms, with: () => { throw new Error(`timed out waiting for ${what}`); } }),
    ),
  );
}

/** Resolves when the client is live. */
export function live(client: BasicClient, ms = 5000): Promise<unknown> {
  return next(client.status$, (s) => s.state === 'live', ms, 'status live');
}

/**
 * For each test of the enclosing `describe`: a basic dev server and a live
 * client on it, both closed after the test. Read them from the returned
 * object inside the tests.
 */
export function eachLiveClient(options: Partial<SyncClientOptions<DbConnection>> = {}): { readonly server: DevServer; readonly client: BasicClient } {
  const current = {} as { server: DevServer; client: BasicClient };
  beforeEach(async () => {
    current.server = await startBasicServer();
    current.client = basicClient(current.server, options);
    await live(current.client);
  });
  afterEach(async () => {
    await current.client.close();
    await current.server.stop();
  });
  return current;
}
