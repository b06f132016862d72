/**
 * Helpers for integration tests: a dev server on 127.0.0.1 with the test
 * fixture module, and the unmodified SDK connected to it over a real socket.
 */
import { fileURLToPath } from 'node:url';
import { startDevServer, type DevServer, type DevServerOptions } from '../../devserver/index.ts';
import { DbConnection } from '../fixtures/basic_bindings/index.ts';
import { setGlobalLogLevel, type Identity } from 'spacetimedb';

// The SDK logs every connect at info level; keep test output readable.
setGlobalLogLevel('error');

export const BASIC_MODULE = fileURLToPath(new URL('../fixtures/basic.module.ts', import.meta.url));

export function startBasicServer(options: Partial<DevServerOptions> = {}): Promise<DevServer> {
  return startDevServer({ module: BASIC_MODULE, port: 0, ...options });
}

export interface Connected {
  conn: DbConnection;
  identity: Identity;
  token: string;
}

/** Connect the SDK; resolves on `onConnect`, rejects on `onConnectError` or a close before it. */
export function connect(
  server: DevServer,
  opts: {
    token?: string;
    compression?: 'none' | 'gzip' | 'brotli';
    database?: string;
    wsFn?: (args: any) => Promise<any>;
    onDisconnect?: (err?: Error) => void;
  } = {},
): Promise<Connected> {
  return new Promise((resolve, reject) => {
    let b = DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(opts.database ?? server.database)
      .withCompression(opts.compression ?? 'none')
      .onConnect((conn, identity, token) => resolve({ conn, identity, token }))
      .onConnectError((_ctx, err) => reject(err))
      .onDisconnect((_ctx, err) => {
        opts.onDisconnect?.(err ?? undefined);
        reject(err ?? new Error('disconnected before connect'));
      });
    if (opts.token) b = b.withToken(opts.token);
    if (opts.wsFn) b = b.withWSFn(opts.wsFn);
    b.build();
  });
}

/**
 * A `withWSFn` factory that offers only the v2 subprotocol (the SDK offers v3
 * first), so the unmodified SDK can be tested against the server's v2 path.
 */
export async function v2OnlyWebSocket(args: {
  url: URL;
  nameOrAddress: string;
  authToken?: string;
  compression: 'gzip' | 'brotli' | 'none';
}): Promise<any> {
  const { WebSocket } = await import('undici');
  const { gunzipSync, brotliDecompressSync } = await import('node:zlib');
  const url = new URL(`v1/database/${args.nameOrAddress}/subscribe`, args.url);
  url.searchParams.set('compression', { gzip: 'Gzip', brotli: 'Brotli', none: 'None' }[args.compression]);
  if (args.authToken) {
    const res = await fetch(new URL('v1/identity/websocket-token', args.url.href.replace(/^ws/, 'http')), {
      method: 'POST',
      headers: { authorization: `Bearer ${args.authToken}` },
    });
    if (!res.ok) throw new Error(`Failed to verify token: ${res.statusText}`);
    url.searchParams.set('token', ((await res.json()) as { token: string }).token);
  }
  const ws = new WebSocket(url.toString(), ['v2.bsatn.spacetimedb']);
  ws.binaryType = 'arraybuffer';
  return {
    get protocol() {
      return ws.protocol;
    },
    get readyState() {
      return ws.readyState;
    },
    send: (m: Uint8Array) => ws.send(m),
    close: () => ws.close(),
    set onclose(h: any) {
      ws.onclose = h;
    },
    set onopen(h: any) {
      ws.onopen = h;
    },
    set onerror(h: any) {
      ws.onerror = h;
    },
    set onmessage(h: (m: { data: Uint8Array }) => void) {
      ws.onmessage = (ev: any) => {
        const buf = new Uint8Array(ev.data as ArrayBuffer);
        const body = buf.subarray(1);
        const data = buf[0] === 0 ? body : buf[0] === 1 ? new Uint8Array(brotliDecompressSync(body)) : new Uint8Array(gunzipSync(body));
        h({ data });
      };
    },
  };
}
