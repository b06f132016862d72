/**
 * `--watch`: notice when a module's source files change (the module file
 * and every local file it imports) and ask for a reload. Directories are
 * watched rather than files, so editors that save by replacing the file are
 * seen too; a burst of events becomes one reload, and a change made while a
 * reload runs triggers another one after it.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { bundleIsStale, moduleSources } from './host/bundle.ts';

/** What a reload came to; see `DevServer.reload()`. */
export type ReloadEvent =
  | { readonly status: 'reloaded'; readonly steps: readonly string[] }
  | { readonly status: 'refused'; readonly reasons: readonly string[] }
  | { readonly status: 'failed'; readonly error: string };

export interface ModuleWatcher {
  close(): void;
}

/** Quiet period after the last file event before reloading, in ms. @default 40 */
const SETTLE_MS = 40;

/** Start watching; resolves once the watchers are in place. */
export async function watchModule(modulePath: string, reload: () => Promise<unknown>, settleMs = SETTLE_MS): Promise<ModuleWatcher> {
  let watchers: FSWatcher[] = [];
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<unknown> | undefined;
  let again = false;

  /**
   * Watch the directories of the current sources. The new watchers are in
   * place before the old ones close, and a change that slipped in before
   * either saw it is caught by comparing the sources' mtimes with the last
   * build's.
   */
  const rewatch = async () => {
    // Installed packages do not change under a running server; node_modules/.cache is not a package.
    const sources = (await moduleSources(modulePath)).filter((f) => !/[\\/]node_modules[\\/](?!\.cache[\\/])/.test(f));
    if (closed) return;
    const byDir = new Map<string, Set<string>>();
    for (const f of [resolve(modulePath), ...sources]) {
      const d = dirname(f);
      if (!byDir.has(d)) byDir.set(d, new Set());
      byDir.get(d)!.add(basename(f));
    }
    const previous = watchers;
    watchers = [...byDir].map(([dir, names]) => {
      const w = watch(dir, (_event, name) => {
        if (name === null || names.has(basename(String(name)))) schedule();
      });
      w.on('error', () => undefined);
      return w;
    });
    for (const w of previous) w.close();
    if (await bundleIsStale(modulePath)) schedule();
  };

  const run = () => {
    timer = undefined;
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = reload()
      .catch(() => undefined)
      .then(rewatch)
      .finally(() => {
        running = undefined;
        if (again && !closed) {
          again = false;
          schedule();
        }
      });
  };

  function schedule() {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, settleMs);
  }

  await rewatch();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
      watchers = [];
    },
  };
}
