/**
 * Every plain HTTP request: the body cap, CORS on `/v1/`, then the route —
 * `/v1/ping`, `/v1/identity…`, the database API (`./databaseApi.ts`),
 * module routes (refused), `/_dev/…` (`./devEndpoints.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthError, type TokenAuthority } from '../auth.ts';
import type { HostLogger } from '../host/instance.ts';
import type { HttpRouteDesc } from '../host/moduleDef.ts';
import { handleDatabaseApi, type HttpApiHost } from './databaseApi.ts';
import { answerDevRequest, type DevEndpointsHost, type Send } from './devEndpoints.ts';
import { bearer, decodePathSegment, requestUrl } from './request.ts';

/** What the routes need from the server. */
export interface RoutesHost {
  readonly database: string;
  /** The database identity (hex), which module routes also accept as the name. */
  readonly databaseIdentity: string;
  /** Largest request body accepted; larger ones get 413. */
  readonly maxBodyBytes: number;
  readonly auth: TokenAuthority;
  /** The routes the hosted module declares (reported, not served). */
  readonly moduleHttpRoutes: readonly HttpRouteDesc[];
  readonly databaseApi: HttpApiHost;
  readonly dev: DevEndpointsHost;
  readonly log: HostLogger;
}

/** The `request` listener of the server's HTTP server. */
export function requestHandler(host: RoutesHost): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => onRequest(host, req, res);
}

function onRequest(host: RoutesHost, req: IncomingMessage, res: ServerResponse) {
  const url = requestUrl(req.url);
  // The public API answers pages of any origin, as SpacetimeDB does: a browser
  // app exchanges its token (POST with Authorization) before every connection.
  // The admin endpoints (`/_dev/`) stay same-origin.
  const cors = url?.pathname.startsWith('/v1/') ?? false;
  if (cors) {
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
      res.setHeader('access-control-allow-headers', String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'));
      res.setHeader('access-control-max-age', '600');
    }
  }
  const send: Send = (status, body, headers) => {
    if (res.headersSent) return;
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' || body === undefined ? 'text/plain' : 'application/json', ...headers });
    res.end(text);
  };
  const limit = host.maxBodyBytes;
  const chunks: Buffer[] = [];
  let received = 0;
  let refused = false;
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit && !refused) {
      refused = true;
      res.setHeader('connection', 'close');
      send(413, `request body over ${limit} bytes`);
      req.destroy();
    } else if (!refused) {
      chunks.push(chunk);
    }
  });
  req.on('error', () => {});
  req.on('end', () => {
    if (refused) return;
    if (!url) return send(400, 'malformed request target');
    try {
      route(host, req, url, send, Buffer.concat(chunks));
    } catch (e) {
      host.log.log('error', `HTTP ${req.method} ${url.pathname}: ${String(e)}`);
      send(500, 'internal error');
    }
  });
}

function route(host: RoutesHost, req: IncomingMessage, url: URL, send: Send, body: Buffer) {
  const path = url.pathname;
  const api = path.startsWith('/v1/database/') && req.method !== 'OPTIONS' ? handleDatabaseApi(host.databaseApi, req, url, body) : undefined;
  if (api) {
    void api.then(
      (reply) => send(reply.status, reply.body, { ...reply.headers, 'content-type': reply.contentType }),
      (e) => {
        host.log.log('error', `HTTP ${req.method} ${path}: ${String(e)}`);
        send(500, 'internal error');
      },
    );
    return;
  }
  if (path.startsWith('/_dev/')) return answerDevRequest(host.dev, req, url, send);
  if (req.method === 'OPTIONS' && path.startsWith('/v1/')) return send(204); // CORS preflight (headers set in onRequest)
  if (path === '/v1/ping' && req.method === 'GET') return send(200);
  const moduleRoute = /^\/v1\/database\/([^/]+)\/route(?:\/.*)?$/.exec(path);
  if (moduleRoute) return refuseModuleRoute(host, decodePathSegment(moduleRoute[1]), send);
  if (path === '/v1/identity' && req.method === 'POST') {
    void host.auth.mint().then(
      (minted) => send(200, { identity: minted.identity.toHexString(), token: minted.token }),
      (e) => send(500, `could not mint a token: ${String(e)}`),
    );
    return;
  }
  if (path === '/v1/identity/websocket-token' && req.method === 'POST') {
    const token = bearer(req);
    if (!token) return send(401, 'Authorization: Bearer <token> required');
    void host.auth.shortLived(token).then(
      (short) => send(200, { token: short }),
      (e) => send(401, e instanceof AuthError ? e.message : 'invalid token'),
    );
    return;
  }
  const m = /^\/v1\/database\/([^/]+)\/subscribe$/.exec(path);
  if (m) {
    if (decodePathSegment(m[1]) !== host.database) return send(404, `no such database: ${m[1]}`);
    return send(400, 'expected a WebSocket upgrade');
  }
  return send(404, 'not found');
}

/** `/v1/database/:name/route/…`: a module's own HTTP routes, which the dev server does not serve. */
function refuseModuleRoute(host: RoutesHost, name: string | undefined, send: Send) {
  if (name !== host.database && name !== host.databaseIdentity) return send(404, `no such database: ${name ?? '(malformed)'}`);
  const routes = host.moduleHttpRoutes;
  const declared = routes.length > 0 ? `the module declares ${routes.map((r) => `${r.method} ${r.path}`).join(', ')}` : 'the module declares none';
  return send(501, `module HTTP routes are not served by the stdb-rx dev server (${declared})`);
}
