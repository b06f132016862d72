/**
 * Streams whose subscribers' exceptions are reported instead of escaping.
 *
 * RxJS reports an exception thrown by a subscriber's handler as an unhandled
 * error (a `setTimeout` rethrow: an uncaught exception in Node). The client's
 * streams are {@link GuardedObservable}s instead: every handler subscribed to
 * them, or to a stream piped from them, runs inside a `try`, and what it
 * throws goes to `report` (the client turns it into a `CallbackError` on
 * `errors$`). The subscription stays open, as RxJS keeps it.
 *
 * @module
 */
import { Observable, type Observer, type Operator, type Subscriber, type Subscription, type TeardownLogic } from 'rxjs';

/** Receives what a subscriber's handler threw and the name of the stream. */
export type ThrowReporter = (error: unknown, stream: string) => void;

/** An Observable whose subscribers (and those of streams piped from it) cannot throw into RxJS. */
export class GuardedObservable<T> extends Observable<T> {
  constructor(
    private readonly report: ThrowReporter,
    private readonly stream: string,
    subscribe?: (this: Observable<T>, subscriber: Subscriber<T>) => TeardownLogic,
  ) {
    super(subscribe);
  }

  /** Wrap an existing Observable. */
  static from<T>(source: Observable<T>, report: ThrowReporter, stream: string): GuardedObservable<T> {
    return new GuardedObservable<T>(report, stream, (subscriber) => source.subscribe(subscriber));
  }

  /** @internal pipe() builds each step with `lift`: the guard carries over. */
  override lift<R>(operator?: Operator<T, R>): Observable<R> {
    const next = new GuardedObservable<R>(this.report, this.stream);
    // `source` and `operator` are how RxJS chains lifted observables.
    (next as unknown as { source: Observable<T> }).source = this;
    (next as unknown as { operator: Operator<T, R> | undefined }).operator = operator;
    return next;
  }

  override subscribe(observerOrNext?: Partial<Observer<T>> | ((value: T) => void) | null, ...rest: unknown[]): Subscription {
    const guard =
      <A extends unknown[]>(fn: ((...args: A) => void) | undefined, self: unknown) =>
      (...args: A) => {
        if (!fn) return;
        try {
          fn.apply(self, args);
        } catch (e) {
          this.report(e, this.stream);
        }
      };
    // A Subscriber (an operator's inner subscriber) handles its own errors; guard only application handlers.
    if (observerOrNext && typeof observerOrNext === 'object' && 'closed' in observerOrNext && typeof (observerOrNext as { unsubscribe?: unknown }).unsubscribe === 'function') {
      return super.subscribe(observerOrNext);
    }
    if (typeof observerOrNext === 'function' || rest.length > 0) {
      const [error, complete] = rest as [((e: unknown) => void) | undefined, (() => void) | undefined];
      const next = typeof observerOrNext === 'function' ? observerOrNext : undefined;
      return super.subscribe({ next: guard(next, undefined), error: error ? guard(error, undefined) : undefined, complete: guard(complete, undefined) });
    }
    if (!observerOrNext) return super.subscribe();
    const o = observerOrNext;
    return super.subscribe({
      next: o.next ? guard(o.next, o) : undefined,
      error: o.error ? guard(o.error, o) : undefined,
      complete: o.complete ? guard(o.complete, o) : undefined,
    });
  }
}
