/**
 * Everything that runs a reducer or procedure and what follows its commit:
 * client calls (`CallReducer`, `CallProcedure`), lifecycle hooks, HTTP calls,
 * scheduled rows; then the commit — the commit log, the scheduler, views —
 * and the fan-out of each query set's changes to its subscribers.
 */
import { randomBytes } from 'node:crypto';
import { BinaryWriter, ConnectionId, Identity, TimeDuration, Timestamp } from 'spacetimedb';
import type { VerifiedToken } from './auth.ts';
import type { HostLogger, LogLevel, ModuleInstance, ReducerCall, ReducerOutcome } from './host/instance.ts';
import type { ReducerDesc } from './host/moduleDef.ts';
import type { ProcedureOutcome } from './host/procedures.ts';
import { Scheduler, type DevClock, type DueSchedule } from './host/scheduler.ts';
import type { DataDir } from './persistence.ts';
import { encodeServerMessage, type ServerMessage } from './protocol/messages.ts';
import { TransactionEffects, type Access, type QuerySet } from './subscriptions.ts';
import type { ChangeSet } from './types.ts';

/** A client that receives the updates of its query sets. */
export interface Subscriber {
  readonly querySets: ReadonlyMap<number, QuerySet>;
  sendBytes(bytes: Uint8Array): void;
}

/** A client that calls reducers and procedures. */
export interface Caller extends Subscriber {
  readonly id: ConnectionId;
  readonly identity: Identity;
  readonly jwtPayload: string;
  send(msg: ServerMessage): void;
}

/** What transactions need from the server. */
export interface TransactionsHost {
  /** The hosted module as it is now (a reload or restart replaces it). */
  readonly module: ModuleInstance;
  readonly access: Access;
  readonly clock: DevClock;
  /** The sender of scheduled calls. */
  readonly databaseIdentity: Identity;
  /** Where commits are made durable, if anywhere. */
  readonly data: DataDir | undefined;
  /** Take a snapshot after this many transactions. */
  readonly snapshotEvery: number;
  /** Run a reducer a client called (the fault wrapper goes around this). */
  readonly clientReducerCall: (reducer: ReducerDesc, call: ReducerCall) => ReducerOutcome;
  /** Everyone connected, for the fan-out. */
  subscribers(): Iterable<Subscriber>;
  readonly counters: { transactionsCommitted: number };
  readonly log: HostLogger;
}

/** A fresh random connection id. */
export function newConnectionId(): ConnectionId {
  const b = randomBytes(16);
  return new ConnectionId(b.readBigUInt64LE(0) | (b.readBigUInt64LE(8) << 64n));
}

export class Transactions {
  readonly #host: TransactionsHost;
  #scheduler: Scheduler | undefined;

  constructor(host: TransactionsHost) {
    this.#host = host;
  }

  // ---- client calls -------------------------------------------------------

  /** `CallReducer`: run it, answer the caller with its own updates, send everyone else theirs. */
  callReducer(conn: Caller, requestId: number, name: string, args: Uint8Array): void {
    const module = this.#host.module;
    const reducer = module.reducer(name);
    const reply = (result: ServerMessage & { tag: 'ReducerResult' }) => conn.send(result);
    if (!reducer || !reducer.clientCallable) {
      const why = !reducer ? `no such reducer: ${name}` : `reducer ${name} cannot be called by clients`;
      return reply({ tag: 'ReducerResult', value: { requestId, timestamp: this.#now(), result: { tag: 'InternalError', value: why } } });
    }
    const timestamp = this.#now();
    const outcome = this.#host.clientReducerCall(reducer, {
      sender: conn.identity,
      connectionId: conn.id,
      timestamp: timestamp.__timestamp_micros_since_unix_epoch__,
      args,
      jwtPayload: conn.jwtPayload,
    });
    if (outcome.status === 'failed') {
      const result =
        outcome.kind === 'user' ? ({ tag: 'Err', value: bsatnString(outcome.message) } as const) : ({ tag: 'InternalError', value: outcome.message } as const);
      return reply({ tag: 'ReducerResult', value: { requestId, timestamp, result } });
    }
    const effects = this.#commit(outcome.changes, conn);
    const querySets = [];
    for (const set of conn.querySets.values()) {
      const u = effects?.querySetUpdate(set);
      if (u) querySets.push(u);
    }
    reply({
      tag: 'ReducerResult',
      value: {
        requestId,
        timestamp,
        result: { tag: 'Ok', value: { retValue: new Uint8Array(0), transactionUpdate: { querySets } } },
      },
    });
    this.#runScheduledImmediate();
  }

  /** `CallProcedure`: its transactions are broadcast as they commit, then the result goes back. */
  callProcedure(conn: Caller, requestId: number, name: string, args: Uint8Array): void {
    const module = this.#host.module;
    const procedure = module.procedure(name);
    const timestamp = this.#now();
    let outcome: ProcedureOutcome;
    if (!procedure || !procedure.clientCallable) {
      const why = !procedure ? `no such procedure: ${name}` : `procedure ${name} cannot be called by clients`;
      outcome = { status: 'failed', message: why, durationMicros: 0 };
    } else {
      outcome = module.callProcedure(procedure, {
        sender: conn.identity,
        connectionId: conn.id,
        timestamp: timestamp.__timestamp_micros_since_unix_epoch__,
        args,
        jwtPayload: conn.jwtPayload,
        now: () => this.#host.clock.now(),
        onCommit: (changes) => this.#commit(changes, undefined),
      });
    }
    conn.send({
      tag: 'ProcedureResult',
      value: {
        requestId,
        status: outcome.status === 'returned' ? { tag: 'Returned', value: outcome.value } : { tag: 'InternalError', value: outcome.message },
        timestamp,
        totalHostExecutionDuration: new TimeDuration(BigInt(outcome.durationMicros)),
      },
    });
    this.#runScheduledImmediate();
  }

  // ---- lifecycle and HTTP calls ------------------------------------------

  /** The module's init reducer, on a new database. */
  init(): void {
    this.#runLifecycle('init', Identity.zero(), null);
  }

  /** The module's clientConnected: undefined when the client may stay, else the reason it may not. */
  connect(conn: Caller): string | undefined {
    const connected = this.#runLifecycle('onConnect', conn.identity, conn.id, conn.jwtPayload);
    return connected?.status === 'failed' ? connected.message : undefined;
  }

  /** The module's clientDisconnected. */
  disconnect(conn: Caller): void {
    this.#runLifecycle('onDisconnect', conn.identity, conn.id, conn.jwtPayload);
  }

  /**
   * Run `fn` as a connection of its own, between clientConnected and
   * clientDisconnected, as SpacetimeDB runs every HTTP call; `refused` when
   * clientConnected failed.
   */
  asConnection<T>(caller: VerifiedToken, fn: (connectionId: ConnectionId) => T): { refused: string } | { value: T } {
    const id = newConnectionId();
    const jwt = JSON.stringify(caller.claims);
    const connected = this.#runLifecycle('onConnect', caller.identity, id, jwt);
    if (connected && connected.status === 'failed') return { refused: connected.message };
    try {
      return { value: fn(id) };
    } finally {
      this.#runLifecycle('onDisconnect', caller.identity, id, jwt);
    }
  }

  /** Run a reducer for an HTTP caller and publish what it committed. */
  runReducer(reducer: ReducerDesc, caller: VerifiedToken, connectionId: ConnectionId, args: Uint8Array): ReducerOutcome {
    return this.#runInternal(reducer, caller.identity, connectionId, args, JSON.stringify(caller.claims));
  }

  #runLifecycle(kind: 'init' | 'onConnect' | 'onDisconnect', sender: Identity, connectionId: ConnectionId | null, jwtPayload?: string): ReducerOutcome | undefined {
    const reducer = this.#host.module.lifecycleReducer(kind);
    if (!reducer) return undefined;
    const outcome = this.#runInternal(reducer, sender, connectionId, new Uint8Array(0), jwtPayload);
    if (outcome.status === 'failed' && kind !== 'onConnect') {
      this.#log('warn', `${kind} reducer ${reducer.name} failed: ${outcome.message}`);
    }
    return outcome;
  }

  #runInternal(reducer: ReducerDesc, sender: Identity, connectionId: ConnectionId | null, args: Uint8Array, jwtPayload?: string): ReducerOutcome {
    const outcome = this.#host.module.callReducer(reducer, { sender, connectionId, timestamp: this.#host.clock.now(), args, jwtPayload });
    if (outcome.status === 'committed') {
      this.#commit(outcome.changes, undefined);
      this.#runScheduledImmediate();
    }
    return outcome;
  }

  // ---- commit and fan-out -------------------------------------------------

  /**
   * After a commit: make it durable, then send every subscriber but `caller`
   * the updates of its query sets that the transaction changed. Returns the
   * effects so the caller can read its own.
   */
  #commit(changes: ChangeSet, caller: Subscriber | undefined): TransactionEffects | undefined {
    const { module, data } = this.#host;
    this.#host.counters.transactionsCommitted++;
    if (changes.size === 0) return undefined;
    if (data) {
      data.append(persistentChanges(changes, module));
      if (data.snapshotDue(this.#host.snapshotEvery)) data.snapshot(module.datastore.allRows());
    }
    try {
      this.#scheduler?.onCommit(changes);
    } catch (e) {
      this.#log('error', `scheduling the rows of a committed transaction failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#host.access.views.invalidate(changes);
    const effects = new TransactionEffects(changes, module.datastore, (e) => this.#log('warn', `${e.message}; its subscribers keep the rows they have`));
    const encoded = new Map<string, Uint8Array>();
    for (const sub of this.#host.subscribers()) {
      if (sub === caller || sub.querySets.size === 0) continue;
      const querySets = [];
      const signature: string[] = [];
      for (const set of sub.querySets.values()) {
        const u = effects.querySetUpdate(set);
        if (u) {
          querySets.push(u);
          signature.push(`${set.id}:${set.queries.map((q) => q.shareKey).join('\u0001')}`);
        }
      }
      if (querySets.length === 0) continue;
      // Clients with the same query sets get the same bytes: encode once.
      const key = signature.join('\u0002');
      let bytes = encoded.get(key);
      if (!bytes) {
        bytes = encodeServerMessage({ tag: 'TransactionUpdate', value: { querySets } });
        encoded.set(key, bytes);
      }
      sub.sendBytes(bytes);
    }
    module.datastore.dropEventRows();
    return effects;
  }

  // ---- scheduled rows -----------------------------------------------------

  /** (Re)build the scheduler for the current module and arm every stored schedule row. */
  startScheduler(): void {
    this.#scheduler?.stop();
    const module = this.#host.module;
    const { schedules, tables } = module.description;
    if (schedules.length === 0) {
      this.#scheduler = undefined;
      return;
    }
    const scheduler = new Scheduler(schedules, tables, this.#host.clock, (due) => this.#onScheduleDue(due));
    this.#scheduler = scheduler;
    scheduler.armAll((table) => module.datastore.scan(table));
  }

  stopScheduler(): void {
    this.#scheduler?.stop();
  }

  #scheduleRow(due: DueSchedule) {
    for (const row of this.#host.module.datastore.lookup(due.schedule.table, due.schedule.idColumn, due.id)) return row;
    return undefined;
  }

  /**
   * A schedule row's time has come: call its reducer (then re-arm or delete
   * the row) or its procedure (re-arm or delete first: a procedure is not
   * retried), as the database's own identity.
   */
  #onScheduleDue(due: DueSchedule) {
    const { module, databaseIdentity, clock } = this.#host;
    try {
      const row = this.#scheduleRow(due);
      if (!row) return;
      const { schedule } = due;
      const timestamp = clock.now();
      if (schedule.kind === 'reducer') {
        const reducer = module.reducer(schedule.functionName)!;
        const outcome = module.callReducer(reducer, { sender: databaseIdentity, connectionId: null, timestamp, args: row.bytes });
        if (outcome.status === 'committed') this.#commit(outcome.changes, undefined);
        else this.#log('warn', `scheduled reducer ${reducer.name} failed: ${outcome.message}`);
        this.#afterScheduleRun(due);
      } else {
        this.#afterScheduleRun(due);
        const procedure = module.procedure(schedule.functionName)!;
        module.callProcedure(procedure, {
          sender: databaseIdentity,
          connectionId: null,
          timestamp,
          args: row.bytes,
          now: () => clock.now(),
          onCommit: (changes) => this.#commit(changes, undefined),
        });
      }
      this.#runScheduledImmediate();
    } catch (e) {
      this.#log('error', `scheduled ${due.schedule.functionName} (table ${due.schedule.table}): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }

  /** Re-arm an interval row, or delete a one-shot row in its own transaction. */
  #afterScheduleRun(due: DueSchedule) {
    const row = this.#scheduleRow(due);
    if (this.#scheduler?.rearmAfterRun(due, row) !== 'delete' || !row) return;
    const ds = this.#host.module.datastore;
    ds.begin();
    ds.deleteRow(ds.tableIdFromName(due.schedule.table), row);
    this.#commit(ds.commit(), undefined);
  }

  /** Calls the module queued to run right after the current transaction (at most 1000 in a row). */
  #runScheduledImmediate() {
    const module = this.#host.module;
    const queue = module.scheduledImmediate;
    let guard = 0;
    while (queue.length > 0 && guard++ < 1000) {
      const { reducer: name, args } = queue.shift()!;
      const reducer = module.reducer(name);
      if (!reducer) {
        this.#log('warn', `scheduled call to unknown reducer ${name} dropped`);
        continue;
      }
      this.#runInternal(reducer, this.#host.databaseIdentity, null, args);
    }
  }

  /** `Timestamp` of the server's clock. */
  #now(): Timestamp {
    return new Timestamp(this.#host.clock.now());
  }

  #log(level: LogLevel, message: string) {
    this.#host.log.log(level, message);
  }
}

/** Event tables' rows do not outlive their transaction: they are not logged. */
function persistentChanges(changes: ChangeSet, module: ModuleInstance): ChangeSet {
  let hasEvent = false;
  for (const name of changes.keys()) if (module.datastore.tableByName(name)?.desc.isEvent) hasEvent = true;
  if (!hasEvent) return changes;
  return new Map([...changes].filter(([name]) => !module.datastore.tableByName(name)?.desc.isEvent));
}

function bsatnString(s: string): Uint8Array {
  const w = new BinaryWriter(s.length + 4);
  w.writeString(s);
  return w.getBuffer().slice();
}
