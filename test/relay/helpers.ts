/**
 * Fixtures of the relay tests: the arena module on a dev server, players as
 * sync clients, relays on port 0 and spectators over real WebSockets.
 */
import { WebSocket } from 'ws';
import type { DevServer } from '../../devserver/index.ts';
import { createRelay, type Relay, type RelayOptions } from '../../relay/index.ts';
import { createSpectator, type Spectator, type SpectatorOptions } from '../../src/index.ts';
import { DbConnection } from '../../demo/arena/bindings/index.ts';
import { streams as arenaStreams } from '../../demo/arena/streams.ts';
import { testClientOptions } from '../helpers/syncClient.ts';
import { tcpWebSocket } from '../helpers/tcp.ts';
import { arenaClient, serverRows, startArena, type ArenaClient } from '../client/arena.ts';

export { startArena, arenaClient, serverRows, type ArenaClient };

export function startRelay(server: DevServer, options: Partial<RelayOptions> = {}): Promise<Relay> {
  return createRelay({
    upstream: { builder: DbConnection.builder, ...testClientOptions(server), heartbeat: { interval: 500, timeout: 1000 } },
    streams: arenaStreams,
    onError: () => {},
    ...options,
  });
}

export function spectate(relay: Relay | string, stream: string, options: Partial<SpectatorOptions> = {}): Spectator {
  return createSpectator({
    url: typeof relay === 'string' ? relay : relay.wsUrl,
    stream,
    WebSocket: WebSocket as unknown as SpectatorOptions['WebSocket'],
    retry: { initialInterval: 20, maxInterval: 200, jitter: 'full' },
    heartbeat: { interval: 300, timeout: 600 },
    ...options,
  });
}

export { next } from '../helpers/syncClient.ts';

/** Creates a match hosted by `host` and returns its id. */
export async function createMatch(server: DevServer, host: ArenaClient, name = 'final'): Promise<bigint> {
  const before = new Set(serverRows(server, 'arena_match').map((r) => r.id as bigint));
  await host.call('createMatch', { name, maxPlayers: 8 });
  const created = serverRows(server, 'arena_match').find((r) => !before.has(r.id as bigint));
  if (!created) throw new Error('match not created');
  return created.id as bigint;
}

/** The server's rows of a match as the `match/:id` stream shows them, keyed and JSON-comparable. */
export function serverStream(server: DevServer, matchId: bigint) {
  const pick = (table: string, f: (r: any) => boolean) =>
    serverRows(server, table)
      .filter(f)
      .map((r) => r.id as bigint)
      .sort((a, b) => (a < b ? -1 : 1));
  return {
    match: pick('arena_match', (r) => r.id === matchId),
    members: pick('match_member', (r) => r.matchId === matchId),
    log: pick('battle_log', (r) => r.matchId === matchId),
    nodes: pick('game_node', () => true),
  };
}

export function keysOf(rows: ReadonlyMap<unknown, unknown>): bigint[] {
  return [...rows.keys()].map((k) => k as bigint).sort((a, b) => (a < b ? -1 : 1));
}

/** A raw spectator socket: sends what the test says, records every message and the close. */
export interface RawSpectator {
  readonly ws: WebSocket;
  /** Its TCP connection, to stop reading (`pause()`) and resume. */
  readonly tcp: import('node:net').Socket;
  readonly messages: any[];
  /** Resolves with the `n`-th message (1-based) matching `predicate`. */
  message(predicate?: (m: any) => boolean, ms?: number): Promise<any>;
  readonly closed: Promise<{ code: number; reason: string }>;
  send(value: unknown): void;
}

export async function rawSpectator(relay: Relay | string, watch?: Record<string, unknown>, options: { perMessageDeflate?: boolean } = {}): Promise<RawSpectator> {
  const { ws, tcp } = tcpWebSocket(typeof relay === 'string' ? relay : relay.wsUrl, undefined, { perMessageDeflate: options.perMessageDeflate ?? true });
  const messages: any[] = [];
  const waiters: { predicate: (m: any) => boolean; resolve: (m: any) => void; seen: number }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.predicate(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const send = (value: unknown) => ws.send(typeof value === 'string' ? value : JSON.stringify(value));
  if (watch) send({ t: 'watch', ...watch });
  return {
    ws,
    tcp,
    messages,
    closed,
    send,
    message(predicate = () => true, ms = 5000) {
      const found = messages.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = { predicate, resolve, seen: 0 };
        waiters.push(w);
        setTimeout(() => reject(new Error('timed out waiting for a relay message')), ms).unref();
      });
    },
  };
}

/**
 * A minimal TCP load balancer in front of several relays: new connections go
 * to the relay `route` names; `drop()` cuts the open ones (as a balancer
 * failing over does), so spectators reconnect — to wherever `route` points now.
 */
export interface Balancer {
  readonly url: string;
  route: number;
  targets: number[];
  drop(): void;
  /** Stops forwarding on the open connections without closing them (a silent network). */
  freeze(): void;
  close(): Promise<void>;
  /** Connections made to each target. */
  readonly counts: number[];
}

export async function startBalancer(targets: number[]): Promise<Balancer> {
  const { createServer, connect } = await import('node:net');
  const open = new Set<import('node:net').Socket>();
  const pairs = new Set<[import('node:net').Socket, import('node:net').Socket]>();
  const counts = targets.map(() => 0);
  const balancer: Balancer = {
    url: '',
    route: 0,
    targets,
    counts,
    drop() {
      for (const s of open) s.destroy();
      open.clear();
      pairs.clear();
    },
    freeze() {
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
      pairs.clear();
    },
    close: () => new Promise<void>((r) => (balancer.drop(), server.close(() => r()))),
  };
  const server = createServer((client) => {
    const i = balancer.route;
    counts[i]++;
    const upstream = connect(balancer.targets[i], '127.0.0.1');
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.add([client, upstream]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  (balancer as { url: string }).url = `ws://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  return balancer;
}
