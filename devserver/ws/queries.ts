/**
 * A client's reads: `Subscribe` (compile the query set, send its rows),
 * `Unsubscribe` and `OneOffQuery`. Errors in the SQL or a view are answered
 * to the client; updates after a commit are sent by `../transactions.ts`.
 */
import type { ModuleInstance } from '../host/instance.ts';
import type { ServerMessage } from '../protocol/messages.ts';
import { SqlError } from '../sql/errors.ts';
import { compileQuerySet, querySetRows, type Access } from '../subscriptions.ts';
import { ViewError } from '../views.ts';
import type { ClientConnection } from './connection.ts';

/** What the queries read: the hosted module as it is now. */
export interface QueriesHost {
  readonly module: ModuleInstance;
  readonly access: Access;
}

export class Queries {
  readonly #host: QueriesHost;

  constructor(host: QueriesHost) {
    this.#host = host;
  }

  subscribe(conn: ClientConnection, requestId: number, setId: number, queryStrings: string[]): void {
    const { module, access } = this.#host;
    const fail = (error: string) => conn.send({ tag: 'SubscriptionError', value: { requestId, querySetId: { id: setId }, error } });
    if (conn.querySets.has(setId)) return fail(`query set ${setId} is already subscribed on this connection`);
    let queries;
    try {
      queries = compileQuerySet(queryStrings, conn.identity, module.description.tables, access);
    } catch (e) {
      if (e instanceof SqlError) return fail(e.message);
      throw e;
    }
    let rows;
    try {
      rows = querySetRows(queries, module.datastore);
    } catch (e) {
      if (e instanceof ViewError) return fail(e.message);
      throw e;
    }
    conn.querySets.set(setId, { id: setId, queries });
    conn.send({ tag: 'SubscribeApplied', value: { requestId, querySetId: { id: setId }, rows } });
  }

  unsubscribe(conn: ClientConnection, requestId: number, setId: number, sendDroppedRows: boolean): void {
    const set = conn.querySets.get(setId);
    if (!set) {
      return conn.send({
        tag: 'SubscriptionError',
        value: { requestId, querySetId: { id: setId }, error: `query set ${setId} is not subscribed on this connection` },
      });
    }
    conn.querySets.delete(setId);
    conn.send({
      tag: 'UnsubscribeApplied',
      value: {
        requestId,
        querySetId: { id: setId },
        rows: sendDroppedRows ? querySetRows(set.queries, this.#host.module.datastore) : undefined,
      },
    });
  }

  oneOffQuery(conn: ClientConnection, requestId: number, sql: string): void {
    const { module, access } = this.#host;
    let result: ServerMessage & { tag: 'OneOffQueryResult' };
    try {
      const queries = compileQuerySet([sql], conn.identity, module.description.tables, access);
      result = { tag: 'OneOffQueryResult', value: { requestId, result: { tag: 'Ok', value: querySetRows(queries, module.datastore) } } };
    } catch (e) {
      if (!(e instanceof SqlError) && !(e instanceof ViewError)) throw e;
      result = { tag: 'OneOffQueryResult', value: { requestId, result: { tag: 'Err', value: e.message } } };
    }
    conn.send(result);
  }
}
