/**
 * The reducer catalogue: what the bindings say about each reducer, in one
 * place for everyone who makes a call. It names reducers (the bindings'
 * accessor `sendChat` or the module's `send_chat`), holds the per-reducer
 * policies, checks and BSATN-encodes a call's arguments, and knows the
 * mutation-id rule. The client uses it for calls without storage; the
 * durable outbox (`storage/outbox.ts`) uses it for every call it stores.
 *
 * The mutation-id rule: a reducer takes a mutation id when it has a `String`
 * parameter named `mutationIdParam`. A call that leaves it out (or passes
 * `''`) gets a generated id; such a reducer records receipts by default.
 */
import type { ProductType as ProductTypeT } from 'spacetimedb';
import type { StorageReducerDef } from './bindings.ts';
import { encodeArgs, productCodec, type ProductCodec } from './codec.ts';
import { OfflineRefusedError, UnknownReducerError } from './storageErrors.ts';

/** Named priority levels; any number works too (higher drains first). */
export const PRIORITY = { high: 2, normal: 1, low: 0 } as const;
export type Priority = number | keyof typeof PRIORITY;

/** What to do with a call made while offline. */
export type OfflinePolicy =
  /** Store it and send it after reconnect. */
  | 'queue'
  /** Refuse it at once with {@link OfflineRefusedError}. */
  | 'online-only'
  /** Store it, but expire it instead of sending it once it is older than `staleAfterMs`. */
  | 'drop-if-stale';

/** Per-reducer settings. */
export interface ReducerPolicy {
  /** @default 'queue' */
  offline?: OfflinePolicy;
  /** With `drop-if-stale`: how long after the call it may still be sent. @default 30_000 */
  staleAfterMs?: number;
  /**
   * Whether the reducer records a receipt per mutation id in the same
   * transaction as its effect (exactly-once). When false, a call whose
   * outcome was lost is sent again and may apply twice (at-least-once).
   * @default true when the reducer takes the mutation-id parameter, else false
   */
  receipts?: boolean;
  /** Default priority of the reducer's calls. @default 'normal' */
  priority?: Priority;
}

/** A priority level as a number; throws a `TypeError` for an unknown name or a non-finite number. */
export function priorityOf(p: Priority): number {
  if (typeof p === 'number') {
    if (!Number.isFinite(p)) throw new TypeError(`priority must be a finite number, got ${p}`);
    return p;
  }
  const n = PRIORITY[p];
  if (n === undefined) throw new TypeError(`unknown priority ${JSON.stringify(p)}`);
  return n;
}

export interface ReducerCatalogueOptions {
  /** Per-reducer policies, by the module's reducer name (`send_chat`) or the bindings' accessor (`sendChat`). */
  policies?: Record<string, ReducerPolicy>;
  /** Name of the parameter that carries the mutation id. @default 'mutationId' */
  mutationIdParam?: string;
}

/** A call checked by {@link ReducerCatalogue.check}. */
export interface CheckedCall {
  /** The module's reducer name. */
  reducer: string;
  /** The mutation id: `id`, else the one given in the arguments, else a generated one (`''` when none was asked for: see {@link ReducerCatalogue.check}). */
  id: string;
  /** Whether the reducer takes the mutation-id parameter. */
  takesId: boolean;
  /** The arguments with the mutation id filled in where the reducer takes one. */
  args: Record<string, unknown>;
  /** The arguments, BSATN-encoded. */
  bytes: Uint8Array;
  policy: Readonly<Required<ReducerPolicy>>;
}

export class ReducerCatalogue {
  readonly mutationIdParam: string;
  /** Module reducer name → its argument codec. */
  private readonly codecs: Map<string, ProductCodec>;
  /** Bindings' accessor name → the module's reducer name, and back. */
  private readonly toCanonical = new Map<string, string>();
  private readonly toAccessor = new Map<string, string>();
  private readonly policies: Record<string, ReducerPolicy> = {};
  /** Each reducer's policy with defaults filled in, resolved on first use (policies do not change). */
  private readonly resolved = new Map<string, Readonly<Required<ReducerPolicy>>>();
  /** Whether each reducer takes the mutation-id parameter, found on first use. */
  private readonly takes = new Map<string, boolean>();

  /**
   * @param reducers The bindings' reducers (their `paramsType` with types
   *   inlined, as generated bindings have them). Throws {@link UnknownReducerError}
   *   for a policy of a reducer the bindings lack. The SDK's serializer
   *   throws here for types it cannot encode (a `Ref` without typespace).
   */
  constructor(
    private readonly reducers: readonly StorageReducerDef[],
    options: ReducerCatalogueOptions = {},
    codecs?: Map<string, ProductCodec>,
  ) {
    this.mutationIdParam = options.mutationIdParam ?? 'mutationId';
    this.codecs = codecs ?? new Map(reducers.map(r => [r.name, productCodec(r.paramsType)]));
    for (const r of reducers) {
      if (r.accessorName !== undefined && r.accessorName !== r.name) {
        this.toCanonical.set(r.accessorName, r.name);
        this.toAccessor.set(r.name, r.accessorName);
      }
    }
    const given = options.policies ?? {};
    for (const [name, policy] of Object.entries(given)) {
      const canonical = this.canonical(name);
      if (canonical !== name && given[canonical] !== undefined) {
        throw new TypeError(`reducers: '${name}' and '${canonical}' name the same reducer; give its policy once`);
      }
      // A copy: the catalogue's policies do not change afterwards.
      this.policies[canonical] = { ...policy };
    }
    for (const name of Object.keys(this.policies)) {
      if (!this.codecs.has(name)) throw new UnknownReducerError(name);
    }
  }

  /** The same catalogue with these policies (checked like the constructor's). */
  withPolicies(policies: Record<string, ReducerPolicy>): ReducerCatalogue {
    return new ReducerCatalogue(this.reducers, { policies, mutationIdParam: this.mutationIdParam }, this.codecs);
  }

  /** The module's reducer name for an accessor (`sendChat` → `send_chat`); a module name (or an unknown one) as is. */
  canonical(reducer: string): string {
    return this.codecs.has(reducer) ? reducer : (this.toCanonical.get(reducer) ?? reducer);
  }

  /** The bindings' accessor for a module reducer name; the name itself when it has none. */
  accessor(reducer: string): string {
    return this.toAccessor.get(reducer) ?? reducer;
  }

  /** The argument codec of a reducer (either name), or undefined when the bindings lack it. */
  codec(reducer: string): ProductCodec | undefined {
    return this.codecs.get(this.canonical(reducer));
  }

  /** Whether the reducer (either name) takes the mutation-id parameter, a string (and so can record receipts). */
  takesMutationId(reducer: string): boolean {
    const name = this.canonical(reducer);
    let t = this.takes.get(name);
    if (t === undefined) {
      t = takesId(this.codecs.get(name)?.type, this.mutationIdParam);
      if (this.codecs.has(name)) this.takes.set(name, t);
    }
    return t;
  }

  /** The policy in force for a reducer (either name), with defaults filled in. */
  policy(reducer: string): Readonly<Required<ReducerPolicy>> {
    const name = this.canonical(reducer);
    let r = this.resolved.get(name);
    if (r === undefined) {
      const p = this.policies[name] ?? {};
      r = Object.freeze({
        offline: p.offline ?? 'queue',
        staleAfterMs: p.staleAfterMs ?? 30_000,
        receipts: p.receipts ?? this.takesMutationId(name),
        priority: p.priority ?? 'normal',
      });
      if (this.codecs.has(name)) this.resolved.set(name, r);
    }
    return r;
  }

  /**
   * Check and encode a call. Throws at once: {@link UnknownReducerError},
   * `InvalidArgsError` (naming the first mismatching path), or
   * {@link OfflineRefusedError} for an `online-only` reducer while `online`
   * is false. Where the reducer takes a mutation id and `args` leaves it out,
   * `id` (or a generated one) is filled in. With `idAlways` false, a
   * reducer without the parameter gets no id (`''`): none is generated.
   */
  check(reducer: string, args: Record<string, unknown>, online: boolean, newId: () => string, id?: string, idAlways = true): CheckedCall {
    reducer = this.canonical(reducer);
    const codec = this.codecs.get(reducer);
    if (!codec) throw new UnknownReducerError(reducer);
    const policy = this.policy(reducer);
    if (policy.offline === 'online-only' && !online) throw new OfflineRefusedError(reducer);
    const takes = this.takesMutationId(reducer);
    const given = takes ? args?.[this.mutationIdParam] : undefined;
    const mutationId = id ?? (typeof given === 'string' && given !== '' ? given : takes || idAlways ? newId() : '');
    let full = args;
    if (takes && (given === undefined || given === '')) {
      // Not `{ ...args, [param]: id }`: on Node 20 a spread followed by a new key takes V8's slow path (about 1 µs).
      full = Object.assign({}, args);
      full[this.mutationIdParam] = mutationId;
    }
    return { reducer, id: mutationId, takesId: takes, args: full, bytes: encodeArgs(reducer, codec, full), policy };
  }
}

function takesId(type: ProductTypeT | undefined, param: string): boolean {
  return type?.elements.some(e => e.name === param && e.algebraicType.tag === 'String') ?? false;
}
