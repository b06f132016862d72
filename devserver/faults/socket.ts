/**
 * The fault wrapper around one client socket: while a blackhole lasts,
 * frames and pings are dropped both ways; under latency, frames wait in
 * per-direction queues that keep their order (incoming ones bounded: over
 * the bound the socket stops reading); a corrupted frame replaces the next
 * one sent. The connection inside sees an ordinary {@link ClientSocket}.
 */
import type { ClientSocket, SocketEvents } from '../ws/socket.ts';
import type { FaultState } from './controls.ts';

export class FaultySocket implements ClientSocket {
  /** Set when the socket lived through a blackhole: it is closed when the blackhole ends. */
  blackholed = false;
  readonly #inner: ClientSocket;
  readonly #state: FaultState;
  readonly #counters: { framesDropped: number };
  readonly #maxHeldIn: number;
  readonly #live: Set<FaultySocket>;
  readonly #outDelay = new DelayQueue<Uint8Array>((frame) => this.#write(frame));
  readonly #inDelay = new DelayQueue<Incoming>((m) => this.#deliver(m));
  #events: SocketEvents | undefined;
  #closed = false;

  /**
   * @param maxHeldIn most bytes of incoming frames latency may hold before the socket stops reading
   * @param live the open sockets: this one is in it from {@link listen} until it closes
   */
  constructor(inner: ClientSocket, state: FaultState, counters: { framesDropped: number }, maxHeldIn: number, live: Set<FaultySocket>) {
    this.#inner = inner;
    this.#state = state;
    this.#counters = counters;
    this.#maxHeldIn = maxHeldIn;
    this.#live = live;
  }

  /** Bytes held back by latency, both ways. */
  get heldBytes(): number {
    return this.#inDelay.bytes + this.#outDelay.bytes;
  }

  /** Unsent bytes, including those latency holds back. */
  get bufferedAmount(): number {
    return this.#inner.bufferedAmount + this.#outDelay.bytes;
  }

  get isPaused(): boolean {
    return this.#inner.isPaused;
  }

  send(frame: Uint8Array): void {
    const delay = this.#state.delay();
    if (delay > 0 || this.#outDelay.size > 0) this.#outDelay.push(frame, delay);
    else this.#write(frame);
  }

  #write(frame: Uint8Array) {
    if (this.#closed) return;
    if (this.#state.blackholed()) {
      this.#counters.framesDropped++;
      return;
    }
    if (this.#state.corruptNext) {
      this.#state.corruptNext = false;
      // Uncompressed, then a message tag no server message has.
      frame = new Uint8Array([0, 0xee, 0xde, 0xad, 0xbe, 0xef]);
    }
    this.#inner.send(frame);
  }

  ping(): void {
    if (!this.#state.blackholed()) this.#inner.ping();
  }

  pong(data: Buffer): void {
    this.#inner.pong(data);
  }

  pause(): void {
    this.#inner.pause();
  }

  resume(): void {
    this.#inner.resume();
  }

  close(code: number, reason: string): void {
    this.#inner.close(code, reason);
  }

  terminate(): void {
    this.#inner.terminate();
  }

  listen(events: SocketEvents): void {
    this.#events = events;
    this.#live.add(this);
    this.#inner.listen({
      message: (data, isBinary) => {
        if (this.#state.blackholed()) {
          this.#counters.framesDropped++;
          return;
        }
        const delay = this.#state.delay();
        if (delay > 0 || this.#inDelay.size > 0) {
          this.#inDelay.push({ data, isBinary, length: data.length }, delay);
          // Back-pressure, as a slow link gives: stop reading while too much waits.
          if (this.#inDelay.bytes > this.#maxHeldIn && !this.#inner.isPaused) this.#inner.pause();
        } else {
          events.message(data, isBinary);
        }
      },
      ping: (data) => {
        if (!this.#state.blackholed()) events.ping(data);
      },
      pong: () => {
        if (!this.#state.blackholed()) events.pong();
      },
      close: () => {
        if (this.#closed) return;
        this.#closed = true;
        this.#outDelay.clear();
        this.#inDelay.clear();
        this.#live.delete(this);
        events.close();
      },
      error: (e) => events.error(e),
      oversized: () => events.oversized(),
    });
  }

  #deliver(m: Incoming) {
    if (this.#closed) return;
    this.#events?.message(m.data, m.isBinary);
    // Read again once what latency holds has drained to half the bound.
    if (this.#inner.isPaused && !this.#closed && this.#inDelay.bytes <= this.#maxHeldIn / 2) this.#inner.resume();
  }
}

/** An incoming frame held back by latency. */
interface Incoming {
  readonly data: Buffer;
  readonly isBinary: boolean;
  readonly length: number;
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
