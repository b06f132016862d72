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

/**
 * One browser page script from `entryPoint` and everything it imports, as a
 * minified ES module in production mode (the demo page, the spectator page,
 * the outbox benchmark page), with its source map when `sourcemap` is set.
 */
export async function bundleForBrowser(entryPoint: string, sourcemap = false): Promise<{ js: Uint8Array; map: Uint8Array | undefined }> {
  const result = await build({
    entryPoints: [entryPoint],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: 'app.js',
    sourcemap: sourcemap ? 'linked' : false,
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('app.js'));
  if (!js) throw new Error(`esbuild produced no script for ${entryPoint}`);
  return { js: js.contents, map: result.outputFiles.find((f) => f.path.endsWith('app.js.map'))?.contents };
}

export async function buildPage(): Promise<PageBundle> {
  const { js, map } = await bundleForBrowser(entry, true);
  if (!map) throw new Error('esbuild produced no app.js.map');
  return { js, map };
}
