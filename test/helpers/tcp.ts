/**
 * A `ws` client whose TCP socket the test holds, to stop reading (`pause()`),
 * resume, or write raw bytes. The socket is the one `ws` connects through,
 * handed over by its public `createConnection` option instead of being read
 * from the client's private fields.
 */
import * as net from 'node:net';
import WebSocket, { type ClientOptions } from 'ws';

export interface TcpWebSocket {
  readonly ws: WebSocket;
  /** The TCP connection under `ws` (there once `ws` started connecting, i.e. at once). */
  readonly tcp: net.Socket;
}

export function tcpWebSocket(url: string, protocols?: string | string[], options: ClientOptions = {}): TcpWebSocket {
  let socket: net.Socket | undefined;
  const ws = new WebSocket(url, protocols, {
    ...options,
    // ws calls this with the request options only (never a port or path
    // alone), as its own default does.
    createConnection: ((opts: net.NetConnectOpts & { socketPath?: string }) =>
      (socket = net.connect({ ...opts, path: opts.socketPath } as net.NetConnectOpts))) as typeof net.createConnection,
  });
  return {
    ws,
    get tcp() {
      if (!socket) throw new Error('the WebSocket has not opened its TCP connection yet');
      return socket;
    },
  };
}
