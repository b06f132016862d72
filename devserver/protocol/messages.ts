/**
 * SpacetimeDB client API, websocket protocol v2 (also the message schema of
 * v3, which only changes the framing): every message type, declared with the
 * `spacetimedb` package's public type builders, plus typed encoders and
 * strict decoders.
 *
 * Variant order and field order are the wire format (BSATN sums are a u8 tag
 * followed by the payload, products are their fields in declaration order),
 * so they must match the message tables of docs/protocol.md exactly (which
 * say where they were checked).
 *
 * Encoding uses the SDK's own serializers. Decoding does not use the SDK's
 * deserializers, because those are lenient: an unknown sum tag yields
 * `undefined` instead of an error, reads past the end surface as bare
 * `RangeError`s, invalid UTF-8 is silently replaced and trailing bytes are
 * ignored. A server must reject all of those, so `decode*` run a strict
 * reader (compiled once per type from the same type declarations) that throws
 * {@link ProtocolDecodeError}.
 */
import {
  t,
  AlgebraicType,
  BinaryWriter,
  ConnectionId,
  Identity,
  TimeDuration,
  Timestamp,
  type Infer,
} from 'spacetimedb';

// ---------------------------------------------------------------------------
// Shared pieces

export const QuerySetId = t.object('QuerySetId', { id: t.u32() });
export type QuerySetId = Infer<typeof QuerySetId>;

/** How `rowsData` of a {@link BsatnRowList} splits into rows. */
export const RowSizeHint = t.enum('RowSizeHint', {
  /** Every row has this many bytes. */
  FixedSize: t.u16(),
  /** Start offset of each row; a row ends where the next starts (or at the end). */
  RowOffsets: t.array(t.u64()),
});
export type RowSizeHint = Infer<typeof RowSizeHint>;

/** BSATN-encoded rows packed back to back. Build these with `rows.ts`. */
export const BsatnRowList = t.object('BsatnRowList', {
  sizeHint: RowSizeHint,
  rowsData: t.byteArray(),
});
export type BsatnRowList = Infer<typeof BsatnRowList>;

// ---------------------------------------------------------------------------
// Client → server

export const Subscribe = t.object('Subscribe', {
  requestId: t.u32(),
  querySetId: QuerySetId,
  queryStrings: t.array(t.string()),
});
export type Subscribe = Infer<typeof Subscribe>;

export const UnsubscribeFlags = t.enum('UnsubscribeFlags', {
  Default: t.unit(),
  SendDroppedRows: t.unit(),
});
export type UnsubscribeFlags = Infer<typeof UnsubscribeFlags>;

export const Unsubscribe = t.object('Unsubscribe', {
  requestId: t.u32(),
  querySetId: QuerySetId,
  flags: UnsubscribeFlags,
});
export type Unsubscribe = Infer<typeof Unsubscribe>;

export const OneOffQuery = t.object('OneOffQuery', {
  requestId: t.u32(),
  queryString: t.string(),
});
export type OneOffQuery = Infer<typeof OneOffQuery>;

export const CallReducer = t.object('CallReducer', {
  requestId: t.u32(),
  /** Reserved, must be 0 (the real server rejects anything else). */
  flags: t.u8(),
  reducer: t.string(),
  /** BSATN product of the reducer's parameters. */
  args: t.byteArray(),
});
export type CallReducer = Infer<typeof CallReducer>;

export const CallProcedure = t.object('CallProcedure', {
  requestId: t.u32(),
  /** Reserved, must be 0 (the real server rejects anything else). */
  flags: t.u8(),
  procedure: t.string(),
  args: t.byteArray(),
});
export type CallProcedure = Infer<typeof CallProcedure>;

export const ClientMessage = t.enum('ClientMessage', {
  Subscribe,
  Unsubscribe,
  OneOffQuery,
  CallReducer,
  CallProcedure,
});
export type ClientMessage = Infer<typeof ClientMessage>;

// ---------------------------------------------------------------------------
// Server → client

export const InitialConnection = t.object('InitialConnection', {
  identity: t.identity(),
  connectionId: t.connectionId(),
  token: t.string(),
});
export type InitialConnection = Infer<typeof InitialConnection>;

export const SingleTableRows = t.object('SingleTableRows', {
  table: t.string(),
  rows: BsatnRowList,
});
export type SingleTableRows = Infer<typeof SingleTableRows>;

export const QueryRows = t.object('QueryRows', {
  tables: t.array(SingleTableRows),
});
export type QueryRows = Infer<typeof QueryRows>;

export const SubscribeApplied = t.object('SubscribeApplied', {
  requestId: t.u32(),
  querySetId: QuerySetId,
  rows: QueryRows,
});
export type SubscribeApplied = Infer<typeof SubscribeApplied>;

export const UnsubscribeApplied = t.object('UnsubscribeApplied', {
  requestId: t.u32(),
  querySetId: QuerySetId,
  /** Present exactly when the Unsubscribe asked for `SendDroppedRows`. */
  rows: t.option(QueryRows),
});
export type UnsubscribeApplied = Infer<typeof UnsubscribeApplied>;

export const SubscriptionError = t.object('SubscriptionError', {
  /** Set when a Subscribe/Unsubscribe failed; unset for a failure during a later update. */
  requestId: t.option(t.u32()),
  querySetId: QuerySetId,
  error: t.string(),
});
export type SubscriptionError = Infer<typeof SubscriptionError>;

export const PersistentTableRows = t.object('PersistentTableRows', {
  inserts: BsatnRowList,
  deletes: BsatnRowList,
});
export type PersistentTableRows = Infer<typeof PersistentTableRows>;

export const EventTableRows = t.object('EventTableRows', {
  events: BsatnRowList,
});
export type EventTableRows = Infer<typeof EventTableRows>;

export const TableUpdateRows = t.enum('TableUpdateRows', {
  PersistentTable: PersistentTableRows,
  EventTable: EventTableRows,
});
export type TableUpdateRows = Infer<typeof TableUpdateRows>;

export const TableUpdate = t.object('TableUpdate', {
  tableName: t.string(),
  rows: t.array(TableUpdateRows),
});
export type TableUpdate = Infer<typeof TableUpdate>;

export const QuerySetUpdate = t.object('QuerySetUpdate', {
  querySetId: QuerySetId,
  tables: t.array(TableUpdate),
});
export type QuerySetUpdate = Infer<typeof QuerySetUpdate>;

export const TransactionUpdate = t.object('TransactionUpdate', {
  querySets: t.array(QuerySetUpdate),
});
export type TransactionUpdate = Infer<typeof TransactionUpdate>;

/**
 * `Result<QueryRows, string>` on the wire (tag 0 = ok, 1 = err).
 *
 * Declared as a plain two-variant enum rather than `t.result(...)`: in
 * spacetimedb 2.10.1 the result serializer encodes the *error* payload with
 * the *ok* type's serializer, so `t.result(QueryRows, t.string())` cannot
 * encode an error. The variant names are deliberately not `ok`/`err`, which
 * would select that same special case. The bytes are identical.
 */
export const OneOffQueryOutcome = t.enum('OneOffQueryOutcome', {
  Ok: QueryRows,
  Err: t.string(),
});
export type OneOffQueryOutcome = Infer<typeof OneOffQueryOutcome>;

export const OneOffQueryResult = t.object('OneOffQueryResult', {
  requestId: t.u32(),
  result: OneOffQueryOutcome,
});
export type OneOffQueryResult = Infer<typeof OneOffQueryResult>;

export const ReducerOk = t.object('ReducerOk', {
  retValue: t.byteArray(),
  transactionUpdate: TransactionUpdate,
});
export type ReducerOk = Infer<typeof ReducerOk>;

export const ReducerOutcome = t.enum('ReducerOutcome', {
  /** Committed; carries the caller's own update (possibly with no query sets). */
  Ok: ReducerOk,
  /** Committed with an empty return value and no query-set updates. */
  OkEmpty: t.unit(),
  /** The reducer returned an error: BSATN of its error value (a string for TS modules). */
  Err: t.byteArray(),
  /** Panic, unknown reducer, or host failure. */
  InternalError: t.string(),
});
export type ReducerOutcome = Infer<typeof ReducerOutcome>;

export const ReducerResult = t.object('ReducerResult', {
  requestId: t.u32(),
  timestamp: t.timestamp(),
  result: ReducerOutcome,
});
export type ReducerResult = Infer<typeof ReducerResult>;

export const ProcedureStatus = t.enum('ProcedureStatus', {
  Returned: t.byteArray(),
  InternalError: t.string(),
});
export type ProcedureStatus = Infer<typeof ProcedureStatus>;

export const ProcedureResult = t.object('ProcedureResult', {
  status: ProcedureStatus,
  timestamp: t.timestamp(),
  totalHostExecutionDuration: t.timeDuration(),
  requestId: t.u32(),
});
export type ProcedureResult = Infer<typeof ProcedureResult>;

export const ServerMessage = t.enum('ServerMessage', {
  InitialConnection,
  SubscribeApplied,
  UnsubscribeApplied,
  SubscriptionError,
  TransactionUpdate,
  OneOffQueryResult,
  ReducerResult,
  ProcedureResult,
});
export type ServerMessage = Infer<typeof ServerMessage>;

/** The variant names, in tag order. */
export type ClientMessageTag = ClientMessage['tag'];
export type ServerMessageTag = ServerMessage['tag'];

export const CLIENT_MESSAGE_TAGS: readonly ClientMessageTag[] = variantNames(ClientMessage.algebraicType) as ClientMessageTag[];
export const SERVER_MESSAGE_TAGS: readonly ServerMessageTag[] = variantNames(ServerMessage.algebraicType) as ServerMessageTag[];

function variantNames(ty: AlgebraicType): string[] {
  if (ty.tag !== 'Sum') throw new TypeError('expected a sum type');
  return ty.value.variants.map(v => v.name!);
}

// ---------------------------------------------------------------------------
// Errors

/** A byte sequence that is not a valid protocol message. `message` never contains payload bytes. */
export class ProtocolDecodeError extends Error {
  override readonly name = 'ProtocolDecodeError';
  /** Byte offset (within the decoded buffer) where the problem was found. */
  readonly offset: number;
  /**
   * For multi-message (v3) payloads: the messages decoded successfully before
   * the bad one. The real server handles those before it closes the socket.
   */
  decoded: unknown[] = [];
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

// ---------------------------------------------------------------------------
// Encoding

const INITIAL_WRITER_BYTES = 1024;
let scratch = new BinaryWriter(INITIAL_WRITER_BYTES);
/** Don't keep a scratch buffer bigger than this alive between calls. */
const MAX_RETAINED_SCRATCH = 4 * 1024 * 1024;

function encodeWith<T>(builder: { serialize(w: BinaryWriter, v: T): void }, value: T): Uint8Array {
  const writer = scratch;
  writer.clear();
  try {
    builder.serialize(writer, value);
    // Copy out exactly the encoded bytes: the scratch buffer is reused.
    return writer.getBuffer().slice();
  } finally {
    writer.clear();
    if (writer.buffer.capacity > MAX_RETAINED_SCRATCH) scratch = new BinaryWriter(INITIAL_WRITER_BYTES);
  }
}

/** BSATN bytes of one v2 server message (no compression tag). */
export function encodeServerMessage(msg: ServerMessage): Uint8Array {
  return encodeWith(ServerMessage, msg);
}

/** BSATN bytes of one v2 client message. */
export function encodeClientMessage(msg: ClientMessage): Uint8Array {
  return encodeWith(ClientMessage, msg);
}

// ---------------------------------------------------------------------------
// Strict decoding

/** Cursor over a byte buffer; every read is bounds-checked. */
export class StrictReader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset: number;
  readonly end: number;
  constructor(bytes: Uint8Array, offset = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
    this.end = end;
  }
  get remaining(): number {
    return this.end - this.offset;
  }
  need(n: number, what: string): void {
    if (n > this.end - this.offset) {
      throw new ProtocolDecodeError(
        `truncated message: ${what} needs ${n} byte(s) at offset ${this.offset}, only ${this.end - this.offset} left`,
        this.offset,
      );
    }
  }
}

type Decoder = (r: StrictReader, path: string) => unknown;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const FIXED: Record<string, [size: number, read: (v: DataView, o: number) => unknown]> = {
  Bool: [1, (v, o) => v.getUint8(o)],
  U8: [1, (v, o) => v.getUint8(o)],
  I8: [1, (v, o) => v.getInt8(o)],
  U16: [2, (v, o) => v.getUint16(o, true)],
  I16: [2, (v, o) => v.getInt16(o, true)],
  U32: [4, (v, o) => v.getUint32(o, true)],
  I32: [4, (v, o) => v.getInt32(o, true)],
  U64: [8, (v, o) => v.getBigUint64(o, true)],
  I64: [8, (v, o) => v.getBigInt64(o, true)],
  U128: [16, (v, o) => v.getBigUint64(o, true) | (v.getBigUint64(o + 8, true) << 64n)],
  I128: [16, (v, o) => v.getBigUint64(o, true) | (v.getBigInt64(o + 8, true) << 64n)],
  U256: [32, (v, o) => readWideLE(v, o, false)],
  I256: [32, (v, o) => readWideLE(v, o, true)],
  F32: [4, (v, o) => v.getFloat32(o, true)],
  F64: [8, (v, o) => v.getFloat64(o, true)],
};

function readWideLE(v: DataView, o: number, signed: boolean): bigint {
  let x = 0n;
  for (let i = 3; i >= 0; i--) {
    const word = i === 3 && signed ? v.getBigInt64(o + i * 8, true) : v.getBigUint64(o + i * 8, true);
    x = (x << 64n) | (i === 3 ? word : BigInt.asUintN(64, word));
  }
  return x;
}

/** Single-field products the SDK represents as classes (same list as the SDK's special types). */
const SPECIAL_PRODUCTS: Record<string, (x: bigint) => unknown> = {
  __identity__: x => new Identity(x),
  __connection_id__: x => new ConnectionId(x),
  __timestamp_micros_since_unix_epoch__: x => new Timestamp(x),
  __time_duration_micros__: x => new TimeDuration(x),
};

const decoders = new Map<AlgebraicType, Decoder>();
const minSizes = new Map<AlgebraicType, number>();

/** Smallest possible encoding of a value of `ty` (used to reject absurd array lengths early). */
function minSize(ty: AlgebraicType): number {
  const cached = minSizes.get(ty);
  if (cached !== undefined) return cached;
  let n: number;
  switch (ty.tag) {
    case 'String':
    case 'Array':
      n = 4;
      break;
    case 'Product':
      n = ty.value.elements.reduce((acc, e) => acc + minSize(e.algebraicType), 0);
      break;
    case 'Sum':
      n = 1 + Math.min(...ty.value.variants.map(v => minSize(v.algebraicType)));
      break;
    case 'Ref':
      throw new TypeError('protocol types never contain refs');
    default:
      n = FIXED[ty.tag]![0];
  }
  minSizes.set(ty, n);
  return n;
}

function isUnit(ty: AlgebraicType): boolean {
  return ty.tag === 'Product' && ty.value.elements.length === 0;
}

function compile(ty: AlgebraicType, label: string): Decoder {
  const cached = decoders.get(ty);
  if (cached) return cached;
  let dec: Decoder;
  switch (ty.tag) {
    case 'String':
      dec = (r, path) => {
        r.need(4, `${path} (string length)`);
        const len = r.view.getUint32(r.offset, true);
        r.offset += 4;
        r.need(len, `${path} (string data)`);
        const start = r.offset;
        r.offset += len;
        try {
          return utf8.decode(r.bytes.subarray(start, start + len));
        } catch {
          throw new ProtocolDecodeError(`invalid UTF-8 in ${path} at offset ${start}`, start);
        }
      };
      break;
    case 'Array': {
      const elem = ty.value;
      if (elem.tag === 'U8') {
        dec = (r, path) => {
          r.need(4, `${path} (byte array length)`);
          const len = r.view.getUint32(r.offset, true);
          r.offset += 4;
          r.need(len, `${path} (byte array data)`);
          const start = r.offset;
          r.offset += len;
          // Copy: decoded values may outlive the frame buffer.
          return r.bytes.slice(start, start + len);
        };
      } else {
        const elemMin = minSize(elem);
        let elemDec: Decoder | undefined;
        dec = (r, path) => {
          r.need(4, `${path} (array length)`);
          const len = r.view.getUint32(r.offset, true);
          const at = r.offset;
          r.offset += 4;
          if (elemMin > 0 && len * elemMin > r.remaining) {
            throw new ProtocolDecodeError(
              `truncated message: ${path} claims ${len} element(s) at offset ${at}, only ${r.remaining} byte(s) left`,
              at,
            );
          }
          elemDec ??= compile(elem, `${label}[]`);
          const out = new Array(len);
          for (let i = 0; i < len; i++) out[i] = elemDec(r, `${path}[${i}]`);
          return out;
        };
      }
      break;
    }
    case 'Product': {
      const elements = ty.value.elements;
      const first = elements[0];
      const special = elements.length === 1 && first ? SPECIAL_PRODUCTS[first.name!] : undefined;
      if (special && first) {
        const inner = compile(first.algebraicType, first.name!);
        dec = (r, path) => special(inner(r, path) as bigint);
        break;
      }
      const names = elements.map(e => e.name!);
      let fieldDecs: Decoder[] | undefined;
      dec = (r, path) => {
        fieldDecs ??= elements.map(e => compile(e.algebraicType, e.name!));
        const out: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i++) out[names[i]!] = fieldDecs[i]!(r, `${path}.${names[i]}`);
        return out;
      };
      break;
    }
    case 'Sum': {
      const variants = ty.value.variants;
      const isOption = variants.length === 2 && variants[0]!.name === 'some' && variants[1]!.name === 'none';
      let variantDecs: Decoder[] | undefined;
      const units = variants.map(v => isUnit(v.algebraicType));
      dec = (r, path) => {
        r.need(1, `${path} (tag)`);
        const at = r.offset;
        const tag = r.view.getUint8(at);
        r.offset += 1;
        if (tag >= variants.length) {
          throw new ProtocolDecodeError(
            `unknown ${isOption ? 'option' : 'variant'} tag ${tag} for ${path} at offset ${at} (expected 0..${variants.length - 1})`,
            at,
          );
        }
        variantDecs ??= variants.map(v => compile(v.algebraicType, v.name!));
        const name = variants[tag]!.name!;
        if (isOption) return tag === 0 ? variantDecs[0]!(r, path) : undefined;
        if (units[tag]) return { tag: name };
        return { tag: name, value: variantDecs[tag]!(r, `${path}(${name})`) };
      };
      break;
    }
    case 'Bool':
      dec = (r, path) => {
        r.need(1, path);
        const b = r.view.getUint8(r.offset);
        if (b > 1) throw new ProtocolDecodeError(`invalid bool ${b} for ${path} at offset ${r.offset}`, r.offset);
        r.offset += 1;
        return b === 1;
      };
      break;
    case 'Ref':
      throw new TypeError('protocol types never contain refs');
    default: {
      const [size, read] = FIXED[ty.tag]!;
      dec = (r, path) => {
        r.need(size, path);
        const v = read(r.view, r.offset);
        r.offset += size;
        return v;
      };
    }
  }
  decoders.set(ty, dec);
  return dec;
}

const decodeClientValue = compile(ClientMessage.algebraicType, 'ClientMessage');
const decodeServerValue = compile(ServerMessage.algebraicType, 'ServerMessage');

function checkClientMessage(msg: ClientMessage, at: number): void {
  if ((msg.tag === 'CallReducer' || msg.tag === 'CallProcedure') && msg.value.flags !== 0) {
    const kind = msg.tag === 'CallReducer' ? 'call reducer' : 'call procedure';
    throw new ProtocolDecodeError(`invalid ${kind} flag ${msg.value.flags} at offset ${at}`, at);
  }
}

/**
 * Decode one client message starting at `reader.offset`, advancing it.
 * Does not check for trailing bytes (see {@link decodeClientMessage}).
 */
export function readClientMessage(reader: StrictReader): ClientMessage {
  const start = reader.offset;
  if (reader.remaining === 0) throw new ProtocolDecodeError(`empty ClientMessage at offset ${start}`, start);
  const msg = decodeClientValue(reader, 'ClientMessage') as ClientMessage;
  checkClientMessage(msg, start);
  return msg;
}

/** Decode one server message starting at `reader.offset`, advancing it. */
export function readServerMessage(reader: StrictReader): ServerMessage {
  const start = reader.offset;
  if (reader.remaining === 0) throw new ProtocolDecodeError(`empty ServerMessage at offset ${start}`, start);
  return decodeServerValue(reader, 'ServerMessage') as ServerMessage;
}

function rejectTrailing(reader: StrictReader, what: string): void {
  if (reader.remaining !== 0) {
    throw new ProtocolDecodeError(
      `${reader.remaining} trailing byte(s) after ${what} at offset ${reader.offset}`,
      reader.offset,
    );
  }
}

/** Decode exactly one v2 client message; throws {@link ProtocolDecodeError} on any malformed input. */
export function decodeClientMessage(bytes: Uint8Array): ClientMessage {
  const reader = new StrictReader(bytes);
  const msg = readClientMessage(reader);
  rejectTrailing(reader, 'ClientMessage');
  return msg;
}

/** Decode exactly one v2 server message (no compression tag); throws {@link ProtocolDecodeError}. */
export function decodeServerMessage(bytes: Uint8Array): ServerMessage {
  const reader = new StrictReader(bytes);
  const msg = readServerMessage(reader);
  rejectTrailing(reader, 'ServerMessage');
  return msg;
}

/** Decode a value of any of the builders above (e.g. a lone `BsatnRowList`), strictly. */
export function decodeStrict<T>(builder: { algebraicType: AlgebraicType; serialize(w: BinaryWriter, v: T): void }, bytes: Uint8Array, label = 'value'): T {
  const reader = new StrictReader(bytes);
  const value = compile(builder.algebraicType, label)(reader, label) as T;
  rejectTrailing(reader, label);
  return value;
}
