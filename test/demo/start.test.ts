/** `npm start`: what the terminal says to the person who ran it. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Run `npm start -- args` until `done(stdout)` or exit; returns what it printed. */
function start(args: string[], done: (out: string) => boolean, ms = 25_000): Promise<{ out: string; err: string; code: number | null | 'running' }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo/start.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`npm start did not get there within ${ms} ms; stdout: ${out} stderr: ${err}`));
    }, ms);
    child.stdout.on('data', (d) => {
      out += d;
      if (done(out)) {
        clearTimeout(timer);
        child.once('exit', () => resolve({ out, err, code: 'running' }));
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ out, err, code });
    });
  });
}

describe('npm start (the demo)', function () {
  this.timeout(60_000);
  let blocker: Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
    blocker = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('on a port clash names the flags that pick other ports', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    dir = await mkdtemp(join(tmpdir(), 'stdb-rx-start-'));
    const { err, code } = await start(['--port', String(port), '--page-port', '0', '--data', dir], () => false);
    expect(code).to.equal(1);
    expect(err).to.include(`Port ${port} is already in use`);
    expect(err).to.match(/--port N .*--page-port N/);
  });

  it('prints players joining and leaving and the faults injected', async () => {
    dir = await mkdtemp(join(tmpdir(), 'stdb-rx-start-'));
    let faulted = false;
    // One headless bot plays for 6 s: it joins, a fault is injected through the dev endpoints, it leaves.
    const { out, code } = await start(['--port', '0', '--data', dir, '--headless', '--bots', '1', '--seconds', '6'], (o) => {
      const url = /dev server: (http:\/\/127\.0\.0\.1:\d+)/.exec(o)?.[1];
      if (url && !faulted && /player \S+ joined/.test(o)) {
        faulted = true;
        void fetch(`${url}/_dev/latency?ms=5&jitter=0`, { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } });
      }
      return false;
    });
    expect(code).to.equal(0);
    expect(out).to.match(/\[\d\d:\d\d:\d\d\] player \S+ joined/);
    expect(out).to.match(/\[\d\d:\d\d:\d\d\] fault: latency ms=5 jitter=0/);
    expect(out).to.match(/\[\d\d:\d\d:\d\d\] player \S+ left/);
  });
});
