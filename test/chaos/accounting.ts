/**
 * The chaos run's bookkeeping, kept pure so it can be tested on its own:
 * what every client accepted (mutation id → expected effect), what it
 * reported rejected and why, against what the server's tables show.
 *
 * Per accepted mutation (a handle whose entry reached the durable outbox):
 * - effect seen twice or more, or two receipts → **duplicated**;
 * - effect seen once → **applied** (if the client also reported it rejected,
 *   that must be an injected failure of a replay whose first attempt had
 *   applied: counted applied, listed as `rejectedButApplied`);
 * - no effect and reported rejected → **rejected** (the reason must be the
 *   module's expected one, or an injected failure);
 * - no effect and never reported rejected → **lost**.
 * Move and data-update effects are counted through the node's `version`
 * (one per applied change) and the receipts: a version above 1 + the
 * receipts of changes to that node means a change applied twice.
 *
 * Per settled call handle, against the same tables (issue 12):
 * - settled `confirmed` → its effect must be on the server, else counted in
 *   **confirmedNotOnServer** (a handle that lied);
 * - settled rejected with the module's reason, or as expired, superseded or
 *   discarded → its effect must not be there, else **otherOnServer**. A
 *   rejection by an injected failure is exempt (the replay of a call whose
 *   first attempt had applied can be failed that way: `rejectedButApplied`),
 *   and so are handles closed with their entry still in the outbox (the
 *   next session sends it) and `OutcomeUnknownError`s (unknown by design).
 */
import { INJECTED_PREFIX } from './schedule.ts';

export type MutationKind = 'chat' | 'create' | 'move' | 'update';

export interface MutationRecord {
  /** The mutation id (outbox entry id). */
  readonly id: string;
  readonly client: number;
  readonly kind: MutationKind;
  /** Whether the module should accept it. */
  readonly valid: boolean;
  /** For an invalid one: a substring of the module's reason. */
  readonly expect?: string;
  /** Target node (move, update). */
  readonly node?: bigint;
  /** Chat text or created node's data: unique per mutation. */
  readonly marker?: string;
  /** Stored in the durable outbox (the client accepted it). */
  accepted: boolean;
  /** Refused at the door (e.g. InvalidArgsError): never stored. */
  refused?: string;
  /** Every rejection reason the client reported for it (handle, errors$, outbox). */
  readonly reasons: string[];
  /** Final handle outcome seen by the session that made the call. */
  outcome?: 'confirmed' | 'rejected' | 'closed' | 'refused' | 'unknown';
}

/** What the server's tables say, reduced to counts. */
export interface ServerFacts {
  /** Chat text → rows with it. */
  readonly chat: ReadonlyMap<string, number>;
  /** Node data → rows with it (nodes created by the run's mutations). */
  readonly nodeData: ReadonlyMap<string, number>;
  /** Mutation id → receipt rows (all senders). */
  readonly receipts: ReadonlyMap<string, number>;
  /** Node id → version. */
  readonly versions: ReadonlyMap<bigint, number>;
}

export interface Accounting {
  mutations: number;
  applied: number;
  rejected: number;
  lost: number;
  duplicated: number;
  rejectedButApplied: number;
  notAccepted: number;
  /** Everything wrong besides lost/duplicated: wrong reasons, invalid mutations applied, unexplained rows. */
  problems: string[];
  /** Handles that settled `confirmed`. */
  handlesConfirmed: number;
  /** …of which the effect is not on the server (must be 0). */
  confirmedNotOnServer: number;
  /** Handles that settled rejected (module reason, expired, superseded, discarded, injected failure). */
  handlesRejected: number;
  /** …of which the effect is on the server although the reason was not an injected failure (must be 0). */
  otherOnServer: number;
  /** Handles settled with `OutcomeUnknownError`, and handles closed with their entry still queued. */
  handlesUnknown: number;
  handlesClosed: number;
  /** Ids of lost and duplicated mutations (first few), for the report. */
  lostIds: string[];
  duplicatedIds: string[];
}

function effectOf(r: MutationRecord, s: ServerFacts): number {
  switch (r.kind) {
    case 'chat':
      return s.chat.get(r.marker!) ?? 0;
    case 'create':
      return s.nodeData.get(r.marker!) ?? 0;
    default:
      return s.receipts.get(r.id) ?? 0;
  }
}

const reasonOk = (r: MutationRecord, reason: string) => reason.includes(INJECTED_PREFIX) || (!r.valid && r.expect !== undefined && reason.includes(r.expect));

export function account(records: readonly MutationRecord[], server: ServerFacts, limit = 20): Accounting {
  const a: Accounting = {
    mutations: 0,
    applied: 0,
    rejected: 0,
    lost: 0,
    duplicated: 0,
    rejectedButApplied: 0,
    notAccepted: 0,
    handlesConfirmed: 0,
    confirmedNotOnServer: 0,
    handlesRejected: 0,
    otherOnServer: 0,
    handlesUnknown: 0,
    handlesClosed: 0,
    problems: [],
    lostIds: [],
    duplicatedIds: [],
  };
  const problem = (m: string) => {
    if (a.problems.length < limit) a.problems.push(m);
    else if (a.problems.length === limit) a.problems.push('… (more problems not listed)');
  };
  const ids = new Set<string>();
  for (const r of records) {
    if (ids.has(r.id)) problem(`mutation id ${r.id} issued twice by the run itself`);
    ids.add(r.id);
    const effect = effectOf(r, server);
    const receipts = server.receipts.get(r.id) ?? 0;
    // What the handle said, against the server.
    if (r.outcome === 'confirmed') {
      a.handlesConfirmed++;
      if (effect === 0 && receipts === 0) {
        a.confirmedNotOnServer++;
        problem(`${r.id} (${r.kind}): its handle said confirmed, but its effect is not on the server`);
      }
    } else if (r.outcome === 'rejected') {
      a.handlesRejected++;
      const injectedOnly = r.reasons.length > 0 && r.reasons.every((x) => x.includes(INJECTED_PREFIX));
      if ((effect > 0 || receipts > 0) && !injectedOnly) {
        a.otherOnServer++;
        problem(`${r.id} (${r.kind}): its handle said rejected (${r.reasons[0] ?? 'no reason'}), but its effect is on the server`);
      }
    } else if (r.outcome === 'unknown') a.handlesUnknown++;
    else if (r.outcome === 'closed') a.handlesClosed++;
    if (!r.accepted) {
      a.notAccepted++;
      if (effect > 0 || receipts > 0) problem(`${r.id} (${r.kind}) took effect but its call was never accepted (${r.refused ?? r.outcome ?? 'no outcome'})`);
      continue;
    }
    a.mutations++;
    if (effect !== receipts && r.valid && effect <= 1 && receipts <= 1 && (r.kind === 'chat' || r.kind === 'create')) {
      problem(`${r.id} (${r.kind}): ${effect} effect(s) but ${receipts} receipt(s)`);
    }
    if (effect >= 2 || receipts >= 2) {
      a.duplicated++;
      if (a.duplicatedIds.length < limit) a.duplicatedIds.push(r.id);
      continue;
    }
    if (effect === 1) {
      a.applied++;
      if (!r.valid) problem(`${r.id} (${r.kind}) should have been refused by the module (${r.expect}) but took effect`);
      if (r.reasons.length > 0) {
        a.rejectedButApplied++;
        const bad = r.reasons.filter((x) => !x.includes(INJECTED_PREFIX));
        if (bad.length) problem(`${r.id} (${r.kind}) took effect but was reported rejected: ${bad[0]}`);
      }
      continue;
    }
    if (r.reasons.length > 0) {
      a.rejected++;
      const bad = r.reasons.filter((x) => !reasonOk(r, x));
      if (bad.length) problem(`${r.id} (${r.kind}, ${r.valid ? 'valid' : `expected "${r.expect}"`}) rejected with an unexpected reason: ${bad[0]}`);
      continue;
    }
    a.lost++;
    if (a.lostIds.length < limit) a.lostIds.push(r.id);
  }
  // Node versions: 1 at creation, +1 per applied move or data update.
  const changes = new Map<bigint, number>();
  for (const r of records) {
    if ((r.kind === 'move' || r.kind === 'update') && r.node !== undefined && (server.receipts.get(r.id) ?? 0) > 0) {
      changes.set(r.node, (changes.get(r.node) ?? 0) + 1);
    }
  }
  for (const [node, n] of changes) {
    const version = server.versions.get(node);
    if (version === undefined) {
      problem(`node ${node} received ${n} change(s) but is gone`);
      continue;
    }
    const excess = version - (1 + n);
    if (excess > 0) {
      a.duplicated += excess;
      if (a.duplicatedIds.length < limit) a.duplicatedIds.push(`node ${node}: version ${version}, ${n} change(s) applied`);
    } else if (excess < 0) {
      a.lost += -excess;
      if (a.lostIds.length < limit) a.lostIds.push(`node ${node}: version ${version}, but ${n} change receipts`);
    }
  }
  // Rows nobody asked for.
  const markers = new Set(records.map((r) => r.marker).filter((m): m is string => m !== undefined));
  for (const [text, n] of server.chat) if (!markers.has(text)) problem(`chat message ${JSON.stringify(text)} (×${n}) was sent by no mutation of the run`);
  for (const [data, n] of server.nodeData) if (!markers.has(data)) problem(`node data ${JSON.stringify(data)} (×${n}) was written by no mutation of the run`);
  return a;
}
