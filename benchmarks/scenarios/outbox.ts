/**
 * 4. Outbox: enqueue 10,000 durable calls (Dexie on fake-indexeddb in Node),
 * and replay 10,000 queued calls after a reconnect, pipelined versus one
 * round trip per call.
 */
import { notMeasured, type RunConfig, type ScenarioResult } from '../harness.ts';

export async function outbox(_cfg: RunConfig): Promise<ScenarioResult> {
  return notMeasured('outbox', 'Outbox: 10,000 durable calls', 'pending', [
    { label: 'replay ≥ 10× the one-at-a-time baseline', metric: 'replayCallsPerSec', op: '>=', limit: 10 },
  ]);
}
