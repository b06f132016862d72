/**
 * A bare protocol client for dev-server tests that the SDK cannot express
 * (v2-only sessions, malformed frames, unknown reducers): a `ws` socket plus
 * the dev server's own message codecs.
 */
import WebSocket from 'ws';
import { decodeServerFrame, encodeClientFrame, V2_PROTOCOL, V3_PROTOCOL, type WsProtocol } from '../../devserver/protocol/framing.ts';
import type { ClientMessage, ServerMessage } from '../../devserver/protocol/messages.ts';
import type { DevServer } from '../../devserver/index.ts';

export class RawClient {
  readonly messages: ServerMessage[] = [];
  readonly frames: Uint8Array[] = [];
  closeCode: number | undefined;
  closeReason = '';
  #waiters: (() => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly protocol: WsProtocol,
  ) {
    ws.on('message', (data: Buffer) => {
      const frame = new Uint8Array(data);
      this.frames.push(frame);
      this.messages.push(...decodeServerFrame(frame, protocol));
      this.#wake();
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.#wake();
    });
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  static open(
    server: DevServer,
    opts: { protocols?: string[]; compression?: string; token?: string; database?: string } = {},
  ): Promise<RawClient> {
    const url = new URL(`${server.wsUrl}/v1/database/${opts.database ?? server.database}/subscribe`);
    url.searchParams.set('compression', opts.compression ?? 'None');
    if (opts.token) url.searchParams.set('token', opts.token);
    const ws = new WebSocket(url, opts.protocols ?? [V3_PROTOCOL, V2_PROTOCOL]);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawClient(ws, ws.protocol as WsProtocol)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(...messages: ClientMessage[]) {
    this.ws.send(encodeClientFrame(messages, this.protocol));
  }

  sendRaw(bytes: Uint8Array) {
    this.ws.send(bytes);
  }

  /** Wait until a message matching `pred` has arrived (returns it). */
  async next<T extends ServerMessage['tag']>(tag: T, pred: (m: Extract<ServerMessage, { tag: T }>) => boolean = () => true, ms = 5000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find((m) => m.tag === tag && pred(m as Extract<ServerMessage, { tag: T }>));
      if (found) return found as Extract<ServerMessage, { tag: T }>;
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) before ${tag}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${tag}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async closed(ms = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + ms;
    while (this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error('timed out waiting for close');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return { code: this.closeCode, reason: this.closeReason };
  }

  close() {
    this.ws.close();
  }
}
