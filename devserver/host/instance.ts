/**
 * A running module: its hooks, its datastore, and the host functions that
 * connect the two. Reducers run one at a time, each in a transaction.
 */
import { ConnectionId, Identity } from 'spacetimedb';
import type { ChangeSet, StoredRow } from '../types.ts';
import { loadModule, type LoadedModule, type SysFunctions } from './bundle.ts';
import { Datastore, Errno, HostCallError, type ReadSet } from './datastore.ts';
import { describeModule, type ModuleDescription, type ProcedureDesc, type ReducerDesc, type ViewDesc } from './moduleDef.ts';
import { ProcedureSession, refuseHttpRequest, type ProcedureCall, type ProcedureOutcome } from './procedures.ts';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** Where the module's `console` output and the host's own messages go. */
export interface HostLogger {
  log(level: LogLevel, message: string): void;
}

/** The module library's console levels, by the number it passes to `console_log`. */
const LEVELS: LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace', 'error'];

export interface ReducerCall {
  readonly sender: Identity;
  readonly connectionId: ConnectionId | null;
  /** Microseconds since the Unix epoch. */
  readonly timestamp: bigint;
  readonly args: Uint8Array;
  /** The caller's JWT payload (JSON), for `ctx.senderAuth`. */
  readonly jwtPayload?: string;
}

export type ReducerOutcome =
  | { readonly status: 'committed'; readonly changes: ChangeSet; readonly durationMicros: number }
  | { readonly status: 'failed'; readonly kind: 'user' | 'internal'; readonly message: string; readonly durationMicros: number };

interface RowIter {
  readonly rows: StoredRow[];
  pos: number;
}

export interface ModuleInstanceOptions {
  readonly logger?: HostLogger;
  /** The database's identity (what `ctx.identity` returns). */
  readonly databaseIdentity: Identity;
}

export class ModuleInstance {
  readonly datastore: Datastore;
  readonly #loaded: LoadedModule;
  readonly #logger: HostLogger;
  readonly #databaseIdentity: Identity;
  readonly #iters = new Map<number, RowIter>();
  #nextIter = 1;
  readonly #timers = new Map<number, { name: string; start: number }>();
  #nextTimer = 1;
  #call: ReducerCall | undefined;
  #procedure: ProcedureSession | undefined;
  /** Reducer calls a module scheduled with `volatile_nonatomic_schedule_immediate`. */
  readonly scheduledImmediate: { reducer: string; args: Uint8Array }[] = [];

  private constructor(
    readonly path: string,
    readonly description: ModuleDescription,
    loaded: LoadedModule,
    datastore: Datastore,
    options: ModuleInstanceOptions,
  ) {
    this.#loaded = loaded;
    this.datastore = datastore;
    this.#logger = options.logger ?? { log: () => {} };
    this.#databaseIdentity = options.databaseIdentity;
  }

  /** Load the module at `path`, read its description and build its (empty) datastore. */
  static async load(path: string, options: ModuleInstanceOptions): Promise<ModuleInstance> {
    let self: ModuleInstance | undefined;
    const sys = makeSys(() => {
      if (!self) throw new HostCallError(1, 'cannot call this function during module initialization');
      return self;
    });
    const loaded = await loadModule(path, sys, { affinity: options.databaseIdentity.toHexString() });
    const description = describeModule(loaded.run(() => loaded.hooks.__describe_module__()));
    self = new ModuleInstance(path, description, loaded, new Datastore(description), options);
    const unsupported = [
      ...description.httpHandlers.map((h) => `HTTP handler ${h}`),
      ...description.httpRoutes.map((r) => `HTTP route ${r.method} ${r.path} → ${r.handler}`),
      ...description.ignoredSections.map((s) => `module section ${s}`),
    ];
    if (unsupported.length > 0) {
      self.#logger.log('warn', `the dev server does not run these parts of the module: ${unsupported.join(', ')}`);
    }
    return self;
  }

  /**
   * Let go of the module: its copy is unbound from this instance (so it no
   * longer keeps this instance, its datastore and logger alive) and goes back
   * to the pool for the next load. The instance must not be used afterwards.
   */
  dispose(): void {
    this.#closeIters();
    this.#loaded.dispose();
  }

  /** The module's raw `__describe_module__` bytes (BSATN `RawModuleDef`). */
  describeRaw(): Uint8Array {
    return this.#loaded.run(() => this.#loaded.hooks.__describe_module__());
  }

  reducer(nameOrId: string | number): ReducerDesc | undefined {
    return typeof nameOrId === 'number'
      ? this.description.reducers[nameOrId]
      : this.description.reducers.find((r) => r.name === nameOrId);
  }

  lifecycleReducer(kind: 'init' | 'onConnect' | 'onDisconnect'): ReducerDesc | undefined {
    return this.description.reducers.find((r) => r.lifecycle === kind);
  }

  /**
   * Run one reducer in its own transaction. A `SenderError` the module throws
   * is a user failure; any other exception (or a bad argument encoding) is an
   * internal one. Either way nothing it wrote is kept.
   */
  callReducer(reducer: ReducerDesc, call: ReducerCall): ReducerOutcome {
    const started = performance.now();
    const hooks = this.#loaded.hooks;
    this.datastore.begin();
    this.#call = call;
    try {
      const buf = new ArrayBuffer(call.args.byteLength);
      new Uint8Array(buf).set(call.args);
      this.#loaded.run(() =>
        hooks.__call_reducer__(
          reducer.id,
          call.sender.__identity__,
          call.connectionId?.__connection_id__ ?? 0n,
          call.timestamp,
          new DataView(buf),
        ),
      );
    } catch (e) {
      this.datastore.rollback();
      this.#closeIters();
      this.#call = undefined;
      const durationMicros = Math.round((performance.now() - started) * 1000);
      if (e instanceof hooks.__sender_error_class__) {
        return { status: 'failed', kind: 'user', message: String((e as Error).message), durationMicros };
      }
      const message = e instanceof Error ? `${e.name}: ${e.message}` : `uncaught: ${String(e)}`;
      this.#logger.log('warn', `reducer ${reducer.name} failed: ${message}`);
      return { status: 'failed', kind: 'internal', message, durationMicros };
    }
    this.#call = undefined;
    this.#closeIters();
    const changes = this.datastore.commit();
    return { status: 'committed', changes, durationMicros: Math.round((performance.now() - started) * 1000) };
  }

  /**
   * Run a view function on the committed state: for `sender`, or for nobody
   * when the view is anonymous. Returns its raw result (a `ViewResultHeader`
   * then rows or SQL) and the tables it read. Throws what the view throws.
   */
  callView(view: ViewDesc, sender: Identity): { data: Uint8Array; reads: ReadSet } {
    const hooks = this.#loaded.hooks as unknown as {
      __call_view__(id: number, sender: bigint, args: Uint8Array): Uint8Array | { data: Uint8Array };
      __call_view_anon__(id: number, args: Uint8Array): Uint8Array | { data: Uint8Array };
    };
    const args = new Uint8Array(0);
    try {
      const { result, reads } = this.datastore.trackReads(() =>
        this.#loaded.run(() =>
          view.isAnonymous ? hooks.__call_view_anon__(view.fnIndex, args) : hooks.__call_view__(view.fnIndex, sender.__identity__, args),
        ),
      );
      return { data: result instanceof Uint8Array ? result : result.data, reads };
    } finally {
      this.#closeIters();
    }
  }

  /** The module's own description (`__describe_module__`'s bytes), for the schema endpoint. */
  describeModuleBytes(): Uint8Array {
    return this.#loaded.run(() => this.#loaded.hooks.__describe_module__());
  }

  #closeIters() {
    this.#iters.clear();
  }

  procedure(nameOrId: string | number): ProcedureDesc | undefined {
    return typeof nameOrId === 'number'
      ? this.description.procedures[nameOrId]
      : this.description.procedures.find((p) => p.name === nameOrId);
  }

  /**
   * Run one procedure. It runs outside any transaction; each `ctx.withTx` it
   * makes commits on its own and is handed to `call.onCommit`. Its return
   * value comes back BSATN-encoded; a throw (or bad arguments) fails it, and a
   * transaction it left open is rolled back.
   */
  callProcedure(procedure: ProcedureDesc, call: ProcedureCall): ProcedureOutcome {
    const started = performance.now();
    const hooks = this.#loaded.hooks;
    const elapsed = () => Math.round((performance.now() - started) * 1000);
    if (!hooks.__call_procedure__) {
      return { status: 'failed', message: 'the module library has no procedure entry point', durationMicros: 0 };
    }
    const session = new ProcedureSession(call, this.datastore, () => this.#closeIters());
    this.#procedure = session;
    this.#call = { sender: call.sender, connectionId: call.connectionId, timestamp: call.timestamp, args: call.args, jwtPayload: call.jwtPayload };
    try {
      const value = this.#loaded.run(() =>
        hooks.__call_procedure__!(procedure.id, call.sender.__identity__, call.connectionId?.__connection_id__ ?? 0n, call.timestamp, call.args),
      );
      if (session.finish()) this.#logger.log('warn', `procedure ${procedure.name} returned with a transaction open; it was rolled back`);
      return { status: 'returned', value, durationMicros: elapsed() };
    } catch (e) {
      session.finish();
      const message = e instanceof Error ? `${e.name}: ${e.message}` : `uncaught: ${String(e)}`;
      this.#logger.log('warn', `procedure ${procedure.name} failed: ${message}`);
      return { status: 'failed', message, durationMicros: elapsed() };
    } finally {
      this.#procedure = undefined;
      this.#call = undefined;
      this.#closeIters();
    }
  }

  /** @internal The running procedure's transaction state (for the procedure host calls). */
  _procedureSession(): ProcedureSession {
    const p = this.#procedure;
    if (!p) throw new HostCallError(Errno.NotInTransaction, 'procedure transactions can only be opened by a running procedure');
    return p;
  }

  // ---- host functions -----------------------------------------------------

  /** @internal */ _iterOpen(rows: StoredRow[]): number {
    const id = this.#nextIter++;
    this.#iters.set(id, { rows, pos: 0 });
    return id;
  }

  /** @internal */ _iterAdvance(id: number, buffer: ArrayBuffer): number {
    const it = this.#iters.get(id);
    if (!it) throw new HostCallError(Errno.NoSuchIter, `no such iterator: ${id}`);
    const out = new Uint8Array(buffer);
    let written = 0;
    while (it.pos < it.rows.length) {
      const row = it.rows[it.pos].bytes;
      if (written + row.length > out.length) break;
      out.set(row, written);
      written += row.length;
      it.pos++;
    }
    if (it.pos < it.rows.length) {
      if (written === 0) throw { __buffer_too_small__: it.rows[it.pos].bytes.length };
      return written;
    }
    this.#iters.delete(id);
    return -written;
  }

  /** @internal */ _iterClose(id: number): void {
    this.#iters.delete(id);
  }

  /** @internal */ _log(level: number, message: string): void {
    this.#logger.log(LEVELS[level] ?? 'info', message);
  }

  /** @internal */ _timerStart(name: string): number {
    const id = this.#nextTimer++;
    this.#timers.set(id, { name, start: performance.now() });
    return id;
  }

  /** @internal */ _timerEnd(id: number): void {
    const t = this.#timers.get(id);
    if (!t) throw new HostCallError(7, `no such console timer: ${id}`);
    this.#timers.delete(id);
    this.#logger.log('debug', `Timing span "${t.name}": ${(performance.now() - t.start).toFixed(3)}ms`);
  }

  /** The database's own identity (`ctx.identity` in reducers). */
  get databaseIdentity(): Identity {
    return this.#databaseIdentity;
  }

  /** @internal */ _jwtPayload(connId: bigint): Uint8Array {
    const call = this.#call;
    if (!call || !call.jwtPayload || (call.connectionId?.__connection_id__ ?? 0n) !== connId) return new Uint8Array(0);
    return new TextEncoder().encode(call.jwtPayload);
  }

  /** @internal */ _hooks() {
    return this.#loaded.hooks;
  }
}

/** The `spacetime:sys` functions, bound to whichever instance `get()` returns. */
function makeSys(get: () => ModuleInstance): SysFunctions {
  // Host errors become the module library's own error classes, as SpacetimeDB's host throws them.
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    (...a: A): R => {
      try {
        return fn(...a);
      } catch (e) {
        if (e instanceof HostCallError) {
          const hooks = get()._hooks();
          const Cls = hooks.__get_error_constructor__(e.code);
          throw new Cls(e.message);
        }
        throw e;
      }
    };
  const bytes = (buf: ArrayBuffer, len: number, offset = 0) => new Uint8Array(buf, offset, len);
  const ds = () => get().datastore;
  const writeBack = (buf: ArrayBuffer, generated: Uint8Array) => {
    new Uint8Array(buf).set(generated, 0);
    return generated.length;
  };

  return {
    register_hooks: () => {
      throw new HostCallError(1, 'register_hooks is the 1.x ABI; the dev server loads 2.x modules through their default export');
    },
    table_id_from_name: wrap((name: string) => ds().tableIdFromName(name)),
    index_id_from_name: wrap((name: string) => ds().indexIdFromName(name)),
    datastore_table_row_count: wrap((tableId: number) => BigInt(ds().rowCount(tableId))),
    datastore_table_scan_bsatn: wrap((tableId: number) => get()._iterOpen(ds().scanTable(tableId))),
    datastore_index_scan_range_bsatn: wrap(
      (indexId: number, buf: ArrayBuffer, prefixLen: number, prefixElems: number, rstartLen: number, rendLen: number) =>
        get()._iterOpen(ds().indexScanRange(indexId, new Uint8Array(buf), prefixLen, prefixElems, rstartLen, rendLen)),
    ),
    datastore_index_scan_point_bsatn: wrap((indexId: number, buf: ArrayBuffer, len: number) =>
      get()._iterOpen(ds().indexScanPoint(indexId, bytes(buf, len))),
    ),
    row_iter_bsatn_advance: wrap((iter: number, buffer: ArrayBuffer) => get()._iterAdvance(iter, buffer)),
    row_iter_bsatn_close: (iter: number) => {
      // Also called by the module's finalization registry, outside any call.
      get()._iterClose(iter);
    },
    datastore_insert_bsatn: wrap((tableId: number, buf: ArrayBuffer, len: number) =>
      writeBack(buf, ds().insert(tableId, bytes(buf, len)).generated),
    ),
    datastore_update_bsatn: wrap((tableId: number, indexId: number, buf: ArrayBuffer, len: number) =>
      writeBack(buf, ds().update(tableId, indexId, bytes(buf, len)).generated),
    ),
    datastore_delete_by_index_scan_range_bsatn: wrap(
      (indexId: number, buf: ArrayBuffer, prefixLen: number, prefixElems: number, rstartLen: number, rendLen: number) => {
        const d = ds();
        const rows = d.indexScanRange(indexId, new Uint8Array(buf), prefixLen, prefixElems, rstartLen, rendLen);
        return d.deleteRows(d.indexTableId(indexId), rows);
      },
    ),
    datastore_delete_by_index_scan_point_bsatn: wrap((indexId: number, buf: ArrayBuffer, len: number) => {
      const d = ds();
      return d.deleteRows(d.indexTableId(indexId), d.indexScanPoint(indexId, bytes(buf, len)));
    }),
    datastore_delete_all_by_eq_bsatn: wrap((tableId: number, buf: ArrayBuffer, len: number) =>
      ds().deleteAllByEq(tableId, bytes(buf, len)),
    ),
    datastore_clear: wrap((tableId: number) => BigInt(ds().clear(tableId))),
    volatile_nonatomic_schedule_immediate: wrap((reducer: string, args: Uint8Array) => {
      get().scheduledImmediate.push({ reducer, args: new Uint8Array(args) });
    }),
    console_log: (level: number, message: string) => get()._log(level, message),
    console_timer_start: (name: string) => get()._timerStart(name),
    console_timer_end: wrap((id: number) => get()._timerEnd(id)),
    identity: () => get().databaseIdentity.__identity__,
    get_jwt_payload: (connId: bigint) => get()._jwtPayload(connId),
    procedure_http_request: wrap(refuseHttpRequest),
    procedure_start_mut_tx: wrap(() => get()._procedureSession().startTx()),
    procedure_commit_mut_tx: wrap(() => get()._procedureSession().commitTx()),
    procedure_abort_mut_tx: wrap(() => get()._procedureSession().abortTx()),
  };
}

export { HostCallError, Errno };
