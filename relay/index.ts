/**
 * The spectator relay (Node only): one upstream SpacetimeDB subscription per
 * stream, fanned out to many read-only spectators as JSON Patch deltas over
 * WebSocket or Server-Sent Events. See docs/spectator.md.
 *
 * @module
 */
export { createRelay, type Relay, type RelayOptions, type RelayStats, type AuthorizeRequest, type AuthorizeResult } from './relay.ts';
export { StreamCatalog, type StreamDefinition, type StreamTable, type MatchedStream } from './streams.ts';
export {
  CloseCode,
  FATAL_CLOSE_CODES,
  BadMessageError,
  parseSpectatorMessage,
  isVersion,
  type RelayMessage,
  type SpectatorMessage,
  type SnapshotMessage,
  type PatchMessage,
  type UpstreamMessage,
  type WatchMessage,
  type KeyType,
  type StreamDocument,
} from './protocol.ts';
