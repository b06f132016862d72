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
import { MatchState } from './types';

export default __t.row({
  id: __t.u64().primaryKey(),
  name: __t.string(),
  host: __t.identity(),
  get state() {
    return MatchState;
  },
  maxPlayers: __t.u32().name('max_players'),
  createdAt: __t.timestamp().name('created_at'),
  startedAt: __t.option(__t.timestamp()).name('started_at'),
  endedAt: __t.option(__t.timestamp()).name('ended_at'),
  winner: __t.option(__t.identity()),
});
