/**
 * Conformance run: host every TypeScript module of a SpacetimeDB checkout on
 * the dev server and run scenarios against each over the real WebSocket
 * protocol, in the style of SpacetimeDB's SDK tests.
 *
 *   npm run conformance -- --spacetimedb <checkout or bare git repository> [--only NAME] [--markdown FILE]
 *
 * Modules: `modules/*-ts/src/index.ts` and `templates/<name>/spacetimedb/src/index.ts`.
 * Their sources are copied (a bare repository: `git archive HEAD`) under
 * `node_modules/.cache/stdb-rx/conformance/`, so they resolve `spacetimedb`
 * from this project. Time is a ManualClock: schedule scenarios move it
 * instead of waiting. Prints one row per module and exits 1 when a scenario
 * failed.
 */
import { execFileSync, execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setGlobalLogLevel } from 'spacetimedb';
import { startDevServer, type DevServer } from '../devserver/index.ts';
import { ManualClock } from '../devserver/host/scheduler.ts';
import type { ModuleDescription } from '../devserver/host/moduleDef.ts';
import { RawClient } from '../test/helpers/rawClient.ts';
import { scenariosFor, type Scenario, type ScenarioContext } from './scenarios.ts';

setGlobalLogLevel('error');

const here = dirname(fileURLToPath(import.meta.url));
const cacheRoot = resolve(here, '..', 'node_modules', '.cache', 'stdb-rx', 'conformance');

interface Args {
  spacetimedb: string;
  only?: string;
  markdown?: string;
  verbose?: boolean;
}

function parseArgs(argv: string[]): Args {
  const out: Partial<Args> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--spacetimedb') out.spacetimedb = value();
    else if (a === '--only') out.only = value();
    else if (a === '--markdown') out.markdown = value();
    else if (a === '--verbose') out.verbose = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.spacetimedb) throw new Error('usage: npm run conformance -- --spacetimedb <SpacetimeDB checkout or bare repository> [--only NAME] [--markdown FILE] [--verbose]');
  return out as Args;
}

/** Copy the checkout's `modules/` and `templates/` into the cache; returns the copy's root and the commit, when known. */
function materialize(path: string): { root: string; commit: string | undefined } {
  const abs = resolve(path);
  const dest = join(cacheRoot, createHash('sha256').update(abs).digest('hex').slice(0, 12));
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const bare = existsSync(join(abs, 'HEAD')) && existsSync(join(abs, 'objects'));
  if (bare) {
    for (const dir of ['modules', 'templates']) {
      execSync(`git --git-dir="${abs}" archive --format=tar --prefix=${dir}/ HEAD:${dir} | tar -x -C "${dest}"`, { stdio: ['ignore', 'ignore', 'inherit'] });
    }
    const commit = execFileSync('git', ['--git-dir', abs, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    return { root: dest, commit };
  }
  if (!existsSync(join(abs, 'modules'))) throw new Error(`${abs} is neither a SpacetimeDB checkout (no modules/) nor a bare repository`);
  const filter = (src: string) => !src.split(/[\\/]/).includes('node_modules');
  for (const dir of ['modules', 'templates']) {
    if (existsSync(join(abs, dir))) cpSync(join(abs, dir), join(dest, dir), { recursive: true, filter });
  }
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['-C', abs, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = undefined;
  }
  return { root: dest, commit };
}

/** Every TypeScript server module in the copy, by name. */
function findModules(root: string): { name: string; file: string }[] {
  const out: { name: string; file: string }[] = [];
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : []);
  for (const m of list(join(root, 'modules'))) {
    const file = join(root, 'modules', m, 'src', 'index.ts');
    if (m.endsWith('-ts') && existsSync(file)) out.push({ name: `modules/${m}`, file });
  }
  for (const t of list(join(root, 'templates'))) {
    const file = join(root, 'templates', t, 'spacetimedb', 'src', 'index.ts');
    if (existsSync(file)) out.push({ name: `templates/${t}`, file });
  }
  return out;
}

export interface ScenarioResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ModuleResult {
  readonly name: string;
  readonly loaded: boolean;
  readonly notRun: string;
  readonly results: ScenarioResult[];
}

async function runModule(name: string, file: string): Promise<ModuleResult> {
  const logs: { level: string; message: string }[] = [];
  const clock = new ManualClock(1_800_000_000_000_000n);
  let server: DevServer;
  try {
    server = await startDevServer({ module: file, port: 0, clock, logger: { log: (level, message) => logs.push({ level, message }) } });
  } catch (e) {
    return { name, loaded: false, notRun: '', results: [{ name: 'load', ok: false, detail: e instanceof Error ? e.message : String(e) }] };
  }
  const notRun = logs.find((l) => l.message.startsWith('the dev server does not run these parts of the module:'))?.message.replace(/^.*module: /, '') ?? '';
  const results: ScenarioResult[] = [{ name: 'load', ok: true, detail: notRun ? `not run: ${notRun}` : '' }];
  const clients: RawClient[] = [];
  const ctx: ScenarioContext = {
    server,
    clock,
    logs,
    get module(): ModuleDescription {
      return server.module.description;
    },
    async client() {
      const c = await RawClient.open(server);
      clients.push(c);
      await c.next('InitialConnection');
      return c;
    },
  };
  try {
    for (const scenario of scenariosFor(name, server.module.description)) results.push(await runScenario(scenario, ctx));
    const errors = logs.filter((l) => l.level === 'error');
    results.push({ name: 'no host errors logged', ok: errors.length === 0, detail: errors.map((e) => e.message.split('\n')[0]).join('; ') });
  } finally {
    for (const c of clients) c.close();
    await server.stop();
  }
  return { name, loaded: true, notRun, results };
}

async function runScenario(scenario: Scenario, ctx: ScenarioContext): Promise<ScenarioResult> {
  try {
    const detail = await scenario.run(ctx);
    return { name: scenario.name, ok: true, detail: detail ?? '' };
  } catch (e) {
    return { name: scenario.name, ok: false, detail: e instanceof Error ? e.message : String(e) };
  }
}

function table(results: ModuleResult[], commit: string | undefined): string {
  const lines = [
    `SpacetimeDB ${commit ? `commit ${commit.slice(0, 12)}` : 'checkout'}: ${results.length} modules, ` +
      `${results.reduce((n, r) => n + r.results.filter((s) => s.ok).length, 0)} of ${results.reduce((n, r) => n + r.results.length, 0)} scenarios pass`,
    '',
    '| module | loads | scenarios passed | failing scenarios | not run by the dev server |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const passed = r.results.filter((s) => s.ok).length;
    const failing = r.results.filter((s) => !s.ok).map((s) => `${s.name}: ${s.detail.replace(/\|/g, '\\|').slice(0, 160)}`);
    lines.push(`| ${r.name} | ${r.loaded ? 'yes' : 'no'} | ${passed}/${r.results.length} | ${failing.join('<br>') || '—'} | ${r.notRun.replace(/\|/g, '\\|') || '—'} |`);
  }
  return lines.join('\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { root, commit } = materialize(args.spacetimedb);
  const results: ModuleResult[] = [];
  try {
    const modules = findModules(root).filter((m) => !args.only || m.name.includes(args.only));
    if (modules.length === 0) throw new Error(`no TypeScript modules found in ${args.spacetimedb}`);
    for (const m of modules) {
      process.stderr.write(`conformance: ${m.name} … `);
      const r = await runModule(m.name, m.file);
      process.stderr.write(`${r.results.filter((s) => s.ok).length}/${r.results.length}\n`);
      for (const s of r.results) if (!s.ok || args.verbose) process.stderr.write(`  ${s.ok ? '✓' : '✗'} ${s.name}${s.detail ? `: ${s.detail}` : ''}\n`);
      results.push(r);
    }
  } finally {
    // The copy only served this run.
    rmSync(root, { recursive: true, force: true });
  }
  const md = table(results, commit);
  console.log(md);
  if (args.markdown) writeFileSync(args.markdown, md + '\n');
  process.exitCode = results.every((r) => r.results.every((s) => s.ok)) ? 0 : 1;
}

main().catch((e) => {
  console.error(`conformance: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 2;
});
