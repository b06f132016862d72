/**
 * The fault switches and their controls — the conditions stdb-rx exists to
 * survive, on demand. Reached as `server.faults` in tests and, with
 * `--admin`, as `/_dev/…` endpoints (`../http/devEndpoints.ts`). Where they
 * take effect: `./injector.ts`.
 */

/** Longest delay a Node timer takes (about 24.8 days); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The switches the fault wrappers consult for every frame and reducer call. */
export class FaultState {
  /** While set, frames in both directions are dropped and new requests are held. */
  blackholeUntil = 0;
  latencyMs = 0;
  jitterMs = 0;
  failReducers = 0;
  failMessage = '';
  corruptNext = false;
  random: () => number = Math.random;

  blackholed(now = Date.now()): boolean {
    return now < this.blackholeUntil;
  }

  /** Delay for the next frame, or 0. */
  delay(): number {
    if (this.latencyMs <= 0 && this.jitterMs <= 0) return 0;
    return this.latencyMs + this.random() * this.jitterMs;
  }
}

/** What `faults` needs from the server. */
export interface FaultTarget {
  dropAll(): number;
  startBlackhole(ms: number): void;
  /** End a blackhole now, as if its time were up. */
  endBlackhole(): void;
  restart(): Promise<void>;
}

/**
 * The fault controls. Every method takes effect at once; `latency(0, 0)`
 * and `failNextReducers(0)` switch those faults off.
 */
export class DevServerFaults {
  constructor(
    private readonly state: FaultState,
    private readonly target: FaultTarget,
  ) {}

  /** Close every client socket abruptly, as a server crash looks to clients. Returns how many. */
  dropAll(): number {
    return this.target.dropAll();
  }

  /**
   * Keep sockets open but deliver nothing either way for `ms` (a half-open
   * connection: the client sees neither data nor a close). New HTTP requests
   * and upgrades are held unanswered. When the time is up, the sockets that
   * lived through it — their streams now have gaps — and the held requests
   * are closed, so clients reconnect and resynchronise.
   */
  blackhole(ms: number): void {
    if (!(ms >= 0) || ms > MAX_TIMER_MS) throw new RangeError(`blackhole needs a duration in ms (at most ${MAX_TIMER_MS}), got ${ms}`);
    this.target.startBlackhole(ms);
  }

  /** Delay every frame, both ways, by `ms` plus up to `jitterMs`, keeping each connection's order. */
  latency(ms: number, jitterMs = 0): void {
    if (!(ms >= 0) || !(jitterMs >= 0) || ms + jitterMs > MAX_TIMER_MS) {
      throw new RangeError(`latency needs non-negative ms and jitterMs adding up to at most ${MAX_TIMER_MS}`);
    }
    this.state.latencyMs = ms;
    this.state.jitterMs = jitterMs;
  }

  /** The next `n` reducer calls from clients fail with `message` as if the module threw a SenderError; nothing is applied. */
  failNextReducers(n: number, message = 'injected failure'): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`failNextReducers needs a count, got ${n}`);
    this.state.failReducers = n;
    this.state.failMessage = message;
  }

  /** How many of the failures {@link failNextReducers} asked for are still to come. */
  get reducerFailuresLeft(): number {
    return this.state.failReducers;
  }

  /** Replace the next frame sent to any client by bytes that do not decode. */
  corruptNextFrame(): void {
    this.state.corruptNext = true;
  }

  /** Stop and start again on the same port; with a data folder, everything committed survives. */
  restart(): Promise<void> {
    return this.target.restart();
  }

  /** Switch every lasting fault off; a blackhole ends as if its time were up (its sockets close, held requests are released). */
  clear(): void {
    if (this.state.blackholed()) this.target.endBlackhole();
    this.state.blackholeUntil = 0;
    this.state.latencyMs = 0;
    this.state.jitterMs = 0;
    this.state.failReducers = 0;
    this.state.corruptNext = false;
  }
}
