/**
 * Network metrics accumulated from the socket adapter and the call tracker,
 * published as immutable snapshots on `metrics$` (built only while somebody
 * subscribes: see {@link MetricsRecorder}).
 *
 * @module
 */
import { BehaviorSubject, defer, type Observable } from 'rxjs';
import type { FrameInInfo, FrameOutInfo } from './socketAdapter.ts';

export interface LatencyStats {
  readonly count: number;
  readonly lastMs: number | null;
  readonly avgMs: number | null;
  readonly maxMs: number | null;
}

/** What `metrics$` emits. Counters are cumulative over the client's life. */
export interface ClientMetrics {
  readonly framesIn: number;
  readonly framesOut: number;
  /** Bytes on the wire (compression byte included). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Inbound bytes after decompression. */
  readonly payloadBytesIn: number;
  /** Server messages by kind. */
  readonly messagesIn: Readonly<Record<string, number>>;
  /** Client messages by kind (probes included). */
  readonly messagesOut: Readonly<Record<string, number>>;
  /** Row bytes received per wire table name (uncompressed BSATN). */
  readonly tableBytesIn: Readonly<Record<string, number>>;
  readonly probesSent: number;
  readonly probesAnswered: number;
  /** Heartbeat probe round trips. */
  readonly rtt: LatencyStats;
  /** Reducer calls: call → confirmed. */
  readonly callLatency: LatencyStats;
  readonly callsConfirmed: number;
  /** Calls the server refused (or that were superseded, expired or never sent). */
  readonly callsRejected: number;
  /**
   * Calls sent without storage whose connection died before an answer: their
   * outcome is unknown (the server may have applied them), so they are
   * neither confirmed nor rejected.
   */
  readonly callsLost: number;
  /** Connections that reached `live`, the first one included. */
  readonly connections: number;
}

const EMPTY_LATENCY: LatencyStats = { count: 0, lastMs: null, avgMs: null, maxMs: null };

export function emptyMetrics(): ClientMetrics {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    payloadBytesIn: 0,
    messagesIn: {},
    messagesOut: {},
    tableBytesIn: {},
    probesSent: 0,
    probesAnswered: 0,
    rtt: EMPTY_LATENCY,
    callLatency: EMPTY_LATENCY,
    callsConfirmed: 0,
    callsRejected: 0,
    callsLost: 0,
    connections: 0,
  };
}

function addLatency(s: LatencyStats, ms: number): LatencyStats {
  const count = s.count + 1;
  return { count, lastMs: ms, avgMs: ((s.avgMs ?? 0) * s.count + ms) / count, maxMs: Math.max(s.maxMs ?? ms, ms) };
}

/** The counters behind the snapshots, changed in place. */
type Totals = { -readonly [K in keyof ClientMetrics]: ClientMetrics[K] extends Readonly<Record<string, number>> ? Record<string, number> : ClientMetrics[K] };

function add(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/**
 * Accumulates the counters in place and publishes a snapshot after each
 * change while `metrics$` has subscribers. Nobody watching, a frame costs a
 * few additions and no allocation; the snapshot is built when somebody
 * subscribes (or reads `value`).
 */
export class MetricsRecorder {
  readonly #subject = new BehaviorSubject<ClientMetrics>(emptyMetrics());
  readonly #totals: Totals = emptyMetrics();
  /** The totals changed since the subject's value was built. */
  #stale = false;

  get metrics$(): Observable<ClientMetrics> {
    return defer(() => {
      this.#refresh(false);
      return this.#subject;
    });
  }

  get value(): ClientMetrics {
    this.#refresh(false);
    return this.#subject.value;
  }

  /** Build the snapshot when stale; emit it when `changed` and somebody listens (else only keep it as the value). */
  #refresh(changed: boolean): void {
    if (changed) this.#stale = true;
    if (!this.#stale || this.#subject.closed) return;
    if (changed && !this.#subject.observed) return;
    this.#stale = false;
    const t = this.#totals;
    this.#subject.next({ ...t, messagesIn: { ...t.messagesIn }, messagesOut: { ...t.messagesOut }, tableBytesIn: { ...t.tableBytesIn } });
  }

  frameIn(f: FrameInInfo): void {
    const t = this.#totals;
    for (const msg of f.messages) {
      add(t.messagesIn, msg.kind);
      if (msg.tableBytes) for (const [table, n] of msg.tableBytes) add(t.tableBytesIn, table, n);
    }
    t.framesIn++;
    t.bytesIn += f.wireBytes;
    t.payloadBytesIn += f.bytes;
    this.#refresh(true);
  }

  frameOut(f: FrameOutInfo): void {
    const t = this.#totals;
    for (const msg of f.messages) add(t.messagesOut, msg.kind);
    t.framesOut++;
    t.bytesOut += f.bytes;
    if (f.probe) t.probesSent++;
    this.#refresh(true);
  }

  probeAnswered(rttMs: number): void {
    const t = this.#totals;
    t.probesAnswered++;
    t.rtt = addLatency(t.rtt, rttMs);
    this.#refresh(true);
  }

  /** A call confirmed; its latency counts only when this client saw the answer itself (`latencyMs` given). */
  callConfirmed(latencyMs: number | undefined): void {
    const t = this.#totals;
    t.callsConfirmed++;
    if (latencyMs !== undefined) t.callLatency = addLatency(t.callLatency, latencyMs);
    this.#refresh(true);
  }

  callRejected(): void {
    this.#totals.callsRejected++;
    this.#refresh(true);
  }

  callLost(): void {
    this.#totals.callsLost++;
    this.#refresh(true);
  }

  connectionLive(): void {
    this.#totals.connections++;
    this.#refresh(true);
  }

  complete(): void {
    this.#refresh(false);
    this.#subject.complete();
  }
}
