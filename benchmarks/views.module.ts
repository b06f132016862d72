// Benchmark-only module for the cost of views and row-level security: the
// same rows in a plain table, in a table behind a visibility filter, behind a
// per-caller view and summed up by an anonymous view.
import { schema, table, t } from 'spacetimedb/server';

const item = table({ name: 'item', public: true }, { id: t.u64().primaryKey(), owner: t.identity().index('btree'), n: t.u32() });
const owned = table({ name: 'owned', public: true }, { id: t.u64().primaryKey(), owner: t.identity().index('btree'), n: t.u32() });
const total = t.row('Total', { rows: t.u64(), sum: t.u64() });

const spacetimedb = schema({ item, owned });
export default spacetimedb;

export const ownedFilter = spacetimedb.clientVisibilityFilter.sql('SELECT * FROM owned WHERE owner = :sender');

/** Rows `from .. from+count-1` in both tables, owned by the caller. */
export const seed = spacetimedb.reducer({ from: t.u64(), count: t.u32() }, (ctx, { from, count }) => {
  for (let i = 0n; i < BigInt(count); i++) {
    ctx.db.item.insert({ id: from + i, owner: ctx.sender, n: 0 });
    ctx.db.owned.insert({ id: from + i, owner: ctx.sender, n: 0 });
  }
});

/** One row of each table changes: every kind of subscription sees the same write. */
export const bump = spacetimedb.reducer({ id: t.u64() }, (ctx, { id }) => {
  const a = ctx.db.item.id.find(id);
  if (a) ctx.db.item.id.update({ ...a, n: a.n + 1 });
  const b = ctx.db.owned.id.find(id);
  if (b) ctx.db.owned.id.update({ ...b, n: b.n + 1 });
});

export const my_items = spacetimedb.view({ name: 'my_items', public: true }, t.array(item.rowType), (ctx) => [...ctx.db.item.owner.filter(ctx.sender)]);

export const item_total = spacetimedb.anonymousView({ name: 'item_total', public: true }, t.array(total), (ctx) => {
  let sum = 0n;
  for (const r of ctx.db.item.iter()) sum += BigInt(r.n);
  return [{ rows: ctx.db.item.count(), sum }];
});
