// Builds the stdb-rx-devserver package into dist/: the server and its CLI
// (tsc: ESM, .d.ts, source maps), the arena demo module (shipped as source:
// the server bundles modules itself) and the arena bindings compiled to ESM
// with .d.ts, for apps that try the dev server out.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const demo = join(here, '..', 'demo', 'arena');
const dist = join(here, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.build.json')], { stdio: 'inherit' });
chmodSync(join(dist, 'cli.js'), 0o755);
cpSync(join(demo, 'module.ts'), join(dist, 'arena', 'module.ts'));

// Generated bindings import siblings without an extension (as `spacetime
// generate` writes them); Node's ESM loader needs one, so a copy gets `.js`
// specifiers. Their declarations cannot be emitted (the inferred types name
// SDK internals the SDK does not export), so the TypeScript sources ship next
// to the JavaScript as the types: a `.js` specifier in a `.ts` file resolves
// to the `.ts` sibling under both `bundler` and `nodenext`.
const work = join(here, '.bindings-build');
rmSync(work, { recursive: true, force: true });
try {
  const src = join(work, 'bindings');
  cpSync(join(demo, 'bindings'), src, { recursive: true });
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (name.endsWith('.ts')) {
        const text = readFileSync(file, 'utf8').replace(/(from\s+['"])(\.{1,2}\/[^'"]+?)(['"])/g, (m, a, spec, b) => (spec.endsWith('.js') ? m : `${a}${spec}.js${b}`));
        writeFileSync(file, text);
      }
    }
  };
  walk(src);
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2023', 'DOM'], types: [],
        strict: true, declaration: false, sourceMap: false, skipLibCheck: true, verbatimModuleSyntax: true, isolatedModules: true,
        rootDir: src, outDir: join(dist, 'arena', 'bindings'),
      },
      include: [join(src, '**/*.ts')],
    }),
  );
  execFileSync(process.execPath, [tsc, '-p', join(work, 'tsconfig.json')], { stdio: 'inherit' });
  cpSync(src, join(dist, 'arena', 'bindings'), { recursive: true });
} finally {
  rmSync(work, { recursive: true, force: true });
}
