/**
 * The two transports spectators connect with: WebSocket (`ws`) and
 * Server-Sent Events (plain `node:http`). Each wraps its connection as a
 * {@link SpectatorSink}.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { constants, deflateRawSync } from 'node:zlib';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

/** `ws`'s frame builder (exported at run time, missing from its type definitions). */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender;
import type { SpectatorSink } from './spectator.ts';

/** Messages shorter than this are sent uncompressed. */
export const COMPRESS_THRESHOLD = 128;

/**
 * permessage-deflate, once per message for all spectators. The relay
 * negotiates `server_no_context_takeover`, so every message is compressed on
 * its own and the compressed frame is the same bytes for every spectator: the
 * relay deflates a patch once, not once per spectator (which is what the `ws`
 * library would do). The last frame built is kept for the broadcast loop.
 */
let lastText: string | undefined;
let lastFrame: Buffer[] | undefined;
function sharedDeflatedFrame(text: string): Buffer[] {
  if (text !== lastText) {
    const deflated = deflateRawSync(Buffer.from(text), { finishFlush: constants.Z_SYNC_FLUSH, windowBits: 15, level: 6 });
    // RFC 7692 §7.2.1: drop the empty stored block's 00 00 ff ff tail.
    const payload = deflated.subarray(0, deflated.length - 4);
    // One buffer, so each spectator costs one socket write.
    lastFrame = [Buffer.concat(Sender.frame(payload, { fin: true, rsv1: true, opcode: 1, mask: false, readOnly: false }))];
    lastText = text;
  }
  return lastFrame!;
}

interface WsInternals {
  _extensions?: Record<string, { params?: Record<string, unknown> }>;
  _sender?: { _state: number; sendFrame(list: Buffer[]): void };
}

/** Whether the precompressed frame fits this socket's negotiated deflate parameters. */
function canShareDeflate(ws: WebSocket): boolean {
  const internals = ws as unknown as WsInternals;
  const params = internals._extensions?.['permessage-deflate']?.params;
  if (!params || params.server_no_context_takeover !== true) return false;
  const bits = params.server_max_window_bits;
  return (bits === undefined || bits === true || bits === 15) && internals._sender?._state === 0;
}

export function webSocketSink(ws: WebSocket): SpectatorSink {
  let shared: boolean | undefined;
  return {
    transport: 'websocket',
    send: (text) => {
      if (ws.readyState !== ws.OPEN) return;
      shared ??= canShareDeflate(ws);
      if (shared && text.length >= COMPRESS_THRESHOLD) (ws as unknown as WsInternals)._sender!.sendFrame(sharedDeflatedFrame(text));
      else ws.send(text, { compress: false });
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
