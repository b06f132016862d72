#!/usr/bin/env node
/**
 * `stdb-rx-devserver [--port 3000] [--host 127.0.0.1] [--module FILE] [--db name] [--data dir] [--admin] [--watch] [--owner HEX] [--log-level info]`
 * `stdb-rx-devserver generate --module FILE --out DIR`
 * (in this repository: `npm run devserver -- …`). The default module is the arena demo.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateBindings, writeBindings } from './codegen/index.ts';
import { startDevServer } from './server.ts';
import type { LogLevel } from './host/instance.ts';

const LEVELS: LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

async function generate(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      module: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !values.module || !values.out) {
    const usage = 'usage: stdb-rx-devserver generate --module FILE --out DIR\n';
    if (values.help) return void process.stdout.write(usage);
    throw new Error(`--module and --out are required\n${usage}`);
  }
  const files = await generateBindings(values.module);
  const { written, deleted } = await writeBindings(files, values.out);
  for (const f of deleted) process.stdout.write(`deleted ${f} (no longer generated)\n`);
  process.stdout.write(`generated ${written.length} files in ${values.out}\n`);
}

async function main() {
  if (process.argv[2] === 'generate') return generate(process.argv.slice(3));
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '3000' },
      host: { type: 'string', default: '127.0.0.1' },
      module: { type: 'string' },
      db: { type: 'string' },
      data: { type: 'string' },
      admin: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
      owner: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: stdb-rx-devserver [--port N] [--host ADDR] [--module FILE] [--db NAME] [--data DIR] [--admin] [--watch] [--owner HEX] [--log-level error|warn|info|debug|trace]\n       stdb-rx-devserver generate --module FILE --out DIR\n');
    return;
  }
  // Default module: the arena demo — the copy the package ships next to this file, else (in the repository) demo/arena.
  const shipped = fileURLToPath(new URL('./arena/module.ts', import.meta.url));
  const modulePath = values.module ?? (existsSync(shipped) ? shipped : 'demo/arena/module.ts');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  const threshold = LEVELS.indexOf(values['log-level'] as LogLevel);
  if (threshold < 0) throw new Error(`--log-level must be one of ${LEVELS.join(', ')}`);
  const server = await startDevServer({
    module: modulePath,
    port,
    host: values.host,
    database: values.db,
    dataDir: values.data,
    admin: values.admin,
    watch: values.watch,
    owner: values.owner,
    logger: {
      log(level, message) {
        if (LEVELS.indexOf(level) <= threshold) process.stderr.write(`[${level}] ${message}\n`);
      },
    },
  });
  process.stdout.write(`stdb-rx devserver listening on ${server.url} (database ${server.database})\n`);
  if (values.admin) process.stdout.write(`fault endpoints under ${server.url}/_dev/ (loopback only)\n`);
  const shutdown = () => {
    server.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((e) => {
  process.stderr.write(`stdb-rx devserver: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
