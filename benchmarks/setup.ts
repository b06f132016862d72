/**
 * What every scenario stands on: a dev server hosting the benchmark module on
 * 127.0.0.1, the raw SDK connected to it (the baseline), the stdb-rx client
 * (the subject), a lean protocol client for driving load, and a clock of
 * frame arrivals at the client sockets.
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { WebSocket as UndiciWebSocket } from 'undici';
import { BinaryWriter, setGlobalLogLevel } from 'spacetimedb';
import { startDevServer, type DevServer, type DevServerOptions } from '../devserver/index.ts';
import { decodeServerFrame, encodeClientFrame, V3_PROTOCOL, type WsProtocol } from '../devserver/protocol/framing.ts';
import type { ServerMessage } from '../devserver/protocol/messages.ts';
import { createSyncClient, type SyncClient, type SyncClientOptions } from '../src/index.ts';
import { Subscription } from 'rxjs';
import { DbConnection, tables, type Entity } from './bench_bindings/index.ts';
import { until } from './harness.ts';

setGlobalLogLevel('error');

export const BENCH_MODULE = fileURLToPath(new URL('./bench.module.ts', import.meta.url));

export function startBenchServer(options: Partial<DevServerOptions> = {}): Promise<DevServer> {
  return startDevServer({ module: BENCH_MODULE, port: 0, ...options });
}

// ---------------------------------------------------------------------------
// Frame clock: both the SDK and stdb-rx open their sockets with the global
// WebSocket (undici's on Node 20). This subclass notes when each frame
// arrives, before any client code sees it, so "client-side time" is measured
// from the same point for both.

export const frameClock = { lastAt: 0, frames: 0, trackHeap: false, lastHeap: 0, trackCpu: false, lastCpuUs: 0 };

/** CPU time this process has used (user + system, all threads), in microseconds. */
export function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

class TimedWebSocket extends UndiciWebSocket {
  // (typed loosely: undici's and the DOM's MessageEvent types disagree)
  override set onmessage(handler: any) {
    super.onmessage = handler
      ? (ev: any) => {
          frameClock.lastAt = performance.now();
          frameClock.frames++;
          // Only the scenario that reports garbage per transaction pays for this.
          if (frameClock.trackHeap) frameClock.lastHeap = process.memoryUsage().heapUsed;
          if (frameClock.trackCpu) frameClock.lastCpuUs = cpuUs();
          handler.call(this, ev);
        }
      : null;
  }
  override get onmessage(): any {
    return super.onmessage;
  }
}
(globalThis as { WebSocket?: unknown }).WebSocket = TimedWebSocket;

// ---------------------------------------------------------------------------
// The baseline: the unmodified SDK.

export type Compression = 'none' | 'gzip';

/** Connect the raw SDK; resolves on `onConnect`. */
export function connectRaw(server: DevServer, compression: Compression = 'none'): Promise<DbConnection> {
  return new Promise((resolve, reject) => {
    DbConnection.builder()
      .withUri(server.wsUrl)
      .withDatabaseName(server.database)
      .withCompression(compression)
      .onConnect((conn) => resolve(conn))
      .onConnectError((_ctx, err) => reject(err))
      .build();
  });
}

/** Subscribe the raw SDK to `sql`; resolves on `onApplied`. */
export function subscribeRaw(conn: DbConnection, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    conn
      .subscriptionBuilder()
      .onApplied(() => resolve())
      .onError((ctx: any) => reject(ctx?.event ?? new Error('subscription failed')))
      .subscribe(sql);
  });
}

// ---------------------------------------------------------------------------
// The subject: the stdb-rx sync client.

export type BenchClient = SyncClient<DbConnection>;

export function rxClient(server: DevServer, options: Partial<SyncClientOptions<DbConnection>> = {}): BenchClient {
  return createSyncClient<DbConnection>({
    builder: DbConnection.builder,
    uri: server.wsUrl,
    database: server.database,
    compression: 'none',
    retry: { initialInterval: 20, maxInterval: 200, jitter: 'full' },
    sdkLogLevel: 'error',
    events: null,
    ...options,
  });
}

/** Resolve when the client's status is `live`. */
export async function whenLive(client: BenchClient, ms = 30_000): Promise<void> {
  await until(() => client.status.state === 'live', ms, 'status live', 1);
}

/**
 * The stream scenario's stdb-rx consumer: `table$` (keeps the latest
 * snapshot) and `changes$` (reads every changed row) of the entity table.
 * `expect(n)` starts waiting for `n` changed rows and a snapshot; `done` is
 * set (time and process CPU in µs) the moment both have arrived.
 */
export class RxConsumer {
  latest: ReadonlyMap<unknown, Entity> | undefined;
  done: { at: number; cpuUs: number } | undefined;
  /** The rows' `hp`, summed, so reading them is not optimised away. */
  sink = 0;
  #rows = 0;
  #snapshots = 0;
  #target: number;
  readonly #subs = new Subscription();

  constructor(client: BenchClient, target: number) {
    this.#target = target;
    this.#subs.add(
      client.table$(tables.entity).subscribe((rows) => {
        this.latest = rows;
        this.#snapshots++;
        this.#check();
      }),
    );
    this.#subs.add(
      client.changes$(tables.entity).subscribe((batch) => {
        for (const c of batch) this.sink += (c.newRow ?? c.oldRow)!.hp;
        this.#rows += batch.length;
        this.#check();
      }),
    );
  }

  #check(): void {
    if (this.#snapshots >= 1 && this.#rows >= this.#target && this.done === undefined) this.done = { at: performance.now(), cpuUs: cpuUs() };
  }

  /** Wait for `n` more changed rows (and a snapshot) from now on. */
  expect(n: number): void {
    this.#rows = this.#snapshots = 0;
    this.#target = n;
    this.done = undefined;
  }

  close(): void {
    this.#subs.unsubscribe();
  }
}

// ---------------------------------------------------------------------------
// A lean protocol client (ws + the dev server's codecs) to drive load without
// the SDK's client-side costs, and without touching the frame clock.

export class WireClient {
  readonly #pending = new Map<number, (m: ServerMessage) => void>();
  #nextId = 1;
  framesIn = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Messages of each kind received. */
  readonly counts = new Map<string, number>();
  /** Called for every message when set (decoding is skipped when neither this nor a request is waiting). */
  onMessage: ((m: ServerMessage) => void) | undefined;
  #decode: boolean;

  private constructor(
    readonly ws: WebSocket,
    readonly protocol: WsProtocol,
    decode: boolean,
  ) {
    this.#decode = decode;
    ws.on('message', (data: Buffer) => {
      this.framesIn++;
      this.bytesIn += data.length;
      if (!this.#decode && this.#pending.size === 0 && !this.onMessage) return;
      for (const m of decodeServerFrame(new Uint8Array(data.buffer, data.byteOffset, data.length), protocol)) {
        this.counts.set(m.tag, (this.counts.get(m.tag) ?? 0) + 1);
        this.onMessage?.(m);
        const id = (m.value as { requestId?: number }).requestId;
        if (typeof id === 'number' && (m.tag === 'ReducerResult' || m.tag === 'SubscribeApplied' || m.tag === 'SubscriptionError')) {
          const resolve = this.#pending.get(id);
          this.#pending.delete(id);
          resolve?.(m);
        }
      }
    });
  }

  /** Open a socket; resolves once `InitialConnection` has arrived. */
  static open(server: DevServer, { compression = 'None', decode = true }: { compression?: string; decode?: boolean } = {}): Promise<WireClient> {
    const url = new URL(`${server.wsUrl}/v1/database/${server.database}/subscribe`);
    url.searchParams.set('compression', compression);
    const ws = new WebSocket(url, [V3_PROTOCOL]);
    return new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('open', () => {
        const client = new WireClient(ws, ws.protocol as WsProtocol, decode);
        client.onMessage = (m) => {
          if (m.tag !== 'InitialConnection') return;
          client.onMessage = undefined;
          resolve(client);
        };
      });
    });
  }

  #send(frame: Uint8Array) {
    this.bytesOut += frame.length;
    this.ws.send(frame);
  }

  #request(id: number): Promise<ServerMessage> {
    return new Promise((resolve) => this.#pending.set(id, resolve));
  }

  /** Call a reducer with BSATN `args`; resolves with its `ReducerResult`. */
  call(reducer: string, args: Uint8Array): Promise<ServerMessage> {
    const requestId = this.#nextId++;
    const done = this.#request(requestId);
    this.#send(encodeClientFrame([{ tag: 'CallReducer', value: { requestId, flags: 0, reducer, args } }], this.protocol));
    return done;
  }

  /** Call and throw unless the reducer committed. */
  async callOk(reducer: string, args: Uint8Array): Promise<void> {
    const m = await this.call(reducer, args);
    if (m.tag !== 'ReducerResult' || (m.value.result.tag !== 'Ok' && m.value.result.tag !== 'OkEmpty')) throw new Error(`${reducer} failed: ${JSON.stringify(m.value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  }

  subscribe(sql: string): Promise<ServerMessage> {
    const requestId = this.#nextId++;
    const done = this.#request(requestId);
    this.#send(encodeClientFrame([{ tag: 'Subscribe', value: { requestId, querySetId: { id: requestId }, queryStrings: [sql] } }], this.protocol));
    return done;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}

// ---------------------------------------------------------------------------
// Reducer arguments (BSATN products) of the benchmark module.

export const args = {
  range(from: bigint, count: number): Uint8Array {
    const w = new BinaryWriter(12);
    w.writeU64(from);
    w.writeU32(count);
    return w.getBuffer().slice();
  },
  move(id: bigint, x: number, y: number): Uint8Array {
    const w = new BinaryWriter(24);
    w.writeU64(id);
    w.writeF64(x);
    w.writeF64(y);
    return w.getBuffer().slice();
  },
};

/** Insert entities `1..n` (in chunks, so no transaction is huge). */
export async function seedEntities(driver: WireClient, n: number, from = 1n): Promise<void> {
  const chunk = 25_000;
  for (let done = 0; done < n; done += chunk) await driver.callOk('seed', args.range(from + BigInt(done), Math.min(chunk, n - done)));
}
