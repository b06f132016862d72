/** `npm run relay`: the command an operator runs. */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DevServer } from '../../devserver/index.ts';
import { arenaClient, createMatch, rawSpectator, startArena, type ArenaClient } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[]): Promise<{ line: string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'relay/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('stdb-rx relay listening'));
      if (line) resolve({ line, stop: () => (child.kill('SIGTERM'), exited) });
    });
    exited.then((code) => reject(new Error(`relay exited with ${code}: ${err}`)));
  });
}

describe('relay CLI', function () {
  this.timeout(30_000);
  let server: DevServer;
  let host: ArenaClient;

  before(async () => {
    server = await startArena();
    host = arenaClient(server);
  });
  after(async () => {
    await host.close();
    await server.stop();
  });

  it('prints where it listens and serves the streams file it was given', async () => {
    const matchId = await createMatch(server, host);
    const { line, stop } = await run(['--upstream', server.wsUrl, '--db', server.database, '--streams', 'demo/arena/streams.ts', '--port', '0']);
    try {
      const m = /^stdb-rx relay listening on (http:\/\/127\.0\.0\.1:(\d+)) \(upstream .+, database .+; streams match\/:id\)$/.exec(line);
      expect(m, line).to.not.equal(null);
      const s = await rawSpectator(`ws://127.0.0.1:${m![2]}`, { stream: `match/${matchId}` });
      const snap = await s.message((x) => x.t === 'snapshot');
      expect(Object.keys(snap.data.match)).to.deep.equal([String(matchId)]);
      s.ws.close();
    } finally {
      expect(await stop()).to.equal(0);
    }
  });

  it('refuses missing arguments with the usage', async () => {
    let error: unknown;
    await run(['--upstream', 'ws://127.0.0.1:1']).catch((e) => (error = e));
    expect(String(error)).to.match(/exited with 2: usage: stdb-rx-relay/);
  });
});
