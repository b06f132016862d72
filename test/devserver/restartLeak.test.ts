/**
 * A restart must free the previous module instance (its datastore, its
 * logger): counted with a FinalizationRegistry in a child process with
 * `--expose-gc`, after N restarts.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('devserver restarts free the previous module instance', function () {
  this.timeout(120_000);

  it('keeps one live ModuleInstance and one module copy after 12 restarts', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        ['--expose-gc', '--import', 'tsx', 'test/helpers/restartLeakChild.ts', '12'],
        { cwd: ROOT },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const result = JSON.parse(out.trim().split('\n').pop()!) as { restarts: number; alive: number; importsDuringRestarts: number };
    expect(result.restarts).to.equal(12);
    // The current instance is the only one still reachable.
    expect(result.alive, 'ModuleInstances alive after GC').to.equal(1);
    // Restarts re-point the pooled copy of the module instead of importing another.
    expect(result.importsDuringRestarts, 'module copies imported by the restarts').to.equal(0);
  });
});
