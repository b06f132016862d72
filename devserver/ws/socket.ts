/**
 * A client's WebSocket as a connection sees it: the few operations and
 * events it uses. {@link wsSocket} adapts a `ws` socket (counting what goes
 * over the wire); the fault wrapper (`../faults/socket.ts`) implements the
 * same interface around it.
 */
import type { WebSocket } from 'ws';

/** What happens on a socket. Each is called at most as `ws` would emit it. */
export interface SocketEvents {
  message(data: Buffer, isBinary: boolean): void;
  ping(data: Buffer): void;
  pong(): void;
  close(): void;
  error(e: Error): void;
  /** The socket library refused an incoming message over its size cap (it closes with 1009 next). */
  oversized(): void;
}

export interface ClientSocket {
  /** Bytes handed to {@link send} and not yet written out. */
  readonly bufferedAmount: number;
  /** Paused sockets read nothing more from the network. */
  readonly isPaused: boolean;
  send(frame: Uint8Array): void;
  ping(): void;
  pong(data: Buffer): void;
  pause(): void;
  resume(): void;
  /** Close with a close frame. */
  close(code: number, reason: string): void;
  /** Destroy at once, as a crash looks; `close` is reported synchronously. */
  terminate(): void;
  /** Start delivering events (once). */
  listen(events: SocketEvents): void;
}

/** Bytes really written to clients, for the server's stats. */
export interface WireCounters {
  framesOut: number;
  bytesOut: number;
}

/** A `ws` socket as a {@link ClientSocket}; frames sent are counted in `counters`. */
export function wsSocket(ws: WebSocket, counters: WireCounters): ClientSocket {
  let events: SocketEvents | undefined;
  let closed = false;
  const closeOnce = () => {
    if (closed) return;
    closed = true;
    events?.close();
  };
  return {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    get isPaused() {
      return ws.isPaused;
    },
    send(frame) {
      counters.framesOut++;
      counters.bytesOut += frame.length;
      ws.send(frame, { binary: true });
    },
    ping: () => ws.ping(),
    pong: (data) => ws.pong(data),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    close: (code, reason) => ws.close(code, reason),
    terminate() {
      ws.terminate();
      closeOnce();
    },
    listen(e) {
      events = e;
      // ws refuses a message over maxPayload itself, with 1009 and no reason,
      // without telling us first; its receiver's error comes just before.
      const receiver = (ws as unknown as { _receiver?: { prependListener(event: 'error', f: (e: { code?: string }) => void): void } })._receiver;
      receiver?.prependListener('error', (err) => {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' && !closed) e.oversized();
      });
      ws.on('message', (data: Buffer, isBinary) => e.message(data, isBinary));
      ws.on('ping', (data) => e.ping(data));
      ws.on('pong', () => e.pong());
      ws.on('close', closeOnce);
      ws.on('error', (err) => e.error(err));
    },
  };
}
