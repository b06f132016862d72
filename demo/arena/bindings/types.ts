// Client bindings for demo/arena/module.ts, written by hand in the shape that
// `spacetime generate --lang typescript` (SpacetimeDB 2.x) emits. Change them
// together with the module: test/demo/bindings.test.ts compares the two.

/* eslint-disable */
/* tslint:disable */
import {
  TypeBuilder as __TypeBuilder,
  t as __t,
  type AlgebraicTypeType as __AlgebraicTypeType,
  type Infer as __Infer,
} from 'spacetimedb';

export const ArenaMatch = __t.object('ArenaMatch', {
  id: __t.u64(),
  name: __t.string(),
  host: __t.identity(),
  get state() {
    return MatchState;
  },
  maxPlayers: __t.u32(),
  createdAt: __t.timestamp(),
  startedAt: __t.option(__t.timestamp()),
  endedAt: __t.option(__t.timestamp()),
  winner: __t.option(__t.identity()),
});
export type ArenaMatch = __Infer<typeof ArenaMatch>;

export const BattleLog = __t.object('BattleLog', {
  id: __t.u64(),
  matchId: __t.u64(),
  seq: __t.u32(),
  actor: __t.identity(),
  action: __t.string(),
  detail: __t.string(),
  at: __t.timestamp(),
});
export type BattleLog = __Infer<typeof BattleLog>;

export const ChatMessage = __t.object('ChatMessage', {
  id: __t.u64(),
  sender: __t.identity(),
  text: __t.string(),
  sentAt: __t.timestamp(),
});
export type ChatMessage = __Infer<typeof ChatMessage>;

export const GameNode = __t.object('GameNode', {
  id: __t.u64(),
  owner: __t.identity(),
  parent: __t.u64(),
  x: __t.f64(),
  y: __t.f64(),
  data: __t.string(),
  version: __t.u32(),
  updatedAt: __t.timestamp(),
});
export type GameNode = __Infer<typeof GameNode>;

export const MatchMember = __t.object('MatchMember', {
  id: __t.u64(),
  matchId: __t.u64(),
  player: __t.identity(),
  joinedAt: __t.timestamp(),
  score: __t.i32(),
});
export type MatchMember = __Infer<typeof MatchMember>;

// The tagged union or sum type for the algebraic type `MatchState`.
export const MatchState = __t.enum('MatchState', {
  Lobby: __t.unit(),
  Battle: __t.unit(),
  Done: __t.unit(),
});
export type MatchState = __Infer<typeof MatchState>;

export const MutationReceipt = __t.object('MutationReceipt', {
  id: __t.u64(),
  mutationId: __t.string(),
  sender: __t.identity(),
  reducer: __t.string(),
  appliedAt: __t.timestamp(),
});
export type MutationReceipt = __Infer<typeof MutationReceipt>;

export const Player = __t.object('Player', {
  identity: __t.identity(),
  name: __t.string(),
  online: __t.bool(),
  lastSeen: __t.timestamp(),
});
export type Player = __Infer<typeof Player>;

export const Telemetry = __t.object('Telemetry', {
  id: __t.u64(),
  sender: __t.identity(),
  kind: __t.string(),
  value: __t.f64(),
  clientTime: __t.timestamp(),
  receivedAt: __t.timestamp(),
});
export type Telemetry = __Infer<typeof Telemetry>;

export const TelemetryEvent = __t.object('TelemetryEvent', {
  kind: __t.string(),
  value: __t.f64(),
  clientTime: __t.timestamp(),
});
export type TelemetryEvent = __Infer<typeof TelemetryEvent>;
