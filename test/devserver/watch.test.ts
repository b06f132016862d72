/**
 * `--watch`: a temp module file is edited by the test; each edit is awaited
 * through the server's reload signal (no sleeps). Clients use bindings the
 * dev server's own generator writes for each version, over a real WebSocket
 * with the real SDK.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateBindings, writeBindings } from '../../devserver/codegen/index.ts';
import { startDevServer, type DevServer } from '../../devserver/server.ts';
import type { ReloadEvent } from '../../devserver/watch.ts';
import { until } from '../helpers/until.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const V1 = `
import { schema, table, t } from 'spacetimedb/server';
import { LABEL } from './label';
const item = table({ name: 'item', public: true }, { id: t.u32().primaryKey(), name: t.string() });
const spacetimedb = schema({ item });
export default spacetimedb;
export const add = spacetimedb.reducer({ id: t.u32(), name: t.string() }, (ctx, { id, name }) => {
  ctx.db.item.insert({ id, name: LABEL + name });
});
`;
// New table, a column added with a default, a new reducer: migrated automatically.
const V2 = `
import { schema, table, t } from 'spacetimedb/server';
import { LABEL } from './label';
const item = table({ name: 'item', public: true }, { id: t.u32().primaryKey(), name: t.string(), qty: t.u32().default(7) });
const audit = table({ name: 'audit', public: true }, { id: t.u32().primaryKey().autoInc(), what: t.string() });
const spacetimedb = schema({ item, audit });
export default spacetimedb;
export const add = spacetimedb.reducer({ id: t.u32(), name: t.string() }, (ctx, { id, name }) => {
  ctx.db.item.insert({ id, name: LABEL + name, qty: 1 });
});
export const restock = spacetimedb.reducer({ id: t.u32(), qty: t.u32() }, (ctx, { id, qty }) => {
  const row = ctx.db.item.id.find(id);
  if (row) ctx.db.item.id.update({ ...row, qty });
  ctx.db.audit.insert({ id: 0, what: 'restock ' + id });
});
`;
// Removes a column: needs a manual migration.
const V3_BAD = V2.replace(" name: t.string(), qty:", ' qty:').replace('name: LABEL + name, ', '');

type Row = { id: number; name: string; qty?: number };

describe('devserver --watch', function () {
  this.timeout(90_000);
  const dir = join(ROOT, 'node_modules', '.cache', 'stdb-rx', 'test-modules', randomUUID());
  const modulePath = join(dir, 'module.ts');
  let dataDir: string;
  let server: DevServer;
  let events: ReloadEvent[];
  const closers: (() => void)[] = [];

  /** Resolve with the next reload event after `edit()`. */
  const afterEdit = (edit: () => void) =>
    new Promise<ReloadEvent>((resolve) => {
      const off = server.onReload((e) => {
        off();
        resolve(e);
      });
      edit();
    });

  /** Generate bindings for the module as it is now (or reuse those of an earlier `version`) and connect with them. */
  async function client(version: string, reuse = false) {
    const out = join(dir, `bindings-${version}`);
    if (!reuse) await writeBindings(await generateBindings(modulePath), out);
    const b = await import(pathToFileURL(join(out, 'index.ts')).href);
    const state = { rows: new Map<number, Row>(), disconnected: false, applied: false };
    const conn = await new Promise<any>((resolve, reject) =>
      b.DbConnection.builder()
        .withUri(server.wsUrl)
        .withDatabaseName(server.database)
        .onConnect((c: any) => resolve(c))
        .onConnectError((_: unknown, e: Error) => reject(e))
        .onDisconnect(() => (state.disconnected = true))
        .build()
    );
    closers.push(() => conn.disconnect());
    conn.db.item.onInsert((_: unknown, r: Row) => state.rows.set(r.id, r));
    conn.db.item.onUpdate((_: unknown, _o: Row, r: Row) => state.rows.set(r.id, r));
    conn.subscriptionBuilder().onApplied(() => (state.applied = true)).subscribe('SELECT * FROM item');
    await until(() => state.applied, 'subscription applied', 5000);
    return { conn, state };
  }

  before(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'label.ts'), "export const LABEL = 'v1:';\n");
    writeFileSync(modulePath, V1);
    dataDir = mkdtempSync(join(tmpdir(), 'stdb-rx-watch-'));
    server = await startDevServer({ module: modulePath, port: 0, dataDir, watch: true, database: 'watched' });
    events = [];
    server.onReload((e) => events.push(e));
  });
  after(async () => {
    for (const c of closers) c();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('migrates an added column with a default, a new table and a new reducer, keeping the rows; clients see a reconnect', async () => {
    const v1 = await client('v1');
    await v1.conn.reducers.add({ id: 1, name: 'apple' });
    await v1.conn.reducers.add({ id: 2, name: 'pear' });
    await until(() => v1.state.rows.size === 2, 'v1 rows', 5000);

    const event = await afterEdit(() => writeFileSync(modulePath, V2));
    expect(event.status, JSON.stringify(event)).to.equal('reloaded');
    const steps = (event as { steps: readonly string[] }).steps;
    expect(steps).to.include('add table audit');
    expect(steps).to.include('add column qty to table item (default value for existing rows)');
    expect(steps).to.include('add reducer restock');
    await until(() => v1.state.disconnected, 'the v1 client to be disconnected', 5000);

    const v2 = await client('v2');
    expect([...v2.state.rows.values()].sort((a, b) => a.id - b.id)).to.deep.equal([
      { id: 1, name: 'v1:apple', qty: 7 },
      { id: 2, name: 'v1:pear', qty: 7 },
    ]);
    await v2.conn.reducers.restock({ id: 2, qty: 40 });
    await v2.conn.reducers.add({ id: 3, name: 'fig' });
    await until(() => v2.state.rows.get(2)?.qty === 40 && v2.state.rows.get(3)?.qty === 1, 'v2 writes', 5000);
  });

  it('reloads when a file the module imports changes', async () => {
    const event = await afterEdit(() => writeFileSync(join(dir, 'label.ts'), "export const LABEL = 'v2:';\n"));
    expect(event).to.deep.equal({ status: 'reloaded', steps: [] });
    const c = await client('label');
    await c.conn.reducers.add({ id: 4, name: 'kiwi' });
    await until(() => c.state.rows.get(4)?.name === 'v2:kiwi', 'the new label', 5000);
    expect(c.state.rows.get(1)).to.deep.equal({ id: 1, name: 'v1:apple', qty: 7 });
  });

  it('refuses a change that needs a manual migration, names it, and keeps serving the previous version', async () => {
    const event = await afterEdit(() => writeFileSync(modulePath, V3_BAD));
    expect(event.status).to.equal('refused');
    // As SpacetimeDB reports it: the column is gone, and the one after it moved.
    expect((event as { reasons: readonly string[] }).reasons).to.deep.equal(['removing column name from table item', 'reordering the columns of table item']);
    // Still the previous version, with every row (the file on disk is the refused one: use the v2 bindings).
    const after = await client('v2', true);
    expect(after.state.rows.size).to.equal(4);
    expect(after.state.rows.get(2)).to.deep.equal({ id: 2, name: 'v1:pear', qty: 40 });
  });

  it('reports a module that does not build and keeps serving', async () => {
    const event = await afterEdit(() => writeFileSync(modulePath, V2 + '\nexport const broken = (;\n'));
    expect(event.status).to.equal('failed');
    expect((event as { error: string }).error).to.match(/does not build/);
    expect(await afterEdit(() => writeFileSync(modulePath, V2))).to.deep.equal({ status: 'reloaded', steps: [] });
  });

  it('keeps the migrated rows in the data folder across a restart', async () => {
    await server.restart();
    const c = await client('restarted');
    expect(c.state.rows.size).to.equal(4);
    expect(c.state.rows.get(2)).to.deep.equal({ id: 2, name: 'v1:pear', qty: 40 });
    expect(events.map((e) => e.status)).to.include.members(['reloaded', 'refused', 'failed']);
  });

  it('works from the CLI: same listening line, and the reload in the log', async () => {
    const cliModule = join(dir, 'cli-module.ts');
    writeFileSync(cliModule, V1);
    const child = spawn(process.execPath, ['--import', 'tsx', 'devserver/cli.ts', '--port', '0', '--module', cliModule, '--db', 'cli-watch', '--watch'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let out = '';
      let err = '';
      const waitFor = (what: () => boolean) =>
        new Promise<void>((resolve, reject) => {
          const check = () => what() && resolve();
          child.stdout.on('data', (d) => ((out += d), check()));
          child.stderr.on('data', (d) => ((err += d), check()));
          void exited.then((code) => reject(new Error(`devserver exited with ${code}: ${err}`)));
          check();
        });
      await waitFor(() => /^stdb-rx devserver listening on http:\/\/127\.0\.0\.1:\d+ \(database cli-watch\)$/m.test(out));
      writeFileSync(cliModule, V2);
      await waitFor(() => err.includes('[info] module reloaded: add table audit; add column qty to table item (default value for existing rows); add reducer restock'));
    } finally {
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    }
  });
});
