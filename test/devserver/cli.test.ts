/** `npm run devserver`: the command a developer runs. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BASIC_MODULE } from '../helpers/sdk.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ line: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'devserver/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('stdb-rx devserver listening'));
      if (line) resolve({ line, stop: () => (child.kill('SIGTERM'), exited) });
    });
    exited.then((code) => reject(new Error(`devserver exited with ${code}: ${err}`)));
  });
}

describe('devserver CLI', function () {
  this.timeout(30_000);

  it('prints where it listens and the database name, and serves it', async () => {
    const { line, stop } = await run(['--port', '0', '--module', BASIC_MODULE, '--db', 'cli-test']);
    try {
      const m = /^stdb-rx devserver listening on (http:\/\/127\.0\.0\.1:\d+) \(database cli-test\)$/.exec(line);
      expect(m, line).to.not.equal(null);
      expect((await fetch(`${m![1]}/v1/ping`)).status).to.equal(200);
    } finally {
      expect(await stop()).to.equal(0);
    }
  });

  it('refuses a bad port with a clear message', async () => {
    let error: unknown;
    await run(['--port', 'abc']).catch((e) => (error = e));
    expect(String(error)).to.match(/--port must be 0\.\.65535/);
  });
});
