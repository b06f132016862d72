import { expect } from 'chai';
import { Subject } from 'rxjs';
import { Identity } from 'spacetimedb';
import {
  reconcile,
  ReconcileError,
  valueEquals,
  type MutationEvent,
  type PendingMutation,
  type ReconcileConfig,
  type ReconciledView,
} from '../../operators/index.ts';
import { newScheduler } from './marbles.ts';

type Row = { x: number; y?: number; name?: string };
type Event = MutationEvent<string, Row>;
const table = (entries: Record<string, Row>) => new Map(Object.entries(entries));
const view = (
  rows: ReadonlyMap<string, Row>,
  pending: Record<string, Array<string | number>> = {},
  mutations: Array<string | number> = [],
  events: ReconciledView<string, Row>['events'] = [],
): ReconciledView<string, Row> => ({ rows, pending: new Map(Object.entries(pending)), mutations, events });

/** A pending mutation setting fields of one row from its current value. */
const pending = (id: string | number, key: string, change: (row: Row) => Row | null): PendingMutation<string, Row> => ({
  type: 'pending',
  id,
  predict: (rows) => new Map([[key, change(rows.get(key) ?? { x: 0 })]]),
});

describe('reconcile', () => {
  it('replays a pending prediction on top of the server rows until it is confirmed', () => {
    newScheduler().run(({ cold, hot, expectObservable }) => {
      const s = table({ p1: { x: 0 } });
      const t = table({ p1: { x: 1 } });
      const p = pending(1, 'p1', (r) => ({ ...r, x: r.x + 1 }));
      const server = cold('  s-------------t--', { s, t });
      const mutations = hot('---p------c------', { p, c: { type: 'confirmed', id: 1 } as Event });
      expectObservable(server.pipe(reconcile(mutations))).toBe('v--w------x---y--', {
        v: view(s),
        w: view(table({ p1: { x: 1 } }), { p1: [1] }, [1]),
        x: view(s),
        y: view(t),
      });
    });
  });

  it('returns the server snapshot itself when nothing is pending', () => {
    const s = table({ a: { x: 1 } });
    const seen: ReconciledView<string, Row>[] = [];
    const server = new Subject<ReadonlyMap<string, Row>>();
    server.pipe(reconcile(new Subject<Event>())).subscribe((v) => seen.push(v));
    server.next(s);
    expect(seen[0].rows).to.equal(s);
  });

  it('applies pending mutations in order, each predicting from the rows before it', () => {
    newScheduler().run(({ cold, hot, expectObservable }) => {
      const s = table({ p1: { x: 1 } });
      const double = pending('a', 'p1', (r) => ({ ...r, x: r.x * 2 }));
      const plusTen = pending('b', 'p1', (r) => ({ ...r, x: r.x + 10 }));
      const server = cold('  s----', { s });
      const mutations = hot('-a-b-', { a: double, b: plusTen });
      expectObservable(server.pipe(reconcile(mutations))).toBe('va-b-', {
        v: view(s),
        a: view(table({ p1: { x: 2 } }), { p1: ['a'] }, ['a']),
        b: view(table({ p1: { x: 12 } }), { p1: ['a', 'b'] }, ['a', 'b']),
      });
    });
  });

  it('rebases: a prediction reading another row re-runs when the server changes that row', () => {
    newScheduler().run(({ cold, hot, expectObservable }) => {
      const s = table({ flag: { x: 5 }, p1: { x: 0 } });
      const t = table({ flag: { x: 9 }, p1: { x: 0 } });
      const goToFlag: PendingMutation<string, Row> = {
        type: 'pending',
        id: 1,
        predict: (rows) => new Map([['p1', { x: rows.get('flag')!.x }]]),
      };
      const server = cold('  s---t', { s, t });
      const mutations = hot('--p--', { p: goToFlag });
      expectObservable(server.pipe(reconcile(mutations))).toBe('v-w-x', {
        v: view(s),
        w: view(table({ flag: { x: 5 }, p1: { x: 5 } }), { p1: [1] }, [1]),
        x: view(table({ flag: { x: 9 }, p1: { x: 9 } }), { p1: [1] }, [1]),
      });
    });
  });

  it('marks a predicted deletion as pending while the row is absent from rows', () => {
    newScheduler().run(({ cold, hot, expectObservable }) => {
      const s = table({ a: { x: 1 }, b: { x: 2 } });
      const server = cold('  s-', { s });
      const mutations = hot('-d', { d: pending(1, 'a', () => null) });
      expectObservable(server.pipe(reconcile(mutations))).toBe('vw', {
        v: view(s),
        w: view(table({ b: { x: 2 } }), { a: [1] }, [1]),
      });
    });
  });

  describe('rollback', () => {
    it('a rejection drops the prediction and reports the mutation with its reason', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({ p1: { x: 0 } });
        const p = pending(1, 'p1', () => ({ x: 99 }));
        const server = cold('  s----', { s });
        const mutations = hot('--p-r', { p, r: { type: 'rejected', id: 1, reason: 'wall' } as Event });
        expectObservable(server.pipe(reconcile(mutations))).toBe('v-w-x', {
          v: view(s),
          w: view(table({ p1: { x: 99 } }), { p1: [1] }, [1]),
          x: view(s, {}, [], [{ type: 'rollback', mutation: p, reason: 'wall' }]),
        });
      });
    });

    it('a prediction that throws is rolled back with the exception as reason', () => {
      const boom = new Error('bad predict');
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({ p1: { x: 0 } });
        const p: PendingMutation<string, Row> = {
          type: 'pending',
          id: 1,
          predict: () => {
            throw boom;
          },
        };
        const server = cold('  s--t', { s, t: table({}) });
        const mutations = hot('-p--', { p });
        expectObservable(server.pipe(reconcile(mutations))).toBe('vw-x', {
          v: view(s),
          w: view(s, {}, [], [{ type: 'rollback', mutation: p, reason: boom }]),
          x: view(table({})),
        });
      });
    });

    it('confirmations and rejections of unknown ids change nothing and emit nothing', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({ p1: { x: 0 } });
        const server = cold('  s---', { s });
        const mutations = hot('-c-r', { c: { type: 'confirmed', id: 7 } as Event, r: { type: 'rejected', id: 8, reason: '' } as Event });
        expectObservable(server.pipe(reconcile(mutations))).toBe('v---', { v: view(s) });
      });
    });
  });

  describe('conflict', () => {
    const s = table({ p1: { x: 0, y: 0, name: 'a' } });
    /** The server moves p1 along y (and renames it) while the local mutation moves it along x. */
    const t = table({ p1: { x: 0, y: 5, name: 'b' } });
    const moveX = pending(1, 'p1', (r) => ({ ...r, x: 3, name: 'local' }));

    function run(config: ReconcileConfig<string, Row>, expected: Record<string, ReconciledView<string, Row>>) {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const server = cold('  s-t-u', { s, t, u: t });
        const mutations = hot('-p---', { p: moveX });
        expectObservable(server.pipe(reconcile(mutations, config))).toBe('vwx-y', expected);
      });
    }
    const before = view(table({ p1: { x: 3, y: 0, name: 'local' } }), { p1: [1] }, [1]);
    const conflict = (policy: string, resolved: Row | undefined, fields: string[] = []) => ({
      type: 'conflict' as const,
      mutation: moveX,
      key: 'p1',
      policy: policy as never,
      base: s.get('p1'),
      local: { x: 3, y: 5, name: 'local' },
      server: t.get('p1'),
      resolved,
      fields,
    });

    it("'server-wins' (default) drops the mutation's change to the row, reporting the conflict once", () => {
      run({}, {
        v: view(s),
        w: before,
        x: view(t, {}, [1], [conflict('server-wins', t.get('p1'))]),
        y: view(t, {}, [1]), // same server row again: no second event
      });
    });

    it("'client-wins' keeps applying the prediction over the new server row", () => {
      const rows = table({ p1: { x: 3, y: 5, name: 'local' } });
      run({ conflict: 'client-wins' }, {
        v: view(s),
        w: before,
        x: view(rows, { p1: [1] }, [1], [conflict('client-wins', rows.get('p1'))]),
        y: view(rows, { p1: [1] }, [1]),
      });
    });

    it("'merge' takes non-overlapping fields from each side and asks resolve for overlapping ones", () => {
      const asked: unknown[] = [];
      const rows = table({ p1: { x: 3, y: 5, name: 'local+b' } });
      run(
        {
          conflict: 'merge',
          resolve: ({ field, base, local, server, key, mutation }) => {
            asked.push({ field, base, local, server, key, id: mutation.id });
            return `${String(local)}+${String(server)}`;
          },
        },
        {
          v: view(s),
          w: before,
          x: view(rows, { p1: [1] }, [1], [conflict('merge', rows.get('p1'), ['name'])]),
          y: view(rows, { p1: [1] }, [1]),
        },
      );
      expect(asked[0]).to.deep.equal({ field: 'name', base: 'a', local: 'local', server: 'b', key: 'p1', id: 1 });
    });

    it("'merge' without resolve gives overlapping fields to the server", () => {
      const rows = table({ p1: { x: 3, y: 5, name: 'b' } });
      run({ conflict: 'merge' }, {
        v: view(s),
        w: before,
        x: view(rows, { p1: [1] }, [1], [conflict('merge', rows.get('p1'), ['name'])]),
        y: view(rows, { p1: [1] }, [1]),
      });
    });

    it("'merge' falls back to the server when the server deleted the row", () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const server = cold('  s-e', { s, e: table({}) });
        const mutations = hot('-p--', { p: moveX });
        expectObservable(server.pipe(reconcile(mutations, { conflict: 'merge' }))).toBe('vwx', {
          v: view(s),
          w: before,
          x: view(table({}), {}, [1], [{ ...conflict('merge', undefined), local: { x: 3, name: 'local' }, server: undefined }]),
        });
      });
    });

    it('a server row that already equals the prediction is no conflict (the echo of our own mutation)', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const echoed = table({ p1: { x: 3, y: 0, name: 'local' } });
        const server = cold('  s-e--', { s, e: echoed });
        const mutations = hot('-p--c', { p: moveX, c: { type: 'confirmed', id: 1 } as Event });
        expectObservable(server.pipe(reconcile(mutations))).toBe('vwx-y', {
          v: view(s),
          w: before,
          x: view(table({ p1: { x: 3, y: 0, name: 'local' } }), { p1: [1] }, [1]),
          y: view(echoed),
        });
      });
    });

    it('compares rows structurally by default, Identity values by isEqual', () => {
      expect(valueEquals({ id: new Identity(1n), b: [1, { c: 2n }] }, { id: new Identity(1n), b: [1, { c: 2n }] })).to.equal(true);
      expect(valueEquals({ id: new Identity(1n) }, { id: new Identity(2n) })).to.equal(false);
      expect(valueEquals({ a: 1 }, { a: 1, b: undefined })).to.equal(false);
      expect(valueEquals(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).to.equal(false);
    });

    it('uses the given equals to decide whether the server changed a row', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const server = cold('  s-t', { s, t });
        const mutations = hot('-p-', { p: moveX });
        // rows with the same x count as equal: the server's y/name change is not a conflict
        const rows = table({ p1: { x: 3, y: 5, name: 'local' } });
        expectObservable(server.pipe(reconcile(mutations, { equals: (a, b) => a.x === b.x }))).toBe('vwx', {
          v: view(s),
          w: before,
          x: view(rows, { p1: [1] }, [1]),
        });
      });
    });
  });

  describe('lifecycle', () => {
    it('emits nothing before the first server snapshot, then includes earlier mutations', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({ p1: { x: 0 } });
        const server = cold('  --s', { s });
        const mutations = hot('p--', { p: pending(1, 'p1', () => ({ x: 4 })) });
        expectObservable(server.pipe(reconcile(mutations))).toBe('--w', { w: view(table({ p1: { x: 4 } }), { p1: [1] }, [1]) });
      });
    });

    it('completes when both inputs complete', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({});
        expectObservable(cold('s-|', { s }).pipe(reconcile(hot<Event>('----|')))).toBe('v---|', { v: view(s) });
        expectObservable(cold('s----|', { s }).pipe(reconcile(hot<Event>('--|')))).toBe('v----|', { v: view(s) });
      });
    });

    it('passes errors of either input through', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const s = table({});
        expectObservable(cold('s-#', { s }).pipe(reconcile(hot<Event>('-----')))).toBe('v-#', { v: view(s) });
        expectObservable(cold('s----', { s }).pipe(reconcile(hot<Event>('---#')))).toBe('v--#', { v: view(s) });
      });
    });

    it('errors with ReconcileError when a pending id is reused while pending', () => {
      const errors: unknown[] = [];
      const server = new Subject<ReadonlyMap<string, Row>>();
      const mutations = new Subject<Event>();
      server.pipe(reconcile(mutations)).subscribe({ error: (e) => errors.push(e) });
      server.next(table({}));
      mutations.next(pending(1, 'a', () => ({ x: 1 })));
      const again = pending(1, 'b', () => ({ x: 2 }));
      mutations.next(again);
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(ReconcileError);
      expect((errors[0] as ReconcileError).info).to.deep.equal({ id: 1, event: again });
    });

    it('throws a TypeError at creation for an unknown policy', () => {
      expect(() => reconcile(new Subject<Event>(), { conflict: 'last-write-wins' as never })).to.throw(TypeError);
    });
  });

  it('keeps state per subscription: one operator instance on two server streams', () => {
    newScheduler().run(({ cold, hot, expectObservable }) => {
      const a = table({ p1: { x: 0 } });
      const b = table({ p1: { x: 10 } });
      const mutations = hot('-p--', { p: pending(1, 'p1', (r) => ({ x: r.x + 1 })) });
      const op = reconcile(mutations);
      expectObservable(cold('a---', { a }).pipe(op)).toBe('vw--', { v: view(a), w: view(table({ p1: { x: 1 } }), { p1: [1] }, [1]) });
      expectObservable(cold('b---', { b }).pipe(op)).toBe('vw--', { v: view(b), w: view(table({ p1: { x: 11 } }), { p1: [1] }, [1]) });
    });
  });
});
