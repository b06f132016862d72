/**
 * One job at a time, and once more for whatever was asked meanwhile.
 *
 * A {@link Serial} runs an async job when asked. Asked again while the job
 * runs, it runs the job once more after it finishes — however many requests
 * arrived in between (their arguments folded into one). A failing run is
 * reported to `onError` and never ends the runner. After {@link Serial.close}
 * nothing new starts.
 *
 * The call queue uses it for the outbox refill, the reconcile after an
 * outbox change, the batched confirmations and the drain start.
 *
 * @module
 */

/** The run in progress, as its job sees it. */
export interface SerialRun {
  /** Set by {@link Serial.cancel}: the job should stop at its next step and change nothing more. */
  readonly cancelled: boolean;
}

export interface SerialOptions<A> {
  /** Where a failed run's error goes (the runner goes on). */
  onError: (error: Error) => void;
  /**
   * Fold the argument of a request made while a run is pending into the
   * pending one's. @default the latest request's argument wins
   */
  merge?: (pending: A, next: A) => A;
}

export class Serial<A = void> {
  readonly #job: (arg: A, run: SerialRun) => Promise<void> | void;
  readonly #onError: (error: Error) => void;
  readonly #merge: (pending: A, next: A) => A;
  /** The loop under way (this run and the ones asked for during it), if any. */
  #current: Promise<void> | undefined;
  #run: { cancelled: boolean } | undefined;
  /** A request made while running: its argument. */
  #next: { arg: A } | undefined;
  #closed = false;

  constructor(job: (arg: A, run: SerialRun) => Promise<void> | void, options: SerialOptions<A>) {
    this.#job = job;
    this.#onError = options.onError;
    this.#merge = options.merge ?? ((_, next) => next);
  }

  /**
   * Ask for a run with `arg`. When idle the job starts now (synchronously,
   * up to its first `await`; a job returning no promise runs to its end);
   * while it runs, one more run follows it.
   * Resolves once a run that started after this request has finished —
   * never rejects (failures go to `onError`). After {@link close}: resolves
   * at once, running nothing.
   */
  request(arg: A): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#current) {
      this.#next = this.#next ? { arg: this.#merge(this.#next.arg, arg) } : { arg };
      return this.#current;
    }
    // Set before the job starts: a request made from inside its first synchronous step waits for it too.
    let done!: () => void;
    this.#current = new Promise<void>((resolve) => (done = resolve));
    const current = this.#current;
    void this.#loop(arg, done);
    return current;
  }

  async #loop(arg: A, done: () => void): Promise<void> {
    for (;;) {
      const run = (this.#run = { cancelled: false });
      try {
        // A job that did its work synchronously (returned no promise) ends its run in the same step.
        const result = this.#job(arg, run);
        if (result) await result;
      } catch (e) {
        this.#report(e);
      }
      const next = this.#next;
      this.#next = undefined;
      // Cleared in the same step as the last check: a request that comes after it starts a new loop.
      if (!next || this.#closed) {
        this.#current = undefined;
        this.#run = undefined;
        return done();
      }
      arg = next.arg;
    }
  }

  #report(e: unknown): void {
    try {
      this.#onError(e instanceof Error ? e : new Error(String(e)));
    } catch (thrown) {
      // A throwing error handler must not stop the runner; its error surfaces as an uncaught one.
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  /** Drop the run asked for meanwhile, and mark the one under way cancelled (see {@link SerialRun}). */
  cancel(): void {
    this.#next = undefined;
    if (this.#run) this.#run.cancelled = true;
  }

  /** Resolves when nothing runs and nothing is pending. */
  idle(): Promise<void> {
    return this.#current ?? Promise.resolve();
  }

  /** Start nothing more (a pending run is dropped); resolves when the run under way has finished. */
  close(): Promise<void> {
    this.#closed = true;
    this.#next = undefined;
    return this.idle();
  }
}
