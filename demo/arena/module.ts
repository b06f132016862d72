/**
 * Arena — the demo game's SpacetimeDB module.
 *
 * A real SpacetimeDB 2.x TypeScript module (written against
 * `spacetimedb/server`, publishable as is) that the embedded dev server hosts.
 *
 * Names. The module keeps the library's default case-conversion policy
 * (snake_case). Tables, columns and reducer parameters are written in
 * camelCase here, so rows look the same in the module and in the client
 * bindings (which always use camelCase keys); the host derives the canonical
 * (wire/SQL) names from them: table `gameNode` → `game_node`, column
 * `ownerId` → `owner_id`. Reducer names are the export names, written in
 * snake_case so they are already canonical (`create_node`). No identifier
 * contains a digit: snake_case conversion splits letters from digits
 * (`player1` → `player_1`), which is easy to get wrong on either side.
 *
 * Exactly-once mutations. Every mutating reducer a client calls takes a
 * client-generated `mutationId` (e.g. a UUID). A mutation whose receipt
 * already exists for the caller is skipped — successfully and without effect —
 * and a new one records its receipt in the same transaction as its effect.
 * A durable client outbox can therefore replay a mutation after a reconnect
 * without knowing whether the first attempt reached the server.
 */
import { schema, table, t, SenderError, type InferSchema, type ReducerCtx } from 'spacetimedb/server';
import type { Identity } from 'spacetimedb';

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------
// (Nothing but reducers may be exported: the library rejects any other named
// export of a module.)

/** Longest accepted mutation id (a UUID is 36 characters). */
const MAX_MUTATION_ID_LENGTH = 128;
const MAX_NAME_LENGTH = 32;
const MAX_CHAT_LENGTH = 500;
/** Longest accepted JSON payload of a node or a battle event. */
const MAX_DATA_LENGTH = 4096;
/** Coordinates must stay within ±ARENA_EXTENT. */
const ARENA_EXTENT = 1_000_000;
const MAX_PLAYERS_PER_MATCH = 16;
const MAX_TELEMETRY_BATCH = 100;
const MAX_SCORE_DELTA = 1000;
const MAX_U32 = 0xffff_ffff;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** A match moves lobby → battle → done, never backwards. */
const MatchState = t.enum('MatchState', {
  Lobby: t.unit(),
  Battle: t.unit(),
  Done: t.unit(),
});

/** One client-side measurement (frame time, latency, …). */
const TelemetryEvent = t.object('TelemetryEvent', {
  kind: t.string(),
  value: t.f64(),
  clientTime: t.timestamp(),
});

// ---------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------

const player = table(
  { public: true },
  {
    identity: t.identity().primaryKey(),
    name: t.string(),
    online: t.bool(),
    lastSeen: t.timestamp(),
  }
);

/**
 * An owned entity of the game world. `parent` is the id of the parent node,
 * or 0 for a root node (ids start at 1). A plain u64 rather than an option:
 * the library can only index columns of primitive and special types, and
 * clients look children up by parent.
 */
const gameNode = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    owner: t.identity().index('btree'),
    parent: t.u64().index('btree'),
    x: t.f64(),
    y: t.f64(),
    data: t.string(),
    /** 1 on creation, incremented by every change. */
    version: t.u32(),
    updatedAt: t.timestamp(),
  }
);

const arenaMatch = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    name: t.string(),
    host: t.identity(),
    state: MatchState,
    maxPlayers: t.u32(),
    createdAt: t.timestamp(),
    startedAt: t.option(t.timestamp()),
    endedAt: t.option(t.timestamp()),
    winner: t.option(t.identity()),
  }
);

/** Players taking part in a match. */
const matchMember = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    matchId: t.u64().index('btree'),
    player: t.identity().index('btree'),
    joinedAt: t.timestamp(),
    score: t.i32(),
  }
);

/** What happened in a match's battle, in order (`seq` counts from 1 per match). */
const battleLog = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    matchId: t.u64().index('btree'),
    seq: t.u32(),
    actor: t.identity(),
    action: t.string(),
    detail: t.string(),
    at: t.timestamp(),
  }
);

const chatMessage = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    sender: t.identity().index('btree'),
    text: t.string(),
    sentAt: t.timestamp(),
  }
);

/** Client measurements. Private: clients write it, only the operator reads it. */
const telemetry = table(
  { public: false },
  {
    id: t.u64().primaryKey().autoInc(),
    sender: t.identity().index('btree'),
    kind: t.string(),
    value: t.f64(),
    clientTime: t.timestamp(),
    receivedAt: t.timestamp(),
  }
);

/**
 * One row per applied mutation. Public so that a client can subscribe to its
 * own receipts (`WHERE sender = :sender`) and learn which queued mutations
 * already took effect.
 */
const mutationReceipt = table(
  { public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    mutationId: t.string().index('btree'),
    sender: t.identity().index('btree'),
    reducer: t.string(),
    appliedAt: t.timestamp(),
  }
);

const spacetimedb = schema({
  player,
  gameNode,
  arenaMatch,
  matchMember,
  battleLog,
  chatMessage,
  telemetry,
  mutationReceipt,
});
export default spacetimedb;

type Ctx = ReducerCtx<InferSchema<typeof spacetimedb>>;

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

function requireText(what: string, value: string, max: number): string {
  const trimmed = value.trim();
  if (trimmed.length === 0) throw new SenderError(`${what} must not be empty`);
  if (trimmed.length > max) {
    throw new SenderError(`${what} is too long (${trimmed.length} characters, at most ${max})`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new SenderError(`${what} must not contain control characters`);
  }
  return trimmed;
}

function requireJson(what: string, value: string): string {
  if (value.length > MAX_DATA_LENGTH) {
    throw new SenderError(`${what} is too long (${value.length} characters, at most ${MAX_DATA_LENGTH})`);
  }
  try {
    JSON.parse(value);
  } catch {
    throw new SenderError(`${what} is not valid JSON`);
  }
  return value;
}

function requireCoordinate(what: string, value: number): number {
  if (!Number.isFinite(value)) throw new SenderError(`${what} must be a finite number`);
  if (Math.abs(value) > ARENA_EXTENT) {
    throw new SenderError(`${what} is outside the arena (±${ARENA_EXTENT})`);
  }
  return value;
}

function nextVersion(version: number): number {
  if (version >= MAX_U32) throw new SenderError('node version is exhausted');
  return version + 1;
}

function defaultName(identity: Identity): string {
  return `anon-${identity.toHexString().slice(-6)}`;
}

// ---------------------------------------------------------------------------
// Mutation receipts
// ---------------------------------------------------------------------------

/**
 * Run `body` once per (caller, mutationId): skip it when the caller already
 * has a receipt for this id, otherwise run it and record the receipt. A
 * throwing body rolls the whole transaction back, receipt included, so a
 * rejected mutation can be retried (and is rejected again).
 */
function once(ctx: Ctx, reducer: string, mutationId: string, body: () => void): void {
  if (mutationId.length === 0) throw new SenderError('mutation id must not be empty');
  if (mutationId.length > MAX_MUTATION_ID_LENGTH) {
    throw new SenderError(`mutation id is too long (at most ${MAX_MUTATION_ID_LENGTH} characters)`);
  }
  for (const receipt of ctx.db.mutationReceipt.mutationId.filter(mutationId)) {
    if (!receipt.sender.isEqual(ctx.sender)) continue;
    if (receipt.reducer !== reducer) {
      throw new SenderError(
        `mutation id ${mutationId} was already used by reducer ${receipt.reducer}, not ${reducer}`
      );
    }
    return; // already applied: succeed without effect
  }
  body();
  ctx.db.mutationReceipt.insert({
    id: 0n,
    mutationId,
    sender: ctx.sender,
    reducer,
    appliedAt: ctx.timestamp,
  });
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

export const init = spacetimedb.init(_ctx => {
  console.info('arena module initialised');
});

export const client_connected = spacetimedb.clientConnected(ctx => {
  const existing = ctx.db.player.identity.find(ctx.sender);
  if (existing) {
    ctx.db.player.identity.update({ ...existing, online: true, lastSeen: ctx.timestamp });
    if (!existing.online) console.info(`player ${existing.name} joined`);
  } else {
    const name = defaultName(ctx.sender);
    ctx.db.player.insert({ identity: ctx.sender, name, online: true, lastSeen: ctx.timestamp });
    console.info(`player ${name} joined (new)`);
  }
});

export const client_disconnected = spacetimedb.clientDisconnected(ctx => {
  const existing = ctx.db.player.identity.find(ctx.sender);
  if (existing) {
    ctx.db.player.identity.update({ ...existing, online: false, lastSeen: ctx.timestamp });
    console.info(`player ${existing.name} left`);
  }
});

// ---------------------------------------------------------------------------
// Players
// ---------------------------------------------------------------------------

export const set_name = spacetimedb.reducer(
  { mutationId: t.string(), name: t.string() },
  (ctx, { mutationId, name }) =>
    once(ctx, 'set_name', mutationId, () => {
      const clean = requireText('name', name, MAX_NAME_LENGTH);
      const existing = ctx.db.player.identity.find(ctx.sender);
      if (existing) {
        ctx.db.player.identity.update({ ...existing, name: clean, lastSeen: ctx.timestamp });
      } else {
        ctx.db.player.insert({ identity: ctx.sender, name: clean, online: false, lastSeen: ctx.timestamp });
      }
    })
);

// ---------------------------------------------------------------------------
// Game nodes
// ---------------------------------------------------------------------------

function ownedNode(ctx: Ctx, id: bigint, action: string) {
  const node = ctx.db.gameNode.id.find(id);
  if (!node) throw new SenderError(`node ${id} does not exist`);
  if (!node.owner.isEqual(ctx.sender)) throw new SenderError(`cannot ${action} node ${id}: you do not own it`);
  return node;
}

export const create_node = spacetimedb.reducer(
  { mutationId: t.string(), parent: t.u64(), x: t.f64(), y: t.f64(), data: t.string() },
  (ctx, { mutationId, parent, x, y, data }) =>
    once(ctx, 'create_node', mutationId, () => {
      if (parent !== 0n) ownedNode(ctx, parent, 'attach to');
      ctx.db.gameNode.insert({
        id: 0n,
        owner: ctx.sender,
        parent,
        x: requireCoordinate('x', x),
        y: requireCoordinate('y', y),
        data: requireJson('data', data),
        version: 1,
        updatedAt: ctx.timestamp,
      });
    })
);

export const move_node = spacetimedb.reducer(
  { mutationId: t.string(), id: t.u64(), x: t.f64(), y: t.f64() },
  (ctx, { mutationId, id, x, y }) =>
    once(ctx, 'move_node', mutationId, () => {
      const node = ownedNode(ctx, id, 'move');
      ctx.db.gameNode.id.update({
        ...node,
        x: requireCoordinate('x', x),
        y: requireCoordinate('y', y),
        version: nextVersion(node.version),
        updatedAt: ctx.timestamp,
      });
    })
);

export const update_node_data = spacetimedb.reducer(
  { mutationId: t.string(), id: t.u64(), data: t.string() },
  (ctx, { mutationId, id, data }) =>
    once(ctx, 'update_node_data', mutationId, () => {
      const node = ownedNode(ctx, id, 'update');
      ctx.db.gameNode.id.update({
        ...node,
        data: requireJson('data', data),
        version: nextVersion(node.version),
        updatedAt: ctx.timestamp,
      });
    })
);

export const reparent_node = spacetimedb.reducer(
  { mutationId: t.string(), id: t.u64(), parent: t.u64() },
  (ctx, { mutationId, id, parent }) =>
    once(ctx, 'reparent_node', mutationId, () => {
      const node = ownedNode(ctx, id, 'reparent');
      if (parent !== 0n) {
        ownedNode(ctx, parent, 'attach to');
        // Walk up from the new parent: meeting the node itself means a cycle.
        for (let cursor = parent; cursor !== 0n; ) {
          if (cursor === id) throw new SenderError(`node ${parent} is inside node ${id}: that would make a cycle`);
          cursor = ctx.db.gameNode.id.find(cursor)?.parent ?? 0n;
        }
      }
      ctx.db.gameNode.id.update({
        ...node,
        parent,
        version: nextVersion(node.version),
        updatedAt: ctx.timestamp,
      });
    })
);

/** Deletes the node and everything below it. */
export const delete_node = spacetimedb.reducer(
  { mutationId: t.string(), id: t.u64() },
  (ctx, { mutationId, id }) =>
    once(ctx, 'delete_node', mutationId, () => {
      ownedNode(ctx, id, 'delete');
      const pending = [id];
      while (pending.length > 0) {
        const current = pending.pop()!;
        for (const child of [...ctx.db.gameNode.parent.filter(current)]) pending.push(child.id);
        ctx.db.gameNode.id.delete(current);
      }
    })
);

// ---------------------------------------------------------------------------
// Matches
// ---------------------------------------------------------------------------

function existingMatch(ctx: Ctx, matchId: bigint) {
  const match = ctx.db.arenaMatch.id.find(matchId);
  if (!match) throw new SenderError(`match ${matchId} does not exist`);
  return match;
}

function membersOf(ctx: Ctx, matchId: bigint) {
  return [...ctx.db.matchMember.matchId.filter(matchId)];
}

function membershipOf(ctx: Ctx, matchId: bigint, who: Identity) {
  return membersOf(ctx, matchId).find(m => m.player.isEqual(who));
}

export const create_match = spacetimedb.reducer(
  { mutationId: t.string(), name: t.string(), maxPlayers: t.u32() },
  (ctx, { mutationId, name, maxPlayers }) =>
    once(ctx, 'create_match', mutationId, () => {
      const clean = requireText('match name', name, MAX_NAME_LENGTH);
      if (maxPlayers < 1 || maxPlayers > MAX_PLAYERS_PER_MATCH) {
        throw new SenderError(`max players must be between 1 and ${MAX_PLAYERS_PER_MATCH}`);
      }
      const match = ctx.db.arenaMatch.insert({
        id: 0n,
        name: clean,
        host: ctx.sender,
        state: { tag: 'Lobby' },
        maxPlayers,
        createdAt: ctx.timestamp,
        startedAt: undefined,
        endedAt: undefined,
        winner: undefined,
      });
      ctx.db.matchMember.insert({ id: 0n, matchId: match.id, player: ctx.sender, joinedAt: ctx.timestamp, score: 0 });
    })
);

export const join_match = spacetimedb.reducer(
  { mutationId: t.string(), matchId: t.u64() },
  (ctx, { mutationId, matchId }) =>
    once(ctx, 'join_match', mutationId, () => {
      const match = existingMatch(ctx, matchId);
      if (match.state.tag !== 'Lobby') {
        throw new SenderError(`match ${matchId} is not in the lobby (it is ${match.state.tag.toLowerCase()})`);
      }
      const members = membersOf(ctx, matchId);
      if (members.some(m => m.player.isEqual(ctx.sender))) {
        throw new SenderError(`you already joined match ${matchId}`);
      }
      if (members.length >= match.maxPlayers) throw new SenderError(`match ${matchId} is full`);
      ctx.db.matchMember.insert({ id: 0n, matchId, player: ctx.sender, joinedAt: ctx.timestamp, score: 0 });
    })
);

/**
 * Leaves a match. The host role passes to the longest-standing member; a
 * match nobody is left in is over.
 */
export const leave_match = spacetimedb.reducer(
  { mutationId: t.string(), matchId: t.u64() },
  (ctx, { mutationId, matchId }) =>
    once(ctx, 'leave_match', mutationId, () => {
      const match = existingMatch(ctx, matchId);
      if (match.state.tag === 'Done') throw new SenderError(`match ${matchId} is already over`);
      const membership = membershipOf(ctx, matchId, ctx.sender);
      if (!membership) throw new SenderError(`you are not in match ${matchId}`);
      ctx.db.matchMember.id.delete(membership.id);
      const remaining = membersOf(ctx, matchId).sort((a, b) =>
        a.joinedAt.microsSinceUnixEpoch < b.joinedAt.microsSinceUnixEpoch ? -1 : 1
      );
      if (remaining.length === 0) {
        ctx.db.arenaMatch.id.update({ ...match, state: { tag: 'Done' }, endedAt: ctx.timestamp });
      } else if (match.host.isEqual(ctx.sender)) {
        ctx.db.arenaMatch.id.update({ ...match, host: remaining[0].player });
      }
    })
);

export const start_match = spacetimedb.reducer(
  { mutationId: t.string(), matchId: t.u64() },
  (ctx, { mutationId, matchId }) =>
    once(ctx, 'start_match', mutationId, () => {
      const match = existingMatch(ctx, matchId);
      if (!match.host.isEqual(ctx.sender)) throw new SenderError(`only the host can start match ${matchId}`);
      if (match.state.tag !== 'Lobby') throw new SenderError(`match ${matchId} is not in the lobby`);
      ctx.db.arenaMatch.id.update({ ...match, state: { tag: 'Battle' }, startedAt: ctx.timestamp });
    })
);

export const record_battle_event = spacetimedb.reducer(
  { mutationId: t.string(), matchId: t.u64(), action: t.string(), detail: t.string(), scoreDelta: t.i32() },
  (ctx, { mutationId, matchId, action, detail, scoreDelta }) =>
    once(ctx, 'record_battle_event', mutationId, () => {
      const match = existingMatch(ctx, matchId);
      if (match.state.tag !== 'Battle') throw new SenderError(`match ${matchId} is not in battle`);
      const membership = membershipOf(ctx, matchId, ctx.sender);
      if (!membership) throw new SenderError(`you are not in match ${matchId}`);
      const cleanAction = requireText('action', action, MAX_NAME_LENGTH);
      requireJson('detail', detail);
      if (Math.abs(scoreDelta) > MAX_SCORE_DELTA) {
        throw new SenderError(`score delta must be within ±${MAX_SCORE_DELTA}`);
      }
      let seq = 0;
      for (const entry of ctx.db.battleLog.matchId.filter(matchId)) seq = Math.max(seq, entry.seq);
      ctx.db.battleLog.insert({
        id: 0n,
        matchId,
        seq: seq + 1,
        actor: ctx.sender,
        action: cleanAction,
        detail,
        at: ctx.timestamp,
      });
      if (scoreDelta !== 0) {
        ctx.db.matchMember.id.update({ ...membership, score: membership.score + scoreDelta });
      }
    })
);

/**
 * Ends a battle. Without an explicit winner the highest score wins (a tie
 * has no winner).
 */
export const end_match = spacetimedb.reducer(
  { mutationId: t.string(), matchId: t.u64(), winner: t.option(t.identity()) },
  (ctx, { mutationId, matchId, winner }) =>
    once(ctx, 'end_match', mutationId, () => {
      const match = existingMatch(ctx, matchId);
      if (!match.host.isEqual(ctx.sender)) throw new SenderError(`only the host can end match ${matchId}`);
      if (match.state.tag !== 'Battle') throw new SenderError(`match ${matchId} is not in battle`);
      const members = membersOf(ctx, matchId);
      let result: Identity | undefined = winner;
      if (result !== undefined) {
        const who = result;
        if (!members.some(m => m.player.isEqual(who))) {
          throw new SenderError(`the winner must be a player of match ${matchId}`);
        }
      } else {
        const best = Math.max(...members.map(m => m.score));
        const top = members.filter(m => m.score === best);
        result = top.length === 1 ? top[0].player : undefined;
      }
      ctx.db.arenaMatch.id.update({ ...match, state: { tag: 'Done' }, endedAt: ctx.timestamp, winner: result });
    })
);

// ---------------------------------------------------------------------------
// Chat
// ---------------------------------------------------------------------------

export const send_chat = spacetimedb.reducer(
  { mutationId: t.string(), text: t.string() },
  (ctx, { mutationId, text }) =>
    once(ctx, 'send_chat', mutationId, () => {
      ctx.db.chatMessage.insert({
        id: 0n,
        sender: ctx.sender,
        text: requireText('message', text, MAX_CHAT_LENGTH),
        sentAt: ctx.timestamp,
      });
    })
);

// ---------------------------------------------------------------------------
// Telemetry (low priority: clients may batch, delay or drop these calls)
// ---------------------------------------------------------------------------

export const report_telemetry = spacetimedb.reducer(
  { mutationId: t.string(), events: t.array(TelemetryEvent) },
  (ctx, { mutationId, events }) =>
    once(ctx, 'report_telemetry', mutationId, () => {
      if (events.length === 0) throw new SenderError('a telemetry report needs at least one event');
      if (events.length > MAX_TELEMETRY_BATCH) {
        throw new SenderError(`too many telemetry events (${events.length}, at most ${MAX_TELEMETRY_BATCH})`);
      }
      for (const event of events) {
        if (!Number.isFinite(event.value)) throw new SenderError('telemetry values must be finite numbers');
        ctx.db.telemetry.insert({
          id: 0n,
          sender: ctx.sender,
          kind: requireText('telemetry kind', event.kind, MAX_NAME_LENGTH),
          value: event.value,
          clientTime: event.clientTime,
          receivedAt: ctx.timestamp,
        });
      }
    })
);

// ---------------------------------------------------------------------------
// Receipt housekeeping
// ---------------------------------------------------------------------------

/**
 * Deletes the caller's own receipts applied before `olderThan` and/or all but
 * the newest `keepNewest`. It takes no mutation id and leaves no receipt of
 * its own: it only removes bookkeeping, and a client must only prune receipts
 * of mutations it no longer holds in its outbox.
 */
export const prune_receipts = spacetimedb.reducer(
  { olderThan: t.option(t.timestamp()), keepNewest: t.option(t.u32()) },
  (ctx, { olderThan, keepNewest }) => {
    if (olderThan === undefined && keepNewest === undefined) {
      throw new SenderError('give olderThan, keepNewest or both');
    }
    const mine = [...ctx.db.mutationReceipt.sender.filter(ctx.sender)].sort((a, b) => {
      const d = b.appliedAt.microsSinceUnixEpoch - a.appliedAt.microsSinceUnixEpoch;
      return d !== 0n ? (d > 0n ? 1 : -1) : b.id > a.id ? 1 : b.id < a.id ? -1 : 0;
    }); // newest first
    mine.forEach((receipt, rank) => {
      const tooOld =
        olderThan !== undefined && receipt.appliedAt.microsSinceUnixEpoch < olderThan.microsSinceUnixEpoch;
      const beyondKept = keepNewest !== undefined && rank >= keepNewest;
      if (tooOld || beyondKept) ctx.db.mutationReceipt.id.delete(receipt.id);
    });
  }
);
