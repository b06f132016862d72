// Client bindings for demo/arena/module.ts, written by hand in the shape that
// `spacetime generate --lang typescript` (SpacetimeDB 2.x) emits. Change them
// together with the module: test/demo/bindings.test.ts compares the two.

/* eslint-disable */
/* tslint:disable */
import {
  DbConnectionBuilder as __DbConnectionBuilder,
  DbConnectionImpl as __DbConnectionImpl,
  SubscriptionBuilderImpl as __SubscriptionBuilderImpl,
  TypeBuilder as __TypeBuilder,
  Uuid as __Uuid,
  convertToAccessorMap as __convertToAccessorMap,
  makeQueryBuilder as __makeQueryBuilder,
  procedureSchema as __procedureSchema,
  procedures as __procedures,
  reducerSchema as __reducerSchema,
  reducers as __reducers,
  schema as __schema,
  t as __t,
  table as __table,
  type AlgebraicTypeType as __AlgebraicTypeType,
  type DbConnectionConfig as __DbConnectionConfig,
  type ErrorContextInterface as __ErrorContextInterface,
  type Event as __Event,
  type EventContextInterface as __EventContextInterface,
  type Infer as __Infer,
  type QueryBuilder as __QueryBuilder,
  type ReducerEventContextInterface as __ReducerEventContextInterface,
  type RemoteModule as __RemoteModule,
  type SubscriptionEventContextInterface as __SubscriptionEventContextInterface,
  type SubscriptionHandleImpl as __SubscriptionHandleImpl,
} from 'spacetimedb';

// Import all reducer arg schemas
import CreateMatchReducer from './create_match_reducer';
import CreateNodeReducer from './create_node_reducer';
import DeleteNodeReducer from './delete_node_reducer';
import EndMatchReducer from './end_match_reducer';
import JoinMatchReducer from './join_match_reducer';
import LeaveMatchReducer from './leave_match_reducer';
import MoveNodeReducer from './move_node_reducer';
import PruneReceiptsReducer from './prune_receipts_reducer';
import RecordBattleEventReducer from './record_battle_event_reducer';
import ReparentNodeReducer from './reparent_node_reducer';
import ReportTelemetryReducer from './report_telemetry_reducer';
import SendChatReducer from './send_chat_reducer';
import SetNameReducer from './set_name_reducer';
import StartMatchReducer from './start_match_reducer';
import UpdateNodeDataReducer from './update_node_data_reducer';

// Import all procedure arg schemas

// Import all table schema definitions
import ArenaMatchRow from './arena_match_table';
import BattleLogRow from './battle_log_table';
import ChatMessageRow from './chat_message_table';
import GameNodeRow from './game_node_table';
import MatchMemberRow from './match_member_table';
import MutationReceiptRow from './mutation_receipt_table';
import PlayerRow from './player_table';

/** Type-only namespace exports for generated type groups. */

/** The schema information for all public tables of the module, ordered by canonical name. The private `telemetry` table is left out, as `spacetime generate` leaves out private tables by default. */
const tablesSchema = __schema({
  arenaMatch: __table(
    {
      name: 'arena_match',
      indexes: [
        {
          accessor: 'id',
          name: 'arena_match_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
      ],
      constraints: [
        {
          name: 'arena_match_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    ArenaMatchRow
  ),
  battleLog: __table(
    {
      name: 'battle_log',
      indexes: [
        {
          accessor: 'id',
          name: 'battle_log_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
        {
          accessor: 'matchId',
          name: 'battle_log_match_id_idx_btree',
          algorithm: 'btree',
          columns: ['matchId'],
        },
      ],
      constraints: [
        {
          name: 'battle_log_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    BattleLogRow
  ),
  chatMessage: __table(
    {
      name: 'chat_message',
      indexes: [
        {
          accessor: 'id',
          name: 'chat_message_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
        {
          accessor: 'sender',
          name: 'chat_message_sender_idx_btree',
          algorithm: 'btree',
          columns: ['sender'],
        },
      ],
      constraints: [
        {
          name: 'chat_message_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    ChatMessageRow
  ),
  gameNode: __table(
    {
      name: 'game_node',
      indexes: [
        {
          accessor: 'id',
          name: 'game_node_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
        {
          accessor: 'owner',
          name: 'game_node_owner_idx_btree',
          algorithm: 'btree',
          columns: ['owner'],
        },
        {
          accessor: 'parent',
          name: 'game_node_parent_idx_btree',
          algorithm: 'btree',
          columns: ['parent'],
        },
      ],
      constraints: [
        {
          name: 'game_node_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    GameNodeRow
  ),
  matchMember: __table(
    {
      name: 'match_member',
      indexes: [
        {
          accessor: 'id',
          name: 'match_member_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
        {
          accessor: 'matchId',
          name: 'match_member_match_id_idx_btree',
          algorithm: 'btree',
          columns: ['matchId'],
        },
        {
          accessor: 'player',
          name: 'match_member_player_idx_btree',
          algorithm: 'btree',
          columns: ['player'],
        },
      ],
      constraints: [
        {
          name: 'match_member_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    MatchMemberRow
  ),
  mutationReceipt: __table(
    {
      name: 'mutation_receipt',
      indexes: [
        {
          accessor: 'id',
          name: 'mutation_receipt_id_idx_btree',
          algorithm: 'btree',
          columns: ['id'],
        },
        {
          accessor: 'mutationId',
          name: 'mutation_receipt_mutation_id_idx_btree',
          algorithm: 'btree',
          columns: ['mutationId'],
        },
        {
          accessor: 'sender',
          name: 'mutation_receipt_sender_idx_btree',
          algorithm: 'btree',
          columns: ['sender'],
        },
      ],
      constraints: [
        {
          name: 'mutation_receipt_id_key',
          constraint: 'unique',
          columns: ['id'],
        },
      ],
    },
    MutationReceiptRow
  ),
  player: __table(
    {
      name: 'player',
      indexes: [
        {
          accessor: 'identity',
          name: 'player_identity_idx_btree',
          algorithm: 'btree',
          columns: ['identity'],
        },
      ],
      constraints: [
        {
          name: 'player_identity_key',
          constraint: 'unique',
          columns: ['identity'],
        },
      ],
    },
    PlayerRow
  ),
});

/** The schema information for all client-callable reducers of the module (lifecycle reducers are not callable), by canonical name. */
const reducersSchema = __reducers(
  __reducerSchema('create_match', CreateMatchReducer),
  __reducerSchema('create_node', CreateNodeReducer),
  __reducerSchema('delete_node', DeleteNodeReducer),
  __reducerSchema('end_match', EndMatchReducer),
  __reducerSchema('join_match', JoinMatchReducer),
  __reducerSchema('leave_match', LeaveMatchReducer),
  __reducerSchema('move_node', MoveNodeReducer),
  __reducerSchema('prune_receipts', PruneReceiptsReducer),
  __reducerSchema('record_battle_event', RecordBattleEventReducer),
  __reducerSchema('reparent_node', ReparentNodeReducer),
  __reducerSchema('report_telemetry', ReportTelemetryReducer),
  __reducerSchema('send_chat', SendChatReducer),
  __reducerSchema('set_name', SetNameReducer),
  __reducerSchema('start_match', StartMatchReducer),
  __reducerSchema('update_node_data', UpdateNodeDataReducer)
);

/** The schema information for all procedures in this module (it has none). */
const proceduresSchema = __procedures();

/** The remote SpacetimeDB module schema, both runtime and type information. */
const REMOTE_MODULE = {
  versionInfo: {
    cliVersion: '2.10.1' as const,
  },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
} satisfies __RemoteModule<
  typeof tablesSchema.schemaType,
  typeof reducersSchema.reducersType,
  typeof proceduresSchema
>;

/** The tables available in this remote SpacetimeDB module. Each table reference doubles as a query builder. */
export const tables: __QueryBuilder<typeof tablesSchema.schemaType> =
  __makeQueryBuilder(tablesSchema.schemaType);

/** The reducers available in this remote SpacetimeDB module. */
export const reducers = __convertToAccessorMap(
  reducersSchema.reducersType.reducers
);

/** The procedures available in this remote SpacetimeDB module. */
export const procedures = __convertToAccessorMap(proceduresSchema.procedures);

/** The context type returned in callbacks for all possible events. */
export type EventContext = __EventContextInterface<typeof REMOTE_MODULE>;
/** The context type returned in callbacks for reducer events. */
export type ReducerEventContext = __ReducerEventContextInterface<
  typeof REMOTE_MODULE
>;
/** The context type returned in callbacks for subscription events. */
export type SubscriptionEventContext = __SubscriptionEventContextInterface<
  typeof REMOTE_MODULE
>;
/** The context type returned in callbacks for error events. */
export type ErrorContext = __ErrorContextInterface<typeof REMOTE_MODULE>;
/** The subscription handle type to manage active subscriptions created from a {@link SubscriptionBuilder}. */
export type SubscriptionHandle = __SubscriptionHandleImpl<typeof REMOTE_MODULE>;

/** Builder class to configure a new subscription to the remote SpacetimeDB instance. */
export class SubscriptionBuilder extends __SubscriptionBuilderImpl<
  typeof REMOTE_MODULE
> {}

/** Builder class to configure a new database connection to the remote SpacetimeDB instance. */
export class DbConnectionBuilder extends __DbConnectionBuilder<DbConnection> {}

/** The typed database connection to manage connections to the remote SpacetimeDB instance. This class has type information specific to the generated module. */
export class DbConnection extends __DbConnectionImpl<typeof REMOTE_MODULE> {
  /** Creates a new {@link DbConnectionBuilder} to configure and connect to the remote SpacetimeDB instance. */
  static builder = (): DbConnectionBuilder => {
    return new DbConnectionBuilder(
      REMOTE_MODULE,
      (config: __DbConnectionConfig<typeof REMOTE_MODULE>) =>
        new DbConnection(config)
    );
  };

  /** Creates a new {@link SubscriptionBuilder} to configure a subscription to the remote SpacetimeDB instance. */
  override subscriptionBuilder = (): SubscriptionBuilder => {
    return new SubscriptionBuilder(this);
  };
}
