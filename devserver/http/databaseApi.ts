/**
 * The database endpoints of SpacetimeDB's HTTP API that its CLI uses:
 * `POST /v1/database/:name/sql` (`spacetime sql`), `POST
 * /v1/database/:name/call/:reducer` with JSON arguments (`spacetime call`),
 * and `GET /v1/database/:name/schema?version=10` (`spacetime describe`,
 * `spacetime generate` against a running database) — with SpacetimeDB's
 * status codes and bodies for good and bad input (docs/protocol.md, "The HTTP
 * API of the CLI").
 */
import type { IncomingMessage } from 'node:http';
import { AlgebraicType, BinaryWriter, type ConnectionId } from 'spacetimedb';
import type { ModuleInstance, ReducerOutcome } from '../host/instance.ts';
import type { ReducerDesc } from '../host/moduleDef.ts';
import { rawModuleDefTypes } from '../host/rawModuleDef.ts';
import { AuthError, type VerifiedToken } from '../auth.ts';
import { SqlError } from '../sql/errors.ts';
import { initialRows } from '../sql/evaluate.ts';
import { compileQuerySet, type Access } from '../subscriptions.ts';
import { ViewError } from '../views.ts';
import { fromSatsJson, parseJsonKeepingNumbers, SatsJsonError, toSatsJson } from '../satsJson.ts';
import { bearer, decodePathSegment } from './request.ts';

/** An HTTP answer: status, body, and its content type. */
export interface HttpReply {
  readonly status: number;
  readonly body: string;
  readonly contentType: 'application/json' | 'text/plain';
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the API needs from the server that hosts the module. */
export interface HttpApiHost {
  readonly database: string;
  readonly module: ModuleInstance;
  readonly access: Access;
  /** Verify a bearer token, or mint an identity when there is none. Rejects with {@link AuthError}. */
  authenticate(token: string | undefined): Promise<VerifiedToken & { token: string }>;
  /**
   * Run `fn` as a connection of its own, between the module's
   * clientConnected and clientDisconnected, as SpacetimeDB runs every
   * HTTP call; `refused` when clientConnected failed.
   */
  asConnection<T>(caller: VerifiedToken, fn: (connectionId: ConnectionId) => T): { refused: string } | { value: T };
  /** Run a reducer and publish what it committed. */
  runReducer(reducer: ReducerDesc, caller: VerifiedToken, connectionId: ConnectionId, args: Uint8Array): ReducerOutcome;
}

const text = (status: number, body: string, headers?: Record<string, string>): HttpReply => ({ status, body, contentType: 'text/plain', headers });
const json = (status: number, body: string, headers?: Record<string, string>): HttpReply => ({ status, body, contentType: 'application/json', headers });

export const NO_SUCH_DATABASE = 'No such database.';

/**
 * Answer a request under `/v1/database/:name/…` if it is one of these
 * endpoints; undefined for any other path (the server answers those).
 */
export function handleDatabaseApi(host: HttpApiHost, req: IncomingMessage, url: URL, body: Buffer): Promise<HttpReply> | undefined {
  const m = /^\/v1\/database\/([^/]+)\/(sql|schema|call\/([^/]+))$/.exec(url.pathname);
  if (!m) return undefined;
  return answerDatabaseApi(host, req, url, body, m);
}

async function answerDatabaseApi(host: HttpApiHost, req: IncomingMessage, url: URL, body: Buffer, m: RegExpExecArray): Promise<HttpReply> {
  const [, rawName, endpoint, rawReducer] = m;
  const method = endpoint === 'schema' ? 'GET' : 'POST';
  if (req.method !== method) return text(405, `use ${method}`);
  if (decodePathSegment(rawName) !== host.database) return text(404, NO_SUCH_DATABASE);

  let caller: VerifiedToken & { token: string };
  try {
    caller = await host.authenticate(bearer(req));
  } catch (e) {
    return text(401, e instanceof AuthError ? e.message : 'invalid token');
  }
  const identityHeaders = { 'spacetime-identity': caller.identity.toHexString(), 'spacetime-identity-token': caller.token };

  if (endpoint === 'schema') return schema(host, url, identityHeaders);
  if (endpoint === 'sql') return sql(host, caller, body.toString('utf8'));
  const reducerName = decodePathSegment(rawReducer);
  if (reducerName === undefined) return text(400, 'malformed reducer name');
  return call(host, caller, reducerName, req.headers['content-type'], body);
}

function schema(host: HttpApiHost, url: URL, headers: Record<string, string>): HttpReply {
  const version = url.searchParams.get('version');
  if (version === null) return text(400, 'Failed to deserialize query string: missing field `version`');
  if (version !== '9' && version !== '10') {
    return text(400, `Failed to deserialize query string: unknown variant \`${version}\`, expected \`9\` or \`10\``);
  }
  if (version === '9') {
    return text(400, 'the stdb-rx dev server serves the module description as version 10 only (RawModuleDefV10); ask for version=10');
  }
  const bytes = host.module.describeModuleBytes();
  const def = rawModuleDefTypes.decode(bytes);
  return json(200, toSatsJson(rawModuleDefTypes.moduleDef, def, [], { named: true }), headers);
}

function sql(host: HttpApiHost, caller: VerifiedToken, query: string): HttpReply {
  const started = performance.now();
  let ran;
  try {
    ran = host.asConnection(caller, () => {
    const module = host.module;
    const queries = compileQuerySet([query], caller.identity, module.description.tables, host.access);
    if (queries.length !== 1) throw new SqlError('the SQL endpoint runs one SELECT naming one table (not FROM *)');
    const [q] = queries;
    const rows = initialRows(q.query, q.reader ? q.reader.source(module.datastore) : module.datastore);
    return { table: q.query.table, rows };
    });
  } catch (e) {
    const reply = sqlErrorReply(e);
    if (reply) return reply;
    throw e;
  }
  if ('refused' in ran) return text(403, ran.refused);
  const { table, rows } = ran.value;
  const types = host.module.description.typespace.types;
  const schemaJson = `{"elements":[${table.columns
    .map((c) => `{"name":{"some":${JSON.stringify(c.name)}},"algebraic_type":${toSatsJson(rawModuleDefTypes.algebraicType, c.type, [], { named: true })}}`)
    .join(',')}]}`;
  const rowType: AlgebraicType = {
    tag: 'Product',
    value: { elements: table.columns.map((c) => ({ name: c.field, algebraicType: c.type })) },
  };
  const micros = Math.round((performance.now() - started) * 1000);
  const rowsJson = rows.map((r) => toSatsJson(rowType, r.value, types)).join(',');
  return json(
    200,
    `[{"schema":${schemaJson},"rows":[${rowsJson}],"total_duration_micros":${micros},"stats":{"rows_inserted":0,"rows_deleted":0,"rows_updated":0}}]`,
    { 'spacetime-execution-duration-micros': String(micros) },
  );
}

function call(host: HttpApiHost, caller: VerifiedToken, name: string, contentType: string | undefined, body: Buffer): HttpReply {
  if (!/^application\/json\s*(;.*)?$/i.test(contentType ?? '')) {
    return text(415, 'Expected request with `Content-Type: application/json`');
  }
  const module = host.module;
  const reducer = module.reducer(name);
  const isOwner = host.access.owner?.isEqual(caller.identity) ?? false;
  if (!reducer || (!reducer.clientCallable && !reducer.lifecycle && !isOwner)) {
    // SpacetimeDB then looks for a procedure of that name.
    if (module.description.procedures.some((p) => p.name === name || p.sourceName === name)) {
      return text(501, `procedure ${name}: the stdb-rx dev server does not run procedures over HTTP`);
    }
    return text(404, 'No such procedure');
  }
  if (reducer.lifecycle) {
    const kind = { init: 'Init', onConnect: 'OnConnect', onDisconnect: 'OnDisconnect' }[reducer.lifecycle];
    return text(400, `can't directly call special ${kind} lifecycle reducer`);
  }
  let args: Uint8Array;
  try {
    const types = module.description.typespace.types;
    const parsed = body.length === 0 ? [] : parseJsonKeepingNumbers(body.toString('utf8'));
    const value = fromSatsJson(reducer.paramsType, parsed, types);
    const w = new BinaryWriter(64);
    AlgebraicType.makeSerializer(reducer.paramsType, { types: types as AlgebraicType[] })(w, value);
    args = w.getBuffer().slice();
  } catch (e) {
    if (e instanceof SatsJsonError || e instanceof SyntaxError) {
      return text(400, `invalid arguments for reducer ${name}: ${e.message}`);
    }
    throw e;
  }
  const ran = host.asConnection(caller, (connectionId) => host.runReducer(reducer, caller, connectionId, args));
  if ('refused' in ran) return text(403, ran.refused);
  const outcome = ran.value;
  const headers = { 'spacetime-execution-duration-micros': String(outcome.durationMicros), 'spacetime-energy-used': '0' };
  if (outcome.status === 'committed') return text(200, '', headers);
  return text(530, outcome.message, headers);
}

/** SQL errors and view failures the endpoint answers with 400, as SpacetimeDB does. */
export function sqlErrorReply(e: unknown): HttpReply | undefined {
  if (e instanceof SqlError || e instanceof ViewError) return text(400, e.message);
  return undefined;
}
