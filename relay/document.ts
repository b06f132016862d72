/**
 * A stream's published document and its version.
 *
 * The version is a content hash: the sum (mod 2^64) of one 64-bit hash per
 * row, taken over the table name, the row key and the row's JSON text. Every
 * relay holding the same rows computes the same version, whatever it saw
 * before, and a transaction changes the sum in time proportional to the rows
 * it touched. See docs/spectator.md ("Versions").
 *
 * @module
 */
import * as crypto from 'node:crypto';
import { escapeKey, unescapeKey, type JsonValue } from '../operators/jsonCodec.ts';
import type { DeltaOperation } from '../operators/jsonPatchDelta.ts';
import type { StreamDocument } from './protocol.ts';

const MASK = (1n << 64n) - 1n;

/** One-shot hashing (Node ≥ 20.12): about a third of the cost of a `createHash` chain per row. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** The first 64 bits (big-endian) of SHA-256 over `table \0 key \0 json`. */
function rowHash(table: string, key: string, json: string): bigint {
  if (oneShot) return BigInt(`0x${oneShot('sha256', `${table}\0${key}\0${json}`, 'hex').slice(0, 16)}`);
  const digest = crypto.createHash('sha256').update(table).update('\0').update(key).update('\0').update(json).digest();
  return digest.readBigUInt64BE(0);
}

/** The version string of a hash sum: 16 lowercase hex digits. */
export function formatVersion(sum: bigint): string {
  return sum.toString(16).padStart(16, '0');
}

/**
 * The document spectators see, mutated only by {@link VersionedDocument.apply}.
 * Row objects are never changed in place (a changed row is a new object), so
 * operation values and rows can be shared with whoever produced them.
 */
export class VersionedDocument {
  readonly data: StreamDocument = Object.create(null);
  #rowHashes = new Map<string, bigint>();
  #sum = 0n;

  constructor(tables: readonly string[]) {
    for (const t of tables) this.data[t] = Object.create(null);
  }

  get version(): string {
    return formatVersion(this.#sum);
  }

  /**
   * Applies operations whose paths are `/<table>/<key>` or
   * `/<table>/<key>/<field>` (what the relay produces) and updates the version.
   * @throws {Error} For any other path (a relay bug; the document is then unusable).
   */
  apply(ops: readonly DeltaOperation[]): void {
    const touched = new Set<string>();
    for (const op of ops) {
      const parts = op.path.split('/');
      if (parts.length < 3 || parts.length > 4 || parts[0] !== '') throw new Error(`relay: unexpected patch path ${op.path}`);
      const table = unescapeKey(parts[1]);
      const key = unescapeKey(parts[2]);
      const rows = this.data[table];
      if (rows === undefined) throw new Error(`relay: patch for unknown table ${table}`);
      if (parts.length === 3) {
        if (op.op === 'remove') delete rows[key];
        else rows[key] = op.value;
      } else {
        const field = unescapeKey(parts[3]);
        const row = rows[key] as Record<string, JsonValue> | undefined;
        if (row === undefined || row === null || typeof row !== 'object') throw new Error(`relay: field patch for missing row ${op.path}`);
        const next: Record<string, JsonValue> = { ...row };
        if (op.op === 'remove') delete next[field];
        else next[field] = op.value;
        rows[key] = next;
      }
      touched.add(`${parts[1]}/${parts[2]}`);
    }
    for (const id of touched) {
      const slash = id.indexOf('/');
      const table = unescapeKey(id.slice(0, slash));
      const key = unescapeKey(id.slice(slash + 1));
      const old = this.#rowHashes.get(id);
      if (old !== undefined) this.#sum = (this.#sum - old) & MASK;
      const row = this.data[table][key];
      if (row === undefined) {
        this.#rowHashes.delete(id);
      } else {
        const h = rowHash(table, key, JSON.stringify(row));
        this.#rowHashes.set(id, h);
        this.#sum = (this.#sum + h) & MASK;
      }
    }
  }
}

/** `/<table><path>`: a table-relative path moved under the table's name. */
export function prefixPath(table: string, path: string): string {
  return `/${escapeKey(table)}${path}`;
}
