/**
 * How the client's parts report what went wrong: every error reaches the
 * game once, on `errors$`, with its player-facing `userMessage`; an
 * exception thrown by the game's own code (a callback, a subscriber) becomes
 * a {@link CallbackError}, never a network error.
 *
 * @module
 */
import { Subject, type Observable } from 'rxjs';
import { CallbackError, withUserMessage, type PlayerFacingError } from '../../streams/errors.ts';
import { GuardedObservable } from '../../streams/guard.ts';
import type { Logger } from '../../streams/logger.ts';

export interface Reporter {
  /** Every reported error, presented (see {@link Reporter.present}). */
  readonly errors$: Observable<PlayerFacingError>;
  /** Put an error on `errors$`. */
  report(error: unknown): void;
  /** The error with its player-facing text (which depends on whether any connection got live yet). */
  present(error: unknown): PlayerFacingError;
  /** A connection got live: network failures from now on read as lost rather than unreachable. */
  wentLive(): void;
  /** The game's code threw: the `CallbackError` to report (logged here). */
  callbackFailed(callback: CallbackError['info']['callback'], error: unknown, stream?: string): CallbackError;
  /** `source` as a stream whose subscribers' exceptions are reported as `CallbackError`s. */
  guarded<T>(source: Observable<T>, stream: string): Observable<T>;
  complete(): void;
}

export function createReporter(log: Logger): Reporter {
  const errors = new Subject<PlayerFacingError>();
  let everLive = false;
  const present = (e: unknown) => withUserMessage(e, { connectedBefore: everLive });
  const report = (e: unknown) => errors.next(present(e));
  const callbackFailed: Reporter['callbackFailed'] = (callback, e, stream) => {
    const message = e instanceof Error ? e.message : String(e);
    const err = new CallbackError(`${stream ? `A subscriber of ${stream}` : callback} threw: ${message}`, stream ? { callback, stream } : { callback }, { cause: e });
    log.log('warn', err.message);
    return err;
  };
  return {
    errors$: errors.asObservable(),
    report,
    present,
    wentLive: () => (everLive = true),
    callbackFailed,
    guarded: (source, stream) =>
      GuardedObservable.from(source, (e, name) => {
        const err = callbackFailed('subscriber', e, name);
        // A throwing subscriber of errors$ is logged only: reporting it there again could loop.
        if (name !== 'errors$') report(err);
      }, stream),
    complete: () => errors.complete(),
  };
}
