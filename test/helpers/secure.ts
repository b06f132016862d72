/**
 * Helpers for the row-level-security and view tests: a dev server hosting
 * test/fixtures/secure.module.ts and the unmodified SDK connected to it.
 */
import { fileURLToPath } from 'node:url';
import { startDevServer, type DevServer, type DevServerOptions } from '../../devserver/index.ts';
import { DbConnection } from '../fixtures/secure_bindings/index.ts';
import type { Identity } from 'spacetimedb';

export const SECURE_MODULE = fileURLToPath(new URL('../fixtures/secure.module.ts', import.meta.url));

export function startSecureServer(options: Partial<DevServerOptions> = {}): Promise<DevServer> {
  return startDevServer({ module: SECURE_MODULE, port: 0, ...options });
}

export interface SecureClient {
  conn: DbConnection;
  identity: Identity;
  token: string;
}

export function connectSecure(server: DevServer, token?: string): Promise<SecureClient> {
  return new Promise((resolve, reject) => {
    let b = DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(server.database)
      .withCompression('none')
      .onConnect((conn, identity, tok) => resolve({ conn, identity, token: tok }))
      .onConnectError((_ctx, err) => reject(err))
      .onDisconnect((_ctx, err) => reject(err ?? new Error('disconnected before connect')));
    if (token) b = b.withToken(token);
    b.build();
  });
}

export function subscribeSecure(c: SecureClient, queries: string[]): Promise<{ unsubscribe(): void }> {
  return new Promise((resolve, reject) => {
    const handle = c.conn
      .subscriptionBuilder()
      .onApplied(() => resolve({ unsubscribe: () => handle.unsubscribe() }))
      .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(queries);
  });
}

/**
 * The hooks of a suite against the secure module: a fresh dev server per
 * test and every SDK connection the test opened with `client()` closed
 * after it. Read `suite.server` inside the tests (a test may replace it; the
 * one there at the end is stopped).
 */
export function secureSuite(): { server: DevServer; client(token?: string): Promise<SecureClient>; disconnectAll(): void } {
  const open: SecureClient[] = [];
  const suite = {
    server: undefined as unknown as DevServer,
    async client(token?: string) {
      const c = await connectSecure(suite.server, token);
      open.push(c);
      return c;
    },
    disconnectAll() {
      for (const c of open.splice(0)) c.conn.disconnect();
    },
  };
  beforeEach(async () => {
    suite.server = await startSecureServer();
  });
  afterEach(async () => {
    suite.disconnectAll();
    await suite.server.stop();
  });
  return suite;
}
