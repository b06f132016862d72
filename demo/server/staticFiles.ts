/**
 * A small HTTP server for the demo's pages: a fixed set of in-memory files
 * (GET and HEAD, never cached), anything else 404 — unless `other` answers it.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StaticFile {
  readonly type: string;
  readonly body: string | Uint8Array;
}

export interface StaticServer {
  /** `http://host:port/` */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

export async function serveFiles(
  files: Record<string, StaticFile>,
  options: { port?: number; host?: string },
  /** Answers a request first; returns true when it did. */
  other?: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean,
): Promise<StaticServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (other?.(req, res, url)) return;
    const file = files[url.pathname];
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
