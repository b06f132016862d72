// Reducer arguments are checked against the bindings in the app itself: each
// line below must be a compile error (an unused @ts-expect-error fails tsc).
import { createSyncClient } from 'stdb-rx';
import { DbConnection } from 'stdb-rx-devserver/arena';

export async function wrongArguments(): Promise<void> {
  const client = createSyncClient({ builder: DbConnection.builder, uri: 'ws://127.0.0.1:3000', database: 'arena' });
  // @ts-expect-error `name` must be a string
  await client.call('setName', { name: 42 });
  // @ts-expect-error `matchId` is missing
  await client.call('joinMatch', {});
  // @ts-expect-error no such reducer
  await client.call('noSuchReducer', {});
  await client.call('setName', { name: 'typed' });
  await client.close();
}
