// Client bindings for demo/arena/module.ts, written by hand in the shape that
// `spacetime generate --lang typescript` (SpacetimeDB 2.x) emits. Change them
// together with the module: test/demo/bindings.test.ts compares the two.

/* eslint-disable */
/* tslint:disable */
import { type Infer as __Infer } from 'spacetimedb';

// Import all procedure arg schemas
