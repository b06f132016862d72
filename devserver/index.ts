/**
 * The stdb-rx dev server: an embedded, in-process SpacetimeDB stand-in that
 * hosts real SpacetimeDB TypeScript modules and speaks SpacetimeDB's
 * WebSocket protocol to the unmodified official SDK.
 */
export { startDevServer, DevServer, databaseNameFor, type DevServerOptions, type DevServerStats } from './server.ts';
export { ModuleInstance, type HostLogger, type LogLevel, type ReducerOutcome } from './host/instance.ts';
export { loadModuleDef, describeModule, toSnakeCase, ModuleDefError, type ModuleDescription, type TableDesc, type ReducerDesc } from './host/moduleDef.ts';
export { ModuleLoadError } from './host/bundle.ts';
export { ManualClock, systemClock, type DevClock } from './host/scheduler.ts';
export { HTTP_REFUSED_MESSAGE, type ProcedureOutcome } from './host/procedures.ts';
export type { ProcedureDesc, ScheduleDesc, HttpRouteDesc } from './host/moduleDef.ts';
export { TokenAuthority, AuthError, identityFromClaims } from './auth.ts';
export { DevServerFaults } from './faults/controls.ts';
