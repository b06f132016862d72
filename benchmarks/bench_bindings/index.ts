// Client bindings for benchmarks/bench.module.ts, in the shape
// `spacetime generate --lang typescript` emits for SDK 2.x (condensed into one
// file, like test/fixtures/basic_bindings).
import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedures as __procedures,
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
  type DbConnectionConfig as __DbConnectionConfig,
  type QueryBuilder as __QueryBuilder,
  type RemoteModule as __RemoteModule,
} from 'spacetimedb';

export const EntityRow = __t.row({
  id: __t.u64().primaryKey(),
  owner: __t.u32(),
  x: __t.f64(),
  y: __t.f64(),
  hp: __t.u32(),
  name: __t.string(),
});
export type Entity = { id: bigint; owner: number; x: number; y: number; hp: number; name: string };

const tablesSchema = __schema({
  entity: __table(
    {
      name: 'entity',
      indexes: [{ accessor: 'id', name: 'entity_id_idx_btree', algorithm: 'btree', columns: ['id'] }],
      constraints: [{ name: 'entity_id_key', constraint: 'unique', columns: ['id'] }],
    },
    EntityRow,
  ),
});

const reducersSchema = __reducers(
  __reducerSchema('move', { id: __t.u64(), x: __t.f64(), y: __t.f64() }),
  __reducerSchema('remove', { from: __t.u64(), count: __t.u32() }),
  __reducerSchema('seed', { from: __t.u64(), count: __t.u32() }),
  __reducerSchema('touch', { from: __t.u64(), count: __t.u32() }),
);

const proceduresSchema = __procedures();

const REMOTE_MODULE = {
  versionInfo: { cliVersion: '2.10.1' as const },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
} satisfies __RemoteModule<typeof tablesSchema.schemaType, typeof reducersSchema.reducersType, typeof proceduresSchema>;

export const tables: __QueryBuilder<typeof tablesSchema.schemaType> = __makeQueryBuilder(tablesSchema.schemaType);
export const reducers = __convertToAccessorMap(reducersSchema.reducersType.reducers);

export class SubscriptionBuilder extends __SubscriptionBuilderImpl<typeof REMOTE_MODULE> {}
export class DbConnectionBuilder extends __DbConnectionBuilder<DbConnection> {}
export class DbConnection extends __DbConnectionImpl<typeof REMOTE_MODULE> {
  static builder = (): DbConnectionBuilder =>
    new DbConnectionBuilder(REMOTE_MODULE, (config: __DbConnectionConfig<typeof REMOTE_MODULE>) => new DbConnection(config));
  override subscriptionBuilder = (): SubscriptionBuilder => new SubscriptionBuilder(this);
}
