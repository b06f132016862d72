/**
 * Hand check, not part of `npm test`: hosts SpacetimeDB's own TypeScript
 * modules that use row-level security or views on the dev server and runs a
 * few scenarios against each over HTTP and WebSocket.
 *
 *   STDB_MIRROR=<path of a clone (or bare mirror) of SpacetimeDB's repository> \
 *     npx tsx scripts/check-upstream-rls-views.ts
 *
 * The module sources are copied into .cache/upstream-check/ (git-ignored) so
 * they resolve this project's `spacetimedb` package; nothing of them is kept
 * in the repository. Prints one line per check and exits non-zero when one fails.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setGlobalLogLevel } from 'spacetimedb';
import { startDevServer, type DevServer } from '../devserver/index.ts';
import { RawClient } from '../test/helpers/rawClient.ts';

setGlobalLogLevel('error');
const mirror = process.env.STDB_MIRROR;
if (!mirror) {
  console.error('set STDB_MIRROR to a clone or bare mirror of SpacetimeDB’s repository');
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.cache', 'upstream-check');
const isBare = !mirror.endsWith('.git') && execFileSync('git', ['--git-dir', mirror, 'rev-parse', '--is-bare-repository'], { encoding: 'utf8' }).trim() === 'true';
const git = (...args: string[]) => execFileSync('git', isBare ? ['--git-dir', mirror, ...args] : ['-C', mirror, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });

/** Copy a module's src folder out of the mirror; returns the path of its index.ts. */
function extract(srcDir: string, name: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  for (const file of git('ls-tree', '-r', '--name-only', 'HEAD', srcDir).split('\n').filter(Boolean)) {
    const out = join(dir, file.slice(srcDir.length + 1));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, git('show', `HEAD:${file}`));
  }
  return join(dir, 'index.ts');
}

let failures = 0;
function check(what: string, ok: boolean, detail = '') {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}`);
}

async function mint(server: DevServer): Promise<{ identity: string; token: string }> {
  return (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { identity: string; token: string };
}
async function call(server: DevServer, token: string, reducer: string, args: unknown[]): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/${server.database}/call/${reducer}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(args),
  });
  return res.status === 200 ? 'ok' : `${res.status} ${await res.text()}`;
}
async function sql(server: DevServer, token: string, query: string): Promise<unknown[][] | string> {
  const res = await fetch(`${server.url}/v1/database/${server.database}/sql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: query,
  });
  if (res.status !== 200) return `${res.status} ${await res.text()}`;
  return ((await res.json()) as { rows: unknown[][] }[])[0].rows;
}
/** Subscribe over a raw WebSocket as `token`; the applied message's row count per table, or the error. */
async function subscribe(server: DevServer, token: string, queries: string[]): Promise<string> {
  const raw = await RawClient.open(server, { token });
  try {
    await raw.next('InitialConnection');
    raw.send({ tag: 'Subscribe', value: { requestId: 1, querySetId: { id: 1 }, queryStrings: queries } });
    const reply = await Promise.race([raw.next('SubscribeApplied'), raw.next('SubscriptionError')]);
    if (reply.tag === 'SubscriptionError') return `error: ${reply.value.error}`;
    return 'applied';
  } finally {
    raw.close();
  }
}

async function withServer(name: string, srcDir: string, fn: (s: DevServer) => Promise<void>) {
  let server: DevServer;
  try {
    server = await startDevServer({ module: extract(srcDir, name), port: 0, database: name });
  } catch (e) {
    check(`${name}: loads`, false, e instanceof Error ? e.message : String(e));
    return;
  }
  check(`${name}: loads`, true);
  try {
    await fn(server);
  } catch (e) {
    check(`${name}: scenario`, false, e instanceof Error ? (e.stack ?? e.message) : String(e));
  } finally {
    await server.stop();
  }
}

const hexOf = (row: unknown[], col: number) => JSON.stringify(row[col]);

await withServer('sdk-test-ts', 'modules/sdk-test-ts/src', async (s) => {
  const a = await mint(s);
  const b = await mint(s);
  check('sdk-test-ts: insert_user as a', (await call(s, a.token, 'insert_user', ['a', a.identity])) === 'ok');
  check('sdk-test-ts: insert_user as b', (await call(s, b.token, 'insert_user', ['b', b.identity])) === 'ok');
  const seenByA = await sql(s, a.token, 'SELECT * FROM users');
  check('sdk-test-ts: a sees only its own user row', Array.isArray(seenByA) && seenByA.length === 1 && seenByA[0][1] === 'a', JSON.stringify(seenByA));
  const seenByB = await sql(s, b.token, 'SELECT * FROM users');
  check('sdk-test-ts: b sees only its own user row', Array.isArray(seenByB) && seenByB.length === 1 && seenByB[0][1] === 'b', JSON.stringify(seenByB));
  check('sdk-test-ts: subscription to users applies', (await subscribe(s, a.token, ['SELECT * FROM users'])) === 'applied');
  check('sdk-test-ts: insert_one_u_8', (await call(s, a.token, 'insert_one_u_8', [7])) === 'ok');
  const u8 = await sql(s, b.token, 'SELECT * FROM one_u_8');
  check('sdk-test-ts: the unrestricted filter on one_u_8 shows every row', Array.isArray(u8) && u8.length === 1, JSON.stringify(u8));
  void hexOf;
});

await withServer('sdk-test-view-pk-ts', 'modules/sdk-test-view-pk-ts/src', async (s) => {
  const a = await mint(s);
  check('view-pk: insert players', (await call(s, a.token, 'insert_view_pk_player', [1, 'one'])) === 'ok' && (await call(s, a.token, 'insert_view_pk_player', [2, 'two'])) === 'ok');
  check('view-pk: insert membership', (await call(s, a.token, 'insert_view_pk_membership', [10, 1])) === 'ok');
  const all = await sql(s, a.token, 'SELECT * FROM all_view_pk_players');
  check('view-pk: all_view_pk_players (a query view) has both players', Array.isArray(all) && all.length === 2, JSON.stringify(all));
  const semi = await sql(s, a.token, 'SELECT * FROM sender_view_pk_players_a');
  check('view-pk: sender_view_pk_players_a (a semijoin query view) has player 1', Array.isArray(semi) && semi.length === 1 && semi[0][1] === 'one', JSON.stringify(semi));
  check('view-pk: subscription to both views applies', (await subscribe(s, a.token, ['SELECT * FROM all_view_pk_players', 'SELECT * FROM sender_view_pk_players_a'])) === 'applied');
  check('view-pk: update player', (await call(s, a.token, 'update_view_pk_player', [1, 'uno'])) === 'ok');
  const after = await sql(s, a.token, 'SELECT * FROM sender_view_pk_players_a');
  check('view-pk: the view follows the update', Array.isArray(after) && after.length === 1 && after[0][1] === 'uno', JSON.stringify(after));
});

await withServer('sdk-test-procedural-view-pk-ts', 'modules/sdk-test-procedural-view-pk-ts/src', async (s) => {
  const a = await mint(s);
  const b = await mint(s);
  check('procedural-view-pk: insert_left as a and b', (await call(s, a.token, 'insert_left', [1, 5])) === 'ok' && (await call(s, b.token, 'insert_left', [2, 6])) === 'ok');
  const mine = await sql(s, a.token, 'SELECT * FROM sender_left_view');
  check('procedural-view-pk: sender_left_view shows a its own row only', Array.isArray(mine) && mine.length === 1, JSON.stringify(mine));
  check('procedural-view-pk: subscription applies', (await subscribe(s, a.token, ['SELECT * FROM sender_left_view'])) === 'applied');
});

await withServer('hangman-react-ts', 'templates/hangman-react-ts/spacetimedb/src', async (s) => {
  const a = await mint(s);
  check('hangman: set_name', (await call(s, a.token, 'set_name', ['ann'])) === 'ok');
  const progress = await sql(s, a.token, 'SELECT * FROM my_progress');
  check('hangman: my_progress is readable', Array.isArray(progress), JSON.stringify(progress));
  check('hangman: subscription to my_progress applies', (await subscribe(s, a.token, ['SELECT * FROM my_progress'])) === 'applied');
});

await withServer('money-exchange-react-ts', 'templates/money-exchange-react-ts/spacetimedb/src', async (s) => {
  const a = await mint(s);
  const b = await mint(s);
  const nameA = await call(s, a.token, 'set_name', ['ann']);
  check('money-exchange: set_name', nameA === 'ok', nameA);
  await call(s, b.token, 'set_name', ['bob']);
  const mine = await sql(s, a.token, 'SELECT * FROM my_account');
  check('money-exchange: my_account shows the caller’s account only', Array.isArray(mine) && mine.length <= 1, JSON.stringify(mine));
  check('money-exchange: subscription to my_account and my_account_changes applies', (await subscribe(s, a.token, ['SELECT * FROM my_account', 'SELECT * FROM my_account_changes'])) === 'applied');
});

await withServer('sdk-test-case-conversion-ts', 'modules/sdk-test-case-conversion-ts/src', async (s) => {
  const schema = await (await fetch(`${s.url}/v1/database/${s.database}/schema?version=10`)).json() as { sections: Record<string, { source_name: string }[]>[] };
  const views = schema.sections.find((x) => 'Views' in x)?.Views ?? [];
  check('case-conversion: views listed in the schema', views.length > 0, views.map((v) => v.source_name).join(', '));
  const a = await mint(s);
  for (const v of s.module.description.viewDefs) {
    const r = await subscribe(s, a.token, [`SELECT * FROM ${v.name}`]);
    check(`case-conversion: subscription to view ${v.name} applies`, r === 'applied', r);
  }
});

await withServer('llm-chat-ts', 'templates/llm-chat-ts/spacetimedb/src', async (s) => {
  // Views returning a query filtered by ctx.sender (the template's procedures are another matter).
  const a = await mint(s);
  for (const view of ['chat', 'message']) {
    const rows = await sql(s, a.token, `SELECT * FROM ${view}`);
    check(`llm-chat: ${view} view readable`, Array.isArray(rows), JSON.stringify(rows));
    const r = await subscribe(s, a.token, [`SELECT * FROM ${view}`]);
    check(`llm-chat: subscription to ${view} applies`, r === 'applied', r);
  }
});

rmSync(work, { recursive: true, force: true });
console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
