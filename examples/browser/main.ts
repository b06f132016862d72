// The arena demo's players, live, in a page: status, the player list, and a
// button that renames you. Start `npx stdb-rx-devserver`, then `npm run build`
// and open index.html through any static file server.
import { createSyncClient } from 'stdb-rx';
import { DbConnection, tables } from 'stdb-rx-devserver/arena';

const uri = new URLSearchParams(location.search).get('uri') ?? 'ws://127.0.0.1:3000';
const client = createSyncClient({ builder: DbConnection.builder, uri, database: 'arena' });

const statusEl = document.getElementById('status')!;
const list = document.getElementById('players')!;
const rename = document.getElementById('rename') as HTMLButtonElement;

client.status$.subscribe((status) => {
  statusEl.textContent = status.state;
  rename.disabled = status.state !== 'live';
});
client.errors$.subscribe((error) => console.warn(`${error.name}: ${error.message}`));

client.table$(tables.player).subscribe((players) => {
  list.replaceChildren(
    ...[...players.values()].map((p) => {
      const li = document.createElement('li');
      li.textContent = `${p.name || '(no name yet)'}${p.online ? '' : ' (away)'}`;
      return li;
    }),
  );
});

let renames = 0;
rename.addEventListener('click', async () => {
  rename.disabled = true;
  try {
    await client.call('setName', { name: `page-${++renames}` });
    document.body.dataset['renamed'] = String(renames);
  } catch (error) {
    console.warn(`rename refused: ${(error as Error).message}`);
  } finally {
    rename.disabled = client.status.state !== 'live';
  }
});
