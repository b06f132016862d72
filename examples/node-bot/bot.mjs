// A bot for the arena demo: names itself, places a node, waits until the
// server's rows show it, then leaves. Run `npx stdb-rx-devserver` first.
//   STDB_URI=ws://127.0.0.1:3000 node bot.mjs
import { firstValueFrom, filter } from 'rxjs';
import { createSyncClient } from 'stdb-rx';
import { DbConnection, tables } from 'stdb-rx-devserver/arena';

const uri = process.env.STDB_URI ?? 'ws://127.0.0.1:3000';
const name = `bot-${process.pid}`;

const client = createSyncClient({ builder: DbConnection.builder, uri, database: 'arena' });
client.errors$.subscribe((error) => console.error(`bot: ${error.name}: ${error.message}`));

const me = await firstValueFrom(client.identity$);
await client.call('setName', { name });
await client.call('createNode', { parent: 0n, x: 1, y: 2, data: JSON.stringify({ note: 'planted by a bot' }) });

// The board as the server has it: wait for this bot's node to arrive.
const mine = await firstValueFrom(
  client.table$(tables.gameNode).pipe(filter((nodes) => [...nodes.values()].some((n) => n.owner.isEqual(me)))),
);
console.log(`bot: ${name} sees ${mine.size} node(s) on the board, one of them its own`);
await client.close();
console.log('bot: done');
