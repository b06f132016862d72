/**
 * The WebSocket upgrade of `/v1/database/:name/subscribe`: database name,
 * subprotocol (v3/v2 BSATN), compression and token are checked — a bad one is
 * answered with a plain HTTP error — then the socket is handed over as a
 * {@link Session}.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { AuthError, type TokenAuthority, type VerifiedToken } from '../auth.ts';
import type { HostLogger } from '../host/instance.ts';
import { negotiateProtocol, parseCompression } from '../protocol/framing.ts';
import { newConnectionId } from '../transactions.ts';
import { bearer, decodePathSegment, requestUrl } from '../http/request.ts';
import type { Session } from './connection.ts';

/** The `ws` server that completes upgrades (it listens on no port of its own). */
export function createWsServer(maxMessageBytes: number): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    // ws stops reading a message as soon as its header says it is over the
    // cap; the connection makes that close 1011 with a reason, like ours.
    // (ws coerces maxPayload to an int32: keep it positive.)
    maxPayload: Math.min(maxMessageBytes, 2 ** 31 - 1),
    // Text frames are refused (1011) whatever they hold; don't let invalid UTF-8 get 1007 first.
    skipUTF8Validation: true,
    perMessageDeflate: false,
    autoPong: false,
    handleProtocols: (protocols) => negotiateProtocol(protocols) ?? false,
  });
}

/** What the upgrade needs from the server. */
export interface UpgradeHost {
  readonly database: string;
  readonly auth: TokenAuthority;
  /** Undefined once the server is stopping. */
  readonly wss: WebSocketServer | undefined;
  readonly log: HostLogger;
  /** A client is through the handshake. */
  connected(ws: WebSocket, session: Session): void;
}

/** The `upgrade` listener of the server's HTTP server. */
export function upgradeHandler(host: UpgradeHost): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    try {
      onUpgrade(host, req, socket, head);
    } catch (e) {
      // A bug here must not crash the process for every other client.
      host.log.log('error', `upgrade ${requestUrl(req.url)?.pathname ?? '(bad target)'}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      socket.destroy();
    }
  };
}

function onUpgrade(host: UpgradeHost, req: IncomingMessage, socket: Duplex, head: Buffer) {
  const reject = (status: number, message: string) => {
    socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(message)}\r\nconnection: close\r\n\r\n${message}`);
  };
  const url = requestUrl(req.url);
  if (!url) return reject(400, 'malformed request target');
  const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(url.pathname);
  if (!m) return reject(404, 'not found');
  if (decodePathSegment(m[1]) !== host.database) return reject(404, `no such database: ${m[1]}`);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const protocol = negotiateProtocol(offered);
  if (!protocol) return reject(400, 'unsupported WebSocket subprotocol (offer v3.bsatn.spacetimedb or v2.bsatn.spacetimedb)');
  const compression = parseCompression(url.searchParams.get('compression'));
  if (!compression) return reject(400, `unknown compression: ${url.searchParams.get('compression')}`);
  const token = url.searchParams.get('token') ?? bearer(req);
  const verified: Promise<VerifiedToken & { token: string }> = token ? host.auth.verify(token).then((v) => ({ ...v, token })) : host.auth.mint();
  verified
    .then(
      (auth) => {
        const wss = host.wss;
        if (!wss) return reject(404, 'server is stopping');
        if (socket.destroyed) return;
        wss.handleUpgrade(req, socket, head, (ws) =>
          host.connected(ws, {
            id: newConnectionId(),
            identity: auth.identity,
            token: auth.token,
            jwtPayload: JSON.stringify(auth.claims),
            protocol,
            compression,
          }),
        );
      },
      (e) => reject(401, e instanceof AuthError ? e.message : 'invalid token'),
    )
    .catch((e) => {
      host.log.log('error', `upgrade ${url.pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      socket.destroy();
    });
}

function statusText(status: number): string {
  return { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found' }[status] ?? 'Error';
}
