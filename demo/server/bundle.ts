/**
 * Builds the demo page's script with esbuild, in memory: `demo/web/main.ts`
 * and everything it imports (stdb-rx, the `spacetimedb` SDK's browser build,
 * Dexie, RxJS) as one ES module. Takes about a second; done at every start.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

export interface PageBundle {
  /** `app.js` */
  readonly js: Uint8Array;
  /** `app.js.map` */
  readonly map: Uint8Array;
}

const entry = fileURLToPath(new URL('../web/main.ts', import.meta.url));

export async function buildPage(): Promise<PageBundle> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: 'app.js',
    sourcemap: 'linked',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('app.js'));
  const map = result.outputFiles.find((f) => f.path.endsWith('app.js.map'));
  if (!js || !map) throw new Error('esbuild produced no app.js');
  return { js: js.contents, map: map.contents };
}
