/**
 * Types shared by the dev server's parts (module host, datastore, SQL engine,
 * protocol). Kept free of logic so every part can depend on it.
 */
import type { AlgebraicType } from 'spacetimedb';

/**
 * One stored row. `bytes` is its BSATN encoding (what travels on the wire),
 * `value` the decoded object as the SDK's `AlgebraicType.makeDeserializer`
 * produces it (bigint for 64-bit and wider integers, `Identity`,
 * `ConnectionId`, `Timestamp`, `TimeDuration` objects, `Uint8Array`… ), and
 * `key` a string that is equal for two rows exactly when their bytes are equal
 * (the row's identity in a set-semantics table).
 */
export interface StoredRow {
  readonly bytes: Uint8Array;
  readonly value: Record<string, unknown>;
  readonly key: string;
}

/** A column as SQL sees it. */
export interface ColumnInfo {
  /** Position in the row's product type. */
  readonly index: number;
  /** The canonical (SQL, wire) column name, e.g. `owner_id`. */
  readonly name: string;
  /** The key of this column in a decoded row object (`StoredRow.value`). */
  readonly field: string;
  /** The column's type with every `Ref` resolved. */
  readonly type: AlgebraicType;
}

/** A table as SQL sees it. */
export interface TableInfo {
  /** The canonical table name: the name on the wire and in SQL. */
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  /** Column positions of the primary key (empty when there is none). */
  readonly primaryKey: readonly number[];
  /** Single-column indexes (column positions) usable for joins. */
  readonly indexedColumns: ReadonlySet<number>;
  /** Whether clients may subscribe to it. */
  readonly isPublic: boolean;
  readonly isEvent: boolean;
}

/** What the SQL engine needs from the datastore. */
export interface DataSource {
  /** Every row of a table (current, committed state). */
  scan(table: string): Iterable<StoredRow>;
  /**
   * Rows of `table` whose column at position `column` equals `value`
   * (decoded form). Used for join probes; the datastore answers from an
   * index where it has one.
   */
  lookup(table: string, column: number, value: unknown): Iterable<StoredRow>;
}

/** The net effect of one committed transaction on one table. */
export interface TableChange {
  readonly inserts: readonly StoredRow[];
  readonly deletes: readonly StoredRow[];
}

/** The net effect of one committed transaction, by canonical table name. */
export type ChangeSet = ReadonlyMap<string, TableChange>;
