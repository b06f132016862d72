/**
 * Who drains the outbox: one tab at a time.
 *
 * - {@link WebLocksLease} uses `navigator.locks` where the browser has it:
 *   the lock is held for as long as the tab lives and the browser hands it to
 *   the next waiting tab when the holder closes.
 * - {@link StoreLease} is the fallback: a lease row with an expiry in the
 *   database, renewed on a timer. A frozen or closed holder stops renewing,
 *   its lease expires, and the next tab's attempt takes it over. A holder
 *   also checks the expiry itself before every claim (`held`), so a tab
 *   thawed after a long freeze does not send until it has renewed.
 *
 * Both are driven by injected time ({@link Clock}, {@link Timers}).
 */
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { systemClock, systemTimers, type Clock, type Timers } from './clock.ts';
import type { Store } from './store.ts';

export interface DrainLease {
  /** Whether this tab may drain now. */
  readonly held: boolean;
  /** `held`, as it changes. */
  readonly held$: Observable<boolean>;
  /** Start competing for the lease (and keep it once held). */
  start(): void;
  /** Stop and give the lease up. */
  stop(): Promise<void>;
}

export interface StoreLeaseOptions {
  store: Store;
  /** Lease name; one per outbox. @default 'outbox-drain' */
  name?: string;
  /** This tab's id. @default crypto.randomUUID() */
  owner?: string;
  clock?: Clock;
  timers?: Timers;
  /** How long a lease lasts without renewal. @default 10_000 */
  ttlMs?: number;
  /** How often the holder renews. @default ttlMs / 3 */
  renewEveryMs?: number;
  /** How often a tab without the lease tries to take it. @default ttlMs / 2 */
  retryEveryMs?: number;
}

/** The lease-row implementation (see the module comment). */
export class StoreLease implements DrainLease {
  readonly owner: string;
  private readonly store: Store;
  private readonly name: string;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly ttlMs: number;
  private readonly renewEveryMs: number;
  private readonly retryEveryMs: number;
  private expiresAt = 0;
  private cancelTimer: (() => void) | undefined;
  private running = false;
  private readonly heldSubject = new BehaviorSubject(false);
  readonly held$: Observable<boolean> = this.heldSubject.pipe(distinctUntilChanged());

  constructor(options: StoreLeaseOptions) {
    const { store, name = 'outbox-drain', owner = crypto.randomUUID(), clock = systemClock, timers = systemTimers, ttlMs = 10_000 } = options;
    if (!(ttlMs > 0)) throw new TypeError('lease ttlMs must be positive');
    this.store = store;
    this.name = name;
    this.owner = owner;
    this.clock = clock;
    this.timers = timers;
    this.ttlMs = ttlMs;
    this.renewEveryMs = options.renewEveryMs ?? ttlMs / 3;
    this.retryEveryMs = options.retryEveryMs ?? ttlMs / 2;
  }

  get held(): boolean {
    const held = this.expiresAt > this.clock.now();
    if (!held && this.heldSubject.value) this.heldSubject.next(false);
    return held;
  }

  /** One attempt to take or renew the lease; true when this tab holds it afterwards. */
  async tryAcquire(): Promise<boolean> {
    const now = this.clock.now();
    let holder;
    try {
      holder = await this.store.leaseTake(this.name, this.owner, now, this.ttlMs);
    } catch {
      holder = undefined; // the store reports its own failures; count this attempt as lost
    }
    this.expiresAt = holder?.owner === this.owner ? holder.expiresAt : 0;
    const held = this.held;
    this.heldSubject.next(held);
    return held;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    if (!this.running) return;
    const held = await this.tryAcquire();
    if (!this.running) return;
    this.cancelTimer = this.timers.setTimeout(() => void this.loop(), held ? this.renewEveryMs : this.retryEveryMs);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.expiresAt = 0;
    this.heldSubject.next(false);
    try {
      await this.store.leaseRelease(this.name, this.owner);
    } catch {
      // reported by the store; an unreleased lease simply expires
    }
  }
}

/** The part of the Web Locks API the lease uses. */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The `navigator.locks` implementation (see the module comment). */
export class WebLocksLease implements DrainLease {
  private readonly heldSubject = new BehaviorSubject(false);
  readonly held$: Observable<boolean> = this.heldSubject.pipe(distinctUntilChanged());
  private abort: AbortController | undefined;
  private release: (() => void) | undefined;
  private done: Promise<unknown> | undefined;

  constructor(
    private readonly locks: LockManagerLike,
    private readonly name: string,
  ) {}

  get held(): boolean {
    return this.heldSubject.value;
  }

  start(): void {
    if (this.abort) return;
    const abort = (this.abort = new AbortController());
    this.done = this.locks
      .request(this.name, { signal: abort.signal }, async () => {
        this.heldSubject.next(true);
        await new Promise<void>(resolve => (this.release = resolve));
        this.heldSubject.next(false);
      })
      .catch(() => undefined); // AbortError when stopped while waiting
  }

  async stop(): Promise<void> {
    const abort = this.abort;
    this.abort = undefined;
    if (!abort) return;
    if (this.release) {
      this.release();
      this.release = undefined;
    } else abort.abort();
    await this.done;
    this.heldSubject.next(false);
  }
}

/** The browser's lock manager, when it has one. */
export function browserLocks(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks && typeof nav.locks.request === 'function' ? nav.locks : undefined;
}
