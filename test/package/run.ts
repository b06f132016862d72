/**
 * The consumer test: stdb-rx as a game gets it. Packs both packages, installs
 * the tarballs (with the peer dependencies, from the npm registry) into a
 * fresh app in a temporary directory, then
 *  (a) runs the README's quick start with plain `node` against the packed dev
 *      server's bin, and the Node bot example;
 *  (b) type-checks the app strictly under `moduleResolution` `bundler` and
 *      `nodenext` — the quick start, the browser example and a file of wrong
 *      reducer arguments that must not compile;
 *  (c) bundles the quick start and the browser example with esbuild for the
 *      browser (no Node built-ins allowed) and runs both in Chromium against
 *      the dev server.
 * `npm run test:package` (CI: `.ci/run`). Keeps the app with KEEP_APP=1.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launchChromium } from '../browser/harness.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** REUSE_APP=<dir of an earlier KEEP_APP=1 run>: skip build, pack and install (for working on this test). */
const reuse = process.env.REUSE_APP;
const dir = reuse ?? mkdtempSync(join(tmpdir(), 'stdb-rx-consumer-'));
const app = join(dir, 'app');
const children: ChildProcess[] = [];
let failures = 0;

const sh = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, ...env } });
const step = async (name: string, fn: () => Promise<void> | void) => {
  const t = Date.now();
  try {
    await fn();
    console.log(`  ✔ ${name} (${Date.now() - t} ms)`);
  } catch (e: any) {
    failures++;
    console.log(`  ✘ ${name}\n${String(e?.stdout ?? '')}${String(e?.stderr ?? '')}${e?.message ?? e}`);
  }
};
const assert = (ok: unknown, message: string) => {
  if (!ok) throw new Error(message);
};

/** The README's quick start: the code block after `<!-- quickstart -->`, unchanged but for the port. */
export function quickStart(port: number): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- quickstart -->\s*```(?:js|ts)\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README.md has no code block after <!-- quickstart -->');
  assert(m[1].includes("'ws://127.0.0.1:3000'"), 'the quick start connects to ws://127.0.0.1:3000');
  return m[1].replace("'ws://127.0.0.1:3000'", `'ws://127.0.0.1:${port}'`);
}

/** Starts the packed dev server's bin (`npx stdb-rx-devserver`) on a free port. */
async function devServer(): Promise<number> {
  // Its own process group: npx runs the bin as a child of its own, and both must end with the test.
  const child = spawn('npx', ['--no-install', 'stdb-rx-devserver', '--port', '0', '--data', join(dir, 'data')], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  return new Promise((res, rej) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+) \(database arena\)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => rej(new Error(`dev server exited (${code}): ${out}`)));
  });
}

function staticServer(root: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const file = join(root, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
    if (!file.startsWith(root) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

async function main() {
  console.log(`consumer test in ${dir}`);
  const tarballs: Record<string, string> = {};
  if (!reuse) await step('npm run build, npm pack of stdb-rx and stdb-rx-devserver', () => {
    sh('npm', ['run', 'build'], ROOT);
    for (const args of [[], ['-w', 'stdb-rx-devserver']]) {
      const out = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir, ...args], ROOT)) as { name: string; filename: string; files: { path: string }[] }[];
      const { name, filename, files } = out[0];
      tarballs[name] = join(dir, filename);
      const stray = files.map((f) => f.path).filter((p) => /^(test|benchmarks|chaos|demo|\.ci|docs|examples)\/|\.png$|\.test\./.test(p));
      assert(stray.length === 0, `${name} packs files a game does not need: ${stray.join(', ')}`);
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const dep of ['esbuild', 'ws', 'undici', 'dexie', 'rxjs', 'spacetimedb']) assert(!pkg.dependencies?.[dep], `stdb-rx must not depend on ${dep}`);
  });
  if (failures) return;

  if (!reuse) await step('fresh app: npm install of the tarballs and the peer dependencies from the registry', () => {
    mkdirSync(app);
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify(
        {
          name: 'consumer-app',
          private: true,
          type: 'module',
          dependencies: {
            'stdb-rx': `file:${tarballs['stdb-rx']}`,
            'stdb-rx-devserver': `file:${tarballs['stdb-rx-devserver']}`,
            rxjs: root.devDependencies.rxjs,
            spacetimedb: root.devDependencies.spacetimedb,
            undici: root.devDependencies.undici,
          },
          devDependencies: { typescript: root.devDependencies.typescript, esbuild: '^0.28.2', '@types/node': root.devDependencies['@types/node'] },
        },
        null,
        2,
      ),
    );
    sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], app);
    assert(!existsSync(join(app, 'node_modules', 'dexie')), 'a game without storage got dexie installed');
  });
  await step('the app: quick start from the README, wrong-args.ts, the examples', () => {
    rmSync(join(app, 'examples'), { recursive: true, force: true });
    const quick = quickStart(3000);
    writeFileSync(join(app, 'quickstart.mjs'), quick);
    writeFileSync(join(app, 'quickstart.ts'), quick);
    cpSync(join(ROOT, 'test/package/wrong-args.ts'), join(app, 'wrong-args.ts'));
    for (const ex of ['node-bot', 'browser']) cpSync(join(ROOT, 'examples', ex), join(app, 'examples', ex), { recursive: true, filter: (p) => !/node_modules|dist/.test(p) });
  });
  if (failures) return;

  // (b) strict type checks, as a Vite template sets them up.
  const strict = {
    target: 'ES2022',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    module: 'ESNext',
    moduleResolution: 'bundler',
    strict: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    verbatimModuleSyntax: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  };
  const appFiles = ['quickstart.ts', 'wrong-args.ts', 'examples/browser/main.ts'];
  /** tsc's error lines (file(line,col): error TSxxxx: …), grouped by whether `allowed` accepts them. */
  const tsc = (name: string, compilerOptions: object, files: string[]) => {
    writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, files }, null, 2));
    try {
      sh(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', `tsconfig.${name}.json`], app);
      return [] as string[];
    } catch (e: any) {
      return String(e.stdout).split('\n').filter((l) => /error TS\d+/.test(l));
    }
  };
  const BINDINGS = /^node_modules\/stdb-rx-devserver\/dist\/arena\/bindings\//;
  await step('tsc, bundler, every strict flag but exactOptionalPropertyTypes: no error at all (wrong reducer arguments are errors)', () => {
    const errors = tsc('bundler', { ...strict, exactOptionalPropertyTypes: false }, appFiles);
    assert(errors.length === 0, errors.join('\n'));
  });
  // With exactOptionalPropertyTypes, bindings in the shape `spacetime generate` writes do not type-check against the
  // SDK's own declarations (its table constraints carry `name: string | undefined`), and their DbConnection types
  // degrade: reducer arguments are then unchecked, so wrong-args.ts is left to the run above.
  await step('tsc, bundler, every strict flag: errors only inside the SDK-generated bindings (SpacetimeDB\'s, not stdb-rx\'s)', () => {
    const errors = tsc('bundler-exact', strict, appFiles.filter((f) => f !== 'wrong-args.ts')).filter((l) => !BINDINGS.test(l));
    assert(errors.length === 0, errors.join('\n'));
  });
  await step('tsc, nodenext, every strict flag: stdb-rx, stdb-rx/operators and stdb-rx/storage type-check', () => {
    cpSync(join(ROOT, 'test/package/nodenext-check.ts'), join(app, 'nodenext-check.ts'));
    const errors = tsc('nodenext', { ...strict, module: 'NodeNext', moduleResolution: 'nodenext' }, ['nodenext-check.ts']);
    assert(errors.length === 0, errors.join('\n'));
  });
  await step("tsc with skipLibCheck off: stdb-rx's own declarations have no error (but for dexie's types, absent in a game without storage)", () => {
    const errors = tsc('declarations', { ...strict, skipLibCheck: false }, ['nodenext-check.ts', 'quickstart.ts'])
      .filter((l) => l.startsWith('node_modules/stdb-rx/'))
      .filter((l) => !/error TS2307: Cannot find module 'dexie'/.test(l));
    assert(errors.length === 0, errors.join('\n'));
  });

  // (a) plain node against the packed dev server's bin.
  let port = 0;
  await step('npx stdb-rx-devserver (the packed bin) starts with the arena demo', async () => {
    port = await devServer();
  });
  if (!port) return;
  await step("the README's quick start runs in plain node: table$ emits, a call succeeds, the client closes", () => {
    writeFileSync(join(app, 'quickstart.mjs'), quickStart(port));
    const out = sh(process.execPath, ['quickstart.mjs'], app);
    assert(/players online: \d+/.test(out) && /name set/.test(out) && /closed/.test(out), `unexpected output:\n${out}`);
    assert(!/INFO/.test(out), `the SDK's info logs show:\n${out}`);
  });
  await step('examples/node-bot runs against the dev server', () => {
    const out = sh(process.execPath, ['bot.mjs'], join(app, 'examples/node-bot'), { STDB_URI: `ws://127.0.0.1:${port}` });
    assert(/one of them its own/.test(out) && /bot: done/.test(out), `unexpected output:\n${out}`);
  });

  // (c) browser bundles: no Node built-ins, run in Chromium.
  const bundle = async (entry: string, outfile: string) => {
    const result = await build({
      absWorkingDir: app,
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      outfile,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    const nodeish = inputs.filter((i) => /^node:|^(fs|path|os|crypto|http|https|net|tls|zlib|stream|url|util|events|child_process|worker_threads)$|(^|\/)node_modules\/(undici|ws|esbuild|stdb-rx-devserver\/dist\/(?!arena))/.test(i));
    assert(nodeish.length === 0, `the browser bundle pulls in ${nodeish.join(', ')}`);
    // Without storage, no Dexie and no storage code in the output (esbuild lists inputs it then drops entirely).
    const used = Object.entries(Object.values(result.metafile.outputs)[0]!.inputs).filter(([, v]) => v.bytesInOutput > 0).map(([k]) => k);
    const storage = used.filter((i) => /node_modules\/dexie\/|stdb-rx\/dist\/storage\/(openStorage|dexieStore|db)\.js/.test(i));
    assert(storage.length === 0, `a bundle without storage carries ${storage.join(', ')}`);
  };
  let web: { server: Server; url: string } | undefined;
  await step('esbuild browser bundles of the quick start and examples/browser (npm run build) have no Node built-ins', async () => {
    writeFileSync(join(app, 'quickstart.mjs'), quickStart(port));
    await bundle('quickstart.mjs', 'web/quickstart.js');
    writeFileSync(join(app, 'web/quickstart.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./quickstart.js"></script>');
    sh('npm', ['run', 'build'], join(app, 'examples/browser'));
    await bundle('examples/browser/main.ts', 'examples/browser/dist/check.js');
    web = await staticServer(app);
  });
  if (!web) return;
  const browser = await launchChromium();
  try {
    await step("the README's quick start runs in Chromium", async () => {
      const page = await browser.newPage();
      const lines: string[] = [];
      page.on('console', (m) => lines.push(m.text()));
      page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
      const closed = page.waitForEvent('console', { predicate: (m) => m.text() === 'closed', timeout: 20_000 });
      await page.goto(`${web!.url}/web/quickstart.html`);
      await closed;
      const out = lines.join('\n');
      assert(/players online: \d+/.test(out) && /name set/.test(out) && !/pageerror|INFO/.test(out), `unexpected console:\n${out}`);
      await page.close();
    });
    await step('examples/browser runs in Chromium: live, lists players, renames', async () => {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${web!.url}/examples/browser/index.html?uri=ws://127.0.0.1:${port}`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live', null, { timeout: 20_000 });
      await page.click('#rename');
      await page.waitForFunction(() => document.body.dataset['renamed'] === '1', null, { timeout: 20_000 });
      await page.waitForFunction(() => [...document.querySelectorAll('#players li')].some((li) => li.textContent?.startsWith('page-1')), null, { timeout: 20_000 });
      assert(errors.length === 0, `page errors: ${errors.join('; ')}`);
      await page.close();
    });
  } finally {
    await browser.close();
    web.server.close();
  }
}

main()
  .catch((e) => {
    failures++;
    console.error(e);
  })
  .finally(() => {
    for (const c of children) {
      try {
        if (c.pid !== undefined) process.kill(-c.pid, 'SIGTERM');
      } catch {
        c.kill(); // the group is already gone: at least the child itself
      }
    }
    if (!process.env.KEEP_APP && !reuse) rmSync(dir, { recursive: true, force: true });
    console.log(failures ? `consumer test: ${failures} failed` : 'consumer test: all passed');
    process.exitCode = failures ? 1 : 0;
  });
