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

export default __t.row({
  identity: __t.identity().primaryKey(),
  name: __t.string(),
  online: __t.bool(),
  lastSeen: __t.timestamp().name('last_seen'),
});
