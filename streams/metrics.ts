/**
 * Network metrics accumulated from the socket adapter and the call tracker,
 * published as immutable snapshots on `metrics$`.
 *
 * @module
 */
import { BehaviorSubject, type Observable } from 'rxjs';
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

function bump(rec: Readonly<Record<string, number>>, key: string, n = 1): Record<string, number> {
  return { ...rec, [key]: (rec[key] ?? 0) + n };
}

export class MetricsRecorder {
  readonly #subject = new BehaviorSubject<ClientMetrics>(emptyMetrics());

  get metrics$(): Observable<ClientMetrics> {
    return this.#subject.asObservable();
  }

  get value(): ClientMetrics {
    return this.#subject.value;
  }

  #update(fn: (m: ClientMetrics) => ClientMetrics) {
    if (!this.#subject.closed) this.#subject.next(fn(this.#subject.value));
  }

  frameIn(f: FrameInInfo): void {
    this.#update((m) => {
      let messagesIn = m.messagesIn;
      let tableBytesIn = m.tableBytesIn;
      for (const msg of f.messages) {
        messagesIn = bump(messagesIn, msg.kind);
        if (msg.tableBytes) for (const [t, n] of msg.tableBytes) tableBytesIn = bump(tableBytesIn, t, n);
      }
      return { ...m, framesIn: m.framesIn + 1, bytesIn: m.bytesIn + f.wireBytes, payloadBytesIn: m.payloadBytesIn + f.bytes, messagesIn, tableBytesIn };
    });
  }

  frameOut(f: FrameOutInfo): void {
    this.#update((m) => {
      let messagesOut = m.messagesOut;
      for (const msg of f.messages) messagesOut = bump(messagesOut, msg.kind);
      return { ...m, framesOut: m.framesOut + 1, bytesOut: m.bytesOut + f.bytes, messagesOut, probesSent: m.probesSent + (f.probe ? 1 : 0) };
    });
  }

  probeAnswered(rttMs: number): void {
    this.#update((m) => ({ ...m, probesAnswered: m.probesAnswered + 1, rtt: addLatency(m.rtt, rttMs) }));
  }

  /** A call confirmed; its latency counts only when this client saw the answer itself (`latencyMs` given). */
  callConfirmed(latencyMs: number | undefined): void {
    this.#update((m) => ({ ...m, callsConfirmed: m.callsConfirmed + 1, callLatency: latencyMs === undefined ? m.callLatency : addLatency(m.callLatency, latencyMs) }));
  }

  callRejected(): void {
    this.#update((m) => ({ ...m, callsRejected: m.callsRejected + 1 }));
  }

  callLost(): void {
    this.#update((m) => ({ ...m, callsLost: m.callsLost + 1 }));
  }

  connectionLive(): void {
    this.#update((m) => ({ ...m, connections: m.connections + 1 }));
  }

  complete(): void {
    this.#subject.complete();
  }
}
