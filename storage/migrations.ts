/**
 * Moving stored data to a new app version's bindings.
 *
 * The bindings' schema fingerprint (every table's row type, every reducer's
 * parameters) is stored. When a new app version starts with a different
 * fingerprint, the client runs two steps in its migration phases:
 *
 * 1. `migration-download` — {@link Migrations.discardStaleSnapshots}: cached
 *    rows of tables whose row type changed (or that are gone) are dropped;
 *    the client resyncs them.
 * 2. `migration-upload` — {@link Migrations.migrateOutbox}: queued entries of
 *    reducers whose parameters changed go through the app's per-reducer
 *    migrators (`(entry) => newEntry | null`). An entry no migrator carries
 *    is quarantined with a {@link MigrationError} message — kept, never sent,
 *    never dropped silently — until the app discards it (or a later version's
 *    migrator carries it). Entries of unchanged reducers just move on.
 *
 * {@link Migrations.commit} then stores the new fingerprint. Every step is
 * safe to repeat, so a crash between them only repeats work.
 */
import { encodeArgs, productCodec } from './codec.ts';
import type { OutboxRecord } from './db.ts';
import { MigrationError } from './errors.ts';
import { diffSchemas, type ModuleCodecs, type SchemaDiff, type SchemaRecord } from './schema.ts';
import type { Store } from './store.ts';

/** Return this from a migrator to delete the entry on purpose (reported in `dropped`). */
export const DROP: unique symbol = Symbol('stdb-rx.migration.drop');

/** A queued entry as a migrator sees it: arguments decoded with the types it was encoded with. */
export interface MigratableEntry {
  id: string;
  reducer: string;
  args: Record<string, unknown>;
  /** The stored entry (priority, identity, timestamps, …). */
  entry: Readonly<OutboxRecord>;
}

/**
 * Carries one entry to the new bindings: return the reducer (default: the
 * same name) and arguments to store instead, `null` when it cannot be
 * carried (the entry is quarantined), or {@link DROP} to delete it.
 */
export type Migrator = (entry: MigratableEntry) => { reducer?: string; args: Record<string, unknown> } | null | typeof DROP;

export type MigrationPhase = 'migration-download' | 'migration-upload';

export interface MigrationProgress {
  phase: MigrationPhase;
  done: number;
  total: number;
  /** The table or entry just handled. */
  item?: string;
}

export interface MigrationCheck extends SchemaDiff {
  /** Nothing was stored before: there is nothing to migrate. */
  firstRun: boolean;
  previous: string | undefined;
  current: string;
}

export interface OutboxMigrationResult {
  /** Entries rewritten by a migrator. */
  migrated: OutboxRecord[];
  /** Entries whose reducer did not change: only their schema mark moved. */
  carried: OutboxRecord[];
  /** Entries kept but never sent (see their `quarantine.message`). */
  quarantined: OutboxRecord[];
  /** Entries a migrator dropped with {@link DROP}. */
  dropped: OutboxRecord[];
}

export interface MigrationsOptions {
  store: Store;
  codecs: ModuleCodecs;
  /** Per old reducer name. */
  migrators?: Record<string, Migrator>;
  /** Name of the parameter that carries the mutation id. @default 'mutationId' */
  mutationIdParam?: string;
  clock?: { now(): number };
}

const schemaKey = (fingerprint: string) => `schema:${fingerprint}`;

export class Migrations {
  private readonly store: Store;
  private readonly codecs: ModuleCodecs;
  private readonly migrators: Record<string, Migrator>;
  private readonly mutationIdParam: string;
  private readonly now: () => number;

  constructor(options: MigrationsOptions) {
    this.store = options.store;
    this.codecs = options.codecs;
    this.migrators = options.migrators ?? {};
    this.mutationIdParam = options.mutationIdParam ?? 'mutationId';
    this.now = () => (options.clock ?? Date).now();
  }

  private async previousRecord(): Promise<SchemaRecord | undefined> {
    const fingerprint = (await this.store.metaGet('schema')) as string | undefined;
    if (!fingerprint) return undefined;
    return (await this.store.metaGet(schemaKey(fingerprint))) as SchemaRecord | undefined;
  }

  /** Compare the stored fingerprint with the bindings'. */
  async check(): Promise<MigrationCheck> {
    const previous = await this.previousRecord();
    const current = this.codecs.schema;
    const hasData = (await this.store.outboxList()).length > 0 || (await this.store.tablesList()).length > 0;
    const diff = diffSchemas(previous, current);
    return {
      ...diff,
      // Data without any stored fingerprint cannot be trusted either: treat it as changed.
      changed: diff.changed || (!previous && hasData),
      firstRun: !previous && !hasData,
      previous: previous?.fingerprint,
      current: current.fingerprint,
    };
  }

  /**
   * `migration-download`: drop cached rows whose row type is not the
   * bindings' (or of tables the bindings no longer have). With `all`, drop
   * every cached table.
   */
  async discardStaleSnapshots(options: { all?: boolean; onProgress?: (p: MigrationProgress) => void } = {}): Promise<string[]> {
    const tables = await this.store.tablesList();
    const stale = options.all
      ? tables.map(t => t.table)
      : tables.filter(t => this.codecs.schema.tables[t.table]?.hash !== t.rowTypeHash).map(t => t.table);
    const discarded: string[] = [];
    options.onProgress?.({ phase: 'migration-download', done: 0, total: stale.length });
    for (const table of stale) {
      discarded.push(...(await this.store.rowsDrop([table])));
      options.onProgress?.({ phase: 'migration-download', done: discarded.length, total: stale.length, item: table });
    }
    return discarded;
  }

  /** `migration-upload`: carry every entry not yet encoded with the current bindings. */
  async migrateOutbox(
    options: { migrators?: Record<string, Migrator>; onProgress?: (p: MigrationProgress) => void } = {},
  ): Promise<OutboxMigrationResult> {
    const migrators = { ...this.migrators, ...options.migrators };
    const current = this.codecs.schema;
    const result: OutboxMigrationResult = { migrated: [], carried: [], quarantined: [], dropped: [] };
    const todo = (await this.store.outboxList()).filter(e => e.schema !== current.fingerprint);
    const oldSchemas = new Map<string, SchemaRecord | undefined>();
    for (const fp of new Set(todo.map(e => e.schema))) {
      oldSchemas.set(fp, (await this.store.metaGet(schemaKey(fp))) as SchemaRecord | undefined);
    }

    let done = 0;
    options.onProgress?.({ phase: 'migration-upload', done, total: todo.length });
    for (const entry of todo) {
      const outcome = this.carry(entry, oldSchemas.get(entry.schema), migrators);
      // Write each entry on its own, re-checking it is still the one we read
      // (another tab may have sent, confirmed or migrated it meanwhile).
      // A dropped entry was never applied: its outcome is recorded as `discarded` for the tabs waiting on it.
      const at = this.now();
      const { updated, deleted } = await this.store.outboxModify(
        { ids: [entry.id] },
        e => {
          if (e.schema !== entry.schema || e.updatedAt !== entry.updatedAt) return undefined;
          return outcome.kind === 'dropped' ? null : outcome.entry;
        },
        { record: e => ({ id: e.id, reducer: e.reducer, at, by: 'migration', outcome: 'discarded', error: { code: 'migration', message: `${e.reducer}: dropped by its migrator after a schema change` } }) },
      );
      if (outcome.kind === 'dropped') result.dropped.push(...deleted);
      else result[outcome.kind].push(...updated);
      done += 1;
      options.onProgress?.({ phase: 'migration-upload', done, total: todo.length, item: entry.id });
    }
    return result;
  }

  private carry(
    entry: OutboxRecord,
    old: SchemaRecord | undefined,
    migrators: Record<string, Migrator>,
  ):
    | { kind: 'migrated' | 'carried' | 'quarantined'; entry: OutboxRecord }
    | { kind: 'dropped' } {
    const current = this.codecs.schema;
    const now = this.now();
    const quarantine = (message: string): { kind: 'quarantined'; entry: OutboxRecord } => ({
      kind: 'quarantined',
      entry: { ...entry, updatedAt: now, quarantine: { code: 'migration', message: new MigrationError(entry.reducer, message).message } },
    });
    if (!old) {
      return quarantine(`${entry.reducer}: entry ${entry.id} was encoded with an unknown schema ${entry.schema}; it cannot be decoded`);
    }
    const oldReducer = old.reducers[entry.reducer];
    const unchanged = oldReducer && current.reducers[entry.reducer]?.hash === oldReducer.hash;
    if (unchanged) {
      return { kind: 'carried', entry: { ...entry, schema: current.fingerprint, updatedAt: now, quarantine: null } };
    }
    const migrator = migrators[entry.reducer];
    if (!migrator) {
      const why = current.reducers[entry.reducer] ? 'its parameters changed' : 'it no longer exists';
      return quarantine(`${entry.reducer}: ${why} and no migrator is registered for it; entry ${entry.id} is kept but not sent`);
    }
    let args: Record<string, unknown>;
    try {
      args = productCodec(oldReducer!.paramsType).decode(entry.args);
    } catch (error) {
      return quarantine(`${entry.reducer}: entry ${entry.id} does not decode with its old parameter types (${String(error)})`);
    }
    let out: ReturnType<Migrator>;
    try {
      out = migrator({ id: entry.id, reducer: entry.reducer, args, entry });
    } catch (error) {
      return quarantine(`${entry.reducer}: the migrator threw for entry ${entry.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (out === DROP) return { kind: 'dropped' };
    if (out === null) return quarantine(`${entry.reducer}: the migrator could not carry entry ${entry.id}`);
    const reducer = out.reducer ?? entry.reducer;
    const codec = this.codecs.reducer(reducer);
    if (!codec) return quarantine(`${entry.reducer}: the migrator chose reducer ${reducer}, which the bindings do not have`);
    let newArgs = out.args;
    if (codec.type.elements.some(e => e.name === this.mutationIdParam) && (newArgs[this.mutationIdParam] ?? '') === '') {
      newArgs = { ...newArgs, [this.mutationIdParam]: entry.id };
    }
    try {
      const bytes = encodeArgs(reducer, codec, newArgs);
      return { kind: 'migrated', entry: { ...entry, reducer, args: bytes, schema: current.fingerprint, updatedAt: now, quarantine: null } };
    } catch (error) {
      return quarantine(`${entry.reducer}: the migrator's result does not fit ${reducer}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * Keep the bindings' schema record (not yet marking it current), so that
   * entries enqueued from now on can be decoded by a later version's
   * migrators even if this version never commits. Called on open.
   */
  async remember(): Promise<void> {
    const current = this.codecs.schema;
    const known = ((await this.store.metaGet('schemas')) as string[] | undefined) ?? [];
    if (known.includes(current.fingerprint)) return;
    await this.store.metaSet(schemaKey(current.fingerprint), current);
    await this.store.metaSet('schemas', [...known, current.fingerprint]);
  }

  /**
   * Store the bindings' fingerprint as the current one. The schema records
   * that quarantined entries still refer to are kept, so a later version's
   * migrator can still decode them.
   */
  async commit(): Promise<void> {
    const current = this.codecs.schema;
    await this.store.metaSet(schemaKey(current.fingerprint), current);
    await this.store.metaSet('schema', current.fingerprint);
    const referenced = new Set((await this.store.outboxList()).map(e => e.schema));
    const known = ((await this.store.metaGet('schemas')) as string[] | undefined) ?? [];
    const keep = [...new Set([...known, current.fingerprint])].filter(fp => fp === current.fingerprint || referenced.has(fp));
    for (const fp of known) if (!keep.includes(fp)) await this.store.metaDelete(schemaKey(fp));
    await this.store.metaSet('schemas', keep);
  }

  /**
   * Everything in order: check; when the fingerprint changed, discard stale
   * snapshots and migrate the outbox; then commit. The client may instead
   * call the steps itself from its `migration-download` / `migration-upload`
   * phases.
   */
  async run(
    options: { migrators?: Record<string, Migrator>; onProgress?: (p: MigrationProgress) => void } = {},
  ): Promise<{ check: MigrationCheck; discarded: string[]; outbox: OutboxMigrationResult | undefined }> {
    const check = await this.check();
    let discarded: string[] = [];
    let outbox: OutboxMigrationResult | undefined;
    if (check.changed) {
      discarded = await this.discardStaleSnapshots({ onProgress: options.onProgress });
      outbox = await this.migrateOutbox(options);
    }
    await this.commit();
    return { check, discarded, outbox };
  }
}
