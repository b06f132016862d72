/**
 * Procedures: module functions that run outside a transaction and open their
 * own with `ctx.withTx`, each of which commits (and is broadcast) on its own,
 * as SpacetimeDB runs them. The module library drives the transactions
 * through `procedure_start_mut_tx` / `procedure_commit_mut_tx` /
 * `procedure_abort_mut_tx`; this file keeps the state one procedure call
 * needs for that.
 *
 * Outbound HTTP (`ctx.http.fetch`) is refused with the module library's
 * `HttpError`: the module's fetch is synchronous, and the dev server runs the
 * module on the same thread that serves every socket — including its own —
 * so a request could not be answered while the module waits for it.
 */
import type { ConnectionId, Identity } from 'spacetimedb';
import type { ChangeSet } from '../types.ts';
import { Errno, HostCallError, type Datastore } from './datastore.ts';

/** The module library's error code for `HttpError`. */
export const HTTP_ERROR_CODE = 21;
/** The module library's error code for `WouldBlockTransaction` (a second `withTx` inside one). */
const WOULD_BLOCK_TRANSACTION = 17;

/** The message a procedure's `ctx.http.fetch` fails with. */
export const HTTP_REFUSED_MESSAGE =
  'the stdb-rx dev server has no network: HTTP requests from procedures are refused (run against SpacetimeDB to use ctx.http)';

export interface ProcedureCall {
  readonly sender: Identity;
  readonly connectionId: ConnectionId | null;
  /** Microseconds since the Unix epoch: the procedure's `ctx.timestamp`. */
  readonly timestamp: bigint;
  readonly args: Uint8Array;
  /** The caller's JWT payload (JSON), for `ctx.senderAuth` inside `withTx`. */
  readonly jwtPayload?: string;
  /** The current time in microseconds since the Unix epoch (each `withTx`'s timestamp). */
  readonly now: () => bigint;
  /**
   * Called with the changes of each transaction the procedure commits, right
   * after the commit (make them durable and broadcast them here).
   */
  readonly onCommit: (changes: ChangeSet) => void;
}

export type ProcedureOutcome =
  | { readonly status: 'returned'; readonly value: Uint8Array; readonly durationMicros: number }
  | { readonly status: 'failed'; readonly message: string; readonly durationMicros: number };

/** The transaction state of one running procedure. */
export class ProcedureSession {
  #txOpen = false;

  constructor(
    readonly call: ProcedureCall,
    private readonly datastore: Datastore,
    private readonly closeIters: () => void,
  ) {}

  get txOpen(): boolean {
    return this.#txOpen;
  }

  /** `procedure_start_mut_tx`: open a transaction; returns its timestamp. */
  startTx(): bigint {
    if (this.#txOpen) throw new HostCallError(WOULD_BLOCK_TRANSACTION, 'a transaction is already open in this procedure');
    this.datastore.begin();
    this.#txOpen = true;
    return this.call.now();
  }

  /** `procedure_commit_mut_tx`: commit the open transaction and hand its changes on. */
  commitTx(): void {
    this.#requireTx();
    this.#txOpen = false;
    this.closeIters();
    const changes = this.datastore.commit();
    this.call.onCommit(changes);
  }

  /** `procedure_abort_mut_tx`: undo the open transaction. */
  abortTx(): void {
    this.#requireTx();
    this.#txOpen = false;
    this.closeIters();
    this.datastore.rollback();
  }

  /** After the procedure returned or threw: a transaction it left open is rolled back. */
  finish(): boolean {
    if (!this.#txOpen) return false;
    this.abortTx();
    return true;
  }

  #requireTx() {
    if (!this.#txOpen) throw new HostCallError(Errno.NotInTransaction, 'no transaction is open in this procedure');
  }
}

/** `procedure_http_request`: always refused (see the file comment). */
export function refuseHttpRequest(): never {
  throw new HostCallError(HTTP_ERROR_CODE, HTTP_REFUSED_MESSAGE);
}
