/**
 * Building and splitting `BsatnRowList`s.
 *
 * The hint follows what SpacetimeDB's own server produces (docs/protocol.md,
 * "Encoding: BSATN in brief"):
 * - no rows → `RowOffsets([])`;
 * - every row the same non-zero length n with n ≤ 65535 → `FixedSize(n)`
 *   (also for a single row);
 * - otherwise (lengths differ, rows of length 0, or n > u16) → `RowOffsets`
 *   with the start offset of every row.
 * The SDK ignores the hint and decodes rows back to back, but other clients
 * rely on it.
 */
import type { BsatnRowList, RowSizeHint } from './messages.ts';

const MAX_FIXED_SIZE = 0xffff;

/** The hint for rows of these lengths (see the module comment). */
export function sizeHintFor(lengths: readonly number[]): RowSizeHint {
  const n = lengths.length;
  if (n === 0) return { tag: 'RowOffsets', value: [] };
  const first = lengths[0]!;
  let fixed = first > 0 && first <= MAX_FIXED_SIZE;
  for (let i = 1; fixed && i < n; i++) if (lengths[i] !== first) fixed = false;
  if (fixed) return { tag: 'FixedSize', value: first };
  const offsets = new Array<bigint>(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    offsets[i] = BigInt(at);
    at += lengths[i]!;
  }
  return { tag: 'RowOffsets', value: offsets };
}

/** Pack already-encoded rows into one `BsatnRowList` (a single allocation for `rowsData`). */
export function buildRowList(rows: readonly Uint8Array[]): BsatnRowList {
  let total = 0;
  const lengths = new Array<number>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const len = rows[i]!.length;
    lengths[i] = len;
    total += len;
  }
  const rowsData = new Uint8Array(total);
  let at = 0;
  for (const row of rows) {
    rowsData.set(row, at);
    at += row.length;
  }
  return { sizeHint: sizeHintFor(lengths), rowsData };
}

/** An empty row list, as the real server encodes it. */
export function emptyRowList(): BsatnRowList {
  return { sizeHint: { tag: 'RowOffsets', value: [] }, rowsData: new Uint8Array(0) };
}

/** Number of rows the list holds according to its hint. */
export function rowCount(list: BsatnRowList): number {
  const hint = list.sizeHint;
  if (hint.tag === 'FixedSize') return hint.value === 0 ? 0 : Math.floor(list.rowsData.length / hint.value);
  return hint.value.length;
}

/** Thrown by {@link splitRowList} when a hint does not describe its data. */
export class RowListError extends Error {
  override readonly name = 'RowListError';
}

/**
 * Split a row list back into its rows (views into `rowsData`), checking that
 * the hint is consistent with the data.
 */
export function splitRowList(list: BsatnRowList): Uint8Array[] {
  const data = list.rowsData;
  const hint = list.sizeHint;
  if (hint.tag === 'FixedSize') {
    const size = hint.value;
    if (size === 0) {
      if (data.length !== 0) throw new RowListError('FixedSize(0) hint with non-empty rowsData');
      return [];
    }
    if (data.length % size !== 0) {
      throw new RowListError(`rowsData length ${data.length} is not a multiple of FixedSize(${size})`);
    }
    const out: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
    return out;
  }
  const offsets = hint.value;
  if (offsets.length === 0) {
    if (data.length !== 0) throw new RowListError('empty RowOffsets hint with non-empty rowsData');
    return [];
  }
  if (offsets[0] !== 0n) throw new RowListError(`first row offset is ${offsets[0]}, expected 0`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < offsets.length; i++) {
    const start = Number(offsets[i]!);
    const end = i + 1 < offsets.length ? Number(offsets[i + 1]!) : data.length;
    if (end < start || end > data.length) throw new RowListError(`row ${i} offsets ${start}..${end} out of range`);
    out.push(data.subarray(start, end));
  }
  return out;
}
