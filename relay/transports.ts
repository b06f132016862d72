/**
 * The two transports spectators connect with: WebSocket (`ws`) and
 * Server-Sent Events (plain `node:http`). Each wraps its connection as a
 * {@link SpectatorSink}.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { SpectatorSink } from './spectator.ts';

export function webSocketSink(ws: WebSocket): SpectatorSink {
  return {
    transport: 'websocket',
    send: (text) => {
      if (ws.readyState === ws.OPEN) ws.send(text);
    },
    buffered: () => ws.bufferedAmount,
    close: (code, reason) => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      // A spectator that does not read will not answer the close frame either: let go of its buffer soon.
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    },
  };
}

/** How long a closed spectator's socket may take to finish the close handshake before it is cut. */
export const CLOSE_GRACE_MS = 1000;

/** Event name of an SSE message: the message's `t`. */
function eventOf(text: string): string {
  // Every relay message starts with {"t":"<name>"
  const end = text.indexOf('"', 6);
  return text.slice(6, end);
}

export function sseSink(res: ServerResponse): SpectatorSink {
  return {
    transport: 'sse',
    send: (text, version) => {
      if (res.writableEnded) return;
      res.write(`${version ? `id: ${version}\n` : ''}event: ${eventOf(text)}\ndata: ${text}\n\n`);
    },
    buffered: () => res.writableLength,
    close: (code, reason) => {
      if (res.writableEnded) return;
      res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    },
  };
}
