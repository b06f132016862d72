import { Observable, type OperatorFunction } from 'rxjs';
import { ReconcileError } from './errors.ts';
import { DELETED, OverlayMap } from './overlayMap.ts';

/** Identifies one local mutation across its `pending`, `confirmed` and `rejected` events. */
export type MutationId = string | number;

/** What a prediction changes: row key → new row, or `null` to delete the row. */
export type RowChanges<K, R> = ReadonlyMap<K, R | null>;

/** A local mutation awaiting the server's verdict. */
export interface PendingMutation<K, R> {
  readonly type: 'pending';
  readonly id: MutationId;
  /**
   * Predicts the mutation's effect from the rows it would apply to (server
   * state with the earlier pending mutations already applied). Called again
   * on every rebase, so it must be pure and must not keep `rows`. An
   * exception rolls the mutation back.
   */
  readonly predict: (rows: ReadonlyMap<K, R>) => RowChanges<K, R>;
}

/** One event of the local mutation stream consumed by {@link reconcile}. */
export type MutationEvent<K, R> =
  | PendingMutation<K, R>
  | { readonly type: 'confirmed'; readonly id: MutationId }
  | { readonly type: 'rejected'; readonly id: MutationId; readonly reason: unknown };

/** What to do when the server changed a row a pending mutation also changes. */
export type ConflictPolicy = 'server-wins' | 'client-wins' | 'merge';

/** One field both sides changed differently, handed to {@link ReconcileConfig.resolve}. */
export interface FieldConflict<K, R> {
  readonly mutation: PendingMutation<K, R>;
  readonly key: K;
  readonly field: string;
  /** The field in the server row the mutation was first predicted against. */
  readonly base: unknown;
  /** The field as the mutation predicts it. */
  readonly local: unknown;
  /** The field in the current server row. */
  readonly server: unknown;
}

/** A side event of {@link reconcile}, delivered in {@link ReconciledView.events}. */
export type ReconcileEvent<K, R> =
  | {
      /** The server rejected the mutation, or its prediction threw; its effect is gone from the view. */
      readonly type: 'rollback';
      readonly mutation: PendingMutation<K, R>;
      readonly reason: unknown;
    }
  | {
      /** The server changed a row this pending mutation also changes. */
      readonly type: 'conflict';
      readonly mutation: PendingMutation<K, R>;
      readonly key: K;
      readonly policy: ConflictPolicy;
      /** Server row the mutation was first predicted against (`undefined`: absent). */
      readonly base: R | undefined;
      /** The mutation's prediction for the row (`undefined`: deleted). */
      readonly local: R | undefined;
      /** The current server row (`undefined`: absent). */
      readonly server: R | undefined;
      /** What the view shows for the row as far as this mutation is concerned. */
      readonly resolved: R | undefined;
      /** `'merge'` only: the fields both sides changed, settled by `resolve`. */
      readonly fields: readonly string[];
    };

/** What {@link reconcile} emits: the rows to render, and what happened. */
export interface ReconciledView<K, R> {
  /** Server state with the pending predictions replayed on top, in order. */
  readonly rows: ReadonlyMap<K, R>;
  /**
   * Keys carrying a pending change (deleted rows included, though absent from
   * `rows`) → ids of the mutations changing them, in order.
   */
  readonly pending: ReadonlyMap<K, readonly MutationId[]>;
  /** Ids of all pending mutations, in order. */
  readonly mutations: readonly MutationId[];
  /** Rollbacks and conflicts since the previous view, in order. Usually empty. */
  readonly events: readonly ReconcileEvent<K, R>[];
}

/** Configuration of {@link reconcile}. */
export interface ReconcileConfig<K, R> {
  /**
   * The table's conflict policy. `'server-wins'` drops the mutation's change
   * to that row; `'client-wins'` keeps applying it over the new server row;
   * `'merge'` merges field by field (base = server row the prediction was
   * first made against, local = the prediction, server = current row):
   * fields only one side changed are taken from it, fields both changed
   * differently go to `resolve`. When the row is absent on any side, `'merge'`
   * falls back to `'server-wins'` for it.
   * @default 'server-wins'
   */
  conflict?: ConflictPolicy;
  /**
   * `'merge'` only: settles one field both sides changed; returns its value.
   * @default ({ server }) => server
   */
  resolve?: (conflict: FieldConflict<K, R>) => unknown;
  /**
   * Whether two rows are equal. Decides whether the server changed a row, and
   * whether it already equals the prediction (then there is no conflict).
   * @default structural equality, where values with an `isEqual` method (e.g. `Identity`) are compared with it
   */
  equals?: (a: R, b: R) => boolean;
}

const POLICIES: readonly ConflictPolicy[] = ['server-wins', 'client-wins', 'merge'];

interface Entry<K, R> {
  readonly mutation: PendingMutation<K, R>;
  /** Server row for each key when this mutation first changed it. */
  readonly bases: Map<K, R | undefined>;
  /** Server row for each key when last checked, so a conflict is reported once per server change. */
  readonly seen: Map<K, R | undefined>;
}

/**
 * Renders optimistic updates: authoritative rows with pending local mutations rebased on top.
 *
 * ```
 * server:    s-------------t--------
 * mutations: ---p------c------------
 * reconcile(mutations$)
 * result:    v--w------x---y--------
 *
 * s = { p1: { x: 0 } }                 v = rows s, nothing pending
 * p = pending #1: p1.x + 1             w = rows { p1: { x: 1 } }, pending { p1: [1] }
 * c = confirmed #1                     x = rows s, nothing pending
 * t = { p1: { x: 1 } }                 y = rows t
 * ```
 *
 * Every server snapshot and every mutation event yields a view: the server
 * rows with the predictions of all still-pending mutations replayed in order
 * (each `predict` re-runs against the latest rows, as Replicache rebases).
 * `confirmed` drops a prediction — the server rows now carry its effect;
 * `rejected` drops it and reports a `rollback` event with the reason. When a
 * server change touches a row a pending mutation changes, the `conflict`
 * policy decides, and a `conflict` event reports it. Side events ride on the
 * next emitted view in `events`, so they stay in step with the rows they
 * explain. Nothing is emitted before the first server snapshot. Feed each
 * `confirmed` no later than the snapshot carrying its effect, or that snapshot
 * counts as a conflicting server change. Completes when both inputs complete;
 * an error of either passes through. State lives per subscription.
 *
 * ## Example
 * ```ts
 * import { BehaviorSubject, Subject } from 'rxjs';
 * import { reconcile, type MutationEvent } from 'stdb-rx';
 *
 * type Player = { x: number };
 * const server$ = new BehaviorSubject<ReadonlyMap<string, Player>>(new Map([['p1', { x: 0 }]]));
 * const mutations$ = new Subject<MutationEvent<string, Player>>();
 * server$.pipe(reconcile(mutations$)).subscribe(({ rows, pending, events }) =>
 *   console.log(rows.get('p1'), pending.has('p1'), events.map((e) => e.type)),
 * );
 * mutations$.next({ type: 'pending', id: 1, predict: (rows) => new Map([['p1', { x: rows.get('p1')!.x + 1 }]]) });
 * mutations$.next({ type: 'rejected', id: 1, reason: 'blocked by a wall' });
 * // Logs:
 * // { x: 0 } false []
 * // { x: 1 } true []
 * // { x: 0 } false [ 'rollback' ]
 * ```
 *
 * @param mutations$ The local mutations: `pending`, then `confirmed` or `rejected`, by id.
 * @param config The conflict policy and its helpers.
 * @returns A function from server snapshots to the views to render.
 * @throws {TypeError} At creation, when the configuration is invalid.
 */
export function reconcile<K, R extends object>(
  mutations$: Observable<MutationEvent<K, R>>,
  config: ReconcileConfig<K, R> = {},
): OperatorFunction<ReadonlyMap<K, R>, ReconciledView<K, R>> {
  const { conflict: policy = 'server-wins', resolve = ({ server }) => server, equals = valueEquals } = config;
  if (!POLICIES.includes(policy)) {
    throw new TypeError(`reconcile: conflict must be one of ${POLICIES.join(', ')}, got ${String(policy)}.`);
  }
  if (typeof resolve !== 'function' || typeof equals !== 'function') {
    throw new TypeError('reconcile: resolve and equals must be functions.');
  }
  const same = (a: R | undefined, b: R | undefined) =>
    a === b || (a !== undefined && b !== undefined && equals(a, b));

  return (server$) =>
    new Observable<ReconciledView<K, R>>((subscriber) => {
      let server: ReadonlyMap<K, R> | undefined;
      let entries: Entry<K, R>[] = [];
      let events: ReconcileEvent<K, R>[] = [];
      let done = 0;

      const emit = () => {
        if (server === undefined) return;
        const view = rebase(server);
        events = [];
        subscriber.next(view);
      };

      const rebase = (server: ReadonlyMap<K, R>): ReconciledView<K, R> => {
        if (entries.length === 0) return { rows: server, pending: new Map(), mutations: [], events };
        // The view is the server map with the predictions' rows laid over it:
        // no copy of the table, whatever its size.
        const overrides = new Map<K, R | typeof DELETED>();
        const rows = new OverlayMap(server, overrides);
        const pending = new Map<K, MutationId[]>();
        for (const entry of [...entries]) {
          const { mutation } = entry;
          let changes: RowChanges<K, R>;
          try {
            changes = mutation.predict(rows);
          } catch (reason) {
            entries = entries.filter((e) => e !== entry);
            events.push({ type: 'rollback', mutation, reason });
            continue;
          }
          for (const [key, change] of changes) {
            const local = change ?? undefined;
            const current = server.get(key);
            if (!entry.bases.has(key)) {
              entry.bases.set(key, current);
              entry.seen.set(key, current);
            }
            const base = entry.bases.get(key);
            let result = local;
            let applied = true;
            if (!same(current, base) && !same(current, local)) {
              let fields: string[] = [];
              if (policy === 'client-wins') {
                result = local;
              } else if (policy === 'merge' && base !== undefined && local !== undefined && current !== undefined) {
                [result, fields] = merge(mutation, key, base, local, current);
              } else {
                result = rows.get(key);
                applied = false;
              }
              if (!same(entry.seen.get(key), current)) {
                entry.seen.set(key, current);
                events.push({ type: 'conflict', mutation, key, policy, base, local, server: current, resolved: result, fields });
              }
            }
            if (!applied) continue;
            overrides.set(key, result === undefined ? DELETED : result);
            const ids = pending.get(key);
            if (ids) ids.push(mutation.id);
            else pending.set(key, [mutation.id]);
          }
        }
        return { rows, pending, mutations: entries.map((e) => e.mutation.id), events };
      };

      const merge = (mutation: PendingMutation<K, R>, key: K, base: R, local: R, current: R): [R, string[]] => {
        const b = base as Record<string, unknown>;
        const l = local as Record<string, unknown>;
        const s = current as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        const overlapping: string[] = [];
        for (const field of new Set([...Object.keys(s), ...Object.keys(l), ...Object.keys(b)])) {
          const has = (o: object) => Object.prototype.hasOwnProperty.call(o, field);
          const changed = (o: Record<string, unknown>) => has(o) !== has(b) || !valueEquals(o[field], b[field]);
          let from: Record<string, unknown> | undefined;
          if (!changed(l)) from = s;
          else if (!changed(s) || (has(l) === has(s) && valueEquals(l[field], s[field]))) from = l;
          if (from) {
            if (has(from)) out[field] = from[field];
            continue;
          }
          overlapping.push(field);
          out[field] = resolve({ mutation, key, field, base: b[field], local: l[field], server: s[field] });
        }
        return [out as R, overlapping];
      };

      const onMutation = (event: MutationEvent<K, R>) => {
        const index = entries.findIndex((e) => e.mutation.id === event.id);
        if (event.type === 'pending') {
          if (index !== -1) {
            subscriber.error(new ReconcileError(`Mutation ${String(event.id)} is already pending.`, { id: event.id, event }));
            return;
          }
          entries = [...entries, { mutation: event, bases: new Map(), seen: new Map() }];
        } else {
          if (index === -1) return; // unknown or already settled: nothing to change
          const [entry] = entries.splice(index, 1);
          entries = [...entries];
          if (event.type === 'rejected') events.push({ type: 'rollback', mutation: entry.mutation, reason: event.reason });
        }
        emit();
      };

      const complete = () => {
        if (++done === 2) subscriber.complete();
      };
      const serverSubscription = server$.subscribe({
        next: (snapshot) => {
          server = snapshot;
          emit();
        },
        error: (err) => subscriber.error(err),
        complete,
      });
      const mutationSubscription = mutations$.subscribe({
        next: onMutation,
        error: (err) => subscriber.error(err),
        complete,
      });
      return () => {
        serverSubscription.unsubscribe();
        mutationSubscription.unsubscribe();
      };
    });
}

/**
 * Structural equality for row values: `Object.is` for primitives, `isEqual`
 * when the value has one (SpacetimeDB `Identity`, `ConnectionId`), otherwise
 * same prototype and equal own enumerable properties (arrays and typed arrays
 * included), recursively.
 */
export function valueEquals(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const isEqual = (a as { isEqual?: unknown }).isEqual;
  if (typeof isEqual === 'function') return Boolean(isEqual.call(a, b));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!valueEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
