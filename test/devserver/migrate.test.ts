/**
 * The automatic-migration rules `--watch` applies (SpacetimeDB's
 * auto-migration): what is migrated, what is refused and why, and rows
 * carried across with defaults for added columns.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Identity } from 'spacetimedb';
import { ModuleInstance } from '../../devserver/host/instance.ts';
import { migrateRows, MigrationRefusedError, planMigration } from '../../devserver/host/migrate.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = join(ROOT, 'node_modules', '.cache', 'stdb-rx', 'test-modules', randomUUID());

const HEAD = `import { schema, table, t } from 'spacetimedb/server';\n`;
const BASE = `
const Color = t.enum('Color', { Red: t.unit(), Green: t.unit() });
const item = table({ name: 'item', public: true }, { id: t.u32().primaryKey().autoInc(), name: t.string(), color: Color });
const spacetimedb = schema({ item });
export default spacetimedb;
export const add = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => { ctx.db.item.insert({ id: 0, name, color: { tag: 'Red' } }); });
export const drop = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => { ctx.db.item.id.delete(id); });
`;

let n = 0;
const instances: ModuleInstance[] = [];
async function load(source: string): Promise<ModuleInstance> {
  const file = join(dir, `m${n++}.ts`);
  writeFileSync(file, HEAD + source);
  const m = await ModuleInstance.load(file, { databaseIdentity: Identity.zero() });
  instances.push(m);
  return m;
}
function refusal(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(MigrationRefusedError);
    return [...(e as MigrationRefusedError).info.reasons];
  }
  throw new Error('expected a MigrationRefusedError');
}
const plan = (a: ModuleInstance, b: ModuleInstance) => planMigration(a.description, b.description, b.describeRaw());
function call(m: ModuleInstance, reducer: string, args: Uint8Array) {
  const outcome = m.callReducer(m.reducer(reducer)!, { sender: Identity.zero(), connectionId: null, timestamp: 0n, args });
  expect(outcome.status).to.equal('committed');
}
const str = (s: string) => {
  const b = Buffer.from(s);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length, true);
  out.set(b, 4);
  return out;
};

describe('devserver module migration rules', function () {
  this.timeout(60_000);
  let base: ModuleInstance;
  before(async () => {
    mkdirSync(dir, { recursive: true });
    base = await load(BASE);
  });
  after(() => {
    for (const m of instances) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates an enum that gains a variant at the end, a new index and a removed reducer', async () => {
    const next = await load(
      BASE.replace("Green: t.unit() }", 'Green: t.unit(), Blue: t.unit() }')
        .replace('name: t.string(),', "name: t.string().index('btree'),")
        .replace(/export const drop[^\n]*\n/, '')
    );
    expect(plan(base, next).steps).to.deep.equal(['remove reducer drop']);
  });

  it('refuses a renamed or removed enum variant, a changed column type and a column added without a default', async () => {
    const renamed = await load(BASE.replace('Green: t.unit()', 'Lime: t.unit()'));
    expect(refusal(() => plan(base, renamed))).to.deep.equal(['column color of table item: the column type renames variant Green to Lime']);
    const fewer = await load(BASE.replace(', Green: t.unit()', ''));
    expect(refusal(() => plan(base, fewer))).to.deep.equal(['column color of table item: the column type loses variants']);
    const retyped = await load(BASE.replace('name: t.string()', 'name: t.u64()').replace("insert({ id: 0, name,", 'insert({ id: 0, name: 1n,'));
    expect(refusal(() => plan(base, retyped))).to.deep.equal(['column name of table item: the column type changes from String to U64']);
    const noDefault = await load(BASE.replace('color: Color }', 'color: Color, size: t.u8() }').replace("color: { tag: 'Red' } }", "color: { tag: 'Red' }, size: 1 }"));
    expect(refusal(() => plan(base, noDefault))).to.deep.equal([
      'adding column size to table item without a default value (declare it with .default(…))',
    ]);
  });

  it('refuses turning a table into an event table', async () => {
    const event = await load(BASE.replace("{ name: 'item', public: true }", "{ name: 'item', public: true, event: true }"));
    expect(refusal(() => plan(base, event))).to.deep.equal(['changing the event flag of table item']);
  });

  it('carries rows over with the defaults of added columns, and never reissues a sequence value', async () => {
    const older = await load(BASE);
    call(older, 'add', str('a'));
    call(older, 'add', str('b'));
    call(older, 'add', str('c'));
    call(older, 'drop', Uint8Array.of(3, 0, 0, 0));
    const newer = await load(BASE.replace('color: Color }', 'color: Color, size: t.u8().default(9) }').replace("color: { tag: 'Red' } }", "color: { tag: 'Red' }, size: 1 }"));
    const p = plan(older, newer);
    expect(p.steps).to.deep.equal(['add column size to table item (default value for existing rows)']);
    migrateRows(older.datastore, newer.datastore, p);
    const rows = newer.datastore.tableByName('item')!;
    expect([...rows.rows.values()].map((r) => r.value).sort((x: any, y: any) => x.id - y.id)).to.deep.equal([
      { id: 1, name: 'a', color: { tag: 'Red', value: {} }, size: 9 },
      { id: 2, name: 'b', color: { tag: 'Red', value: {} }, size: 9 },
    ]);
    call(newer, 'add', str('d'));
    const ids = [...rows.rows.values()].map((r) => (r.value as { id: number }).id).sort();
    expect(ids, 'id 3 was handed out before the migration').to.deep.equal([1, 2, 4]);
  });

  it('refuses a new unique constraint that the existing rows violate', async () => {
    const older = await load(BASE);
    call(older, 'add', str('same'));
    call(older, 'add', str('same'));
    const newer = await load(BASE.replace('name: t.string(),', 'name: t.string().unique(),'));
    const p = plan(older, newer);
    expect(refusal(() => migrateRows(older.datastore, newer.datastore, p))).to.deep.equal([
      'the existing rows of table item violate the new unique constraint on name',
    ]);
  });
});
