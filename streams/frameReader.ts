/**
 * A small client-side reader for SpacetimeDB v2 server messages, built on the
 * SDK's public `BinaryReader`. It never decodes rows: it walks a message to
 * find its kind, its request id where it has one, and how many row bytes each
 * table carries, skipping row payloads by their length prefix. That is cheap
 * enough to run on every frame in the socket adapter.
 *
 * It also encodes the one client message the adapter sends itself: a
 * `OneOffQuery` used as a heartbeat probe.
 *
 * Tags and field orders are those of docs/protocol.md ("Server → client
 * messages" and "Client → server messages").
 *
 * @module
 */
import { BinaryReader, BinaryWriter } from 'spacetimedb';

export const SERVER_MESSAGE_KINDS = [
  'InitialConnection',
  'SubscribeApplied',
  'UnsubscribeApplied',
  'SubscriptionError',
  'TransactionUpdate',
  'OneOffQueryResult',
  'ReducerResult',
  'ProcedureResult',
] as const;

export type ServerMessageKind = (typeof SERVER_MESSAGE_KINDS)[number];

/** What {@link scanServerMessage} learned about one message. */
export interface ScannedMessage {
  readonly kind: ServerMessageKind;
  /** Byte offsets of the message inside the scanned buffer. */
  readonly start: number;
  readonly end: number;
  /** Request id for messages that carry one (Subscribe/Unsubscribe/OneOff/Reducer/Procedure results). */
  readonly requestId?: number;
  /** For ReducerResult: the outcome tag. */
  readonly outcome?: 'Ok' | 'OkEmpty' | 'Err' | 'InternalError';
  /** Row bytes per wire table name carried by the message. */
  readonly tableBytes?: ReadonlyMap<string, number>;
}

/** Thrown when a frame cannot be walked. */
export class FrameScanError extends Error {
  override readonly name = 'FrameScanError';
}

const ROW_SIZE_HINT_FIXED = 0;
const ROW_SIZE_HINT_OFFSETS = 1;

function skipBytes(r: BinaryReader, n: number): void {
  if (n < 0 || r.remaining < n) throw new FrameScanError(`frame truncated: need ${n} bytes, ${r.remaining} left`);
  r.offset += n;
}

function skipString(r: BinaryReader): void {
  skipBytes(r, r.readU32());
}

/** Reads a BsatnRowList and returns the length of its row data. */
function readRowList(r: BinaryReader): number {
  const hint = r.readU8();
  if (hint === ROW_SIZE_HINT_FIXED) r.readU16();
  else if (hint === ROW_SIZE_HINT_OFFSETS) skipBytes(r, r.readU32() * 8);
  else throw new FrameScanError(`unknown RowSizeHint tag ${hint}`);
  const len = r.readU32();
  skipBytes(r, len);
  return len;
}

function addBytes(acc: Map<string, number>, table: string, n: number) {
  acc.set(table, (acc.get(table) ?? 0) + n);
}

/** QueryRows = array of { table: string, rows: BsatnRowList } */
function readQueryRows(r: BinaryReader, acc: Map<string, number>): void {
  const n = r.readU32();
  for (let i = 0; i < n; i++) {
    const table = r.readString();
    addBytes(acc, table, readRowList(r));
  }
}

/** TransactionUpdate = array of QuerySetUpdate { querySetId u32, tables: [TableUpdate] } */
function readTransactionUpdate(r: BinaryReader, acc: Map<string, number>): void {
  const sets = r.readU32();
  for (let s = 0; s < sets; s++) {
    r.readU32(); // querySetId
    const tables = r.readU32();
    for (let t = 0; t < tables; t++) {
      const table = r.readString();
      const rowsN = r.readU32();
      for (let k = 0; k < rowsN; k++) {
        const tag = r.readU8();
        if (tag === 0) {
          addBytes(acc, table, readRowList(r)); // inserts
          addBytes(acc, table, readRowList(r)); // deletes
        } else if (tag === 1) {
          addBytes(acc, table, readRowList(r)); // events
        } else throw new FrameScanError(`unknown TableUpdateRows tag ${tag}`);
      }
    }
  }
}

/** Walk one server message starting at `r.offset`; leaves `r.offset` at its end. */
export function scanServerMessage(r: BinaryReader): ScannedMessage {
  const start = r.offset;
  const tag = r.readU8();
  const kind = SERVER_MESSAGE_KINDS[tag];
  if (kind === undefined) throw new FrameScanError(`unknown ServerMessage tag ${tag}`);
  const acc = new Map<string, number>();
  let requestId: number | undefined;
  let outcome: ScannedMessage['outcome'];
  switch (kind) {
    case 'InitialConnection':
      skipBytes(r, 32 + 16);
      skipString(r);
      break;
    case 'SubscribeApplied':
      requestId = r.readU32();
      r.readU32();
      readQueryRows(r, acc);
      break;
    case 'UnsubscribeApplied': {
      requestId = r.readU32();
      r.readU32();
      const opt = r.readU8();
      if (opt === 0) readQueryRows(r, acc);
      else if (opt !== 1) throw new FrameScanError(`bad Option tag ${opt}`);
      break;
    }
    case 'SubscriptionError': {
      const opt = r.readU8();
      if (opt === 0) requestId = r.readU32();
      else if (opt !== 1) throw new FrameScanError(`bad Option tag ${opt}`);
      r.readU32();
      skipString(r);
      break;
    }
    case 'TransactionUpdate':
      readTransactionUpdate(r, acc);
      break;
    case 'OneOffQueryResult': {
      requestId = r.readU32();
      const res = r.readU8();
      if (res === 0) readQueryRows(r, acc);
      else if (res === 1) skipString(r);
      else throw new FrameScanError(`bad Result tag ${res}`);
      break;
    }
    case 'ReducerResult': {
      requestId = r.readU32();
      skipBytes(r, 8); // timestamp
      const o = r.readU8();
      if (o === 0) {
        outcome = 'Ok';
        skipBytes(r, r.readU32()); // retValue
        readTransactionUpdate(r, acc);
      } else if (o === 1) outcome = 'OkEmpty';
      else if (o === 2) {
        outcome = 'Err';
        skipBytes(r, r.readU32());
      } else if (o === 3) {
        outcome = 'InternalError';
        skipString(r);
      } else throw new FrameScanError(`unknown ReducerOutcome tag ${o}`);
      break;
    }
    case 'ProcedureResult': {
      const st = r.readU8();
      if (st === 0) skipBytes(r, r.readU32());
      else if (st === 1) skipString(r);
      else throw new FrameScanError(`unknown ProcedureStatus tag ${st}`);
      skipBytes(r, 16); // timestamp + duration
      requestId = r.readU32();
      break;
    }
  }
  return { kind, start, end: r.offset, requestId, outcome, tableBytes: acc.size ? acc : undefined };
}

/**
 * Walk a decompressed payload. `v3` payloads carry one or more messages back
 * to back; `v2` exactly one.
 */
export function scanServerPayload(data: Uint8Array, protocol: 'v2' | 'v3'): ScannedMessage[] {
  const r = new BinaryReader(data);
  const out: ScannedMessage[] = [];
  do {
    out.push(scanServerMessage(r));
  } while (protocol === 'v3' && r.remaining > 0);
  if (r.remaining > 0) throw new FrameScanError(`${r.remaining} trailing bytes after ${out.at(-1)?.kind}`);
  return out;
}

const CLIENT_ONE_OFF_QUERY_TAG = 2;

/** Encode a client `OneOffQuery {requestId, queryString}` message (valid as a v2 frame and as a one-message v3 frame). */
export function encodeOneOffQuery(requestId: number, query: string): Uint8Array<ArrayBuffer> {
  const w = new BinaryWriter(16 + query.length * 3);
  w.writeU8(CLIENT_ONE_OFF_QUERY_TAG);
  w.writeU32(requestId);
  w.writeString(query);
  return w.getBuffer();
}

const CLIENT_MESSAGE_KINDS = ['Subscribe', 'Unsubscribe', 'OneOffQuery', 'CallReducer', 'CallProcedure'] as const;
export type ClientMessageKind = (typeof CLIENT_MESSAGE_KINDS)[number];

/** Name the client messages of an outgoing frame (for debug logging); reducer names are read, args skipped. */
export function describeClientPayload(data: Uint8Array, protocol: 'v2' | 'v3'): { kind: ClientMessageKind | 'unknown'; reducer?: string }[] {
  const r = new BinaryReader(data);
  const out: { kind: ClientMessageKind | 'unknown'; reducer?: string }[] = [];
  try {
    do {
      const tag = r.readU8();
      const kind = CLIENT_MESSAGE_KINDS[tag];
      if (!kind) return [...out, { kind: 'unknown' }];
      switch (kind) {
        case 'Subscribe': {
          r.readU32();
          r.readU32();
          const n = r.readU32();
          for (let i = 0; i < n; i++) skipString(r);
          out.push({ kind });
          break;
        }
        case 'Unsubscribe':
          r.readU32();
          r.readU32();
          r.readU8();
          out.push({ kind });
          break;
        case 'OneOffQuery':
          r.readU32();
          skipString(r);
          out.push({ kind });
          break;
        case 'CallReducer':
        case 'CallProcedure': {
          r.readU32();
          r.readU8();
          const name = r.readString();
          skipBytes(r, r.readU32());
          out.push({ kind, reducer: name });
          break;
        }
      }
    } while (protocol === 'v3' && r.remaining > 0);
  } catch {
    out.push({ kind: 'unknown' });
  }
  return out;
}
