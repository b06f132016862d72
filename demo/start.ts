/**
 * `npm start` — the arena demo.
 *
 *   npm start                                   dev server (arena module, data in .demo-data/, admin on) + the page
 *   npm start -- --uri ws://host:3000 --db name the page, pointed at any SpacetimeDB
 *   npm start -- --headless [--bots 3]          bot players in Node, one status line per second
 *
 * Options: --port (dev server, default 3000), --page-port (page, default
 * 8080), --relay-port (spectator relay, default 4000), --spectator-port
 * (spectator page, default 8081), --data (data folder, default .demo-data), --seconds (headless: stop
 * after this long). Everything binds 127.0.0.1.
 */
import { parseArgs } from 'node:util';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startDevServer, type DevServer } from '../devserver/index.ts';
import { startPageServer, httpBase } from './server/pageServer.ts';
import { runBots } from './bots.ts';
import { createRelay } from '../relay/index.ts';
import { DbConnection } from './arena/bindings/index.ts';
import { streams as arenaStreams } from './arena/streams.ts';
import { startSpectatorPage } from './server/spectatorPage.ts';

const USAGE = `usage: npm start -- [--port 3000] [--page-port 8080] [--data .demo-data]
                    [--relay-port 4000] [--spectator-port 8081]
                    [--uri ws://host:port --db name]
                    [--headless [--bots 3] [--seconds N]]
`;

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '3000' },
      'page-port': { type: 'string', default: '8080' },
      'relay-port': { type: 'string', default: '4000' },
      'spectator-port': { type: 'string', default: '8081' },
      data: { type: 'string', default: '.demo-data' },
      uri: { type: 'string' },
      db: { type: 'string' },
      headless: { type: 'boolean', default: false },
      bots: { type: 'string', default: '3' },
      seconds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return void process.stdout.write(USAGE);
  const port = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be 0..65535, got ${v}`);
    return n;
  };
  if ((values.uri === undefined) !== (values.db === undefined)) throw new Error('--uri and --db go together');

  let devServer: DevServer | undefined;
  let uri = values.uri;
  let database = values.db;
  if (uri === undefined) {
    const dataDir = resolve(values.data!);
    await mkdir(dataDir, { recursive: true });
    devServer = await startDevServer({
      module: 'demo/arena/module.ts',
      port: port('port', values.port!),
      host: '127.0.0.1',
      dataDir,
      admin: true,
      logger: {
        // Errors, plus what a person running the demo wants to follow: players coming and going, faults injected.
        log: (level, message) => {
          if (level === 'error') process.stderr.write(`[devserver] ${message}\n`);
          else if (/^player |^fault: |^restarted /.test(message)) process.stdout.write(`[${new Date().toTimeString().slice(0, 8)}] ${message}\n`);
        },
      },
    });
    uri = devServer.wsUrl;
    database = devServer.database;
    process.stdout.write(`dev server: ${devServer.url} (database ${database}, data in ${dataDir}, admin on)\n`);
  }

  const stops: (() => Promise<unknown>)[] = [];
  if (values.headless) {
    const bots = Number(values.bots);
    if (!Number.isInteger(bots) || bots < 1 || bots > 50) throw new Error(`--bots must be 1..50, got ${values.bots}`);
    const run = runBots({ uri: uri!, database: database!, bots, out: (line) => process.stdout.write(`${line}\n`) });
    stops.push(() => run.stop());
    if (values.seconds !== undefined) {
      setTimeout(() => void shutdown(), Number(values.seconds) * 1000);
    }
  } else {
    const page = await startPageServer({
      port: port('page-port', values['page-port']!),
      host: '127.0.0.1',
      uri: uri!,
      database: database!,
      adminBase: devServer ? devServer.url : await probeAdmin(uri!),
    });
    stops.push(() => page.stop());
    // Spectators watch through a relay: one upstream subscription per match, however many watch.
    const relay = await createRelay({
      upstream: { builder: DbConnection.builder, uri: uri!, database: database!, events: null, sdkLogLevel: 'error' },
      streams: arenaStreams,
      port: port('relay-port', values['relay-port']!),
      host: '127.0.0.1',
    });
    stops.push(() => relay.close());
    const spectators = await startSpectatorPage({ port: port('spectator-port', values['spectator-port']!), host: '127.0.0.1', relay: relay.wsUrl });
    stops.push(() => spectators.stop());
    process.stdout.write(`\n  stdb-rx arena: open ${page.url}\n  spectate a match: ${spectators.url}?match=<id> (relay ${relay.url})\n\n`);
  }
  if (devServer) stops.push(() => devServer!.stop());

  let stopping = false;
  async function shutdown() {
    if (stopping) return;
    stopping = true;
    for (const stop of stops) await stop().catch(() => undefined);
    process.exit(0);
  }
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

/** A stdb-rx dev server started elsewhere with `--admin`? Then the page gets its dev panel too. */
async function probeAdmin(uri: string): Promise<string | undefined> {
  const base = httpBase(uri);
  try {
    const answer = await fetch(new URL('/_dev/stats', base), { signal: AbortSignal.timeout(2000) });
    return answer.ok ? base : undefined;
  } catch {
    return undefined;
  }
}

main().catch((e) => {
  process.stderr.write(`stdb-rx demo: ${e instanceof Error ? e.message : String(e)}\n`);
  const clash = e as { code?: string; port?: number };
  if (clash?.code === 'EADDRINUSE') {
    process.stderr.write(`${portHint(clash.port)}\n`);
  }
  process.exit(1);
});

/** What to do when a port is taken: which flag picks another one. */
function portHint(port: number | undefined): string {
  const which = port === undefined ? '' : ` ${port}`;
  return `Port${which} is already in use (another demo or dev server?). Pick free ports with --port N (dev server) and --page-port N (page), e.g. npm start -- --port 3100 --page-port 8180`;
}
