/**
 * Check the bindings generator against bindings SpacetimeDB's own CLI wrote.
 *
 *   npx tsx scripts/codegen-templates.ts <path to a bare git clone of SpacetimeDB> [template…]
 *
 * For every template in that repository with a TypeScript server module
 * (`templates/<t>/spacetimedb/src/`) and committed client bindings
 * (`…/module_bindings/`), the module is extracted, bundled and described by
 * the dev server, bindings are generated, and both sides are compared file
 * by file after formatting with prettier (the repository formats its
 * committed bindings; `spacetime generate` itself does not format
 * TypeScript). The version line and `cliVersion` are masked: they name the
 * CLI release that generated each template. Not part of `npm test`: it needs
 * the SpacetimeDB repository, which CI does not have.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { codegenSchema, describeModuleBytes, generateTypeScript, sdkVersion } from '../devserver/codegen/index.ts';
import { snakeCase } from '../devserver/codegen/names.ts';

const [gitDir, ...only] = process.argv.slice(2);
if (!gitDir) {
  process.stderr.write('usage: npx tsx scripts/codegen-templates.ts <SpacetimeDB git dir> [template…]\n');
  process.exit(2);
}
const git = (...args: string[]) => execFileSync('git', ['--git-dir', gitDir, ...args], { maxBuffer: 64 << 20 }).toString();
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
// Inside node_modules' cache so that the modules' `spacetimedb/server` imports resolve to ours.
const work = join(root, 'node_modules', '.cache', 'stdb-rx', 'templates');

// The formatting the SpacetimeDB repository applies to its TypeScript.
const PRETTIER: prettier.Options = {
  parser: 'typescript',
  tabWidth: 2,
  useTabs: false,
  semi: true,
  singleQuote: true,
  arrowParens: 'avoid',
  trailingComma: 'es5',
  printWidth: 80,
};

const mask = (code: string) =>
  code
    .replace(/^\/\/ This was generated using .*$/m, '// This was generated using <generator>.')
    .replace(/cliVersion: ['"][^'"]*['"] as const/, "cliVersion: '<version>' as const");

const files = git('ls-tree', '-r', '--name-only', 'HEAD', 'templates').split('\n');
const templates = [...new Set(files.filter((f) => /^templates\/[^/]+\/spacetimedb\/src\/index\.ts$/.test(f)).map((f) => f.split('/')[1]))]
  .filter((t) => only.length === 0 || only.includes(t))
  .sort();

let identical = 0;
let drifted = 0;
const report: string[] = [];
for (const t of templates) {
  const bindingsDir = files.find((f) => f.startsWith(`templates/${t}/`) && f.endsWith('module_bindings/index.ts'))?.replace(/index\.ts$/, '');
  if (!bindingsDir) {
    report.push(`${t}: no committed bindings`);
    continue;
  }
  const dir = join(work, t);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git --git-dir='${gitDir}' archive HEAD 'templates/${t}/spacetimedb/src' | tar -x -C '${dir}'`]);
  let generated;
  let schema;
  try {
    schema = codegenSchema(await describeModuleBytes(join(dir, 'templates', t, 'spacetimedb', 'src', 'index.ts')));
    generated = generateTypeScript(schema, { version: sdkVersion(), generator: 'the dev server' });
  } catch (e) {
    report.push(`${t}: generation failed: ${e instanceof Error ? e.message : String(e)}`);
    continue;
  }
  const ours = new Map<string, string>();
  for (const f of generated) ours.set(f.filename, mask(await prettier.format(f.code, PRETTIER)));
  const theirs = new Map<string, string>();
  for (const f of files.filter((x) => x.startsWith(bindingsDir) && x.endsWith('.ts'))) {
    theirs.set(f.slice(bindingsDir.length), mask(await prettier.format(git('show', `HEAD:${f}`), PRETTIER)));
  }
  const cli = /spacetimedb cli version (\d+)\.(\d+)\.(\d+)/.exec(git('show', `HEAD:${bindingsDir}index.ts`));
  const cliVersion = cli ? cli.slice(1).map(Number) : [99, 0, 0];
  const older = (major: number, minor: number) => cliVersion[0] < major || (cliVersion[0] === major && cliVersion[1] < minor);
  const viewFiles = new Set(schema.views.map((v) => `${snakeCase(v.accessor)}_table.ts`));
  const compare = (drift: boolean) => {
    const problems: string[] = [];
    for (const name of [...new Set([...ours.keys(), ...theirs.keys()])].sort()) {
      let a = ours.get(name);
      let b = theirs.get(name);
      if (a === undefined) problems.push(`  missing ${name}`);
      else if (b === undefined) problems.push(`  extra ${name}`);
      else {
        if (drift) [a, b] = applyDrift(name, a, b);
        if (a !== b) {
          const al = a.split('\n');
          const bl = b.split('\n');
          const i = al.findIndex((l, k) => l !== bl[k]);
          problems.push(`  differs ${name} at line ${i + 1}:\n    ours:   ${al[i]}\n    theirs: ${bl[i]}`);
        }
      }
    }
    return problems;
  };
  const applied = new Set<string>();
  /** Differences that come from the release of SpacetimeDB that wrote the committed copy, not from the generator. */
  const applyDrift = (name: string, a: string, b: string): [string, string] => {
    if (name === 'index.ts' && older(2, 1) && !b.includes('export const procedures')) {
      const stripped = a.replace(/\/\*\* The procedures available in this remote SpacetimeDB module\. \*\/\nexport const procedures = [^\n]*\n\n/, '');
      if (stripped !== a) applied.add('the committed copy (CLI before 2.1) has no `procedures` export');
      a = stripped;
    }
    if (!b.includes('/** The remote SpacetimeDB module schema') && a.includes('/** The remote SpacetimeDB module schema')) {
      const noComments = (code: string) => code.split('\n').filter((l) => !/^\s*(\/\/|\/\*\*.*\*\/$)/.test(l) && l.trim() !== '').join('\n');
      applied.add('the committed copy has its comments and blank lines stripped');
      a = noComments(a);
      b = noComments(b);
    }
    if (older(2, 4) && viewFiles.has(name) && a.replace(/\.primaryKey\(\)/g, '') === b) {
      applied.add('the committed copy (CLI before 2.4) marks no primary key on view rows');
      a = b;
    }
    return [a, b];
  };
  const exact = compare(false);
  const problems = exact.length === 0 ? exact : compare(true);
  if (process.env.CODEGEN_DUMP) {
    const dump = join(work, `${t}.diff`);
    mkdirSync(join(dump, 'ours'), { recursive: true });
    mkdirSync(join(dump, 'theirs'), { recursive: true });
    for (const [n, c] of ours) writeFileSync(join(dump, 'ours', n.replace(/\//g, '__')), c);
    for (const [n, c] of theirs) writeFileSync(join(dump, 'theirs', n.replace(/\//g, '__')), c);
  }
  const version = cli ? cliVersion.join('.') : 'unknown';
  if (exact.length === 0) {
    identical++;
    report.push(`${t} (CLI ${version}): identical (${theirs.size} files)`);
  } else if (problems.length === 0) {
    drifted++;
    report.push(`${t} (CLI ${version}): identical apart from release drift: ${[...applied].join('; ')}`);
  } else {
    report.push(`${t} (CLI ${version}): ${problems.length} of ${new Set([...ours.keys(), ...theirs.keys()]).size} files differ\n${problems.join('\n')}`);
  }
}
process.stdout.write(
  `${report.join('\n')}\n\ncodegen-templates: ${templates.length} templates, ${identical} identical, ${drifted} identical apart from release drift, ${templates.length - identical - drifted} differ\n`,
);
process.exit(identical + drifted === templates.length ? 0 : 1);
