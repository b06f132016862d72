/**
 * `/_dev/…`: the fault controls over HTTP, for the demo page and scripts.
 * Served only with `admin`, to loopback callers, and every `POST` must carry
 * {@link ADMIN_HEADER}.
 */
import type { IncomingMessage } from 'node:http';
import type { DevServerFaults } from '../faults/controls.ts';
import type { HostLogger } from '../host/instance.ts';
import { isLoopback } from './request.ts';

/** Header every `POST /_dev/…` must carry. */
export const ADMIN_HEADER = 'x-stdb-rx-admin';

/** An answer: status and body (a string is sent as text, anything else as JSON). */
export type Send = (status: number, body?: unknown, headers?: Record<string, string>) => void;

/** What the endpoints need from the server. */
export interface DevEndpointsHost {
  /** The `admin` option: without it every `/_dev/` path is 404. */
  readonly admin: boolean;
  readonly faults: DevServerFaults;
  stats(): object;
  restart(): Promise<void>;
  readonly log: HostLogger;
}

/** Answer a request whose path starts with `/_dev/`. */
export function answerDevRequest(host: DevEndpointsHost, req: IncomingMessage, url: URL, send: Send): void {
  if (!host.admin) return send(404, 'not found');
  if (!isLoopback(req.socket.remoteAddress)) return send(403, 'the dev server admin endpoints answer loopback callers only');
  const num = (name: string, fallback?: number) => {
    const v = url.searchParams.get(name);
    if (v === null) {
      if (fallback === undefined) throw new RangeError(`missing query parameter ${name}`);
      return fallback;
    }
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new RangeError(`query parameter ${name} must be a non-negative number`);
    return n;
  };
  const op = url.pathname.slice('/_dev/'.length);
  if (op === 'stats' && req.method === 'GET') return send(200, host.stats());
  if (req.method !== 'POST') return send(405, 'use POST');
  // A custom header cannot be sent cross-origin without a CORS preflight,
  // which /_dev/ never grants: other web pages open in the same browser
  // cannot drive the faults with a simple form POST.
  if (req.headers[ADMIN_HEADER] !== '1') return send(403, `send the header ${ADMIN_HEADER}: 1 to use the dev controls`);
  host.log.log('info', `fault: ${op}${url.search ? ` ${decodeURIComponent(url.search.slice(1)).replace(/&/g, ' ')}` : ''}`);
  const { faults } = host;
  try {
    switch (op) {
      case 'drop-all':
        return send(200, { dropped: faults.dropAll() });
      case 'blackhole':
        faults.blackhole(num('ms'));
        return send(200, { ok: true });
      case 'latency':
        faults.latency(num('ms'), num('jitter', 0));
        return send(200, { ok: true });
      case 'fail-next-reducers':
        faults.failNextReducers(num('n', 1), url.searchParams.get('message') ?? undefined);
        return send(200, { ok: true });
      case 'corrupt-next-frame':
        faults.corruptNextFrame();
        return send(200, { ok: true });
      case 'clear':
        faults.clear();
        return send(200, { ok: true });
      case 'restart':
        // Answer first: the restart closes this very connection.
        send(202, { restarting: true });
        setTimeout(() => void host.restart().catch((e) => host.log.log('error', `restart failed: ${String(e)}`)), 10);
        return;
      default:
        return send(404, `no such dev operation: ${op}`);
    }
  } catch (e) {
    if (e instanceof RangeError) return send(400, e.message);
    throw e;
  }
}
