/**
 * Loads a SpacetimeDB TypeScript module (written against `spacetimedb/server`)
 * into this process, the way SpacetimeDB's V8 host runs it: the module is
 * bundled with esbuild, its `spacetime:sys@2.x` imports bound to host
 * functions we provide, and its default export asked for its hooks.
 *
 * Each running instance gets a copy of the module to itself (its own library
 * state and its own `console`), so several dev servers can run in one
 * process. Node never unloads an imported module, so copies are not thrown
 * away: `dispose()` cuts a copy loose from the host functions it was bound to
 * (nothing of the old instance stays reachable through it) and puts it back
 * in a pool, and the next load of the same bundle re-points a pooled copy at
 * the new host functions instead of importing another one. Restarting a
 * server N times therefore costs one copy, not N.
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
  /**
   * Unbind the copy from its host functions (later calls from it throw) and
   * return it to the pool for the next load of the same bundle. Idempotent.
   */
  dispose(): void;
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
const SYS_FUNCTION_NAMES: readonly string[] = [...SYS_2_0, ...SYS_2_1];

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
/** Per module file: the bundle being built or built, and the source files it was built from. */
const bundles = new Map<string, { inputs: Promise<Map<string, number>>; file: Promise<string> }>();

async function mtimes(files: Iterable<string>): Promise<Map<string, number> | undefined> {
  const out = new Map<string, number>();
  for (const f of files) {
    try {
      out.set(f, (await stat(f)).mtimeMs);
    } catch {
      return undefined;
    }
  }
  return out;
}

/**
 * Bundle the module at `modulePath`; returns the bundle's file path. Cached
 * until the module file or any file it imports changes (their mtimes).
 */
export async function bundleModule(modulePath: string): Promise<string> {
  const abs = resolve(modulePath);
  try {
    await stat(abs);
  } catch {
    throw new ModuleLoadError(`module file not found: ${abs}`);
  }
  const cached = bundles.get(abs);
  const previousSources = new Set<string>([abs]);
  if (cached) {
    const inputs = await cached.inputs.catch(() => undefined);
    const now = inputs && (await mtimes(inputs.keys()));
    if (inputs && now && [...inputs].every(([f, m]) => now.get(f) === m)) return cached.file;
    for (const f of inputs?.keys() ?? []) previousSources.add(f);
  }
  let resolveInputs!: (m: Map<string, number>) => void;
  let rejectInputs!: (e: unknown) => void;
  const inputs = new Promise<Map<string, number>>((res, rej) => ((resolveInputs = res), (rejectInputs = rej)));
  inputs.catch(() => undefined);
  const file = (async () => {
    let code: string;
    let sources: string[];
    // Taken before building: a change during the build makes the next call rebuild.
    const before = await mtimes([abs]);
    try {
      const result = await build({
        entryPoints: [abs],
        bundle: true,
        write: false,
        metafile: true,
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
      sources = Object.keys(result.metafile.inputs)
        .filter((f) => !f.startsWith('spacetime-sys:'))
        .map((f) => resolve(f));
    } catch (e: any) {
      // Remember what the failed build saw: the same sources fail the same way.
      const seen = (await mtimes([...previousSources].filter((f) => f !== abs))) ?? new Map<string, number>();
      seen.set(abs, before?.get(abs) ?? -1);
      resolveInputs(seen);
      const detail = e?.errors?.map((x: any) => x.text).join('; ') ?? String(e);
      throw new ModuleLoadError(`module ${abs} does not build: ${detail}`);
    }
    const stamps = (await mtimes(sources)) ?? new Map<string, number>();
    stamps.set(abs, before?.get(abs) ?? -1);
    resolveInputs(stamps);
    const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
    const out = join(cacheDir, `module-${hash}.mjs`);
    await mkdir(cacheDir, { recursive: true });
    const existing = await readFile(out, 'utf8').catch(() => undefined);
    if (existing !== code) await writeFile(out, code);
    return out;
  })();
  // A failed build stays cached (with what it saw) until a source changes.
  file.catch((e) => rejectInputs(e));
  bundles.set(abs, { inputs, file });
  return file;
}

/**
 * True when a source file of the last build of `modulePath` changed since
 * (or the last build failed): the next load would build again.
 */
export async function bundleIsStale(modulePath: string): Promise<boolean> {
  const entry = bundles.get(resolve(modulePath));
  if (!entry) return true;
  const inputs = await entry.inputs.catch(() => undefined);
  if (!inputs) return true;
  const now = await mtimes(inputs.keys());
  return !now || [...inputs].some(([f, m]) => now.get(f) !== m);
}

/**
 * The source files the last build of `modulePath` read (the module and
 * everything it imports, packages included), for watching.
 */
export async function moduleSources(modulePath: string): Promise<string[]> {
  const entry = bundles.get(resolve(modulePath));
  if (!entry) return [resolve(modulePath)];
  const inputs = await entry.inputs.catch(() => undefined);
  return inputs ? [...inputs.keys()] : [resolve(modulePath)];
}

installPolyfills();

const hostConsole = globalThis.console;
// One queue of loads per process, shared by every copy of this file.
const LOADING = Symbol.for('stdb-rx.devserver.loading');
const queue = ((globalThis as any)[LOADING] ??= { tail: Promise.resolve() as Promise<unknown> });

/**
 * Load a copy of a module for one instance, bound to `sys`: a pooled copy of
 * the same bundle when one is idle, otherwise a newly imported one. Call
 * `dispose()` when the instance stops. Loads run one at a time: the module
 * library installs its own `console` while it evaluates, which the host takes
 * back and installs only during calls into the module.
 */
export function loadModule(modulePath: string, sys: SysFunctions, options: LoadOptions = {}): Promise<LoadedModule> {
  const job = queue.tail.then(() => loadNow(modulePath, sys, options.affinity ?? ''));
  queue.tail = job.catch(() => undefined);
  return job;
}

export interface LoadOptions {
  /**
   * Only a copy last used with the same affinity is reused. The module
   * library caches what it asked the host once (the database identity, for
   * one), so a copy may serve again only the database it served before: pass
   * the database identity. @default '' (copies shared by every caller)
   */
  readonly affinity?: string;
}

/** A module copy, imported once, whose host functions can be re-pointed. */
interface ModuleCopy {
  readonly hooks: ModuleHooks;
  readonly run: <T>(fn: () => T) => T;
  /** Where the copy's host functions forward to; `undefined` while pooled. */
  target: SysFunctions | undefined;
}

/** Idle copies per bundle file and affinity, shared by every copy of this file. */
const POOL = Symbol.for('stdb-rx.devserver.modulePool');
const pool: Map<string, ModuleCopy[]> = ((globalThis as any)[POOL] ??= new Map());
/** Idle copies kept per bundle; more are cut loose and left to the loader's cache. */
const MAX_IDLE_COPIES = 8;

/** Copies imported so far in this process (for tests and diagnostics). */
export function importedModuleCopies(): number {
  return ((globalThis as any)[Symbol.for('stdb-rx.devserver.importCount')] as number | undefined) ?? 0;
}

async function loadNow(modulePath: string, sys: SysFunctions, affinity: string): Promise<LoadedModule> {
  const file = await bundleModule(modulePath);
  const key = `${file}\0${affinity}`;
  const copy = pool.get(key)?.pop() ?? (await importCopy(modulePath, file, sys));
  copy.target = sys;
  let disposed = false;
  return {
    hooks: copy.hooks,
    run: copy.run,
    dispose() {
      if (disposed) return;
      disposed = true;
      copy.target = undefined;
      const idle = pool.get(key) ?? [];
      if (idle.length < MAX_IDLE_COPIES) {
        idle.push(copy);
        pool.set(key, idle);
      }
    },
  };
}

async function importCopy(modulePath: string, file: string, sys: SysFunctions): Promise<ModuleCopy> {
  const copy: { target: SysFunctions | undefined } = { target: sys };
  // Forwarders with a fixed identity: the module binds them once, at import.
  const forward: SysFunctions = {};
  for (const name of SYS_FUNCTION_NAMES) {
    forward[name] = (...args: any[]) => {
      const target = copy.target;
      if (!target) throw new Error(`stdb-rx devserver: ${name} called by a module instance that was shut down`);
      return target[name](...args);
    };
  }
  // Unique per load, also across copies of this file: the ESM loader caches by URL.
  const id = randomUUID();
  registry.set(id, { sys: forward, moduleHooks: moduleHooksSymbol });
  const counter = Symbol.for('stdb-rx.devserver.importCount');
  (globalThis as any)[counter] = ((globalThis as any)[counter] ?? 0) + 1;
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
  return Object.assign(copy, { hooks, run });
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
