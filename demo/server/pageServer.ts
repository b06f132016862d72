/**
 * The demo page's own small HTTP server: `index.html`, `style.css`, the
 * esbuild bundle, `/config.json` (where the game's database is), and — when
 * the database is a stdb-rx dev server with `admin` on — `/_dev/*` passed
 * through to it, so the page's dev panel calls its own origin.
 *
 * It is a separate server from the database on purpose: the page must still
 * load (from this server) while the database is blackholed or restarting.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { serveFiles, type StaticFile } from './staticFiles.ts';
import { buildPage, type PageBundle } from './bundle.ts';
import { DEFAULT_PAGE_TIMINGS, type PageConfig } from '../web/config.ts';

export interface PageServerOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Database URI as the browser reaches it (`ws://…` or `http://…`). */
  uri: string;
  database: string;
  /** HTTP base of a dev server whose `/_dev/*` endpoints the dev panel may use; absent: no dev panel. */
  adminBase?: string;
  /** Client timings for the page. @default DEFAULT_PAGE_TIMINGS */
  timings?: Partial<Pick<PageConfig, 'heartbeat' | 'retry' | 'connectTimeout'>>;
  /** A bundle built before (tests build once for many servers). */
  bundle?: PageBundle;
}

export interface PageServer {
  readonly url: string;
  readonly port: number;
  readonly config: PageConfig;
  stop(): Promise<void>;
}

const webDir = (name: string) => fileURLToPath(new URL(`../web/${name}`, import.meta.url));

/** Turn `ws://h:p` / `wss://…` / `http://…` into the HTTP base the dev server's admin endpoints live on. */
export function httpBase(uri: string): string {
  const u = new URL(uri);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return u.origin;
}

export async function startPageServer(options: PageServerOptions): Promise<PageServer> {
  const [bundle, html, css] = await Promise.all([
    options.bundle ?? buildPage(),
    readFile(webDir('index.html')),
    readFile(webDir('style.css')),
  ]);
  const config: PageConfig = {
    uri: options.uri,
    database: options.database,
    admin: options.adminBase !== undefined,
    ...DEFAULT_PAGE_TIMINGS,
    ...options.timings,
  };
  const files: Record<string, StaticFile> = {
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/index.html': { type: 'text/html; charset=utf-8', body: html },
    '/style.css': { type: 'text/css; charset=utf-8', body: css },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: bundle.js },
    '/app.js.map': { type: 'application/json', body: bundle.map },
    '/config.json': { type: 'application/json', body: JSON.stringify(config) },
  };

  const server = await serveFiles(files, options, (req, res, url) => {
    if (!url.pathname.startsWith('/_dev/')) return false;
    void passToDevServer(req, res, url, options.adminBase);
    return true;
  });
  return { ...server, config };
}

/** `/_dev/*` → the dev server (which itself answers loopback callers only). */
async function passToDevServer(req: IncomingMessage, res: ServerResponse, url: URL, adminBase: string | undefined) {
  if (!adminBase) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('this database has no dev controls');
    return;
  }
  try {
    const answer = await fetch(new URL(url.pathname + url.search, adminBase), {
      method: req.method,
      // Passed on as the page sent it: the dev server refuses POSTs without it.
      headers: typeof req.headers['x-stdb-rx-admin'] === 'string' ? { 'x-stdb-rx-admin': req.headers['x-stdb-rx-admin'] } : {},
      signal: AbortSignal.timeout(30_000),
    });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
    res.end(Buffer.from(await answer.arrayBuffer()));
  } catch (e) {
    res.writeHead(502, { 'content-type': 'text/plain' }).end(`dev server unreachable: ${(e as Error).message}`);
  }
}
