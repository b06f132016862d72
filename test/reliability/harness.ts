/**
 * Shared pieces of the reliability tests: a watch on everything that would
 * mean the dev server broke (its `error` log lines, uncaught exceptions and
 * unhandled rejections in this process), raw HTTP over a TCP socket (for
 * requests `fetch` refuses to send), and a sentinel SDK client that must keep
 * working while other sockets misbehave.
 */
import net from 'node:net';
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import type { HostLogger, LogLevel } from '../../devserver/index.ts';
import { connect, startBasicServer, type Connected } from '../helpers/sdk.ts';
import { until } from '../helpers/until.ts';

export interface LogLine {
  level: LogLevel;
  message: string;
}

/** Collects the dev server's log lines and this process's uncaught errors while it is on. */
export class Watch {
  readonly lines: LogLine[] = [];
  readonly uncaught: unknown[] = [];
  readonly logger: HostLogger = { log: (level, message) => this.lines.push({ level, message }) };
  readonly #onUncaught = (e: unknown) => this.uncaught.push(e);

  start(): this {
    process.on('uncaughtException', this.#onUncaught);
    process.on('unhandledRejection', this.#onUncaught);
    return this;
  }

  stop() {
    process.off('uncaughtException', this.#onUncaught);
    process.off('unhandledRejection', this.#onUncaught);
  }

  errors(): string[] {
    return this.lines.filter((l) => l.level === 'error').map((l) => l.message);
  }

  /** The server logged no error and nothing escaped as an uncaught exception or rejection. */
  expectClean(context = '') {
    expect(this.uncaught.map(String), `uncaught errors ${context}`).to.deep.equal([]);
    expect(this.errors(), `error log lines ${context}`).to.deep.equal([]);
  }
}

export interface RawResponse {
  /** HTTP status, or undefined when the server closed without answering. */
  status: number | undefined;
  text: string;
}

/** Send `request` as is on a fresh TCP connection to 127.0.0.1 and read until the server closes (or `ms`). */
export function rawHttp(port: number, request: string | Buffer, ms = 3000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : undefined, text });
    });
  });
}

/** A WebSocket upgrade request for `target`, offering v3/v2 (plus `extra` header lines). */
export function upgradeRequest(target: string, extra: string[] = []): string {
  return [
    `GET ${target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Protocol: v3.bsatn.spacetimedb, v2.bsatn.spacetimedb',
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/**
 * An SDK client subscribed to `person` for the whole test. `check()` proves it
 * still works: its own reducer call resolves with its row applied, and a row
 * another client inserts reaches its cache as a subscription update.
 */
export class Sentinel {
  #round = 0;
  private constructor(
    readonly server: DevServer,
    readonly client: Connected,
    readonly disconnects: (Error | undefined)[],
  ) {}

  static async start(server: DevServer): Promise<Sentinel> {
    const disconnects: (Error | undefined)[] = [];
    const client = await connect(server, { onDisconnect: (e) => disconnects.push(e) });
    await new Promise<void>((resolve, reject) => {
      client.conn
        .subscriptionBuilder()
        .onApplied(() => resolve())
        .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('sentinel subscription failed')))
        .subscribe(['SELECT * FROM person']);
    });
    return new Sentinel(server, client, disconnects);
  }

  names(): string[] {
    return [...this.client.conn.db.person.iter()].map((p) => p.name);
  }

  async check(): Promise<void> {
    const round = ++this.#round;
    expect(this.disconnects, 'the sentinel was disconnected').to.deep.equal([]);
    const own = `sentinel-${round}`;
    await this.client.conn.reducers.addPerson({ name: own, age: round });
    expect(this.names(), 'the sentinel sees its own row when its call resolves').to.include(own);
    const other = await connect(this.server);
    try {
      const theirs = `other-${round}`;
      await other.conn.reducers.addPerson({ name: theirs, age: round });
      await until(() => this.names().includes(theirs), 'an update for the sentinel', 5000);
    } finally {
      other.conn.disconnect();
    }
  }

  stop() {
    this.client.conn.disconnect();
  }
}

export { startBasicServer, connect };
