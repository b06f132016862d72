/**
 * The chaos run (project issue 9): k sync clients, each on its own
 * fake-indexeddb with the durable outbox, make receipted mutations against
 * the dev server (with a data folder) while a seeded schedule drops every
 * socket, blackholes, adds latency, fails reducers, corrupts frames,
 * restarts the server, and kills clients and recreates them on the same
 * storage (same token, so the same identity) in the middle of their replay.
 * Then, with faults off, every client drains and the run checks that every
 * accepted mutation was applied exactly once or reported rejected with the
 * module's reason, that every client's view equals the server's tables, that
 * nothing escaped as an unhandled error and that the heap stayed bounded.
 *
 * Used by `chaos/run.ts` (the CLI, `npm run chaos`) and `test/chaos/chaos.test.ts`.
 */
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Subscription } from 'rxjs';
import { startDevServer, type DevServer } from '../../devserver/index.ts';
import { createSyncClient, OutcomeUnknownError, ReducerRejectedError, type CallHandle, type OutboxState, type SyncClient } from '../../src/index.ts';
import { openStorage } from '../../storage/index.ts';
import { DbConnection, tables } from '../../demo/arena/bindings/index.ts';
import { account, type Accounting, type MutationKind, type MutationRecord, type ServerFacts } from './accounting.ts';
import { derive, int, pick, weighted, type Rng } from './prng.ts';
import { buildSchedule, describeEvent, FAULT_KINDS, INJECTED_PREFIX, type FaultEvent, type FaultKind } from './schedule.ts';

export const ARENA_MODULE = fileURLToPath(new URL('../../demo/arena/module.ts', import.meta.url));

type ArenaClient = SyncClient<DbConnection>;

// A full collection on demand (for the live-heap measurement) without requiring `node --expose-gc`.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => Promise<void> | void;

/** One full (major) collection; asynchronous where V8 offers it, so the event loop keeps turning. */
async function fullGc(): Promise<void> {
  await gc({ type: 'major', execution: 'async' });
}

export interface ChaosOptions {
  seed: number;
  clients: number;
  /** Length of the faulty phase. */
  seconds: number;
  /** Mutations per second per client, on average (bursts come on top). @default 8 */
  rate?: number;
  /** Mean time between faults (ms). @default 600 */
  meanFaultGapMs?: number;
  /**
   * Fail when the live heap (measured right after a full collection, every
   * {@link ChaosOptions.heapCheckMs}) passes this. @default 256
   */
  maxHeapMb?: number;
  /** How often the live heap is measured (a full collection each time). @default 5000 */
  heapCheckMs?: number;
  /** Time allowed for the final drain (ms). @default the longer of 60 s and the run */
  drainTimeoutMs?: number;
  /**
   * Keep the faulty phase going past `seconds` (the workload goes on; faults already armed stay
   * armed) until this much happened, for at most `maxExtraMs` more — so that a short run on a slow
   * or loaded machine still exercises what its checks expect, instead of the checks being loosened.
   * @default no extension
   */
  atLeast?: { mutations?: number; injectedRejections?: number; maxExtraMs?: number };
  /** Progress every second with each client's state, outbox size and lease. @default false */
  trace?: boolean;
  /** Progress lines. @default none */
  log?: (line: string) => void;
}

export interface ChaosResult extends Accounting {
  seed: number;
  clients: number;
  seconds: number;
  /** Faults injected (kills included). */
  faults: number;
  faultCounts: Record<FaultKind, number>;
  /** Kills that hit a client with entries still in its outbox. */
  killsWithBacklog: number;
  /** Refused at the door (client-side bad arguments), never stored. */
  refused: number;
  /** Rejections by reason kind. */
  rejectedByModule: number;
  rejectedByInjection: number;
  /** Reducer failures the schedule asked for (each fail-reducers event's n). */
  injectedArmed: number;
  /** (client, table) pairs whose view differed from the server's rows after the drain. */
  diverged: number;
  restarts: number;
  /** Calls that never reached the outbox (other than the bad arguments), by what their handle said. */
  neverStored: string[];
  unhandled: string[];
  /** Peak live heap: the largest heap in use right after a full collection (MiB). */
  maxHeapMb: number;
  heapBoundMb: number;
  /** Live-heap measurements taken. */
  heapChecks: number;
  durationMs: number;
  serverErrorLines: string[];
  /** The summary line required by the issue. */
  summary: string;
  /** Every line of the report, the summary last. */
  report: string[];
  /** lost, duplicated, diverged, problems, unhandled errors or heap over the bound. */
  failed: boolean;
}

interface Slot {
  index: number;
  indexedDB: IDBFactory;
  server: string;
  client?: ArenaClient;
  generation: number;
  identity?: string;
  home?: bigint;
  seq: number;
  subs: Subscription[];
  outbox?: OutboxState;
  views: Map<string, ReadonlyMap<unknown, unknown>>;
  closing: Promise<unknown>[];
}

/** The tables compared between each client and the server: bindings accessor → canonical name. */
const COMPARED = [
  ['chatMessage', 'chat_message'],
  ['gameNode', 'game_node'],
  ['player', 'player'],
  ['mutationReceipt', 'mutation_receipt'],
] as const;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A stable text form of a row, the same for the module's values and the SDK's. */
export function canon(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'bigint':
      return `${v}n`;
    case 'number':
      return Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : String(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
  }
  const o = v as Record<string, unknown> & { toHexString?: () => string };
  if (typeof o.toHexString === 'function') return `id:${o.toHexString()}`;
  if (typeof o.microsSinceUnixEpoch === 'bigint') return `ts:${o.microsSinceUnixEpoch}`;
  if (v instanceof Uint8Array) return `b:${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${k}:${canon(o[k])}`)
    .join(',')}}`;
}

function serverRows(server: DevServer, table: string): Record<string, any>[] {
  const ds = server.module.datastore;
  return ds.scanTable(ds.tableIdFromName(table)).map((r) => r.value as Record<string, any>);
}

/** Distinct refusal messages of some records, with counts. */
function reasonsOf(records: readonly MutationRecord[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) m.set(r.refused ?? r.outcome ?? 'no outcome', (m.get(r.refused ?? r.outcome ?? 'no outcome') ?? 0) + 1);
  return m;
}

function mutationIdOf(e: ReducerRejectedError): string | undefined {
  const args = e.info.args as Record<string, unknown> | undefined;
  return typeof args?.mutationId === 'string' ? args.mutationId : undefined;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { seed, clients: k, seconds } = options;
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
  if (!Number.isInteger(k) || k < 1 || k > 64) throw new RangeError(`clients must be an integer from 1 to 64, got ${k}`);
  if (!(seconds > 0) || seconds > 3600) throw new RangeError(`seconds must be in (0, 3600], got ${seconds}`);
  const log = options.log ?? (() => {});
  const rate = options.rate ?? 8;
  const heapBoundMb = options.maxHeapMb ?? 256;
  const drainTimeoutMs = options.drainTimeoutMs ?? Math.max(60_000, seconds * 1000);
  const started = Date.now();

  // --- Watches: unhandled errors, heap, server error lines.
  const unhandled: string[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e));
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  // Live heap, not garbage: measured right after a full collection (sampling
  // heapUsed between collections would count whatever garbage is waiting).
  let maxHeap = 0;
  let heapChecks = 0;
  let measuring = false;
  const measureLiveHeap = async () => {
    if (measuring) return;
    measuring = true;
    try {
      await fullGc();
      heapChecks++;
      maxHeap = Math.max(maxHeap, process.memoryUsage().heapUsed);
    } finally {
      measuring = false;
    }
  };
  await measureLiveHeap();
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const heapTimer = setInterval(() => void measureLiveHeap(), options.heapCheckMs ?? 5000);
  const serverErrorLines: string[] = [];
  const problems: string[] = [];
  const problem = (m: string) => {
    if (problems.length < 30) problems.push(m);
  };

  const dataDir = await mkdtemp(join(tmpdir(), `stdb-rx-chaos-${seed}-`));
  let server: DevServer | undefined;
  const slots: Slot[] = [];
  const records: MutationRecord[] = [];
  const byId = new Map<string, MutationRecord>();
  // Handles of calls not settled yet, only: a settled call's accounting is in its record.
  const handles = new Map<string, CallHandle>();
  const faultCounts = Object.fromEntries(FAULT_KINDS.map((f) => [f, 0])) as Record<FaultKind, number>;
  let killsWithBacklog = 0;
  let injectedArmed = 0;
  let refused = 0;
  let stopping = false;
  const background: Promise<unknown>[] = [];
  let core: Omit<ChaosResult, 'unhandled' | 'maxHeapMb' | 'heapBoundMb' | 'heapChecks' | 'durationMs' | 'serverErrorLines' | 'summary' | 'report' | 'failed'> | undefined;

  const note = (rec: MutationRecord | undefined, reason: string) => {
    if (rec && !rec.reasons.includes(reason)) rec.reasons.push(reason);
  };

  try {
    server = await startDevServer({
      module: ARENA_MODULE,
      port: 0,
      host: '127.0.0.1',
      dataDir,
      logger: { log: (level, message) => level === 'error' && serverErrorLines.length < 50 && serverErrorLines.push(message) },
    });
    const srv = server;

    // --- Clients.
    const makeClient = (slot: Slot): ArenaClient => {
      slot.generation++;
      const gen = slot.generation;
      const c = createSyncClient<DbConnection>({
        builder: DbConnection.builder,
        uri: srv.wsUrl,
        database: srv.database,
        compression: slot.index % 2 === 0 ? 'none' : 'gzip',
        retry: { initialInterval: 50, maxInterval: 1000, jitter: 'full' },
        heartbeat: { interval: 400, timeout: 1500 },
        connectTimeout: 4000,
        unsubscribeGraceMs: 50,
        sdkLogLevel: 'error',
        events: null,
        storage: { open: openStorage, indexedDB: slot.indexedDB, IDBKeyRange, server: slot.server, lease: 'store', snapshotThrottleMs: 50 },
      });
      slot.subs.push(
        c.errors$.subscribe((e) => {
          if (e instanceof ReducerRejectedError) {
            const id = mutationIdOf(e);
            note(id ? byId.get(id) : undefined, e.message);
          }
        }),
        c.outbox$.subscribe({
          next: (state) => {
            if (slot.client === c) slot.outbox = state;
            if (state.rejected.length === 0) return;
            for (const entry of state.rejected) note(byId.get(entry.id), entry.error?.message ?? 'rejected (no reason)');
            // What a game would do once it has shown them.
            void c.storage?.outbox.dismiss(state.rejected.map((e) => e.id)).catch((e) => problem(`dismiss failed: ${e}`));
          },
          error: (e) => problem(`client ${slot.index} outbox$ errored: ${e}`),
        }),
        c.identity$.subscribe((id) => {
          const hex = id.toHexString();
          if (slot.identity === undefined) slot.identity = hex;
          else if (slot.identity !== hex) problem(`client ${slot.index} (generation ${gen}) came back as another identity: ${hex.slice(0, 16)}… instead of ${slot.identity.slice(0, 16)}…`);
        }),
      );
      for (const [accessor] of COMPARED) {
        slot.subs.push(
          c.table$(tables[accessor]).subscribe({
            next: (rows) => {
              if (slot.client === c) slot.views.set(accessor, rows);
            },
            error: (e) => problem(`client ${slot.index} table$(${accessor}) errored: ${e}`),
          }),
        );
      }
      return c;
    };

    const waitFor = async (what: string, cond: () => boolean, ms: number): Promise<boolean> => {
      const until = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > until) {
          problem(`timed out after ${ms} ms waiting for ${what}`);
          return false;
        }
        await sleep(25);
      }
      return true;
    };

    // --- Setup: every client live with a home node of its own.
    for (let i = 0; i < k; i++) {
      slots.push({ index: i, indexedDB: new IDBFactory(), server: `ws://chaos-${seed}-${i}.${process.pid}.local`, generation: 0, seq: 0, subs: [], views: new Map(), closing: [] });
    }
    await Promise.all(
      slots.map(async (slot) => {
        slot.client = makeClient(slot);
        const c = slot.client;
        await c.call('createNode', { mutationId: `s${seed}-home-${slot.index}`, parent: 0n, x: 0, y: 0, data: JSON.stringify({ home: slot.index }) });
        const me = slot.identity!;
        const home = serverRows(srv, 'game_node').find((r) => r.owner.toHexString() === me && r.data === JSON.stringify({ home: slot.index }));
        if (!home) throw new Error(`client ${slot.index}: its home node is not on the server`);
        slot.home = home.id as bigint;
      }),
    );
    log(`chaos: ${k} clients live, home nodes ${slots.map((s) => s.home).join(', ')}`);

    // --- Workload.
    const issue = (slot: Slot, rng: Rng) => {
      const c = slot.client;
      if (!c) return;
      const id = `s${seed}-c${slot.index}-${++slot.seq}`;
      const others = slots.filter((s) => s !== slot && s.home !== undefined);
      const coord = () => Math.round((rng() * 2000 - 1000) * 1000) / 1000;
      const kind = weighted(rng, {
        chat: 30,
        create: 8,
        move: 15,
        update: 10,
        chatEmpty: 6,
        moveForeign: others.length ? 6 : 0,
        moveOutside: 4,
        updateBadJson: 4,
        updateMissing: 3,
        createForeignParent: others.length ? 3 : 0,
        badArgs: 2,
      });
      let reducer: 'sendChat' | 'createNode' | 'moveNode' | 'updateNodeData';
      let args: Record<string, unknown>;
      let rec: MutationRecord;
      const base = (kind: MutationKind, valid: boolean, extra: Partial<MutationRecord> = {}): MutationRecord => ({ id, client: slot.index, kind, valid, accepted: false, reasons: [], ...extra });
      switch (kind) {
        case 'chat': {
          const text = `m ${id}`;
          reducer = 'sendChat';
          args = { mutationId: id, text };
          rec = base('chat', true, { marker: text });
          break;
        }
        case 'chatEmpty':
          reducer = 'sendChat';
          args = { mutationId: id, text: '   ' };
          rec = base('chat', false, { expect: 'message must not be empty', marker: `never ${id}` });
          break;
        case 'create': {
          const data = JSON.stringify({ c: id });
          reducer = 'createNode';
          args = { mutationId: id, parent: 0n, x: coord(), y: coord(), data };
          rec = base('create', true, { marker: data });
          break;
        }
        case 'createForeignParent': {
          const data = JSON.stringify({ c: id });
          const other = pick(rng, others);
          reducer = 'createNode';
          args = { mutationId: id, parent: other.home!, x: coord(), y: coord(), data };
          rec = base('create', false, { expect: `cannot attach to node ${other.home}: you do not own it`, marker: data });
          break;
        }
        case 'move':
          reducer = 'moveNode';
          args = { mutationId: id, id: slot.home!, x: coord(), y: coord() };
          rec = base('move', true, { node: slot.home });
          break;
        case 'moveForeign': {
          const other = pick(rng, others);
          reducer = 'moveNode';
          args = { mutationId: id, id: other.home!, x: coord(), y: coord() };
          rec = base('move', false, { expect: `cannot move node ${other.home}: you do not own it`, node: other.home });
          break;
        }
        case 'moveOutside':
          reducer = 'moveNode';
          args = { mutationId: id, id: slot.home!, x: 5_000_000, y: coord() };
          rec = base('move', false, { expect: 'x is outside the arena', node: slot.home });
          break;
        case 'update':
          reducer = 'updateNodeData';
          args = { mutationId: id, id: slot.home!, data: JSON.stringify({ u: id }) };
          rec = base('update', true, { node: slot.home });
          break;
        case 'updateBadJson':
          reducer = 'updateNodeData';
          args = { mutationId: id, id: slot.home!, data: `{oops ${id}` };
          rec = base('update', false, { expect: 'data is not valid JSON', node: slot.home });
          break;
        case 'updateMissing':
          reducer = 'updateNodeData';
          args = { mutationId: id, id: 987_654_321n, data: '{}' };
          rec = base('update', false, { expect: 'node 987654321 does not exist', node: 987_654_321n });
          break;
        case 'badArgs':
        default:
          // Client-side bad input: a number where the bindings say string. Must be refused at once, never stored or sent.
          reducer = 'sendChat';
          args = { mutationId: id, text: 42 };
          rec = base('chat', false, { expect: 'never sent', marker: `never ${id}` });
          break;
      }
      records.push(rec);
      byId.set(id, rec);
      const h = c.call(reducer, args as never);
      handles.set(id, h);
      h.subscribe({
        next: (o) => {
          if (o.status === 'pending') return;
          handles.delete(id);
          if (h.mutationId !== undefined) rec.accepted = true;
          if (o.status === 'confirmed') rec.outcome = 'confirmed';
          else if (o.error instanceof OutcomeUnknownError) rec.outcome = 'unknown';
          else if (o.error instanceof ReducerRejectedError) {
            rec.outcome = 'rejected';
            note(rec, o.error.message);
          } else {
            rec.outcome = h.mutationId === undefined && o.error.name !== 'ConnectionLostError' ? 'refused' : 'closed';
            if (h.mutationId === undefined) rec.refused = `${o.error.name}: ${o.error.message}`;
          }
        },
      });
      if (kind === 'badArgs') {
        refused++;
        if (rec.outcome !== 'refused') problem(`client-side bad arguments were not refused at once (${rec.outcome ?? 'pending'})`);
      }
    };

    const workload = slots.map(async (slot) => {
      const rng = derive(seed, 'client', slot.index);
      while (!stopping) {
        await sleep(int(rng, 1, Math.max(2, Math.round(2000 / rate))));
        if (stopping) break;
        const burst = rng() < 0.03 ? int(rng, 10, 30) : 1;
        for (let i = 0; i < burst; i++) issue(slot, rng);
      }
    });

    // --- Faults.
    const schedule = buildSchedule({ seed, clients: k, durationMs: seconds * 1000, meanGapMs: options.meanFaultGapMs });
    log(`chaos: ${schedule.length} faults scheduled over ${seconds} s`);
    let latencyGen = 0;
    const kill = async (slot: Slot) => {
      // Aim for the middle of a replay: wait (a little) for the client to be live with entries still in its outbox.
      const until = Date.now() + 1000;
      while (!stopping && Date.now() < until && !(slot.client?.status.state === 'live' && (slot.outbox?.pending.length ?? 0) > 0)) await sleep(10);
      // Killed even when the run is ending: the drain then starts from the new client.
      const old = slot.client;
      if (!old) return;
      if ((slot.outbox?.pending.length ?? 0) > 0) killsWithBacklog++;
      faultCounts['kill-client']++;
      for (const s of slot.subs.splice(0)) s.unsubscribe();
      slot.outbox = undefined;
      slot.views = new Map();
      // Abrupt: no waiting for the outbox to drain; the new client opens the same IndexedDB at once.
      slot.client = makeClient(slot);
      slot.closing.push(old.close().catch((e) => problem(`closing killed client ${slot.index}: ${e}`)));
    };
    // Injected reducer failures: the server keeps one counter, which each
    // fail-reducers event would replace, and set while every client is
    // offline it would wait for whichever call comes next. So: arm it when
    // some client is live with entries to send, on top of what an earlier
    // event armed and no call has used yet.
    const injectedSeen = () => records.reduce((n, r) => n + (r.reasons.some((x) => x.includes(INJECTED_PREFIX)) ? 1 : 0), 0);
    const failReducers = async (e: Extract<FaultEvent, { kind: 'fail-reducers' }>) => {
      const until = Date.now() + 1500;
      while (!stopping && Date.now() < until && !slots.some((s) => s.client?.status.state === 'live' && (s.outbox?.pending.length ?? 0) > 0)) await sleep(10);
      // Armed even when the run is ending: faults are cleared only after every background fault is done.
      injectedArmed += e.n;
      srv.faults.failNextReducers(srv.faults.reducerFailuresLeft + e.n, e.message);
      faultCounts['fail-reducers']++;
    };
    const inject = async (e: FaultEvent) => {
      const f = srv.faults;
      switch (e.kind) {
        case 'drop-all':
          f.dropAll();
          break;
        case 'blackhole':
          f.blackhole(e.ms);
          break;
        case 'latency': {
          const gen = ++latencyGen;
          f.latency(e.ms, e.jitter);
          background.push(
            sleep(e.forMs).then(() => {
              if (gen === latencyGen && !stopping) f.latency(0, 0);
            }),
          );
          break;
        }
        case 'fail-reducers':
          background.push(failReducers(e));
          return; // counted when it happens
        case 'corrupt-frame':
          f.corruptNextFrame();
          break;
        case 'restart':
          await f.restart();
          break;
        case 'kill-client':
          background.push(kill(slots[e.client]));
          return; // counted when it happens
      }
      faultCounts[e.kind]++;
    };
    const t0 = Date.now();
    const faultRunner = (async () => {
      for (const e of schedule) {
        const wait = t0 + e.at - Date.now();
        if (wait > 0) await sleep(wait);
        if (stopping) break;
        try {
          if (options.trace) log(`chaos:   ${describeEvent(e)}`);
          await inject(e);
        } catch (err) {
          problem(`injecting ${describeEvent(e)} failed: ${err}`);
        }
      }
    })();
    const progress = setInterval(() => {
      const n = Object.values(faultCounts).reduce((a, b) => a + b, 0);
      const st = srv.stats();
      const lag = Math.round(loopDelay.max / 1e6);
      loopDelay.reset();
      log(`chaos: ${Math.round((Date.now() - t0) / 1000)} s, ${records.length} mutations issued, ${n} faults, ${st.transactionsCommitted} transactions, ${st.connections} connections, event loop lag up to ${lag} ms, heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MB (peak live ${Math.round(maxHeap / 2 ** 20)} MB)`);
      if (options.trace) {
        log(`chaos:   clients ${slots.map((s) => `${s.index}:${s.client?.status.state ?? '-'}/${s.outbox?.pending.length ?? '?'}${s.client?.storage?.lease?.held ? '' : '(no lease)'}`).join(' ')}`);
        for (const s of slots) {
          const c = s.client;
          if (!c || c.status.state === 'live' || Date.now() - c.status.since < 3000) continue;
          let progress: unknown;
          let metrics: any;
          c.syncProgress$.subscribe((p) => (progress = p)).unsubscribe();
          c.metrics$.subscribe((m) => (metrics = m)).unsubscribe();
          log(`chaos:   client ${s.index} ${c.status.state} for ${Date.now() - c.status.since} ms: progress ${JSON.stringify(progress)} in ${JSON.stringify(metrics?.messagesIn)} out ${JSON.stringify(metrics?.messagesOut)}`);
        }
      }
    }, options.trace ? 1000 : 10_000);
    await sleep(seconds * 1000);
    if (options.atLeast) {
      const { mutations = 0, injectedRejections = 0, maxExtraMs = 30_000 } = options.atLeast;
      const enough = () => records.length >= mutations && injectedSeen() >= injectedRejections;
      if (!enough()) {
        const extra = Date.now();
        await waitFor(`at least ${mutations} mutations and ${injectedRejections} injected rejections`, enough, maxExtraMs);
        log(`chaos: faulty phase extended by ${Date.now() - extra} ms to reach ${records.length} mutations, ${injectedSeen()} injected rejections`);
      }
    }

    // --- Faults off; every client drains.
    stopping = true;
    clearInterval(progress);
    await faultRunner;
    await Promise.all(workload);
    await Promise.allSettled(background);
    srv.faults.clear();
    srv.faults.latency(0, 0);
    await Promise.allSettled(slots.flatMap((s) => s.closing));
    log(`chaos: faults off after ${Math.round((Date.now() - t0) / 1000)} s; draining ${records.length} mutations`);

    const drained = (s: Slot) => {
      const o = s.outbox;
      return s.client?.status.state === 'live' && o !== undefined && o.pending.length === 0 && o.rejected.length === 0;
    };
    if (!(await waitFor('every client to drain its outbox', () => slots.every(drained), drainTimeoutMs))) {
      for (const s of slots.filter((x) => !drained(x))) {
        const c = s.client;
        const o = s.outbox;
        let metrics: any;
        c?.metrics$.subscribe((m) => (metrics = m)).unsubscribe();
        problem(
          `client ${s.index} did not drain: ${c?.status.state} for ${c ? Date.now() - c.status.since : '?'} ms, lease ${c?.storage?.lease?.held ? 'held' : 'not held'}, storage ${c?.status.storage}, outbox ${o ? `${o.queued} queued, ${o.sent} sent, ${o.rejected.length} rejected` : 'never emitted'}; messages in ${JSON.stringify(metrics?.messagesIn)} out ${JSON.stringify(metrics?.messagesOut)}`,
        );
      }
    }
    for (const s of slots) {
      if (s.outbox?.quarantined.length) problem(`client ${s.index} has ${s.outbox.quarantined.length} quarantined entries`);
    }
    // Quiet server: nothing committed for a while.
    let last = -1;
    for (let stable = 0; stable < 4; ) {
      const n = srv.stats().transactionsCommitted;
      stable = n === last ? stable + 1 : 0;
      last = n;
      await sleep(150);
    }

    // --- Every client's view equals the server's tables.
    // The server is quiet by now: its text form of a table is computed once per
    // transaction count, not once per client and retry (that garbage was most
    // of the heap peak at the end of long runs).
    const serverCanonCache = new Map<string, { at: number; rows: string[] }>();
    const serverCanon = (table: string) => {
      const at = srv.stats().transactionsCommitted;
      let hit = serverCanonCache.get(table);
      if (!hit || hit.at !== at) serverCanonCache.set(table, (hit = { at, rows: serverRows(srv, table).map(canon).sort() }));
      return hit.rows;
    };
    const viewCanon = (s: Slot, accessor: string) => [...(s.views.get(accessor)?.values() ?? [])].map(canon).sort();
    const equal = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    let diverged = 0;
    for (const [accessor, table] of COMPARED) {
      const until = Date.now() + 10_000;
      for (const s of slots) {
        let same = false;
        while (!(same = equal(viewCanon(s, accessor), serverCanon(table))) && Date.now() < until) await sleep(50);
        if (!same) {
          diverged++;
          const srvRows = serverCanon(table);
          const mine = viewCanon(s, accessor);
          const missing = srvRows.filter((r) => !mine.includes(r));
          const extra = mine.filter((r) => !srvRows.includes(r));
          problem(`client ${s.index}'s ${table} differs from the server's: ${mine.length} rows vs ${srvRows.length}; missing ${missing.slice(0, 2).join(' ')}; extra ${extra.slice(0, 2).join(' ')}`);
        }
      }
    }

    // --- Close the clients (every handle settles), then read the ground truth.
    await Promise.allSettled(slots.map((s) => s.client?.close()));
    for (const s of slots) for (const sub of s.subs.splice(0)) sub.unsubscribe();
    for (const r of records) if (handles.get(r.id)?.mutationId !== undefined) r.accepted = true;

    const count = <K>(m: Map<K, number>, key: K) => m.set(key, (m.get(key) ?? 0) + 1);
    const chat = new Map<string, number>();
    for (const r of serverRows(srv, 'chat_message')) count(chat, r.text as string);
    const nodeData = new Map<string, number>();
    const versions = new Map<bigint, number>();
    for (const r of serverRows(srv, 'game_node')) {
      versions.set(r.id as bigint, r.version as number);
      if ((r.data as string).startsWith('{"c":')) count(nodeData, r.data as string);
    }
    const receipts = new Map<string, number>();
    for (const r of serverRows(srv, 'mutation_receipt')) count(receipts, r.mutationId as string);
    const facts: ServerFacts = { chat, nodeData, receipts, versions };
    const acc = account(records, facts);
    problems.push(...acc.problems);

    const injected = (r: MutationRecord) => r.reasons.some((x) => x.includes(INJECTED_PREFIX));
    const faults = Object.values(faultCounts).reduce((a, b) => a + b, 0);
    core = {
      ...acc,
      problems,
      seed,
      clients: k,
      seconds,
      faults,
      faultCounts,
      killsWithBacklog,
      refused,
      rejectedByModule: records.filter((r) => r.accepted && r.reasons.length > 0 && !injected(r)).length,
      rejectedByInjection: records.filter((r) => r.accepted && injected(r)).length,
      injectedArmed,
      diverged,
      restarts: srv.stats().restarts,
      neverStored: [...reasonsOf(records.filter((r) => !r.accepted && r.expect !== 'never sent'))].map(([m, n]) => `${n}× ${m}`),
    };
  } finally {
    stopping = true;
    for (const s of slots) {
      for (const sub of s.subs.splice(0)) sub.unsubscribe();
      await s.client?.close().catch(() => undefined);
      await Promise.allSettled(s.closing);
    }
    await server?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
    clearInterval(heapTimer);
    await measureLiveHeap();
    loopDelay.disable();
    // Late rejections from closing sockets still count: give them a moment to surface.
    await sleep(50);
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  }
  const c = core!;
  const maxHeapMb = Math.round(maxHeap / 2 ** 20);
  const summary = `chaos: seed=${seed} clients=${k} mutations=${c.mutations} applied=${c.applied} rejected=${c.rejected} lost=${c.lost} duplicated=${c.duplicated} diverged=${c.diverged} faults=${c.faults} handles: confirmed=${c.handlesConfirmed} confirmedNotOnServer=${c.confirmedNotOnServer} rejected=${c.handlesRejected} rejectedOnServer=${c.otherOnServer} unknown=${c.handlesUnknown} closed=${c.handlesClosed} peakLiveHeapMb=${maxHeapMb}`;
  const report = [
    `chaos: faults injected: ${FAULT_KINDS.map((f) => `${f}=${c.faultCounts[f]}`).join(' ')}`,
    `chaos: kills with entries still in the outbox: ${c.killsWithBacklog} of ${c.faultCounts['kill-client']}; server restarts: ${c.restarts}`,
    `chaos: rejected with the module's reason: ${c.rejectedByModule}; with an injected failure: ${c.rejectedByInjection} of ${c.injectedArmed} injected (of which had taken effect on an earlier attempt: ${c.rejectedButApplied})`,
    `chaos: refused at the door (bad arguments): ${c.refused}; issued but never stored: ${c.notAccepted - c.refused}${c.neverStored.length ? ` (${c.neverStored.join('; ')})` : ''}`,
    `chaos: unhandled errors: ${unhandled.length}; server error lines: ${serverErrorLines.length}; peak live heap ${maxHeapMb} MB after a full collection, ${heapChecks} measurements (bound ${heapBoundMb} MB); ${Math.round((Date.now() - started) / 1000)} s in all`,
    ...c.problems.map((p) => `chaos: problem: ${p}`),
    ...c.lostIds.map((id) => `chaos: lost: ${id}`),
    ...c.duplicatedIds.map((id) => `chaos: duplicated: ${id}`),
    ...unhandled.slice(0, 5).map((u) => `chaos: unhandled: ${u.split('\n')[0]}`),
    ...serverErrorLines.slice(0, 5).map((l) => `chaos: server error: ${l}`),
    summary,
  ];
  const failed = c.confirmedNotOnServer > 0 || c.otherOnServer > 0 || c.lost > 0 || c.duplicated > 0 || c.diverged > 0 || c.problems.length > 0 || unhandled.length > 0 || serverErrorLines.length > 0 || maxHeapMb > heapBoundMb;
  return { ...c, unhandled, maxHeapMb, heapBoundMb, heapChecks, durationMs: Date.now() - started, serverErrorLines, summary, report, failed };
}
