/**
 * Loads a SpacetimeDB TypeScript module (written against `spacetimedb/server`)
 * into this process, the way SpacetimeDB's V8 host runs it: the module is
 * bundled with esbuild, its `spacetime:sys@2.x` imports bound to host
 * functions we provide, and its default export asked for its hooks.
 *
 * Each load gets its own copy of the module (its own library state and its
 * own `console`), so several dev servers can run in one process.
 */
import { build, type Plugin } from 'esbuild';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The host functions a module imports from `spacetime:sys@2.0` and `@2.1`. */
export interface SysFunctions {
  [name: string]: (...args: any[]) => any;
}

/** What a module's default export hands the host. */
export interface ModuleHooks {
  __describe_module__(): Uint8Array;
  __get_error_constructor__(code: number): new (msg: string) => Error;
  readonly __sender_error_class__: new (msg: string) => Error;
  __call_reducer__(reducerId: number, sender: bigint, connId: bigint, timestamp: bigint, argsBuf: DataView): void;
  __call_procedure__?(...args: unknown[]): Uint8Array;
  __call_view__?(...args: unknown[]): unknown;
}

export interface LoadedModule {
  readonly hooks: ModuleHooks;
  /** Run `fn` with the module's own `console` installed, as during a host call. */
  run<T>(fn: () => T): T;
}

/** Thrown when a module cannot be bundled or does not export a SpacetimeDB schema. */
export class ModuleLoadError extends Error {
  override readonly name = 'ModuleLoadError';
}

const SYS_2_0 = [
  'register_hooks',
  'table_id_from_name',
  'index_id_from_name',
  'datastore_table_row_count',
  'datastore_table_scan_bsatn',
  'datastore_index_scan_range_bsatn',
  'row_iter_bsatn_advance',
  'row_iter_bsatn_close',
  'datastore_insert_bsatn',
  'datastore_update_bsatn',
  'datastore_delete_by_index_scan_range_bsatn',
  'datastore_delete_all_by_eq_bsatn',
  'volatile_nonatomic_schedule_immediate',
  'console_log',
  'console_timer_start',
  'console_timer_end',
  'identity',
  'get_jwt_payload',
  'procedure_http_request',
  'procedure_start_mut_tx',
  'procedure_commit_mut_tx',
  'procedure_abort_mut_tx',
  'datastore_index_scan_point_bsatn',
  'datastore_delete_by_index_scan_point_bsatn',
] as const;
const SYS_2_1 = ['datastore_clear'] as const;

const REGISTRY = Symbol.for('stdb-rx.devserver.hosts');
type Registry = Map<string, { sys: SysFunctions; moduleHooks: symbol }>;
const registry: Registry = ((globalThis as any)[REGISTRY] ??= new Map());

/**
 * The one symbol shared by every module copy and the host (registered, so
 * that a second copy of this file — a loader may instantiate one — agrees).
 */
export const moduleHooksSymbol: unique symbol = Symbol.for('stdb-rx.devserver.moduleHooks') as any;

function sysSource(names: readonly string[], withHooks: boolean): string {
  const lines = [
    `const __host = globalThis[Symbol.for('stdb-rx.devserver.hosts')].get(new URL(import.meta.url).searchParams.get('host'));`,
    `if (!__host) throw new Error('stdb-rx devserver: module loaded without a host');`,
  ];
  if (withHooks) lines.push('export const moduleHooks = __host.moduleHooks;');
  for (const n of names) lines.push(`export const ${n} = __host.sys.${n};`);
  return lines.join('\n');
}

const sysPlugin: Plugin = {
  name: 'stdb-rx-spacetime-sys',
  setup(b) {
    b.onResolve({ filter: /^spacetime:sys@/ }, (args) => ({ path: args.path, namespace: 'spacetime-sys' }));
    b.onLoad({ filter: /.*/, namespace: 'spacetime-sys' }, (args) => {
      const version = args.path.slice('spacetime:sys@'.length);
      if (version === '2.0') return { contents: sysSource(SYS_2_0, true), loader: 'js' };
      if (version === '2.1') return { contents: sysSource(SYS_2_1, false), loader: 'js' };
      return { errors: [{ text: `unsupported host ABI ${args.path} (the dev server provides spacetime:sys@2.0 and @2.1)` }] };
    });
  },
};

const here = dirname(fileURLToPath(import.meta.url));
const cacheDir = resolve(here, '..', '..', 'node_modules', '.cache', 'stdb-rx');
const bundles = new Map<string, Promise<string>>();

/** Bundle the module at `modulePath`; returns the bundle's file path (cached per source mtime). */
export async function bundleModule(modulePath: string): Promise<string> {
  const abs = resolve(modulePath);
  let mtime: number;
  try {
    mtime = (await stat(abs)).mtimeMs;
  } catch {
    throw new ModuleLoadError(`module file not found: ${abs}`);
  }
  const cacheKey = `${abs}@${mtime}`;
  let p = bundles.get(cacheKey);
  if (!p) {
    p = (async () => {
      let code: string;
      try {
        const result = await build({
          entryPoints: [abs],
          bundle: true,
          write: false,
          format: 'esm',
          platform: 'neutral',
          mainFields: ['module', 'main'],
          conditions: ['import', 'default'],
          // The server library uses `using` declarations, which Node 20 cannot parse.
          target: 'node20',
          plugins: [sysPlugin],
          logLevel: 'silent',
        });
        code = result.outputFiles[0].text;
      } catch (e: any) {
        const detail = e?.errors?.map((x: any) => x.text).join('; ') ?? String(e);
        throw new ModuleLoadError(`module ${abs} does not build: ${detail}`);
      }
      const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
      const file = join(cacheDir, `module-${hash}.mjs`);
      await mkdir(cacheDir, { recursive: true });
      const existing = await readFile(file, 'utf8').catch(() => undefined);
      if (existing !== code) await writeFile(file, code);
      return file;
    })();
    bundles.set(cacheKey, p);
    p.catch(() => bundles.delete(cacheKey));
  }
  return p;
}

installPolyfills();

const hostConsole = globalThis.console;
// One queue of loads per process, shared by every copy of this file.
const LOADING = Symbol.for('stdb-rx.devserver.loading');
const queue = ((globalThis as any)[LOADING] ??= { tail: Promise.resolve() as Promise<unknown> });

/**
 * Load a fresh copy of a module, bound to `sys`. Loads run one at a time:
 * the module library installs its own `console` while it evaluates, which
 * the host takes back and installs only during calls into the module.
 */
export function loadModule(modulePath: string, sys: SysFunctions): Promise<LoadedModule> {
  const job = queue.tail.then(() => loadNow(modulePath, sys));
  queue.tail = job.catch(() => undefined);
  return job;
}

async function loadNow(modulePath: string, sys: SysFunctions): Promise<LoadedModule> {
  const file = await bundleModule(modulePath);
  // Unique per load, also across copies of this file: the ESM loader caches by URL.
  const id = randomUUID();
  registry.set(id, { sys, moduleHooks: moduleHooksSymbol });
  let ns: any;
  // The module library aliases `globalThis.window` to `globalThis` while it
  // loads (for a URL polyfill); in this process that would make every other
  // library believe it runs in a browser. Take the alias back afterwards.
  const hadWindow = Object.prototype.hasOwnProperty.call(globalThis, 'window');
  try {
    ns = await import(`${pathToFileURL(file).href}?host=${id}`);
  } catch (e) {
    throw new ModuleLoadError(`module ${modulePath} failed to initialise: ${String(e)}`);
  } finally {
    registry.delete(id);
    if (!hadWindow && (globalThis as { window?: unknown }).window === globalThis) delete (globalThis as { window?: unknown }).window;
  }
  const moduleConsole = globalThis.console;
  globalThis.console = hostConsole;
  const run = <T>(fn: () => T): T => {
    const previous = globalThis.console;
    globalThis.console = moduleConsole;
    try {
      return fn();
    } finally {
      globalThis.console = previous;
    }
  };
  const schema = ns.default;
  if (!schema || typeof schema[moduleHooksSymbol] !== 'function') {
    throw new ModuleLoadError(`module ${modulePath} has no default export built with schema() from spacetimedb/server`);
  }
  const hooks = run(() => schema[moduleHooksSymbol](ns)) as ModuleHooks;
  return { hooks, run };
}

/** Standard methods SpacetimeDB's V8 has and Node 20 lacks, used by the module library. */
function installPolyfills() {
  const proto = Set.prototype as any;
  if (typeof proto.isSubsetOf !== 'function') {
    Object.defineProperty(proto, 'isSubsetOf', {
      configurable: true,
      writable: true,
      value: function isSubsetOf(this: Set<unknown>, other: { has(v: unknown): boolean; size: number }) {
        if (this.size > other.size) return false;
        for (const v of this) if (!other.has(v)) return false;
        return true;
      },
    });
  }
}
