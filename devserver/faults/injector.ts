/**
 * Where faults meet the server — the one wrapping point: each client socket
 * gets a {@link FaultySocket}, client reducer calls go through
 * {@link FaultInjector.reducerCall}, HTTP requests and upgrades are held
 * while a blackhole lasts, and keep-alive pauses during one. The blackhole's
 * clock lives here too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HostLogger, ReducerCall, ReducerOutcome } from '../host/instance.ts';
import type { ReducerDesc } from '../host/moduleDef.ts';
import { requestUrl } from '../http/request.ts';
import type { ClientSocket } from '../ws/socket.ts';
import { DevServerFaults, FaultState } from './controls.ts';
import { FaultySocket } from './socket.ts';

/** What the injector needs from the server. */
export interface InjectorHost {
  readonly counters: { framesDropped: number };
  /** Most bytes of a connection's incoming frames latency may hold before its socket stops reading. */
  readonly maxHeldInBytes: number;
  readonly log: HostLogger;
  /** Close every client socket abruptly; how many. */
  dropAll(): number;
  restart(): Promise<void>;
}

type ReducerCallFn = (reducer: ReducerDesc, call: ReducerCall) => ReducerOutcome;

export class FaultInjector {
  /** The controls: `server.faults`. */
  readonly controls: DevServerFaults;
  readonly #state = new FaultState();
  readonly #host: InjectorHost;
  /** Open client sockets. */
  readonly #live = new Set<FaultySocket>();
  /** Requests and upgrades held by a blackhole. */
  readonly #held = new Set<Duplex>();
  #blackholeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: InjectorHost) {
    this.#host = host;
    this.controls = new DevServerFaults(this.#state, {
      dropAll: () => host.dropAll(),
      startBlackhole: (ms) => this.#startBlackhole(ms),
      endBlackhole: () => this.endBlackhole(),
      restart: () => host.restart(),
    });
  }

  /** A client socket with the faults applied to what it sends and receives. */
  socket(inner: ClientSocket): ClientSocket {
    return new FaultySocket(inner, this.#state, this.#host.counters, this.#host.maxHeldInBytes, this.#live);
  }

  /** A client reducer call that fails, applying nothing, while `failNextReducers` has calls left. */
  reducerCall(call: ReducerCallFn): ReducerCallFn {
    return (reducer, args) => {
      if (this.#state.failReducers <= 0) return call(reducer, args);
      this.#state.failReducers--;
      return { status: 'failed', kind: 'user', message: this.#state.failMessage, durationMicros: 0 };
    };
  }

  /**
   * An HTTP request listener whose requests are held unanswered while a
   * blackhole lasts — except `/_dev/…`: the fault endpoints are never subject
   * to the faults they control, so a blackhole can always be ended.
   */
  requests(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      if (!requestUrl(req.url)?.pathname.startsWith('/_dev/') && this.#hold(req.socket)) return;
      handler(req, res);
    };
  }

  /** An upgrade listener whose upgrades are held unanswered while a blackhole lasts. */
  upgrades(handler: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
    return (req, socket, head) => {
      if (!this.#hold(socket)) handler(req, socket, head);
    };
  }

  /** A timer tick that does nothing while a blackhole lasts (no pings go out, nobody is idle). */
  outsideBlackhole(tick: () => void): () => void {
    return () => {
      if (!this.#state.blackholed()) tick();
    };
  }

  /** Bytes held back by latency, both ways, all connections. */
  get delayedBytes(): number {
    let n = 0;
    for (const s of this.#live) n += s.heldBytes;
    return n;
  }

  /** End a blackhole now, as if its time were up: the sockets that lived through it and the held requests are closed. */
  endBlackhole(): void {
    if (this.#blackholeTimer) clearTimeout(this.#blackholeTimer);
    this.#blackholeTimer = undefined;
    this.#state.blackholeUntil = 0;
    for (const s of [...this.#live]) if (s.blackholed) s.terminate();
    for (const s of this.#held) s.destroy();
    this.#held.clear();
  }

  #startBlackhole(ms: number) {
    this.#state.blackholeUntil = Date.now() + ms;
    for (const s of this.#live) s.blackholed = true;
    if (this.#blackholeTimer) clearTimeout(this.#blackholeTimer);
    this.#blackholeTimer = setTimeout(() => this.endBlackhole(), ms);
    this.#host.log.log('info', `blackhole for ${ms} ms`);
  }

  /** Hold a request's socket while a blackhole lasts; true when held. */
  #hold(socket: Duplex): boolean {
    if (!this.#state.blackholed()) return false;
    this.#held.add(socket);
    socket.once('close', () => this.#held.delete(socket));
    return true;
  }
}
