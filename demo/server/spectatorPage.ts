/**
 * The spectator page's small HTTP server: `spectator.html`, the demo's
 * stylesheet plus `spectator.css`, the esbuild bundle of
 * `demo/web/spectator.ts`, and `/config.json` (where the relay is).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { serveFiles, type StaticFile } from './staticFiles.ts';
import { bundleForBrowser } from './bundle.ts';

export interface SpectatorPageOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** The relay's WebSocket URL as the browser reaches it. */
  relay: string;
  /** Spectator timings. @default heartbeat 15 s / 10 s, retry 500 ms … 10 s, connect 15 s */
  timings?: { heartbeat?: { interval: number; timeout: number }; retry?: { initialInterval: number; maxInterval: number }; connectTimeout?: number };
}

export interface SpectatorPage {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const webDir = (name: string) => fileURLToPath(new URL(`../web/${name}`, import.meta.url));

let bundle: Promise<Uint8Array> | undefined;
/** `demo/web/spectator.ts` and what it imports as one ES module (built once per process). */
export function buildSpectatorPage(): Promise<Uint8Array> {
  return (bundle ??= bundleForBrowser(webDir('spectator.ts')).then((r) => r.js));
}

export async function startSpectatorPage(options: SpectatorPageOptions): Promise<SpectatorPage> {
  const [js, html, css, own] = await Promise.all([buildSpectatorPage(), readFile(webDir('spectator.html')), readFile(webDir('style.css')), readFile(webDir('spectator.css'))]);
  const config = {
    relay: options.relay,
    heartbeat: { interval: 15_000, timeout: 10_000 },
    retry: { initialInterval: 500, maxInterval: 10_000 },
    connectTimeout: 15_000,
    ...options.timings,
  };
  const files: Record<string, StaticFile> = {
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/spectator.html': { type: 'text/html; charset=utf-8', body: html },
    '/style.css': { type: 'text/css; charset=utf-8', body: css },
    '/spectator.css': { type: 'text/css; charset=utf-8', body: own },
    '/spectator.js': { type: 'text/javascript; charset=utf-8', body: js },
    '/config.json': { type: 'application/json', body: JSON.stringify(config) },
  };
  return serveFiles(files, options);
}
