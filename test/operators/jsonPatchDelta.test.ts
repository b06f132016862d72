import { expect } from 'chai';
import fc from 'fast-check';
import { from, map, toArray, lastValueFrom, Subject } from 'rxjs';
import {
  applyDelta,
  decodeValue,
  DeltaEncodingError,
  encodeValue,
  jsonCodec,
  jsonPatchDelta,
  plainJson,
  type DeltaOperation,
  type TaggedType,
} from '../../operators/index.ts';
import { newScheduler } from './marbles.ts';

type Row = Record<string, unknown>;

/** A class of the test's own, made encodable by an extension table (the operators know no class but `Uint8Array`). */
class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
const points: TaggedType<Point> = {
  tag: '$point',
  is: (v): v is Point => v instanceof Point,
  encode: (p) => [p.x, p.y],
  decode: (body) => {
    if (!Array.isArray(body) || body.length !== 2 || !body.every((n) => typeof n === 'number')) throw new TypeError('not a point');
    return new Point(body[0] as number, body[1] as number);
  },
};
const withPoints = jsonCodec([points]);
const snap = (...entries: Array<[string, Row]>) => new Map<string, Row>(entries);

/** Runs snapshots through the operator synchronously. */
async function deltas<K, R>(snapshots: Array<ReadonlyMap<K, R>>, keyToString?: (k: K) => string) {
  return lastValueFrom(from(snapshots).pipe(jsonPatchDelta<K, R>({ keyToString, codec: withPoints }), toArray()));
}

describe('jsonPatchDelta', () => {
  it('describes each step as add / replace / remove operations under /<key>/<field>', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const ann = { hp: 10, name: 'Ann' };
      const bob = { hp: 1n };
      const values = {
        a: snap(['p1', ann]),
        b: snap(['p1', { ...ann, hp: 7 }], ['a/b', bob]),
        c: snap(['a/b', bob]),
      };
      const expected: Record<string, DeltaOperation[]> = {
        x: [{ op: 'add', path: '/p1', value: { hp: 10, name: 'Ann' } }],
        y: [
          { op: 'replace', path: '/p1/hp', value: 7 },
          { op: 'add', path: '/a~1b', value: { hp: { $bigint: '1' } } },
        ],
        z: [{ op: 'remove', path: '/p1' }],
      };
      expectObservable(cold('--a-------b-------c--|', values).pipe(jsonPatchDelta())).toBe('--x-------y-------z--|', expected);
    });
  });

  it('escapes keys and field names per RFC 6901 (~ → ~0, / → ~1)', async () => {
    const ops = await deltas([snap(['~/', { 'x/y': 1, '~': 2 }]), snap(['~/', { 'x/y': 3, '~': 2 }])]);
    expect(ops).to.deep.equal([
      [{ op: 'add', path: '/~0~1', value: { 'x/y': 1, '~': 2 } }],
      [{ op: 'replace', path: '/~0~1/x~1y', value: 3 }],
    ]);
  });

  it('adds and removes single fields of a changed row, and replaces nested values whole', async () => {
    const ops = await deltas([snap(['k', { a: 1, b: 2, pos: { x: 0, y: 0 } }]), snap(['k', { a: 1, c: 3, pos: { x: 1, y: 0 } }])]);
    expect(ops[1]).to.deep.equal([
      { op: 'add', path: '/k/c', value: 3 },
      { op: 'replace', path: '/k/pos', value: { x: 1, y: 0 } },
      { op: 'remove', path: '/k/b' },
    ]);
  });

  it('replaces a tagged field value whole, never inside the tag', async () => {
    const ops = await deltas([snap(['k', { id: 1n }]), snap(['k', { id: 2n }])]);
    expect(ops[1]).to.deep.equal([{ op: 'replace', path: '/k/id', value: { $bigint: '2' } }]);
  });

  describe('unchanged rows', () => {
    it('produce no operations, whether the same object or an equal copy', async () => {
      const row = { hp: 3, at: new Point(7, 0) };
      const ops = await deltas([snap(['k', row]), snap(['k', row]), snap(['k', { hp: 3, at: new Point(7, 0) }])]);
      expect(ops).to.deep.equal([[{ op: 'add', path: '/k', value: { hp: 3, at: { $point: [7, 0] } } }], [], []]);
    });

    it('the same snapshot again yields an empty array', async () => {
      const s = snap(['k', { a: 1 }]);
      expect(await deltas([s, s])).to.deep.equal([[{ op: 'add', path: '/k', value: { a: 1 } }], []]);
    });

    it('are skipped by reference: per step only changed rows are read', async () => {
      let reads = 0;
      const counted = (i: number): Row => {
        const row = {} as Row;
        Object.defineProperty(row, 'hp', { enumerable: true, get: () => (reads++, i) });
        return row;
      };
      const first = new Map<number, Row>();
      for (let i = 0; i < 10_000; i++) first.set(i, counted(i));
      const second = new Map(first);
      second.set(42, { hp: -1 });
      second.delete(7);
      const source = new Subject<ReadonlyMap<number, Row>>();
      const out: Array<readonly DeltaOperation[]> = [];
      source.pipe(jsonPatchDelta()).subscribe((ops) => out.push(ops));
      source.next(first);
      expect(reads).to.equal(10_000);
      reads = 0;
      source.next(second);
      expect(reads).to.equal(0);
      expect(out[1]).to.deep.equal([
        { op: 'replace', path: '/42/hp', value: -1 },
        { op: 'remove', path: '/7' },
      ]);
    });
  });

  describe('value encoding', () => {
    it('tags every value JSON cannot hold', () => {
      const row = {
        big: -123n,
        nan: NaN,
        inf: -Infinity,
        negZero: -0,
        none: undefined,
        bytes: new Uint8Array([0, 1, 255]),
        lookalike: { $bigint: '1' },
        list: [1n, { tag: 'Some', value: 2 }],
      };
      expect(encodeValue(row)).to.deep.equal({
        big: { $bigint: '-123' },
        nan: { $number: 'NaN' },
        inf: { $number: '-Infinity' },
        negZero: { $number: '-0' },
        none: { $undefined: true },
        bytes: { $bytes: 'AAH/' },
        lookalike: { $object: { $bigint: '1' } },
        list: [{ $bigint: '1' }, { tag: 'Some', value: 2 }],
      });
      const back = decodeValue(JSON.parse(JSON.stringify(encodeValue(row)))) as typeof row;
      expect(back).to.deep.equal(row);
      expect(back.bytes).to.be.instanceOf(Uint8Array);
      expect(plainJson.encode(row)).to.deep.equal(encodeValue(row));
    });

    it('an extension table adds tagged types: jsonPatchDelta({ codec }) writes them, applyDelta({ codec }) rebuilds instances', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const a = snap(['p1', { at: new Point(1, 2), hp: 3 }]);
        const b = snap(['p1', { at: new Point(1, 5), hp: 3 }]);
        const ops = {
          x: [{ op: 'add', path: '/p1', value: { at: { $point: [1, 2] }, hp: 3 } }] as DeltaOperation[],
          y: [{ op: 'replace', path: '/p1/at', value: { $point: [1, 5] } }] as DeltaOperation[],
        };
        expectObservable(cold('-a-b|', { a, b }).pipe(jsonPatchDelta({ codec: withPoints }))).toBe('-x-y|', ops);
        expectObservable(cold('-x-y|', ops).pipe(applyDelta({ codec: withPoints }))).toBe('-a-b|', { a, b });
      });
      const back = withPoints.decode({ $point: [1, 2] });
      expect(back).to.be.instanceOf(Point);
      expect(back).to.deep.equal(new Point(1, 2));
    });

    it('without the extension the same values are refused, both ways', () => {
      expect(() => encodeValue({ at: new Point(1, 2) }, '/p1')).to.throw(DeltaEncodingError, /A Point instance cannot be encoded as JSON at '\/p1\/at'/);
      expect(() => decodeValue({ $point: [1, 2] })).to.throw(DeltaEncodingError, /Malformed tagged value \$point/);
      const errors: unknown[] = [];
      from([[{ op: 'add', path: '/p1', value: { at: { $point: [1, 2] } } }]] as DeltaOperation[][])
        .pipe(applyDelta())
        .subscribe({ error: (e) => errors.push(e) });
      expect((errors[0] as DeltaEncodingError).info).to.deep.equal({ path: '/p1/at', value: { $point: [1, 2] } });
    });

    it("an extension's malformed body is a DeltaEncodingError with its path; bad tags are refused when the codec is built", () => {
      expect(() => withPoints.decode({ a: [{ $point: 'x' }] })).to.throw(DeltaEncodingError, /Malformed tagged value \$point at '\/a\/0'/);
      expect(() => jsonCodec([{ ...points, tag: 'point' }])).to.throw(TypeError, /starts with '\$'/);
      expect(() => jsonCodec([{ ...points, tag: '$bigint' }])).to.throw(TypeError, /already taken/);
      expect(() => jsonCodec([points, points])).to.throw(TypeError, /already taken/);
      // The first extension that claims a value wins; the built-in kinds never reach an extension.
      const everything: TaggedType<object> = { tag: '$any', is: (v): v is object => true, encode: () => 'any', decode: () => ({}) };
      expect(jsonCodec([points, everything]).encode([new Point(0, 0), new Map(), new Uint8Array([1]), { a: 1 }])).to.deep.equal([
        { $point: [0, 0] },
        { $any: 'any' },
        { $bytes: 'AQ==' },
        { a: 1 },
      ]);
    });

    for (const [label, value] of [
      ['a function', () => 1],
      ['a Map', new Map()],
      ['a Date', new Date(0)],
      ['a symbol', Symbol('s')],
    ] as Array<[string, unknown]>) {
      it(`errors with DeltaEncodingError (path in info) for ${label}`, async () => {
        const errors: unknown[] = [];
        from([snap(['k/1', { field: value }])])
          .pipe(jsonPatchDelta())
          .subscribe({ error: (e) => errors.push(e) });
        expect(errors).to.have.length(1);
        expect(errors[0]).to.be.instanceOf(DeltaEncodingError);
        expect((errors[0] as DeltaEncodingError).info).to.deep.equal({ path: '/k~11/field', value });
      });
    }

    it("rejects the property name '__proto__'", () => {
      expect(() => encodeValue(JSON.parse('{"__proto__": 1}'))).to.throw(DeltaEncodingError, /__proto__/);
    });

    it('decoding rejects unknown or malformed tags', () => {
      expect(() => decodeValue({ $date: 'x' })).to.throw(DeltaEncodingError);
      expect(() => decodeValue({ $bigint: '1.5' })).to.throw(DeltaEncodingError);
      expect(() => decodeValue({ $number: '7' })).to.throw(DeltaEncodingError);
    });
  });

  describe('keyToString', () => {
    it('formats numbers, bigints and keys with a toHexString() (identities) by default', async () => {
      const ops = await deltas<unknown, Row>([new Map<unknown, Row>([[1, {}], [2n, {}], [{ toHexString: () => 'c2ab' }, {}]])]);
      expect(ops[0].map((op) => op.path)).to.deep.equal(['/1', '/2', '/c2ab']);
    });

    it('uses the given function, then escapes its result', async () => {
      const ops = await deltas([new Map([[{ x: 1, y: 2 }, { v: 1 }]])], (k) => `${k.x}/${k.y}`);
      expect(ops[0]).to.deep.equal([{ op: 'add', path: '/1~12', value: { v: 1 } }]);
    });
  });

  it('keeps state per subscription: one operator instance on two sources', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const op = jsonPatchDelta<string, Row>();
      const a = snap(['k', { v: 1 }]);
      const b = snap(['k', { v: 2 }]);
      expectObservable(cold('ab|', { a, b }).pipe(op)).toBe('xy|', {
        x: [{ op: 'add', path: '/k', value: { v: 1 } }],
        y: [{ op: 'replace', path: '/k/v', value: 2 }],
      });
      // the second source starts from an empty table, not from the first's last snapshot
      expectObservable(cold('-b|', { b }).pipe(op)).toBe('-z|', { z: [{ op: 'add', path: '/k', value: { v: 2 } }] });
    });
  });
});

describe('applyDelta', () => {
  it('rebuilds the snapshots from the operations', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const ops = {
        x: [{ op: 'add', path: '/p1', value: { hp: 10 } }] as DeltaOperation[],
        y: [{ op: 'replace', path: '/p1/hp', value: 7 }] as DeltaOperation[],
        z: [{ op: 'remove', path: '/p1' }] as DeltaOperation[],
      };
      expectObservable(cold('--x---y---z-|', ops).pipe(applyDelta())).toBe('--a---b---c-|', {
        a: new Map([['p1', { hp: 10 }]]),
        b: new Map([['p1', { hp: 7 }]]),
        c: new Map(),
      });
    });
  });

  it('keeps untouched rows by reference, and re-emits the same Map for an empty step', async () => {
    const out = await lastValueFrom(
      from([
        [
          { op: 'add', path: '/a', value: { v: 1 } },
          { op: 'add', path: '/b', value: { v: 1 } },
        ],
        [{ op: 'replace', path: '/b/v', value: 2 }],
        [],
      ] as DeltaOperation[][]).pipe(applyDelta<string, Row>(), toArray()),
    );
    expect(out[1].get('a')).to.equal(out[0].get('a'));
    expect(out[1].get('b')).to.not.equal(out[0].get('b'));
    expect(out[2]).to.equal(out[1]);
    expect(out[0]).to.not.equal(out[1]);
    expect(out[0].get('b')).to.deep.equal({ v: 1 }); // earlier snapshots are never mutated
  });

  it('keyFromString restores non-string keys, reusing one key object per row', async () => {
    const out = await lastValueFrom(
      from([
        [{ op: 'add', path: '/c205', value: { n: 1 } }],
        [{ op: 'replace', path: '/c205/n', value: 2 }],
      ] as DeltaOperation[][]).pipe(applyDelta<{ hex: string }, Row>({ keyFromString: (hex) => ({ hex }) }), toArray()),
    );
    expect(out[1].size).to.equal(1);
    const [key] = out[1].keys();
    expect(key).to.deep.equal({ hex: 'c205' });
    expect([...out[0].keys()][0]).to.equal(key);
  });

  it('accepts move, copy and test operations', async () => {
    const out = await lastValueFrom(
      from([
        [{ op: 'add', path: '/a', value: { v: 1 } }],
        [
          { op: 'test', path: '/a/v', value: 1 },
          { op: 'copy', from: '/a', path: '/b' },
          { op: 'move', from: '/a', path: '/c' },
        ],
      ] as never[]).pipe(applyDelta<string, Row>(), toArray()),
    );
    expect(out[1]).to.deep.equal(new Map([['b', { v: 1 }], ['c', { v: 1 }]]));
  });

  it('errors when an operation does not apply', async () => {
    const errors: unknown[] = [];
    from([[{ op: 'replace', path: '/missing/v', value: 1 }]] as DeltaOperation[][])
      .pipe(applyDelta())
      .subscribe({ error: (e) => errors.push(e) });
    expect(errors).to.have.length(1);
    expect((errors[0] as Error).name).to.equal('OPERATION_PATH_UNRESOLVABLE');
  });

  it('keeps state per subscription: one operator instance on two sources', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const op = applyDelta<string, Row>();
      const add: DeltaOperation[] = [{ op: 'add', path: '/k', value: { v: 1 } }];
      expectObservable(cold('a|', { a: add }).pipe(op)).toBe('m|', { m: new Map([['k', { v: 1 }]]) });
      expectObservable(cold('-a|', { a: add }).pipe(op)).toBe('-m|', { m: new Map([['k', { v: 1 }]]) });
    });
  });
});

describe('jsonPatchDelta → JSON → applyDelta round trip (property)', () => {
  const scalar = fc.oneof(
    fc.integer(),
    fc.double(), // includes NaN, ±Infinity, -0
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.tuple(fc.integer(), fc.integer()).map(([x, y]) => new Point(x, y)),
    fc.uint8Array({ maxLength: 8 }),
  );
  const fieldName = fc.oneof(fc.constantFrom('hp', 'pos', '$tag', 'a/b', '~x', ''), fc.string({ maxLength: 4 })).filter((s) => s !== '__proto__');
  const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fieldName, tie('value'), { maxKeys: 3, noNullPrototype: true })),
  })).value;
  const row = fc.dictionary(fieldName, value, { maxKeys: 5, noNullPrototype: true });
  const key = fc.oneof(fc.constantFrom('p1', 'p2', 'a/b', '~0', '~1/', ''), fc.string({ maxLength: 3 })).filter((s) => s !== '__proto__');
  const edit = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), key, row }),
    fc.record({ kind: fc.constant('patch' as const), key, field: fieldName, value }),
    fc.record({ kind: fc.constant('delete' as const), key }),
    fc.record({ kind: fc.constant('copy' as const), key }),
  );
  /** Each step applies a few edits to the previous snapshot, sharing unchanged row objects as a table cache does. */
  const snapshots = fc.array(fc.array(edit, { maxLength: 4 }), { maxLength: 8 }).map((steps) => {
    const out: Array<ReadonlyMap<string, Row>> = [];
    let current = new Map<string, Row>();
    for (const edits of steps) {
      current = new Map(current);
      for (const e of edits) {
        if (e.kind === 'set') current.set(e.key, e.row);
        else if (e.kind === 'delete') current.delete(e.key);
        else if (e.kind === 'copy' && current.has(e.key)) current.set(e.key, { ...current.get(e.key) });
        else if (e.kind === 'patch') current.set(e.key, { ...current.get(e.key), [e.field]: e.value });
      }
      out.push(current);
    }
    return out;
  });

  /** Map entries in key order: chai's own Map comparison sorts entries by their string form, which throws for some row values. */
  const sortedEntries = (m: ReadonlyMap<string, Row>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  it('applyDelta(jsonPatchDelta(s)) ≡ s, through JSON text (with an extension table)', async () => {
    await fc.assert(
      fc.asyncProperty(snapshots, async (input) => {
        const output = await lastValueFrom(
          from(input).pipe(
            jsonPatchDelta({ codec: withPoints }),
            map((ops) => JSON.parse(JSON.stringify(ops)) as DeltaOperation[]),
            applyDelta<string, Row>({ codec: withPoints }),
            toArray(),
          ),
        );
        expect(output.map(sortedEntries)).to.deep.equal(input.map(sortedEntries));
      }),
      { numRuns: 300 },
    );
  });

  it('a step with no changed row emits no operations', async () => {
    await fc.assert(
      fc.asyncProperty(snapshots, async (input) => {
        const copies = input.map((s) => new Map([...s].map(([k, r]) => [k, { ...r }])));
        const pairs = input.flatMap((s, i) => [s, copies[i]]);
        const ops = await deltas(pairs);
        ops.forEach((step, i) => {
          if (i % 2 === 1) expect(step).to.deep.equal([]);
        });
      }),
      { numRuns: 100 },
    );
  });
});
