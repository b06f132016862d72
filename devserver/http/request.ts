/** Reading an incoming HTTP request: its target, its bearer token, a path segment, its caller's address. */
import type { IncomingMessage } from 'node:http';

/**
 * The URL of a request, or undefined when its target does not parse (`//`,
 * `//host:99999/`, a broken absolute form): Node's HTTP parser lets those
 * through, and `new URL` throws on them.
 */
export function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/** The token of an `Authorization: Bearer …` header, if any. */
export function bearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m ? m[1].trim() : undefined;
}

/** A percent-decoded path segment, or undefined when its escapes are malformed (`%E0%A4%A`). */
export function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
