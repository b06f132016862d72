/**
 * Helpers for integration tests: a dev server on 127.0.0.1 with the test
 * fixture module, and the unmodified SDK connected to it over a real socket.
 */
import { fileURLToPath } from 'node:url';
import { startDevServer, type DevServer, type DevServerOptions } from '../../devserver/index.ts';
import { DbConnection } from '../fixtures/basic_bindings/index.ts';
import type { Identity } from 'spacetimedb';

export const BASIC_MODULE = fileURLToPath(new URL('../fixtures/basic.module.ts', import.meta.url));

export function startBasicServer(options: Partial<DevServerOptions> = {}): Promise<DevServer> {
  return startDevServer({ module: BASIC_MODULE, port: 0, ...options });
}

export interface Connected {
  conn: DbConnection;
  identity: Identity;
  token: string;
}

/** Connect the SDK; resolves on `onConnect`, rejects on `onConnectError` or a close before it. */
export function connect(
  server: DevServer,
  opts: { token?: string; compression?: 'none' | 'gzip' | 'brotli'; database?: string; onDisconnect?: (err?: Error) => void } = {},
): Promise<Connected> {
  return new Promise((resolve, reject) => {
    let b = DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(opts.database ?? server.database)
      .withCompression(opts.compression ?? 'none')
      .onConnect((conn, identity, token) => resolve({ conn, identity, token }))
      .onConnectError((_ctx, err) => reject(err))
      .onDisconnect((_ctx, err) => {
        opts.onDisconnect?.(err ?? undefined);
        reject(err ?? new Error('disconnected before connect'));
      });
    if (opts.token) b = b.withToken(opts.token);
    b.build();
  });
}

/** Resolve when `predicate()` holds, checking after every macrotask; reject after `ms`. */
export async function until(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
