/**
 * Fault injection for the dev server — the conditions stdb-rx exists to
 * survive, on demand. Reached as `server.faults` in tests and, with
 * `--admin`, as `/_dev/…` endpoints for the demo page. The `/_dev/…`
 * endpoints themselves are never subject to these faults: a blackhole holds
 * every other request, never the one that ends it.
 */

/** Longest delay a Node timer takes (about 24.8 days); longer ones would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The switches the server's transport consults for every frame. */
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

/**
 * Releases items in order, none before its due time: a connection's frames
 * under injected latency. One timer at a time.
 */
export class DelayQueue<T extends { length: number }> {
  readonly #items: { at: number; item: T }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastAt = 0;
  #bytes = 0;

  constructor(private readonly release: (item: T) => void) {}

  get size(): number {
    return this.#items.length;
  }

  /** Total length of the items held, so the owner can bound it. */
  get bytes(): number {
    return this.#bytes;
  }

  push(item: T, delayMs: number) {
    // Never earlier than the item before it: order is kept even with jitter.
    const at = Math.max(Date.now() + delayMs, this.#lastAt);
    this.#lastAt = at;
    this.#items.push({ at, item });
    this.#bytes += item.length;
    this.#arm();
  }

  #arm() {
    if (this.#timer || this.#items.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = Date.now();
      while (this.#items.length > 0 && this.#items[0].at <= now) {
        const { item } = this.#items.shift()!;
        this.#bytes -= item.length;
        this.release(item);
      }
      this.#arm();
    }, Math.max(0, this.#items[0].at - Date.now()));
  }

  /** Drop everything still queued. */
  clear() {
    this.#items.length = 0;
    this.#bytes = 0;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
