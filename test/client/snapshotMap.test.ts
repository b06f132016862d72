import { expect } from 'chai';
import fc from 'fast-check';
import { SnapshotMap, deferredEntries, editSnapshot } from '../../streams/snapshotMap.ts';

type K = number | bigint | string;

/**
 * Apply `[key, value | undefined]` edits to the newest version, as a view's
 * flush does: recorded by the editor (`swap`), or (`asChanges`) with `put`
 * and the caller's change objects as the diff.
 */
function apply(v: SnapshotMap<K, number>, edits: readonly (readonly [K, number | undefined])[], asChanges = false): SnapshotMap<K, number> {
  const e = editSnapshot(v);
  if (!asChanges) {
    for (const [k, x] of edits) e.swap(k, x);
    return e.commit();
  }
  const changes: { key: K; oldRow: number | undefined }[] = [];
  for (const [k, x] of edits) {
    const before = e.put(k, x);
    if (before !== x) changes.push({ key: k, oldRow: before });
  }
  return e.commit(changes);
}

function applyModel(m: Map<K, number>, edits: readonly (readonly [K, number | undefined])[]): void {
  for (const [k, x] of edits) {
    if (x === undefined) m.delete(k);
    else m.set(k, x);
  }
}

/** A key as text that tells `1`, `1n` and `'1'` apart. */
const show = (k: K) => `${typeof k}:${String(k)}`;
/** Entries as sorted text (iteration order is not part of the contract). */
const sorted = (entries: Iterable<readonly [K, number]>) => [...entries].map(([k, x]) => `${show(k)}=${x}`).sort();

/** Everything a ReadonlyMap offers, read back into plain values. */
function readAll(v: ReadonlyMap<K, number>, probe: readonly K[]) {
  const fromForEach: [K, number][] = [];
  v.forEach((x, k) => fromForEach.push([k, x]));
  return {
    size: v.size,
    entries: sorted(v),
    keys: [...v.keys()].map(show).sort(),
    values: [...v.values()].sort(),
    forEach: sorted(fromForEach),
    get: probe.map((k) => v.get(k)),
    has: probe.map((k) => v.has(k)),
  };
}

function expected(m: Map<K, number>, probe: readonly K[]) {
  return {
    size: m.size,
    entries: sorted(m),
    keys: [...m.keys()].map(show).sort(),
    values: [...m.values()].sort(),
    forEach: sorted(m),
    get: probe.map((k) => m.get(k)),
    has: probe.map((k) => m.has(k)),
  };
}

describe('SnapshotMap', () => {
  const key: fc.Arbitrary<K> = fc.oneof(fc.integer({ min: -20, max: 20 }), fc.bigInt({ min: -20n, max: 20n }), fc.constantFrom('a', 'b', 'c'));
  const probe: K[] = [...Array.from({ length: 41 }, (_, i) => i - 20), ...Array.from({ length: 41 }, (_, i) => BigInt(i - 20)), 'a', 'b', 'c', 'zz'];

  /** Random batches on `start` (model: `initial`), reading older versions between and after. */
  const history = (keyArb: fc.Arbitrary<K>, start: () => [SnapshotMap<K, number>, Map<K, number>], probe: readonly K[]) =>
    fc.property(
      fc.array(fc.array(fc.tuple(keyArb, fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined })), { maxLength: 30 }), { maxLength: 12 }),
      fc.array(fc.nat({ max: 11 }), { maxLength: 6 }),
      (batches, readsBetween) => {
        let [v, model] = start();
        const versions: [SnapshotMap<K, number>, Map<K, number>][] = [[v, new Map(model)]];
        for (const [i, batch] of batches.entries()) {
          v = apply(v, batch, i % 2 === 1);
          applyModel(model, batch);
          expect(readAll(v, probe)).to.deep.equal(expected(model, probe));
          versions.push([v, new Map(model)]);
          // Read some older versions between batches (their folds must stay right as the head moves on).
          for (const j of readsBetween) if (j <= i) expect(readAll(versions[j][0], probe)).to.deep.equal(expected(versions[j][1], probe));
        }
        for (const [old, m] of versions) expect(readAll(old, probe)).to.deep.equal(expected(m, probe));
        // And in reverse order, so the newest versions are folded before the oldest read through them.
        for (const [old, m] of [...versions].reverse()) expect(readAll(old, probe)).to.deep.equal(expected(m, probe));
      },
    );

  it('behaves like Map under random batches of mixed keys, and every earlier version reads as it was after any later batch', () => {
    // A string key first: the map is keyed by the keys themselves ('plain'); 'seed' is never deleted.
    fc.assert(history(key, () => [SnapshotMap.of<K, number>(['seed'], [0], false), new Map<K, number>([['seed', 0]])], [...probe, 'seed']), { numRuns: 300 });
  });

  it('the same with bigint keys (stored as numbers where a double holds them exactly), from empty and from deferred arrays', () => {
    const huge = 1n << 70n;
    const bigKey = fc.oneof(fc.bigInt({ min: -20n, max: 20n }), fc.bigInt({ min: -3n, max: 3n }).map((b) => huge + b), fc.constantFrom(2n ** 53n, 2n ** 53n - 1n, -(2n ** 53n)));
    const bigProbe: K[] = [...Array.from({ length: 41 }, (_, i) => BigInt(i - 20)), ...[-3n, -2n, -1n, 0n, 1n, 2n, 3n].map((b) => huge + b), 2n ** 53n, 2n ** 53n - 1n, -(2n ** 53n), 5, '5'];
    fc.assert(history(bigKey, () => [SnapshotMap.empty<K, number>(), new Map<K, number>()], bigProbe), { numRuns: 200 });
    fc.assert(
      history(bigKey, () => [SnapshotMap.of<K, number>([1n, huge, 2n ** 53n], [1, 2, 3], true), new Map<K, number>([[1n, 1], [huge, 2], [2n ** 53n, 3]])], bigProbe),
      { numRuns: 200 },
    );
  });

  it('a map keyed by bigints finds no number key and refuses one', () => {
    const v = SnapshotMap.of<K, string>([5n, 6n], ['five', 'six'], true);
    expect(v.get(5n)).to.equal('five');
    expect(v.get(5)).to.equal(undefined);
    expect(v.has('5')).to.equal(false);
    expect([...v.keys()]).to.have.members([5n, 6n]);
    const e = editSnapshot(v);
    expect(() => e.put(7, 'seven')).to.throw(TypeError, /bigint keys/);
    e.commit();
  });

  it('an earlier snapshot is unchanged after a later batch edited the map in place', () => {
    const rows = Array.from({ length: 1000 }, (_, i) => ({ id: BigInt(i), hp: i }));
    const first = SnapshotMap.of(rows.map((r) => r.id), rows, true);
    const hurt = rows.slice(0, 100).map((r) => ({ ...r, hp: -1 }));
    const e = editSnapshot(first);
    for (const r of hurt) e.swap(r.id, r);
    e.swap(500n, undefined);
    e.swap(2000n, { id: 2000n, hp: 2000 });
    const second = e.commit();
    expect(second).to.not.equal(first);
    expect(first.size).to.equal(1000);
    expect(first.get(5n)).to.equal(rows[5]);
    expect(first.get(500n)).to.equal(rows[500]);
    expect(first.has(2000n)).to.equal(false);
    expect([...first.values()]).to.have.members(rows);
    expect(second.size).to.equal(1000);
    expect(second.get(5n)).to.equal(hurt[5]);
    expect(second.has(500n)).to.equal(false);
    expect(second.get(2000n)?.hp).to.equal(2000);
    // Unchanged rows are the same objects in both.
    expect(second.get(700n)).to.equal(first.get(700n));
  });

  it('an iteration open while the map is edited sees the version it started on', () => {
    const v1 = SnapshotMap.of<K, number>([1, 2, 3], [10, 20, 30], true);
    const it = v1.entries();
    const firstEntry = it.next().value!;
    const e = editSnapshot(v1);
    e.swap(2, 21);
    e.swap(3, undefined);
    e.swap(4, 40);
    const v2 = e.commit();
    expect([firstEntry, ...it]).to.have.deep.members([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
    expect(new Map(v2)).to.deep.equal(new Map([[1, 10], [2, 21], [4, 40]]));
    // The same for an older version's iteration while its head moves on.
    const old = v1.keys();
    const firstKey = old.next().value!;
    const v3 = apply(v2, [[1, 11], [5, 50]]);
    expect([firstKey, ...old]).to.have.members([1, 2, 3]);
    expect(new Map(v1)).to.deep.equal(new Map([[1, 10], [2, 20], [3, 30]]));
    expect(new Map(v3)).to.deep.equal(new Map([[1, 11], [2, 21], [4, 40], [5, 50]]));
    // An iterator dropped half-way costs one copy, not a broken map.
    const dropped = v3.entries();
    dropped.next();
    const v4 = apply(v3, [[2, 22]]);
    expect(v3.get(2)).to.equal(21);
    expect(v4.get(2)).to.equal(22);
  });

  it('a version kept through many edits reads right across the copies made once the diffs outgrow the map', () => {
    let v = SnapshotMap.of<K, number>([1, 2], [1, 2], true);
    const kept = v;
    for (let i = 0; i < 3000; i++) v = apply(v, [[1 + (i % 2), i]]);
    expect(kept.get(1)).to.equal(1);
    expect(kept.get(2)).to.equal(2);
    expect(v.get(1)).to.equal(2998);
    expect(v.get(2)).to.equal(2999);
  });

  it('deferred: size at once, the arrays until the first lookup or edit (iteration reads them), then a table; only the newest version can be edited', () => {
    const keys = [1n, 2n, 3n];
    const v = SnapshotMap.of<bigint, string>(keys, ['a', 'b', 'c'], true);
    expect(v.size).to.equal(3);
    expect(deferredEntries(v)?.keys).to.equal(keys);
    // Iterating reads the arrays: still deferred afterwards.
    expect([...v]).to.have.deep.members([[1n, 'a'], [2n, 'b'], [3n, 'c']]);
    expect(deferredEntries(v)?.keys).to.equal(keys);
    expect(v.get(2n)).to.equal('b');
    expect(deferredEntries(v)).to.equal(undefined);
    const built = SnapshotMap.of<bigint, string>([1n, 1n, 2n], ['a', 'A', 'b'], false);
    expect(built.size).to.equal(2);
    expect(built.get(1n)).to.equal('A');
    const e = editSnapshot(v);
    e.swap(4n, 'd');
    const v2 = e.commit();
    expect(() => editSnapshot(v)).to.throw(/newest version/);
    expect(() => e.swap(5n, 'e')).to.throw(/after commit/);
    const e2 = editSnapshot(v2);
    expect(() => editSnapshot(v2)).to.throw(/already open/);
    expect(e2.commit()).to.equal(v2);
    expect(() => SnapshotMap.of([1], [], true)).to.throw(RangeError);
  });

  it('deferred keys that begin as bigints and then are not: every key is found, by lookup, edit and iteration', () => {
    const keys: K[] = [1n, 2n, 'x', 3, 2n ** 60n];
    const values = ['a', 'b', 'c', 'd', 'e'];
    const v = SnapshotMap.of<K, string>(keys, values, true);
    expect(v.get(1n)).to.equal('a');
    expect(v.get('x')).to.equal('c');
    expect(v.get(3)).to.equal('d');
    expect(v.get(2n ** 60n)).to.equal('e');
    expect(v.get(3n)).to.equal(undefined);
    const e = editSnapshot(v);
    e.put(4, 'f');
    const v2 = e.commit([{ key: 4, oldRow: undefined }]);
    expect(new Map(v2)).to.deep.equal(new Map<K, string>([...keys.map((k, i) => [k, values[i]] as [K, string]), [4, 'f']]));
    expect(v.has(4)).to.equal(false);
  });
});
