/**
 * The errors a call settles with: the server's refusal, expiry, supersede,
 * a connection lost in flight, and the outcome another tab recorded. (An
 * outcome nobody can know is the drain's `OutcomeUnknownError`.)
 *
 * @module
 */
import { SenderError } from 'spacetimedb';
import type { RecordedOutcome } from '../durableQueue.ts';
import { ConnectionLostError, ReducerRejectedError } from '../errors.ts';
import type { OutboxCall } from './handle.ts';

type Call = Pick<OutboxCall, 'reducer' | 'args'>;

/** The server answered the send with an error: `sender` for a `SenderError` the reducer threw, `internal` for anything else. */
export function answeredError({ reducer, args }: Call, err: unknown): ReducerRejectedError {
  return new ReducerRejectedError(
    `${reducer} rejected: ${err instanceof Error ? err.message : String(err)}`,
    { reducer, args, kind: err instanceof SenderError ? 'sender' : 'internal' },
    { cause: err },
  );
}

/** The server refused it, as the durable queue kept it (`message`: the server's reason). */
export function storedRejection({ reducer, args }: Call, message: string | undefined): ReducerRejectedError {
  return new ReducerRejectedError(`${reducer} rejected: ${message ?? 'rejected'}`, { reducer, args, kind: 'sender' });
}

/** A call that expired in the queue before it could be sent (drop-if-stale or its deadline). */
export function expiredError({ reducer, args }: Call): ReducerRejectedError {
  return new ReducerRejectedError(`${reducer} expired before it could be sent (its deadline passed while offline).`, { reducer, args, kind: 'expired' });
}

/** Replaced while queued by a newer call with the same key. */
export function supersededError({ reducer, args }: Call, key: string | undefined): ReducerRejectedError {
  return new ReducerRejectedError(`Superseded by a newer call with key '${key}'.`, { reducer, args, kind: 'superseded' });
}

/** A transient call was in flight when its connection died: nobody will send it again. */
export function lostInFlightError(reducer: string, reason: ConnectionLostError['info']['reason'], cause?: unknown): ConnectionLostError {
  return new ConnectionLostError(`The connection was lost while '${reducer}' was in flight; its outcome is unknown.`, { reason, reducer }, { cause });
}

/** The error of a call whose outcome another tab (or this one) recorded; undefined for `confirmed`. */
export function recordedError({ reducer, args }: Call, o: RecordedOutcome): ReducerRejectedError | undefined {
  switch (o.outcome) {
    case 'confirmed':
      return undefined;
    case 'expired':
      return expiredError({ reducer, args });
    case 'superseded':
      return new ReducerRejectedError(`Superseded by a newer call with the same supersede key${o.supersededBy ? ` (entry ${o.supersededBy})` : ''}.`, { reducer, args, kind: 'superseded' });
    case 'discarded':
      return new ReducerRejectedError(
        o.by === 'migration' ? `${reducer} was dropped by a migrator and never sent: ${o.message ?? 'no reason given'}` : `${reducer} was discarded from the outbox before the server applied it.`,
        { reducer, args, kind: 'discarded' },
      );
    default:
      return storedRejection({ reducer, args }, o.message);
  }
}
