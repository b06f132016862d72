/**
 * Durability for the dev server: an append-only commit log of every
 * committed transaction (fsync'd before the reducer's result is sent) and
 * periodic snapshots, so a restart rebuilds the state from the latest snapshot
 * plus the log records after it.
 *
 * Log record: `u32 length ‖ u32 crc32(payload) ‖ payload`, little-endian.
 * Payload (BSATN): `u64 txOffset ‖ u32 tableCount ‖ (string table ‖
 * u32 deleteCount ‖ bytes… ‖ u32 insertCount ‖ bytes…)…`. A record whose
 * length or checksum does not hold — a crash in the middle of a write — ends
 * the log: it is reported and cut off, and everything before it is kept.
 *
 * Snapshot file `snapshot.bin`: `magic ‖ u32 crc32(body) ‖ body`, body =
 * `u64 txOffset ‖ u32 tableCount ‖ (string table ‖ u32 rowCount ‖ bytes…)…`,
 * written to a temporary file, fsync'd and renamed over the old one.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { BinaryReader, BinaryWriter } from 'spacetimedb';
import type { ChangeSet } from './types.ts';

const LOG_FILE = 'commitlog.bin';
const SNAPSHOT_FILE = 'snapshot.bin';
const SNAPSHOT_MAGIC = 0x53545852; // "STXR"

/** What was recovered from a data folder. */
export interface RecoveredState {
  /** Rows by canonical table name (BSATN). */
  readonly tables: Map<string, Uint8Array[]>;
  /** Offset of the last transaction recovered (0 for a new folder). */
  readonly txOffset: bigint;
  /** Log records replayed on top of the snapshot. */
  readonly replayed: number;
  /** Set when a torn or corrupt tail was cut off. */
  readonly truncated?: { readonly atByte: number; readonly droppedBytes: number; readonly reason: string };
  /** Whether the folder held any state at all. */
  readonly existed: boolean;
}

export class PersistenceError extends Error {
  override readonly name = 'PersistenceError';
}

function encodeChanges(txOffset: bigint, changes: ChangeSet): Uint8Array {
  const w = new BinaryWriter(256);
  w.writeU64(txOffset);
  w.writeU32(changes.size);
  for (const [table, c] of changes) {
    w.writeString(table);
    w.writeU32(c.deletes.length);
    for (const r of c.deletes) w.writeUInt8Array(r.bytes);
    w.writeU32(c.inserts.length);
    for (const r of c.inserts) w.writeUInt8Array(r.bytes);
  }
  return w.getBuffer();
}

/** Applies decoded records to a table → (row key → bytes) map. */
function applyRecord(state: Map<string, Map<string, Uint8Array>>, reader: BinaryReader): bigint {
  const txOffset = reader.readU64();
  const n = reader.readU32();
  for (let i = 0; i < n; i++) {
    const table = reader.readString();
    let rows = state.get(table);
    if (!rows) state.set(table, (rows = new Map()));
    const dels = reader.readU32();
    for (let j = 0; j < dels; j++) rows.delete(keyOf(reader.readUInt8Array()));
    const ins = reader.readU32();
    for (let j = 0; j < ins; j++) {
      const bytes = reader.readUInt8Array().slice();
      rows.set(keyOf(bytes), bytes);
    }
  }
  return txOffset;
}

const keyOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** The commit log and snapshots of one data folder. */
export class DataDir {
  readonly #dir: string;
  #fd: number | undefined;
  #txOffset = 0n;
  #sinceSnapshot = 0;

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get path(): string {
    return this.#dir;
  }

  get txOffset(): bigint {
    return this.#txOffset;
  }

  /** Read the snapshot and the log, cutting off a torn tail. Opens the log for appending. */
  recover(): RecoveredState {
    const state = new Map<string, Map<string, Uint8Array>>();
    let txOffset = 0n;
    const snapPath = join(this.#dir, SNAPSHOT_FILE);
    const logPath = join(this.#dir, LOG_FILE);
    const existed = existsSync(snapPath) || existsSync(logPath);
    if (existsSync(snapPath)) {
      const buf = readFileSync(snapPath);
      if (buf.length < 8 || buf.readUInt32LE(0) !== SNAPSHOT_MAGIC || buf.readUInt32LE(4) !== crc32(buf.subarray(8))) {
        throw new PersistenceError(`snapshot ${snapPath} is corrupt; move it away to start from the commit log alone`);
      }
      const r = new BinaryReader(new Uint8Array(buf.buffer, buf.byteOffset + 8, buf.length - 8));
      txOffset = r.readU64();
      const n = r.readU32();
      for (let i = 0; i < n; i++) {
        const table = r.readString();
        const rows = new Map<string, Uint8Array>();
        const count = r.readU32();
        for (let j = 0; j < count; j++) {
          const bytes = r.readUInt8Array().slice();
          rows.set(keyOf(bytes), bytes);
        }
        state.set(table, rows);
      }
    }
    let replayed = 0;
    let truncated: RecoveredState['truncated'];
    let goodEnd = 0;
    if (existsSync(logPath)) {
      const log = readFileSync(logPath);
      let at = 0;
      while (at < log.length) {
        if (log.length - at < 8) {
          truncated = { atByte: at, droppedBytes: log.length - at, reason: 'incomplete record header' };
          break;
        }
        const len = log.readUInt32LE(at);
        const sum = log.readUInt32LE(at + 4);
        if (at + 8 + len > log.length) {
          truncated = { atByte: at, droppedBytes: log.length - at, reason: 'incomplete record' };
          break;
        }
        const payload = log.subarray(at + 8, at + 8 + len);
        if (crc32(payload) !== sum) {
          truncated = { atByte: at, droppedBytes: log.length - at, reason: 'checksum mismatch' };
          break;
        }
        const r = new BinaryReader(new Uint8Array(payload.buffer, payload.byteOffset, payload.length));
        const recOffset = r.readU64();
        if (recOffset > txOffset) {
          r.offset = 0;
          txOffset = applyRecord(state, r);
          replayed++;
        }
        at += 8 + len;
        goodEnd = at;
      }
    }
    this.#fd = openSync(logPath, 'a+');
    if (truncated) {
      ftruncateSync(this.#fd, goodEnd);
      fsyncSync(this.#fd);
    }
    this.#txOffset = txOffset;
    const tables = new Map<string, Uint8Array[]>();
    for (const [t, rows] of state) tables.set(t, [...rows.values()]);
    return { tables, txOffset, replayed, truncated, existed };
  }

  /** Append one committed transaction and fsync it. */
  append(changes: ChangeSet): void {
    if (this.#fd === undefined) throw new PersistenceError('the commit log is not open');
    const offset = this.#txOffset + 1n;
    const payload = encodeChanges(offset, changes);
    const record = Buffer.allocUnsafe(8 + payload.length);
    record.writeUInt32LE(payload.length, 0);
    record.writeUInt32LE(crc32(payload), 4);
    record.set(payload, 8);
    let written = 0;
    while (written < record.length) written += writeSync(this.#fd, record, written);
    fsyncSync(this.#fd);
    this.#txOffset = offset;
    this.#sinceSnapshot++;
  }

  /** Whether enough transactions have passed since the last snapshot. */
  snapshotDue(every: number): boolean {
    return this.#sinceSnapshot >= every;
  }

  /**
   * Write a snapshot of every table at the current offset and start a fresh
   * log: what the snapshot holds no longer needs replaying.
   */
  snapshot(tables: Iterable<[string, Iterable<Uint8Array>]>): void {
    const w = new BinaryWriter(4096);
    w.writeU64(this.#txOffset);
    const list = [...tables].map(([n, rows]) => [n, [...rows]] as const);
    w.writeU32(list.length);
    for (const [name, rows] of list) {
      w.writeString(name);
      w.writeU32(rows.length);
      for (const r of rows) w.writeUInt8Array(r);
    }
    const body = w.getBuffer();
    const head = Buffer.alloc(8);
    head.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    head.writeUInt32LE(crc32(body), 4);
    const tmp = join(this.#dir, `${SNAPSHOT_FILE}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, head);
      let written = 0;
      while (written < body.length) written += writeSync(fd, body, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.#dir, SNAPSHOT_FILE));
    // The snapshot covers the whole log: start it over.
    if (this.#fd !== undefined) {
      ftruncateSync(this.#fd, 0);
      fsyncSync(this.#fd);
    }
    this.#sinceSnapshot = 0;
  }

  /** Bytes in the commit log (for tests and stats). */
  logBytes(): number {
    return this.#fd === undefined ? 0 : fstatSync(this.#fd).size;
  }

  close(): void {
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }
}
