/**
 * Upstream: calls from the game to the server. Checks and prepares each call
 * (the reducer catalogue, or the storage's outbox when there is one), sends
 * it through the call queue while a connection is live (and this tab holds
 * the drain lease), confirms calls from the transactions that carry them,
 * and turns every outcome into metrics, errors and optimistic settlements.
 *
 * @module
 */
import type { Observable, Subscription } from 'rxjs';
import { Calls, type CallHandle, type CallOptions, type PreparedCall } from '../../streams/calls.ts';
import { ConnectionLostError, OutcomeUnknownError } from '../../streams/errors.ts';
import type { Transaction } from '../../streams/liveQueries.ts';
import type { MetricsRecorder } from '../../streams/metrics.ts';
import { priorityOf, type ReducerCatalogue } from '../../streams/reducers.ts';
import type { Storage } from '../../storage/openStorage.ts';
import type { AnyConnection } from './options.ts';
import type { OptimisticState } from './optimistic.ts';
import type { Reporter } from './report.ts';

export interface UpstreamOptions {
  /** Reducer names, argument types and policies from the bindings (undefined: nothing is checked). */
  readonly catalogue: ReducerCatalogue | undefined;
  /** Transactions from the server: a reducer event with this client's arguments confirms the call. */
  readonly transaction$: Observable<Transaction>;
  /** Durable calls wait for this before being kept in memory (storage is being opened). */
  readonly durableReady: Promise<void> | undefined;
  readonly metrics: MetricsRecorder;
  readonly reporter: Reporter;
  readonly optimistic: OptimisticState;
  readonly log: (message: () => string) => void;
}

const newMutationId = () => crypto.randomUUID();

export class Upstream {
  readonly calls: Calls;
  /** Whether the connection is live (`online-only` reducers refuse calls otherwise). */
  online = false;
  #storage: Storage | undefined;
  /** While a connection is live: the mutation ids of this identity's receipts in the SDK cache. */
  #receiptIds: (() => string[]) | undefined;
  #closed = false;
  readonly #subs: Subscription[] = [];

  constructor(private readonly options: UpstreamOptions) {
    const { metrics, reporter, log } = options;
    this.calls = new Calls({ prepare: (r, a, o) => this.#prepare(r, a, o), log, onError: (e) => reporter.report(e) });
    if (options.durableReady) this.calls.expectDurable(options.durableReady);
    this.#subs.push(
      options.transaction$.subscribe(({ event }) => {
        if (event?.tag === 'Reducer' && event.value?.reducer?.args) this.calls.confirmByArgs(event.value.reducer.args);
      }),
      this.calls.events$.subscribe((ev) => {
        options.optimistic.settle(ev);
        if (ev.status === 'confirmed') {
          // Latency only from answers this client saw: a receipt or another tab's record says nothing of it.
          metrics.callConfirmed(ev.via === 'answer' ? ev.latencyMs : undefined);
          log(() => `call ${ev.reducer} confirmed ${ev.latencyMs === undefined ? `(${ev.via})` : `in ${ev.latencyMs.toFixed(1)} ms`}`);
        } else if (ev.status === 'rejected' && ((ev.error instanceof ConnectionLostError && ev.error.info.reducer !== undefined) || ev.error instanceof OutcomeUnknownError)) {
          // Sent, then the connection died (or a durable call's outcome was never recorded): unknown, not a rejection.
          metrics.callLost();
          log(() => `call ${ev.reducer} lost: its outcome is unknown`);
          reporter.report(ev.error);
        } else if (ev.status === 'rejected') {
          metrics.callRejected();
          log(() => `call ${ev.reducer} rejected: ${ev.error.message}`);
          reporter.report(ev.error);
        }
      }),
    );
  }

  /** The module's name of a reducer (`send_chat`), from either name. */
  canonical(reducer: string): string {
    return this.options.catalogue?.canonical(reducer) ?? reducer;
  }

  /** The bindings' accessor of a reducer (`sendChat`), from either name. */
  accessor(reducer: string): string {
    return this.options.catalogue?.accessor(reducer) ?? reducer;
  }

  /** Make a call (either name of the reducer works). */
  call(reducer: string, args: unknown, opts?: CallOptions): CallHandle {
    return this.calls.call(this.accessor(this.canonical(reducer)), args, opts);
  }

  #prepare(reducer: string, args: unknown, opts: CallOptions): PreparedCall {
    // With storage, its catalogue: its policies and mutation-id parameter apply (the app may have opened it).
    const catalogue = this.#storage?.outbox.catalogue ?? this.options.catalogue;
    if (!catalogue) return { args, priority: opts.priority ?? 0, deadline: opts.deadline ?? null, receipts: false };
    // An id only for a reducer that takes one (generating one per call cost more than the rest of the check).
    const c = catalogue.check(reducer, (args ?? {}) as Record<string, unknown>, this.online, newMutationId, undefined, false);
    const { policy } = c;
    const deadline = opts.deadline ?? (policy.offline === 'drop-if-stale' ? Date.now() + policy.staleAfterMs : null);
    return { args: c.takesId ? c.args : args, priority: priorityOf(opts.priority ?? policy.priority), deadline, receipts: policy.receipts, mutationId: c.takesId ? c.id : undefined };
  }

  /** Durable calls go to the storage's outbox from now on. */
  useDurable(storage: Storage): void {
    this.#storage = storage;
    this.calls.useDurable(storage.callQueue({ canonical: (r) => this.canonical(r), accessor: (r) => this.accessor(r) }));
  }

  /** A connection is live: calls go to it; `receiptIds` reads which calls took effect. */
  live(conn: AnyConnection, receiptIds: () => string[]): void {
    this.calls.setSender((reducer, args) => {
      const fn = (conn.reducers as Record<string, (a: unknown) => Promise<void>>)[reducer];
      if (typeof fn !== 'function') return Promise.reject(new Error(`no such reducer in the bindings: ${reducer}`));
      return fn(args);
    });
    this.#receiptIds = receiptIds;
  }

  /** The connection is gone: calls in flight are lost (transient) or wait for the next drain (durable). */
  ended(reason: ConnectionLostError['info']['reason'], cause?: unknown): void {
    this.#receiptIds = undefined;
    this.calls.connectionLost(reason, cause);
  }

  /** Drain when live and holding the lease (or there is none). */
  drain(): void {
    if (!this.#receiptIds || this.#closed) return;
    const lease = this.#storage?.lease;
    if (lease && !lease.held) return;
    void this.calls.startDrain(this.#receiptIds());
  }

  /** Sign-out: stop sending and reject what waits in memory. */
  stop(): void {
    this.calls.stopDrain();
    this.calls.rejectQueuedTransient(() => new ConnectionLostError('Signed out before the call was sent.', { reason: 'reconnect' }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.calls.close();
    for (const s of this.#subs) s.unsubscribe();
  }
}
