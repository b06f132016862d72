/**
 * Scheduled tables. Every row of a scheduled table is a timer: its
 * `ScheduleAt` column says when (`Time`: at that instant; `Interval`: every
 * so often, starting one interval after the row was written), and when it
 * is due the table's reducer or procedure is called with the row, as the
 * database's own identity.
 *
 * The scheduler follows the committed rows: a transaction that deletes a
 * row cancels its timer, one that inserts or updates it (re-)arms it from
 * the commit's time. After a one-shot (`Time`) row has run it is deleted;
 * an interval row is re-armed at the first tick after now, anchored at the
 * time it was due (missed ticks are skipped, delays do not accumulate).
 *
 * Time comes from a {@link DevClock}, so tests drive it with a
 * {@link ManualClock} instead of sleeping.
 */
import type { ChangeSet, StoredRow } from '../types.ts';
import type { ScheduleDesc, TableDesc } from './moduleDef.ts';

/** The dev server's time source. */
export interface DevClock {
  /** Microseconds since the Unix epoch. */
  now(): bigint;
  /** Call `fn` once, `delayMicros` from now (at once when it is 0 or less). Returns a cancel function. */
  setTimer(delayMicros: bigint, fn: () => void): () => void;
}

/** Node's timers hold at most this many milliseconds; longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The wall clock and Node's timers (unref'd: a pending schedule does not keep the process alive). */
export const systemClock: DevClock = {
  now: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)),
  setTimer(delayMicros, fn) {
    let handle: ReturnType<typeof setTimeout> | undefined;
    const due = systemClock.now() + (delayMicros > 0n ? delayMicros : 0n);
    const wait = () => {
      const left = due - systemClock.now();
      const ms = left <= 0n ? 0 : Math.min(MAX_TIMEOUT_MS, Math.ceil(Number(left) / 1000));
      handle = setTimeout(() => {
        // Node's timers may fire up to a millisecond early (loop time is cached in whole ms), and
        // waits beyond MAX_TIMEOUT_MS are chained: never run a schedule before its time.
        if (systemClock.now() < due) return wait();
        handle = undefined;
        fn();
      }, ms);
      handle.unref?.();
    };
    wait();
    return () => {
      if (handle !== undefined) clearTimeout(handle);
      handle = undefined;
    };
  },
};

/**
 * A clock that moves only when told to: `advance` runs every timer that comes
 * due, in time order, each seeing `now()` at its own due time.
 */
export class ManualClock implements DevClock {
  #now: bigint;
  #seq = 0;
  readonly #timers = new Map<number, { at: bigint; fn: () => void }>();

  /** @param startMicros the initial time, microseconds since the Unix epoch. @default the wall clock's now */
  constructor(startMicros: bigint = systemClock.now()) {
    this.#now = startMicros;
  }

  now(): bigint {
    return this.#now;
  }

  setTimer(delayMicros: bigint, fn: () => void): () => void {
    const id = this.#seq++;
    this.#timers.set(id, { at: this.#now + (delayMicros > 0n ? delayMicros : 0n), fn });
    return () => void this.#timers.delete(id);
  }

  /** A guard against timers that re-arm at the same instant forever. */
  static readonly MAX_TIMERS_PER_ADVANCE = 1_000_000;

  /** Timers not yet run. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Move time forward by `ms` milliseconds (0 runs what is already due). */
  advance(ms: number): void {
    this.advanceMicros(BigInt(Math.round(ms * 1000)));
  }

  advanceMicros(micros: bigint): void {
    if (micros < 0n) throw new RangeError('a clock cannot go backwards');
    const target = this.#now + micros;
    for (let ran = 0; ; ran++) {
      if (ran >= ManualClock.MAX_TIMERS_PER_ADVANCE) {
        throw new Error(`ManualClock.advance ran ${ran} timers without reaching its target (a zero-length interval?)`);
      }
      let next: [number, { at: bigint; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      this.#timers.delete(next[0]);
      if (next[1].at > this.#now) this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = target;
  }
}

/** A decoded `ScheduleAt`. */
export type ScheduleAtValue = { readonly tag: 'Time'; readonly micros: bigint } | { readonly tag: 'Interval'; readonly micros: bigint };

/** Read the `ScheduleAt` column of a decoded row. */
export function readScheduleAt(value: unknown): ScheduleAtValue {
  const v = value as { tag?: string; value?: Record<string, unknown> } | undefined;
  if (v?.tag === 'Time' && v.value) {
    return { tag: 'Time', micros: BigInt(v.value.__timestamp_micros_since_unix_epoch__ as bigint) };
  }
  if (v?.tag === 'Interval' && v.value) {
    return { tag: 'Interval', micros: BigInt(v.value.__time_duration_micros__ as bigint) };
  }
  throw new TypeError(`not a ScheduleAt value: ${String(v?.tag)}`);
}

/** First interval tick strictly after `now`, counted from `lastDue` (missed ticks skipped). */
export function nextIntervalTick(lastDue: bigint, interval: bigint, now: bigint): bigint {
  const step = interval < 0n ? -interval : interval;
  if (step === 0n) return lastDue;
  const elapsed = now - lastDue;
  const ticks = elapsed <= 0n ? 1n : elapsed / step + 1n;
  return lastDue + step * ticks;
}

/** One timer that came due. */
export interface DueSchedule {
  readonly schedule: ScheduleDesc;
  /** The row's schedule id (its primary key value). */
  readonly id: unknown;
  /** When it was due (microseconds since the Unix epoch). */
  readonly dueAt: bigint;
}

interface Armed {
  readonly dueAt: bigint;
  readonly cancel: () => void;
}

export class Scheduler {
  readonly #clock: DevClock;
  readonly #onDue: (due: DueSchedule) => void;
  readonly #byTable = new Map<string, { schedule: ScheduleDesc; field: string; atField: string }>();
  readonly #armed = new Map<string, Armed>();
  #stopped = false;

  /**
   * @param onDue called when a row's time has come; the row is no longer armed
   *   then (re-arm an interval with {@link rearmAfterRun}).
   */
  constructor(schedules: readonly ScheduleDesc[], tables: readonly TableDesc[], clock: DevClock, onDue: (due: DueSchedule) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
    for (const s of schedules) {
      const table = tables.find((t) => t.name === s.table);
      if (!table) throw new Error(`scheduled table ${s.table} is not declared`);
      this.#byTable.set(s.table, { schedule: s, field: table.columns[s.idColumn].field, atField: table.columns[s.scheduleAtColumn].field });
    }
  }

  get clock(): DevClock {
    return this.#clock;
  }

  /** Rows currently waiting for their time. */
  get armedCount(): number {
    return this.#armed.size;
  }

  /** When the row with schedule id `id` of `table` is next due, if it is armed. */
  dueAt(table: string, id: unknown): bigint | undefined {
    return this.#armed.get(keyOf(table, id))?.dueAt;
  }

  /** Scheduled table description by canonical table name. */
  scheduleOf(table: string): ScheduleDesc | undefined {
    return this.#byTable.get(table)?.schedule;
  }

  /** The schedule id of a row of scheduled table `table`. */
  idOf(table: string, row: StoredRow): unknown {
    const t = this.#byTable.get(table);
    return t ? row.value[t.field] : undefined;
  }

  /** Arm every row of every scheduled table (at start: `Time` rows in the past come due at once). */
  armAll(rowsOf: (table: string) => Iterable<StoredRow>): void {
    for (const [table] of this.#byTable) for (const row of rowsOf(table)) this.#armRow(table, row);
  }

  /** Follow a committed transaction: deleted rows cancel, inserted ones (re-)arm. */
  onCommit(changes: ChangeSet): void {
    if (this.#stopped) return;
    for (const [table, change] of changes) {
      if (!this.#byTable.has(table)) continue;
      for (const row of change.deletes) this.#cancel(keyOf(table, this.idOf(table, row)));
      for (const row of change.inserts) this.#armRow(table, row);
    }
  }

  /**
   * After a due row ran: when it still exists, is an interval, and nothing
   * re-armed it meanwhile, arm its next tick. Returns what remains to do:
   * `'delete'` for a one-shot row still present.
   */
  rearmAfterRun(due: DueSchedule, row: StoredRow | undefined): 'delete' | 'none' {
    if (!row || this.#stopped) return 'none';
    const table = due.schedule.table;
    const key = keyOf(table, due.id);
    if (this.#armed.has(key)) return 'none';
    const at = this.#scheduleAtOf(table, row);
    if (at.tag === 'Time') return 'delete';
    this.#arm(due.schedule, due.id, nextIntervalTick(due.dueAt, at.micros, this.#clock.now()));
    return 'none';
  }

  /** Cancel every timer (the server stops or reloads the module). */
  stop(): void {
    this.#stopped = true;
    for (const a of this.#armed.values()) a.cancel();
    this.#armed.clear();
  }

  #scheduleAtOf(table: string, row: StoredRow): ScheduleAtValue {
    return readScheduleAt(row.value[this.#byTable.get(table)!.atField]);
  }

  #armRow(table: string, row: StoredRow) {
    const t = this.#byTable.get(table)!;
    const at = this.#scheduleAtOf(table, row);
    const now = this.#clock.now();
    this.#arm(t.schedule, row.value[t.field], at.tag === 'Time' ? at.micros : now + (at.micros < 0n ? -at.micros : at.micros));
  }

  #arm(schedule: ScheduleDesc, id: unknown, dueAt: bigint) {
    if (this.#stopped) return;
    const key = keyOf(schedule.table, id);
    this.#cancel(key);
    const cancel = this.#clock.setTimer(dueAt - this.#clock.now(), () => {
      if (this.#armed.get(key)?.cancel !== cancel) return;
      this.#armed.delete(key);
      this.#onDue({ schedule, id, dueAt });
    });
    this.#armed.set(key, { dueAt, cancel });
  }

  #cancel(key: string) {
    const a = this.#armed.get(key);
    if (!a) return;
    a.cancel();
    this.#armed.delete(key);
  }
}

function keyOf(table: string, id: unknown): string {
  return `${table}\u0000${typeof id === 'bigint' ? `${id}n` : JSON.stringify(id)}`;
}
