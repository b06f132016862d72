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

export default {
  mutationId: __t.string(),
  matchId: __t.u64(),
};
