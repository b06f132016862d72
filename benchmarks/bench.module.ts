// The benchmark-only SpacetimeDB module: one bulk table of game entities and
// a few reducers that insert, update and delete rows in ranges, so a
// benchmark can shape a table of any size with a handful of calls.
import { schema, table, t, SenderError } from 'spacetimedb/server';

const entity = table(
  { name: 'entity', public: true },
  {
    id: t.u64().primaryKey(),
    owner: t.u32(),
    x: t.f64(),
    y: t.f64(),
    hp: t.u32(),
    name: t.string(),
  },
);

const spacetimedb = schema({ entity });
export default spacetimedb;

const MAX_BATCH = 200_000;

/** Insert rows `from .. from+count-1` (ids), owner = id mod 100. */
export const seed = spacetimedb.reducer({ from: t.u64(), count: t.u32() }, (ctx, { from, count }) => {
  if (count > MAX_BATCH) throw new SenderError(`at most ${MAX_BATCH} rows per call`);
  for (let i = 0n; i < BigInt(count); i++) {
    const id = from + i;
    ctx.db.entity.insert({ id, owner: Number(id % 100n), x: Number(id), y: 0, hp: 100, name: `entity-${id}` });
  }
});

/** Update rows `from .. from+count-1`: move each one step and bump its hp. */
export const touch = spacetimedb.reducer({ from: t.u64(), count: t.u32() }, (ctx, { from, count }) => {
  if (count > MAX_BATCH) throw new SenderError(`at most ${MAX_BATCH} rows per call`);
  for (let i = 0n; i < BigInt(count); i++) {
    const row = ctx.db.entity.id.find(from + i);
    if (row) ctx.db.entity.id.update({ ...row, x: row.x + 1, hp: row.hp + 1 });
  }
});

/** Delete rows `from .. from+count-1`. */
export const remove = spacetimedb.reducer({ from: t.u64(), count: t.u32() }, (ctx, { from, count }) => {
  if (count > MAX_BATCH) throw new SenderError(`at most ${MAX_BATCH} rows per call`);
  for (let i = 0n; i < BigInt(count); i++) ctx.db.entity.id.delete(from + i);
});

/** Move one entity: the small, frequent call of a game. */
export const move = spacetimedb.reducer({ id: t.u64(), x: t.f64(), y: t.f64() }, (ctx, { id, x, y }) => {
  const row = ctx.db.entity.id.find(id);
  if (!row) throw new SenderError(`no entity ${id}`);
  ctx.db.entity.id.update({ ...row, x, y });
});
