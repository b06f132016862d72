/**
 * The bindings generator (`npm run devserver -- generate`): case rules,
 * the shapes it writes for each kind of type, the files it replaces and
 * leaves alone, and that what it writes works with the real SDK.
 * (Byte-for-byte agreement with bindings SpacetimeDB's CLI wrote is checked
 * by scripts/codegen-templates.ts against SpacetimeDB's own templates, and
 * for the demo by test/demo/bindings.test.ts.)
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { camelCase, pascalCase, snakeCase } from '../../devserver/codegen/names.ts';
import { generateBindings, writeBindings, AUTO_GENERATED_PREFIX } from '../../devserver/codegen/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const MODULE = `
import { schema, table, t } from 'spacetimedb/server';
const Vec2 = t.object('Vec2', { x: t.f32(), y: t.f32() });
const Kind = t.enum('Kind', { Melee: t.unit(), Ranged: t.unit() });
const Reward = t.enum('Reward', { gold: t.u32(), item: t.string() });
const gameScore = table(
  { name: 'game_score', public: true, indexes: [{ accessor: 'byLevel', algorithm: 'btree', columns: ['level'] }] },
  {
    id: t.u64().primaryKey().autoInc(),
    playerName: t.string().unique(),
    level: t.u32(),
    pos: Vec2,
    kind: Kind,
    reward: t.option(Reward),
    tags: t.array(t.string()),
    blob: t.byteArray(),
    owner: t.identity(),
    at: t.timestamp(),
  },
);
const hidden = table({ name: 'hidden' }, { id: t.u32().primaryKey() });
const spacetimedb = schema({ gameScore, hidden });
export default spacetimedb;
export const init = spacetimedb.init(() => {});
export const add_score = spacetimedb.reducer({ playerName: t.string(), pos: Vec2 }, (ctx, { playerName, pos }) => {
  ctx.db.gameScore.insert({ id: 0n, playerName, level: 1, pos, kind: { tag: 'Melee' }, reward: undefined, tags: [], blob: new Uint8Array(), owner: ctx.sender, at: ctx.timestamp });
});
export const reset = spacetimedb.reducer({}, () => {});
`;

describe('devserver codegen: TypeScript bindings', function () {
  this.timeout(60_000);
  // Inside the project so that the module's `spacetimedb/server` import resolves.
  const dir = join(ROOT, 'node_modules', '.cache', 'stdb-rx', 'test-modules', randomUUID());
  const modulePath = join(dir, 'module.ts');
  let files: Map<string, string>;

  before(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(modulePath, MODULE);
    files = new Map((await generateBindings(modulePath)).map((f) => [f.filename, f.code]));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('converts case as SpacetimeDB does (words split at _, case changes, digits and acronyms)', () => {
    expect(snakeCase('playerName')).to.equal('player_name');
    expect(snakeCase('HTTPServer2Go')).to.equal('http_server_2_go');
    expect(camelCase('game_score')).to.equal('gameScore');
    expect(camelCase('HTTPServer')).to.equal('httpServer');
    expect(pascalCase('round_result')).to.equal('RoundResult');
    expect(pascalCase('vec3')).to.equal('Vec3');
  });

  it('writes one file per public table and callable reducer, plus the global files', () => {
    expect([...files.keys()].sort()).to.deep.equal(
      ['add_score_reducer.ts', 'game_score_table.ts', 'index.ts', 'reset_reducer.ts', 'types.ts', 'types/procedures.ts', 'types/reducers.ts'].sort()
    );
    for (const code of files.values()) expect(code.startsWith(AUTO_GENERATED_PREFIX)).to.equal(true);
  });

  it('writes the row with camelCase keys, canonical names where they differ, getters for named types', () => {
    const row = files.get('game_score_table.ts')!;
    expect(row).to.contain('import {\n  Vec2,\n  Kind,\n  Reward,\n} from "./types";');
    expect(row).to.contain('  id: __t.u64().primaryKey(),\n');
    expect(row).to.contain('  playerName: __t.string().name("player_name"),\n');
    expect(row).to.contain('  get pos() {\n    return Vec2;\n  },\n');
    expect(row).to.contain('  get reward() {\n    return __t.option(Reward);\n  },\n');
    expect(row).to.contain('  tags: __t.array(__t.string()),\n  blob: __t.byteArray(),\n  owner: __t.identity(),\n  at: __t.timestamp(),\n');
  });

  it('writes named types: objects, plain enums and sums with PascalCase variants', () => {
    const types = files.get('types.ts')!;
    expect(types).to.contain('export const Vec2 = __t.object("Vec2", {\n  x: __t.f32(),\n  y: __t.f32(),\n});\nexport type Vec2 = __Infer<typeof Vec2>;');
    expect(types).to.contain('export const Kind = __t.enum("Kind", {\n  Melee: __t.unit(),\n  Ranged: __t.unit(),\n});');
    expect(types).to.contain('export const Reward = __t.enum("Reward", {\n  Gold: __t.u32(),\n  Item: __t.string(),\n});');
    // In name order, byte-wise, as the generator sorts them.
    const order = [...types.matchAll(/^export const (\w+)/gm)].map((m) => m[1]);
    expect(order).to.deep.equal(['GameScore', 'Hidden', 'Kind', 'Reward', 'Vec2']);
  });

  it('writes reducers (empty ones too) and leaves out lifecycle reducers and private tables', () => {
    expect(files.get('reset_reducer.ts')).to.match(/\nexport default \{\};\n$/);
    expect(files.get('add_score_reducer.ts')).to.contain('export default {\n  playerName: __t.string(),\n  get pos() {\n    return Vec2;\n  },\n};');
    const index = files.get('index.ts')!;
    expect(index).to.contain('__reducerSchema("add_score", AddScoreReducer),\n  __reducerSchema("reset", ResetReducer),\n');
    expect(index).not.to.match(/\binit\b|InitReducer/);
    expect(index).not.to.contain('hidden');
    expect(index).to.contain("  gameScore: __table({\n    name: 'game_score',\n    indexes: [\n");
    // Indexes by name; the declared one keeps its accessor.
    const indexNames = [...index.matchAll(/name: '(game_score_\w+_idx_btree)'/g)].map((m) => m[1]);
    expect(indexNames).to.deep.equal(['game_score_id_idx_btree', 'game_score_level_idx_btree', 'game_score_player_name_idx_btree']);
    expect(index).to.contain("      { accessor: 'byLevel', name: 'game_score_level_idx_btree', algorithm: 'btree', columns: [\n        'level',\n      ] },\n");
    expect(index).to.contain("{ name: 'game_score_player_name_key', constraint: 'unique', columns: ['playerName'] },");
  });

  it('writes bindings the SDK loads: tables, reducers and a connection builder', async () => {
    const out = join(dir, 'bindings');
    await writeBindings([...files].map(([filename, code]) => ({ filename, code })), out);
    const b = await import(pathToFileURL(join(out, 'index.ts')).href);
    expect(b.tables.gameScore.sourceName).to.equal('game_score');
    expect(Object.keys(b.reducers).sort()).to.deep.equal(['addScore', 'reset']);
    expect(b.reducers.addScore.name).to.equal('add_score');
    expect(typeof b.DbConnection.builder).to.equal('function');
  });

  it('replaces its own files, deletes generated files no longer produced and keeps the rest', async () => {
    const out = join(dir, 'rewrite');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'dropped_table.ts'), `${AUTO_GENERATED_PREFIX}. EDITS TO THIS FILE\n`);
    writeFileSync(join(out, 'mine.ts'), 'export const mine = 1;\n');
    const { written, deleted } = await writeBindings([...files].map(([filename, code]) => ({ filename, code })), out);
    expect(written).to.have.length(files.size);
    expect(deleted).to.deep.equal(['dropped_table.ts']);
    expect(existsSync(join(out, 'mine.ts'))).to.equal(true);
    expect(readFileSync(join(out, 'types', 'reducers.ts'), 'utf8')).to.equal(files.get('types/reducers.ts'));
  });

  it('runs from the CLI, and refuses missing arguments with a usage line', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'devserver/cli.ts', ...args], { cwd: ROOT });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('exit', (code) => resolve({ code, out, err }));
      });
    const out = join(dir, 'cli');
    const ok = await run(['generate', '--module', modulePath, '--out', out]);
    expect(ok.code, ok.err).to.equal(0);
    expect(ok.out).to.contain(`generated ${files.size} files in ${out}`);
    expect(readFileSync(join(out, 'index.ts'), 'utf8')).to.equal(files.get('index.ts'));
    const bad = await run(['generate', '--module', modulePath]);
    expect(bad.code).to.equal(1);
    expect(bad.err).to.match(/--module and --out are required/);
  });
});
