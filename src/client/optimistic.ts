/**
 * Optimistic state: the pending predictions of calls, per table, replayed to
 * every new `optimistic$`/`table$` subscriber, and settled (confirmed or
 * rolled back) by the calls' outcomes.
 *
 * @module
 */
import { Observable, Subject, concat, defer, of } from 'rxjs';
import type { MutationEvent, PendingMutation } from '../../operators/index.ts';
import type { CallEvent, CallHandle } from '../../streams/calls.ts';
import type { RowKey } from '../../streams/tableView.ts';
import type { Reporter } from './report.ts';

/** A prediction as `reconcile` runs it. */
export type Predict = PendingMutation<RowKey, any>['predict'];

interface TableLog {
  pending: PendingMutation<RowKey, any>[];
  readonly events: Subject<MutationEvent<RowKey, any>>;
}

export class OptimisticState {
  readonly #logs = new Map<string, TableLog>();
  /** Call id → table (accessor name) of its prediction. */
  readonly #tableOf = new Map<string, string>();

  constructor(private readonly reporter: Reporter) {}

  #log(table: string): TableLog {
    let log = this.#logs.get(table);
    if (!log) this.#logs.set(table, (log = { pending: [], events: new Subject() }));
    return log;
  }

  /** The table's pending predictions, then every new one and every settlement (for `reconcile`). */
  mutations$(table: string): Observable<MutationEvent<RowKey, any>> {
    return defer(() => {
      const log = this.#log(table);
      return concat(of(...log.pending), log.events);
    });
  }

  /** Show `predict`'s effect on `table` until the call settles (nothing if it already has). */
  add(handle: CallHandle, table: string, predict: Predict): void {
    let settled = false;
    handle.subscribe({ complete: () => (settled = true) });
    if (settled) return;
    const mutation: PendingMutation<RowKey, any> = {
      type: 'pending',
      id: handle.id,
      // A throwing prediction is rolled back (reconcile) and reported as the app's error.
      predict: (rows) => {
        try {
          return predict(rows);
        } catch (e) {
          const err = this.reporter.callbackFailed('predict', e);
          this.reporter.report(err);
          throw err;
        }
      },
    };
    this.#tableOf.set(handle.id, table);
    const log = this.#log(table);
    log.pending.push(mutation);
    log.events.next(mutation);
  }

  /** A call's outcome: its prediction is confirmed or rolled back. */
  settle(ev: CallEvent): void {
    const table = this.#tableOf.get(ev.id);
    if (table === undefined || ev.status === 'pending') return;
    this.#tableOf.delete(ev.id);
    const log = this.#log(table);
    log.pending = log.pending.filter((m) => m.id !== ev.id);
    log.events.next(ev.status === 'confirmed' ? { type: 'confirmed', id: ev.id } : { type: 'rejected', id: ev.id, reason: ev.error });
  }

  close(): void {
    for (const log of this.#logs.values()) log.events.complete();
  }
}
