/**
 * Moving a database from one version of a module to the next, with the
 * rules SpacetimeDB applies when it publishes an update without a manual
 * migration: new tables, removed tables (their rows are dropped), columns
 * added at the end of a table with a default value, sum types that gain
 * variants at the end, changed indexes, sequences, primary keys, access and
 * reducers are migrated automatically. Removing, reordering or retyping a
 * column, adding one without a default, changing a table's event flag, or a
 * new unique constraint the existing rows violate, are refused: the caller
 * keeps running the previous version.
 */
import { concatBytes } from '@noble/hashes/utils.js';
import type { AlgebraicType } from 'spacetimedb';
import type { Datastore } from './datastore.ts';
import type { ModuleDescription, TableDesc } from './moduleDef.ts';
import { decodeRawModuleDef } from './rawModuleDef.ts';

/** Why a module change cannot be migrated automatically (one entry per problem). */
export class MigrationRefusedError extends Error {
  override readonly name = 'MigrationRefusedError';
  constructor(readonly info: { readonly reasons: readonly string[] }) {
    super(`this module change needs a manual migration: ${info.reasons.join('; ')}`);
  }
}

export interface MigrationPlan {
  /** What changes, in words (for the log). */
  readonly steps: readonly string[];
  /** Per kept table (canonical name): the BSATN to append to every row (the added columns' defaults). */
  readonly appendToRows: ReadonlyMap<string, Uint8Array>;
}

type Elem = { name?: string; algebraicType: AlgebraicType };

/** Why `older` values cannot be read as `newer` (SpacetimeDB's rule), or undefined if they can. */
function upgradeProblem(older: AlgebraicType, newer: AlgebraicType, within: boolean): string | undefined {
  const where = within ? 'a type within the column' : 'the column type';
  if (older.tag !== newer.tag) return `${where} changes from ${older.tag} to ${newer.tag}`;
  switch (older.tag) {
    case 'Sum': {
      const o = older.value.variants as Elem[];
      const n = (newer as typeof older).value.variants as Elem[];
      if (n.length < o.length) return `${where} loses variants`;
      for (let i = 0; i < o.length; i++) {
        if (o[i].name !== n[i].name) return `${where} renames variant ${o[i].name ?? i} to ${n[i].name ?? i}`;
        const p = upgradeProblem(o[i].algebraicType, n[i].algebraicType, true);
        if (p) return p;
      }
      return undefined;
    }
    case 'Product': {
      const o = older.value.elements as Elem[];
      const n = (newer as typeof older).value.elements as Elem[];
      if (n.length !== o.length) return `${where} changes its number of fields`;
      for (let i = 0; i < o.length; i++) {
        if (o[i].name !== n[i].name) return `${where} renames field ${o[i].name ?? i} to ${n[i].name ?? i}`;
        const p = upgradeProblem(o[i].algebraicType, n[i].algebraicType, true);
        if (p) return p;
      }
      return undefined;
    }
    case 'Array':
      return upgradeProblem(older.value, (newer as typeof older).value, true);
    default:
      return undefined;
  }
}

/** Default values per table (canonical name) and column, from a raw module description. */
function defaultsOf(raw: Uint8Array, tables: readonly TableDesc[]): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  const rawTables = decodeRawModuleDef(raw)
    .filter((s) => s.tag === 'Tables')
    .flatMap((s) => s.value as { sourceName: string; defaultValues: { colId: number; value: Uint8Array }[]; tableType: { tag: string } }[]);
  for (const rt of rawTables) {
    const t = tables.find((x) => x.sourceName === rt.sourceName);
    if (!t) continue;
    out.set(t.name, new Map(rt.defaultValues.map((d) => [d.colId, d.value])));
  }
  return out;
}

/**
 * Plan the move from `older` to `newer` (their descriptions and raw
 * `__describe_module__` bytes), or throw {@link MigrationRefusedError}.
 */
export function planMigration(
  older: ModuleDescription,
  newer: ModuleDescription,
  newerRaw: Uint8Array,
): MigrationPlan {
  const reasons: string[] = [];
  const steps: string[] = [];
  const appendToRows = new Map<string, Uint8Array>();
  const defaults = defaultsOf(newerRaw, newer.tables);

  for (const t of newer.tables) if (!older.tables.some((o) => o.name === t.name)) steps.push(`add table ${t.name}`);
  for (const o of older.tables) if (!newer.tables.some((t) => t.name === o.name)) steps.push(`remove table ${o.name} (its rows are dropped)`);

  for (const o of older.tables) {
    const n = newer.tables.find((t) => t.name === o.name);
    if (!n) continue;
    if (o.isEvent !== n.isEvent) {
      reasons.push(`changing the event flag of table ${o.name}`);
      continue;
    }
    if ((o.isPublic ?? true) !== (n.isPublic ?? true)) steps.push(`change the access of table ${o.name}`);
    if (o.primaryKey.join() !== n.primaryKey.join()) steps.push(`change the primary key of table ${o.name}`);
    const appended: Uint8Array[] = [];
    for (const oc of o.columns) {
      const nc = n.columns.find((c) => c.name === oc.name);
      if (!nc) {
        if (!o.isEvent) reasons.push(`removing column ${oc.name} from table ${o.name}`);
        continue;
      }
      if (nc.index !== oc.index) {
        if (!o.isEvent) reasons.push(`reordering the columns of table ${o.name}`);
        continue;
      }
      const p = upgradeProblem(oc.type, nc.type, false);
      if (p && !o.isEvent) reasons.push(`column ${oc.name} of table ${o.name}: ${p}`);
      else if (p) steps.push(`change column ${oc.name} of event table ${o.name}`);
    }
    for (const nc of n.columns) {
      if (o.columns.some((c) => c.name === nc.name)) continue;
      if (o.isEvent) {
        steps.push(`add column ${nc.name} to event table ${o.name}`);
        continue;
      }
      const value = defaults.get(n.name)?.get(nc.index);
      if (!value) {
        reasons.push(`adding column ${nc.name} to table ${o.name} without a default value (declare it with .default(…))`);
        continue;
      }
      appended.push(value);
      steps.push(`add column ${nc.name} to table ${o.name} (default value for existing rows)`);
    }
    if (appended.length > 0) appendToRows.set(n.name, concatBytes(...appended));
    const key = (cols: readonly number[]) => [...cols].sort((a, b) => a - b).join(',');
    for (const u of n.uniques) {
      if (!o.uniques.some((x) => key(x) === key(u))) steps.push(`add a unique constraint on ${u.map((c) => n.columns[c]?.name).join(', ')} of table ${n.name}`);
    }
  }
  const oldReducers = new Set(older.reducers.map((r) => r.name));
  const newReducers = new Set(newer.reducers.map((r) => r.name));
  for (const r of newReducers) if (!oldReducers.has(r)) steps.push(`add reducer ${r}`);
  for (const r of oldReducers) if (!newReducers.has(r)) steps.push(`remove reducer ${r}`);

  if (reasons.length > 0) throw new MigrationRefusedError({ reasons });
  return { steps, appendToRows };
}

/**
 * Copy every row of `from` into `to` (a fresh datastore of the newer
 * module) as `plan` says, and carry sequences forward. Throws
 * {@link MigrationRefusedError} when the copied rows violate a unique
 * constraint of the newer module (nothing in `from` is changed).
 */
export function migrateRows(from: Datastore, to: Datastore, plan: MigrationPlan): void {
  for (const [name, rows] of from.allRows()) {
    const target = to.tableByName(name);
    if (!target) continue;
    const suffix = plan.appendToRows.get(name);
    for (const bytes of rows) to.restoreRow(target.desc.id, suffix ? concatBytes(bytes, suffix) : bytes);
  }
  to.resyncSequences();
  const reasons: string[] = [];
  for (const [name] of from.allRows()) {
    const older = from.tableByName(name)!;
    const newer = to.tableByName(name);
    if (!newer) continue;
    for (const u of newer.uniques) {
      if (u.map.size !== newer.rows.size) {
        reasons.push(`the existing rows of table ${name} violate the new unique constraint on ${u.columns.map((c) => newer.desc.columns[c]?.name).join(', ')}`);
      }
    }
    // Never hand out a generated value twice, even one whose row was deleted since.
    for (const s of newer.sequences) {
      const old = older.sequences.find((x) => older.desc.columns[x.column]?.name === newer.desc.columns[s.column]?.name);
      if (old && (s.increment > 0n ? old.next > s.next : old.next < s.next)) s.next = old.next;
    }
  }
  if (reasons.length > 0) throw new MigrationRefusedError({ reasons });
}
