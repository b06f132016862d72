/**
 * The conformance scenarios: generic ones every module gets (connect,
 * subscribe to each public table, a one-off query, every reducer and
 * procedure called, schedules run through an hour of clock time), and ones
 * for the modules whose behaviour SpacetimeDB's own SDK tests pin down
 * (procedures, schedules, submodules, round timers).
 */
import type { DevServer } from '../devserver/index.ts';
import type { ModuleDescription, ProcedureDesc, ReducerDesc } from '../devserver/host/moduleDef.ts';
import type { ManualClock } from '../devserver/host/scheduler.ts';
import type { RawClient } from '../test/helpers/rawClient.ts';
import { toSnakeCase } from '../devserver/host/moduleDef.ts';
import type { QueryRows } from '../devserver/protocol/messages.ts';
import { decode, encode, zeroValue } from './values.ts';

export interface ScenarioContext {
  readonly server: DevServer;
  readonly clock: ManualClock;
  readonly logs: { level: string; message: string }[];
  readonly module: ModuleDescription;
  /** A connected raw protocol client (InitialConnection received). */
  client(): Promise<RawClient>;
}

export interface Scenario {
  readonly name: string;
  /** Throws on failure; may return a detail for the report. */
  run(ctx: ScenarioContext): Promise<string | void>;
}

/** Errors that come from the host, not from the module's own code. */
const HOST_ERROR =
  /stdb-rx dev server(?! has no network)|no such table|no such index|NoSuchTable|NoSuchIndex|BsatnDecodeError|HostCallFailure|NotInTransaction|unknown reducerId|unknown procedureId|unknown viewId/;
const HTTP_REFUSED = /has no network/;

let requestIds = 1000;
const nextId = () => requestIds++;

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

export async function callReducer(ctx: ScenarioContext, c: RawClient, name: string, args?: Record<string, unknown>) {
  const reducer = ctx.module.reducers.find((r) => r.name === name);
  check(reducer, `no reducer ${name}`);
  const requestId = nextId();
  const value = args ?? zeroValue(reducer.paramsType, ctx.module.typespace.types);
  c.send({ tag: 'CallReducer', value: { requestId, flags: 0, reducer: name, args: encode(reducer.paramsType, value, ctx.module) } });
  return (await c.next('ReducerResult', (m) => m.value.requestId === requestId)).value.result;
}

export async function callProcedure(ctx: ScenarioContext, c: RawClient, name: string, args?: Record<string, unknown>) {
  const procedure = ctx.module.procedures.find((p) => p.name === name);
  check(procedure, `no procedure ${name}`);
  const requestId = nextId();
  const value = args ?? zeroValue(procedure.paramsType, ctx.module.typespace.types);
  c.send({ tag: 'CallProcedure', value: { requestId, flags: 0, procedure: name, args: encode(procedure.paramsType, value, ctx.module) } });
  const status = (await c.next('ProcedureResult', (m) => m.value.requestId === requestId)).value.status;
  return status.tag === 'Returned'
    ? ({ tag: 'Returned', value: decode(procedure.returnType, status.value, ctx.module) } as const)
    : ({ tag: 'InternalError', value: status.value } as const);
}

async function subscribe(c: RawClient, queries: string[]) {
  const requestId = nextId();
  c.send({ tag: 'Subscribe', value: { requestId, querySetId: { id: requestId }, queryStrings: queries } });
  const reply = await c.next('SubscribeApplied', (m) => m.value.requestId === requestId, 5000).catch(() => undefined);
  if (reply) return reply;
  const err = c.messages.find((m) => m.tag === 'SubscriptionError' && m.value.requestId === requestId);
  throw new Error(err && err.tag === 'SubscriptionError' ? err.value.error : `no answer to ${queries.join('; ')}`);
}

/** Rows in a QueryRows (all tables). */
function countRows(q: QueryRows): number {
  let n = 0;
  for (const t of q.tables) {
    const hint = t.rows.sizeHint;
    n += hint.tag === 'FixedSize' ? (hint.value === 0 ? 0 : t.rows.rowsData.length / hint.value) : hint.value.length;
  }
  return n;
}

async function oneOff(c: RawClient, sql: string): Promise<QueryRows> {
  const requestId = nextId();
  c.send({ tag: 'OneOffQuery', value: { requestId, queryString: sql } });
  const res = await c.next('OneOffQueryResult', (m) => m.value.requestId === requestId);
  if (res.value.result.tag !== 'Ok') throw new Error(`${sql}: ${String(res.value.result.value)}`);
  return res.value.result.value as QueryRows;
}

const rows = (ctx: ScenarioContext, table: string) => [...ctx.server.module.datastore.scan(table)].map((r) => r.value as Record<string, any>);
const quoted = (name: string) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name}"`);

function generic(module: ModuleDescription): Scenario[] {
  const out: Scenario[] = [
    {
      name: 'connect',
      async run(ctx) {
        const c = await ctx.client();
        const init = c.messages.find((m) => m.tag === 'InitialConnection');
        check(init && init.tag === 'InitialConnection' && init.value.identity.toHexString().startsWith('c200'), 'no SpacetimeDB-style identity');
      },
    },
  ];
  const publicTables = module.tables.filter((t) => t.isPublic);
  if (publicTables.length > 0) {
    out.push(
      {
        name: 'subscribe to every public table',
        async run(ctx) {
          const c = await ctx.client();
          const failed: string[] = [];
          for (const t of publicTables) await subscribe(c, [`SELECT * FROM ${quoted(t.name)}`]).catch((e) => failed.push(`${t.name}: ${e.message}`));
          check(failed.length === 0, failed.join('; '));
          return `${publicTables.length} tables`;
        },
      },
      {
        name: 'one-off query',
        async run(ctx) {
          const c = await ctx.client();
          const requestId = nextId();
          c.send({ tag: 'OneOffQuery', value: { requestId, queryString: `SELECT * FROM ${quoted(publicTables[0].name)}` } });
          const res = await c.next('OneOffQueryResult', (m) => m.value.requestId === requestId);
          check(res.value.result.tag === 'Ok', `one-off query failed: ${String(res.value.result.value)}`);
        },
      },
    );
  }
  const reducers = module.reducers.filter((r) => r.clientCallable);
  if (reducers.length > 0) {
    out.push({
      name: 'every reducer runs (zero arguments)',
      async run(ctx) {
        const c = await ctx.client();
        let ok = 0;
        let refused = 0;
        const hostErrors: string[] = [];
        for (const r of reducers) {
          const result = await callReducer(ctx, c, r.name);
          if (result.tag === 'Ok') ok++;
          else if (result.tag === 'InternalError' && HOST_ERROR.test(result.value)) hostErrors.push(`${r.name}: ${result.value}`);
          else refused++;
        }
        check(hostErrors.length === 0, hostErrors.join('; '));
        return `${ok} committed, ${refused} refused by the module`;
      },
    });
  }
  const procedures = module.procedures.filter((p) => p.clientCallable);
  if (procedures.length > 0) {
    out.push({
      name: 'every procedure runs (zero arguments)',
      async run(ctx) {
        const c = await ctx.client();
        let returned = 0;
        let failed = 0;
        let http = 0;
        const hostErrors: string[] = [];
        for (const p of procedures) {
          const result = await callProcedure(ctx, c, p.name);
          if (result.tag === 'Returned') returned++;
          else if (HTTP_REFUSED.test(result.value)) http++;
          else if (HOST_ERROR.test(result.value)) hostErrors.push(`${p.name}: ${result.value}`);
          else failed++;
        }
        check(hostErrors.length === 0, hostErrors.join('; '));
        return `${returned} returned, ${failed} failed in the module, ${http} refused HTTP`;
      },
    });
  }
  if (module.views.length > 0) {
    out.push({
      name: 'views are subscribable and one-off-queryable',
      async run(ctx) {
        const c = await ctx.client();
        const failed: string[] = [];
        // The canonical names the host gave the views (explicit names and the module's case policy applied).
        for (const name of module.viewDefs.filter((v) => v.paramCount === 0).map((v) => v.name)) {
          await subscribe(c, [`SELECT * FROM ${quoted(name)}`]).catch((e) => failed.push(`subscribe ${name}: ${e.message}`));
          await oneOff(c, `SELECT * FROM ${quoted(name)}`).catch((e) => failed.push(`query ${name}: ${e.message}`));
        }
        check(failed.length === 0, failed.join('; '));
        return `${module.views.length} views`;
      },
    });
  }
  if (module.schedules.length > 0) {
    out.push({
      name: 'schedules run through an hour of clock time',
      async run(ctx) {
        const before = ctx.server.stats().transactionsCommitted;
        const logged = ctx.logs.length;
        for (let s = 0; s < 3600; s++) ctx.clock.advance(1000);
        const failures = ctx.logs.slice(logged).filter((l) => /^scheduled /.test(l.message));
        check(failures.length === 0, failures.map((f) => f.message).slice(0, 3).join('; '));
        return `${ctx.server.stats().transactionsCommitted - before} transactions`;
      },
    });
  }
  return out;
}

const specific: Record<string, Scenario[]> = {
  'modules/sdk-test-procedure-ts': [
    {
      name: 'procedure return values',
      async run(ctx) {
        const c = await ctx.client();
        const expectReturn = async (name: string, args: Record<string, unknown>, want: unknown) => {
          const r = await callProcedure(ctx, c, name, args);
          check(r.tag === 'Returned', `${name}: ${String(r.value)}`);
          check(JSON.stringify(r.value) === JSON.stringify(want), `${name} returned ${JSON.stringify(r.value)}, not ${JSON.stringify(want)}`);
        };
        await expectReturn('return_primitive', { lhs: 2, rhs: 40 }, 42);
        await expectReturn('return_struct', { a: 7, b: 'seven' }, { a: 7, b: 'seven' });
        await expectReturn('return_enum_a', { a: 9 }, { tag: 'A', value: 9 });
        await expectReturn('return_enum_b', { b: 'bee' }, { tag: 'B', value: 'bee' });
      },
    },
    {
      name: 'procedure that panics',
      async run(ctx) {
        const r = await callProcedure(ctx, await ctx.client(), 'will_panic', {});
        check(r.tag === 'InternalError' && /expected to panic/.test(String(r.value)), `got ${JSON.stringify(r)}`);
      },
    },
    {
      name: 'withTx rollback, then commit seen by a subscriber',
      async run(ctx) {
        const watcher = await ctx.client();
        await subscribe(watcher, ['SELECT * FROM my_table']);
        const c = await ctx.client();
        const rolledBack = await callProcedure(ctx, c, 'insert_with_tx_rollback', {});
        check(rolledBack.tag === 'Returned', `rollback: ${String(rolledBack.value)}`);
        const committed = await callProcedure(ctx, c, 'insert_with_tx_commit', {});
        check(committed.tag === 'Returned', `commit: ${String(committed.value)}`);
        await watcher.next('TransactionUpdate');
        check(rows(ctx, 'my_table').length === 1, 'my_table should hold one row');
      },
    },
    {
      name: 'HTTP from a procedure gets HttpError',
      async run(ctx) {
        const c = await ctx.client();
        const r = await callProcedure(ctx, c, 'invalid_request', {});
        check(r.tag === 'Returned' && HTTP_REFUSED.test(String(r.value)), `invalid_request: ${JSON.stringify(r)}`);
        const own = await callProcedure(ctx, c, 'read_my_schema', { server_url: ctx.server.url });
        check(own.tag === 'InternalError' && HTTP_REFUSED.test(own.value), `read_my_schema: ${JSON.stringify(own)}`);
        return 'refused, as documented (no network in the dev server)';
      },
    },
    {
      name: 'scheduled procedure on an interval',
      async run(ctx) {
        const c = await ctx.client();
        const r = await callReducer(ctx, c, 'schedule_proc', {});
        check(r.tag === 'Ok', `schedule_proc: ${JSON.stringify(r)}`);
        ctx.clock.advance(999);
        check(rows(ctx, 'proc_inserts_into').length === 0, 'ran early');
        ctx.clock.advance(1);
        const first = rows(ctx, 'proc_inserts_into');
        check(first.length === 1 && first[0].x === 42 && first[0].y === 24, `after 1 s: ${first.length} rows`);
        ctx.clock.advance(1000);
        check(rows(ctx, 'proc_inserts_into').length === 2, 'the interval did not repeat');
      },
    },
    {
      name: 'sorted UUIDs in one transaction',
      async run(ctx) {
        const r = await callProcedure(ctx, await ctx.client(), 'sorted_uuids_insert', {});
        check(r.tag === 'Returned', `sorted_uuids_insert: ${String(r.value)}`);
        check(rows(ctx, 'pk_uuid').length === 1000, 'pk_uuid should hold 1000 rows');
      },
    },
  ],
  'modules/module-test-ts': [
    {
      name: 'init arms a repeating and a one-shot schedule',
      async run(ctx) {
        check(rows(ctx, 'repeating_test_arg').length === 1, 'repeating_test_arg should hold one row');
        check(rows(ctx, 'nonrepeating_test_arg').length === 1, 'nonrepeating_test_arg should hold one row');
        ctx.clock.advance(1000);
        check(rows(ctx, 'nonrepeating_test_arg').length === 0, 'the one-shot row should be gone after it ran');
        check(rows(ctx, 'repeating_test_arg').length === 1, 'the repeating row should stay');
        const runs = ctx.logs.filter((l) => /This reducers runs only once/.test(l.message)).length;
        check(runs === 1, `nonrepeating_test ran ${runs} times`);
      },
    },
    {
      name: 'submodule reducer and procedure through ctx.as',
      async run(ctx) {
        const c = await ctx.client();
        const r = await callReducer(ctx, c, 'use_submodule', { value: 'from-root' });
        check(r.tag === 'Ok', `use_submodule: ${JSON.stringify(r)}`);
        const libInsert = ctx.module.reducers.find((x) => x.sourceName === 'lib.libInsert');
        check(libInsert, 'the submodule reducer libInsert is not mounted as lib.*');
        const direct = await callReducer(ctx, c, libInsert.name, { value: 'direct' });
        check(direct.tag === 'Ok', `${libInsert.name}: ${JSON.stringify(direct)}`);
        const libTable = ctx.module.tables.find((t) => t.name.startsWith('lib.'));
        check(libTable, 'no lib.* table');
        const values = rows(ctx, libTable.name).map((x) => x.value);
        check(values.includes('from-root') && values.includes('direct'), `lib table holds ${JSON.stringify(values)}`);
        const count = await callProcedure(ctx, c, 'use_submodule_procedure', {});
        check(count.tag === 'Returned' && count.value === BigInt(values.length), `use_submodule_procedure: ${String(count.value)}`);
        return `lib table ${libTable.name}, reducer ${libInsert.name}`;
      },
    },
    {
      name: 'module HTTP route answers 501 with the reason',
      async run(ctx) {
        const res = await fetch(`${ctx.server.url}/v1/database/${ctx.server.database}/route/get`);
        check(res.status === 501, `status ${res.status}`);
        check(/not served by the stdb-rx dev server/.test(await res.text()), 'no reason given');
      },
    },
  ],
  'modules/sdk-test-ts': [
    {
      name: 'row-level security: each client sees only its own user row',
      async run(ctx) {
        const a = await ctx.client();
        const b = await ctx.client();
        const identityOf = (c: RawClient) => {
          const m = c.messages.find((x) => x.tag === 'InitialConnection');
          check(m && m.tag === 'InitialConnection', 'no InitialConnection');
          return m.value.identity;
        };
        for (const [c, name] of [[a, 'alice'], [b, 'bob']] as const) {
          const r = await callReducer(ctx, c, 'insert_user', { name, identity: identityOf(c) });
          check(r.tag === 'Ok', `insert_user ${name}: ${JSON.stringify(r)}`);
        }
        for (const c of [a, b]) {
          const seen = countRows(await oneOff(c, 'SELECT * FROM users'));
          check(seen === 1, `a client's one-off query sees ${seen} user rows, not its own 1`);
          const applied = await subscribe(c, ['SELECT * FROM users']);
          const subscribed = countRows(applied.value.rows);
          check(subscribed === 1, `a client's subscription gets ${subscribed} user rows, not its own 1`);
        }
      },
    },
  ],
  'templates/hangman-react-ts': [
    {
      name: 'round timers close rounds and start the next',
      async run(ctx) {
        const round = () => rows(ctx, 'current_round')[0];
        check(round(), 'init started no round');
        const first = round().round_number as bigint;
        for (let s = 0; s < 600; s++) ctx.clock.advance(1000);
        const later = round().round_number as bigint;
        check(later > first, `still round ${later} after ten minutes`);
        return `rounds ${first} → ${later} in ten minutes of clock time`;
      },
    },
  ],
};

export function scenariosFor(name: string, module: ModuleDescription): Scenario[] {
  // Module-specific scenarios first: they expect the state init left behind.
  return [...(specific[name] ?? []), ...generic(module)];
}

