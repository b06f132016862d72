/**
 * 6. Deltas: `jsonPatchDelta` on snapshots of a 10,000-row table in which
 * each step updates 1,000 rows, versus re-emitting the full snapshot (every
 * row encoded the same way and serialised). Time per step and bytes of JSON
 * per step. Pure computation: no server.
 */
import { Subject } from 'rxjs';
import { encodeValue, jsonPatchDelta, PersistentMap, type DeltaOperation } from '../../src/index.ts';
import type { Entity } from '../bench_bindings/index.ts';
import { median, now, result, sideBySide, type Metrics, type RunConfig, type ScenarioResult } from '../harness.ts';

const ROWS = 10_000;
const CHANGED = 1_000;

export async function deltas(cfg: RunConfig): Promise<ScenarioResult> {
  const steps = cfg.quick ? 10 : 40;
  // Snapshots as table$ emits them: a persistent map sharing unchanged row objects.
  const rowOf = (id: number, v: number): Entity => ({ id: BigInt(id), owner: id % 100, x: id + v, y: 0, hp: 100 + v, name: `entity-${id}` });
  let snapshot = PersistentMap.from<bigint, Entity>(Array.from({ length: ROWS }, (_, i) => [BigInt(i + 1), rowOf(i + 1, 0)] as const));
  const snapshots = [snapshot];
  for (let s = 1; s <= steps; s++) {
    const from = ((s - 1) * CHANGED) % ROWS;
    snapshot = snapshot.withMutations((m) => {
      for (let i = from; i < from + CHANGED; i++) m.set(BigInt(i + 1), rowOf(i + 1, s));
    });
    snapshots.push(snapshot);
  }

  const delta = async (): Promise<Metrics> => {
    const input = new Subject<ReadonlyMap<bigint, Entity>>();
    let last: DeltaOperation[] = [];
    const sub = input.pipe(jsonPatchDelta()).subscribe((ops) => (last = ops as DeltaOperation[]));
    input.next(snapshots[0]);
    const times: number[] = [];
    const bytes: number[] = [];
    for (let s = 1; s <= steps; s++) {
      const t0 = now();
      input.next(snapshots[s]);
      const text = JSON.stringify(last);
      times.push(now() - t0);
      bytes.push(text.length);
    }
    sub.unsubscribe();
    return { stepMs: median(times), stepBytes: median(bytes) };
  };

  const full = async (): Promise<Metrics> => {
    const times: number[] = [];
    const bytes: number[] = [];
    for (let s = 1; s <= steps; s++) {
      const t0 = now();
      const doc: Record<string, unknown> = {};
      for (const [key, row] of snapshots[s]) doc[String(key)] = encodeValue(row);
      const text = JSON.stringify(doc);
      times.push(now() - t0);
      bytes.push(text.length);
    }
    return { stepMs: median(times), stepBytes: median(bytes) };
  };

  const reps = cfg.quick ? 3 : 7;
  const m = await sideBySide(delta, full, { warmup: 1, reps });
  return result({
    id: 'deltas',
    title: 'Deltas: jsonPatchDelta, 1,000-row updates of a 10,000-row table',
    subjectLabel: 'jsonPatchDelta ops, serialised',
    baselineLabel: 'full snapshot, encoded and serialised',
    warmup: 1,
    reps,
    figures: m.subject,
    baseline: m.baseline,
    ratio: m.ratio,
    targets: [],
    notes: [
      `${steps} steps per repetition; each replaces ${CHANGED.toLocaleString('en')} row objects (2 fields changed each: x, hp) in a PersistentMap of ${ROWS.toLocaleString('en')} rows, the other rows keep their objects, as table$ emits them.`,
      'Both sides produce JSON text: the delta side JSON.stringify(ops); the full side encodes every row with the same tagged encoding (encodeValue) and serialises the document.',
      'No target was set for deltas; the ratios are below 1 when deltas are cheaper.',
    ],
    charts: [
      {
        title: 'jsonPatchDelta / full snapshot, per 1,000-row step',
        unit: '×',
        reference: 1,
        groups: { time: { ratio: m.ratio.stepMs }, bytes: { ratio: m.ratio.stepBytes } },
      },
    ],
  });
}
