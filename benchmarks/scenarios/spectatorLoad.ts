/**
 * Worker thread of the spectator benchmark: viewers. It runs in its own V8
 * heap, so the main thread's heap holds the relay and not its clients.
 *
 * Per side an `open` adds `lean` connections that only count bytes (raw `ws`
 * spectators with permessage-deflate, or lean protocol clients with Gzip)
 * and `sample` full clients that time each transaction into their rows
 * (`createSpectator`'s `table$`, or the raw SDK's row callbacks). The
 * benchmark runs two of these workers, one with the lean viewers and one
 * with the sampled ones, so that a sampled viewer's timing does not include
 * a thousand other viewers' socket reads in its own thread; `close` ends a
 * side.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { parentPort } from 'node:worker_threads';
import WebSocket from 'ws';
import { connectRaw, subscribeRaw, WireClient } from '../setup.ts';
import { createSpectator, type Spectator } from '../../src/index.ts';
import type { DbConnection } from '../bench_bindings/index.ts';

export type LoadCommand =
  | { cmd: 'open'; side: 'relay' | 'direct'; lean: number; sample: number; relayUrl: string; stream: string; wsUrl: string; database: string }
  | { cmd: 'bytes' }
  | { cmd: 'applied' }
  | { cmd: 'close' };

const epoch = () => performance.timeOrigin + performance.now();

let leanSockets: Socket[] = [];
let pinger: ReturnType<typeof setInterval> | undefined;

/** A masked text frame (zero mask key) of a short message. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('lean frame too long');
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/**
 * A lean spectator: a raw TCP WebSocket client that offers permessage-deflate,
 * watches the stream and only counts bytes — it never inflates or parses, so
 * a thousand of them cost the worker next to nothing.
 */
function leanSpectator(url: string, stream: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.setNoDelay(true);
  return new Promise((resolve, reject) => {
    let handshake = '';
    let upgraded = false;
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
      );
    });
    socket.on('data', (chunk) => {
      if (upgraded) return;
      handshake += chunk.toString('latin1');
      const end = handshake.indexOf('\r\n\r\n');
      if (end === -1) return;
      if (!handshake.startsWith('HTTP/1.1 101')) return reject(new Error(handshake.split('\r\n')[0]));
      upgraded = true;
      socket.write(textFrame(JSON.stringify({ t: 'watch', stream })));
      if (handshake.length > end + 4) resolve(socket);
      else socket.once('data', () => resolve(socket));
    });
  });
}
let wire: WireClient[] = [];
let spectators: Spectator[] = [];
let sdk: DbConnection[] = [];
/** hp value of entity 1 → epoch ms at which each sampled client had it applied. */
let applied = new Map<number, number[]>();

function note(hp: number) {
  let list = applied.get(hp);
  if (!list) applied.set(hp, (list = []));
  list.push(epoch());
}

async function open(c: Extract<LoadCommand, { cmd: 'open' }>): Promise<void> {
  if (c.side === 'relay') {
    for (let i = 0; i < c.lean; i += 50) {
      leanSockets.push(...(await Promise.all(Array.from({ length: Math.min(50, c.lean - i) }, () => leanSpectator(c.relayUrl, c.stream)))));
    }
    // Any message keeps the relay's liveness check happy.
    const ping = textFrame('{"t":"ping"}');
    pinger ??= setInterval(() => {
      for (const s of leanSockets) s.write(ping);
    }, 10_000);
    const opened: Spectator[] = [];
    for (let i = 0; i < c.sample; i++) {
      const s = createSpectator({ url: c.relayUrl, stream: c.stream, WebSocket: WebSocket as any, heartbeat: false });
      spectators.push(s);
      opened.push(s);
      s.table$<any>('entity').subscribe((rows) => {
        const row = rows.get(1n);
        if (row) note(row.hp);
      });
    }
    await Promise.all(opened.map((s) => new Promise<void>((r) => s.status$.subscribe((st) => st.state === 'live' && r()))));
  } else {
    const server = { wsUrl: c.wsUrl, database: c.database } as any;
    for (let i = 0; i < c.lean; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, c.lean - i) }, async () => {
          const w = await WireClient.open(server, { compression: 'Gzip', decode: false });
          await w.subscribe('SELECT * FROM entity');
          return w;
        }),
      );
      wire.push(...batch);
    }
    for (let i = 0; i < c.sample; i++) {
      const conn = await connectRaw(server, 'gzip');
      sdk.push(conn);
      let last = -1;
      const seen = (row: any) => {
        if (row.id === 1n && row.hp !== last) {
          last = row.hp;
          note(row.hp);
        }
      };
      conn.db.entity.onUpdate((_ctx: any, _old: any, row: any) => seen(row));
      conn.db.entity.onInsert((_ctx: any, row: any) => seen(row));
      await subscribeRaw(conn, 'SELECT * FROM entity');
    }
  }
}

function bytes(): number {
  let n = 0;
  for (const s of leanSockets) n += s.bytesRead;
  for (const w of wire) n += (w.ws as any)._socket?.bytesRead ?? 0;
  return n;
}

async function close(): Promise<void> {
  clearInterval(pinger);
  pinger = undefined;
  applied = new Map();
  for (const s of leanSockets) s.destroy();
  for (const w of wire) w.ws.terminate();
  for (const s of spectators) await s.close();
  for (const c of sdk) c.disconnect();
  leanSockets = [];
  wire = [];
  spectators = [];
  sdk = [];
}

parentPort!.on('message', async (c: LoadCommand) => {
  try {
    switch (c.cmd) {
      case 'open':
        await open(c);
        return parentPort!.postMessage({ ok: true });
      case 'bytes':
        return parentPort!.postMessage({ ok: true, bytes: bytes(), connections: leanSockets.length + wire.length });
      case 'applied':
        return parentPort!.postMessage({ ok: true, applied: [...applied] });
      case 'close':
        await close();
        return parentPort!.postMessage({ ok: true });
    }
  } catch (e) {
    parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.stack ?? e.message : String(e) });
  }
});
