/**
 * `npm run devserver -- [--port 3000] [--host 127.0.0.1] [--module demo/arena/module.ts] [--db name] [--data dir] [--admin] [--watch] [--log-level info]`
 * `npm run devserver -- generate --module <file> --out <dir>`
 */
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
    const usage = 'usage: npm run devserver -- generate --module FILE --out DIR\n';
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
      module: { type: 'string', default: 'demo/arena/module.ts' },
      db: { type: 'string' },
      data: { type: 'string' },
      admin: { type: 'boolean', default: false },
      watch: { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: npm run devserver -- [--port N] [--host ADDR] [--module FILE] [--db NAME] [--data DIR] [--admin] [--watch] [--log-level error|warn|info|debug|trace]\n       npm run devserver -- generate --module FILE --out DIR\n');
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  const threshold = LEVELS.indexOf(values['log-level'] as LogLevel);
  if (threshold < 0) throw new Error(`--log-level must be one of ${LEVELS.join(', ')}`);
  const server = await startDevServer({
    module: values.module!,
    port,
    host: values.host,
    database: values.db,
    dataDir: values.data,
    admin: values.admin,
    watch: values.watch,
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
