#!/usr/bin/env node
/**
 * `stdb-rx-relay` (in this repository `npm run relay`) — a spectator relay in front of SpacetimeDB (or the dev server).
 *
 *   npm run relay -- --upstream ws://127.0.0.1:3000 --db arena --streams demo/arena/streams.ts [--port 4000]
 *
 * The streams file exports `streams` (pattern → definition) and the bindings'
 * `DbConnection`. Prints `stdb-rx relay listening on http://HOST:PORT (...)`.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { createRelay } from './relay.ts';
import type { StreamDefinition } from './streams.ts';

const USAGE = `usage: stdb-rx-relay --upstream ws://host:port --db NAME --streams FILE
                      [--port 4000] [--host 127.0.0.1] [--delay MS] [--token JWT]
                      [--max-spectators N] [--max-buffer BYTES] [--history N]
`;

function num(name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got ${value}`);
  return n;
}

async function main() {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string' },
      db: { type: 'string' },
      streams: { type: 'string' },
      port: { type: 'string', default: '4000' },
      host: { type: 'string', default: '127.0.0.1' },
      delay: { type: 'string' },
      token: { type: 'string' },
      'max-spectators': { type: 'string' },
      'max-buffer': { type: 'string' },
      history: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return void process.stdout.write(USAGE);
  if (!values.upstream || !values.db || !values.streams) {
    process.stderr.write(USAGE);
    process.exitCode = 2;
    return;
  }
  const mod = (await import(pathToFileURL(resolve(values.streams)).href)) as { streams?: Record<string, StreamDefinition>; DbConnection?: { builder: () => any } };
  if (!mod.streams || typeof mod.DbConnection?.builder !== 'function') {
    throw new Error(`${values.streams} must export \`streams\` and the bindings' \`DbConnection\``);
  }
  const relay = await createRelay({
    upstream: { builder: mod.DbConnection.builder, uri: values.upstream, database: values.db, token: values.token, events: null },
    streams: mod.streams,
    port: num('port', values.port),
    host: values.host,
    delayMs: num('delay', values.delay),
    maxSpectators: num('max-spectators', values['max-spectators']),
    maxBufferBytes: num('max-buffer', values['max-buffer']),
    history: values.history ? { maxEntries: num('history', values.history) } : undefined,
  });
  process.stdout.write(`stdb-rx relay listening on ${relay.url} (upstream ${values.upstream}, database ${values.db}; streams ${Object.keys(mod.streams).join(', ')})\n`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await relay.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err) => {
  process.stderr.write(`relay: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
