/**
 * The timers fixture (scheduled tables and procedures) on a dev server, with
 * the unmodified SDK subscribed to its public tables.
 */
import { fileURLToPath } from 'node:url';
import type { DevServer } from '../../devserver/index.ts';
import { DbConnection } from '../fixtures/timers_bindings/index.ts';
import './sdk.ts';

export const TIMERS_MODULE = fileURLToPath(new URL('../fixtures/timers.module.ts', import.meta.url));

export async function connectTimers(server: DevServer): Promise<DbConnection> {
  const conn = await new Promise<DbConnection>((resolve, reject) => {
    DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(server.database)
      .onConnect((c) => resolve(c))
      .onConnectError((_c, e) => reject(e))
      .build();
  });
  await new Promise<void>((resolve, reject) => {
    conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError((ctx) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(['SELECT * FROM fired', 'SELECT * FROM alarm', 'SELECT * FROM tick', 'SELECT * FROM item']);
  });
  return conn;
}

