// Client bindings for demo/arena/module.ts, written by hand in the shape that
// `spacetime generate --lang typescript` (SpacetimeDB 2.x) emits. Change them
// together with the module: test/demo/bindings.test.ts compares the two.

/* eslint-disable */
/* tslint:disable */
import { type Infer as __Infer } from 'spacetimedb';

// Import all reducer arg schemas
import CreateMatchReducer from '../create_match_reducer';
import CreateNodeReducer from '../create_node_reducer';
import DeleteNodeReducer from '../delete_node_reducer';
import EndMatchReducer from '../end_match_reducer';
import JoinMatchReducer from '../join_match_reducer';
import LeaveMatchReducer from '../leave_match_reducer';
import MoveNodeReducer from '../move_node_reducer';
import PruneReceiptsReducer from '../prune_receipts_reducer';
import RecordBattleEventReducer from '../record_battle_event_reducer';
import ReparentNodeReducer from '../reparent_node_reducer';
import ReportTelemetryReducer from '../report_telemetry_reducer';
import SendChatReducer from '../send_chat_reducer';
import SetNameReducer from '../set_name_reducer';
import StartMatchReducer from '../start_match_reducer';
import UpdateNodeDataReducer from '../update_node_data_reducer';

export type CreateMatchParams = __Infer<typeof CreateMatchReducer>;
export type CreateNodeParams = __Infer<typeof CreateNodeReducer>;
export type DeleteNodeParams = __Infer<typeof DeleteNodeReducer>;
export type EndMatchParams = __Infer<typeof EndMatchReducer>;
export type JoinMatchParams = __Infer<typeof JoinMatchReducer>;
export type LeaveMatchParams = __Infer<typeof LeaveMatchReducer>;
export type MoveNodeParams = __Infer<typeof MoveNodeReducer>;
export type PruneReceiptsParams = __Infer<typeof PruneReceiptsReducer>;
export type RecordBattleEventParams = __Infer<typeof RecordBattleEventReducer>;
export type ReparentNodeParams = __Infer<typeof ReparentNodeReducer>;
export type ReportTelemetryParams = __Infer<typeof ReportTelemetryReducer>;
export type SendChatParams = __Infer<typeof SendChatReducer>;
export type SetNameParams = __Infer<typeof SetNameReducer>;
export type StartMatchParams = __Infer<typeof StartMatchReducer>;
export type UpdateNodeDataParams = __Infer<typeof UpdateNodeDataReducer>;
