/**
 * Run with `node --expose-gc --import tsx`: restarts a dev server (with a
 * data folder, so every restart loads the module afresh) N times and prints
 * one JSON line: how many ModuleInstances are still alive after GC and how
 * many module copies were imported. Used by test/devserver/restartLeak.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importedModuleCopies } from '../../devserver/host/bundle.ts';
import { startDevServer } from '../../devserver/server.ts';
import { BASIC_MODULE } from './sdk.ts';

const restarts = Number(process.argv[2] ?? 10);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

let alive = 0;
const registry = new FinalizationRegistry<void>(() => void alive--);
const dir = mkdtempSync(join(tmpdir(), 'stdb-rx-leak-'));
try {
  const server = await startDevServer({ module: BASIC_MODULE, port: 0, dataDir: dir });
  const track = () => {
    alive++;
    registry.register(server.module, undefined);
  };
  track();
  const importsBefore = importedModuleCopies();
  for (let i = 0; i < restarts; i++) {
    await server.restart();
    track();
  }
  // Finalizers run after a collection, on a later task: collect until they settle.
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const result = { restarts, alive, importsDuringRestarts: importedModuleCopies() - importsBefore };
  await server.stop();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
