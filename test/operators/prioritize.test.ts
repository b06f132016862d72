import { expect } from 'chai';
import fc from 'fast-check';
import { BehaviorSubject, from, Subject } from 'rxjs';
import { prioritize, QueueOverflowError, type PrioritizeEvent } from '../../operators/index.ts';
import { errorAsValue, newScheduler } from './marbles.ts';

type Op = { id: string; p?: number; key?: string };
const op = (id: string, p = 0, key?: string): Op => ({ id, p, key });
const byPriority = { priority: (o: Op) => o.p ?? 0 };
const byKey = { supersedeKey: (o: Op) => o.key };
const gates = { t: true, f: false };

describe('prioritize', () => {
  it('queues while the gate is closed, then releases by priority, superseding by key', () => {
    const events: PrioritizeEvent<Op>[] = [];
    newScheduler().run(({ hot, expectObservable }) => {
      const values = { a: op('a', 0, 'move'), B: op('B', 1), c: op('c'), b: op('b', 0, 'move'), d: op('d') };
      const source = hot('-a-B-c-b--------d', values);
      const gate = hot('  f---------t------', gates);
      const result = source.pipe(prioritize({ gate, ...byPriority, ...byKey, onEvent: (e) => events.push(e) }));
      expectObservable(result).toBe('----------(Bcb)-d', values);
    });
    expect(events).to.deep.equal([{ type: 'superseded', item: op('a', 0, 'move'), by: op('b', 0, 'move') }]);
  });

  describe('gate', () => {
    it('passes items straight through while open', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a'), b: op('b') };
        expectObservable(hot('-a-b-', values).pipe(prioritize({ gate: hot('t----', gates) }))).toBe('-a-b-', values);
      });
    });

    it('is closed until it first emits', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a') };
        expectObservable(hot('-a---', values).pipe(prioritize({ gate: hot('---t-', gates) }))).toBe('---a-', values);
      });
    });

    it('stops draining at once when the gate closes during a release', () => {
      const gate = new BehaviorSubject(false);
      const source = new Subject<Op>();
      const released: string[] = [];
      source.pipe(prioritize({ gate })).subscribe((o) => {
        released.push(o.id);
        if (o.id === 'b') gate.next(false);
      });
      ['a', 'b', 'c', 'd'].forEach((id) => source.next(op(id)));
      gate.next(true);
      expect(released).to.deep.equal(['a', 'b']);
      gate.next(true);
      expect(released).to.deep.equal(['a', 'b', 'c', 'd']);
    });

    it('passes gate errors through', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('-----').pipe(prioritize({ gate: hot('--#', undefined, 'down') }))).toBe('--#', undefined, 'down');
      });
    });
  });

  describe('priority', () => {
    it('releases higher priorities first and keeps arrival order within one', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a', 0), b: op('b', 2), c: op('c', 1), d: op('d', 2), e: op('e', 0) };
        const gate = hot('    f------t', gates);
        expectObservable(hot('abcde---', values).pipe(prioritize({ gate, ...byPriority }))).toBe('-------(bdcae)', values);
      });
    });

    it('orders any backlog like a stable sort by descending priority (property)', () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 200 }), (priorities) => {
          const gate = new BehaviorSubject(false);
          const out: number[] = [];
          const items = priorities.map((p, i) => ({ i, p }));
          from(items)
            .pipe(prioritize({ gate, priority: (x) => x.p }))
            .subscribe((x) => out.push(x.i));
          gate.next(true);
          const expected = [...items].sort((a, b) => b.p - a.p || a.i - b.i).map((x) => x.i);
          expect(out).to.deep.equal(expected);
        }),
      );
    });
  });

  describe('supersedeKey', () => {
    it('fifty offline moves become the last one; other keys are untouched', () => {
      const events: PrioritizeEvent<Op>[] = [];
      const gate = new BehaviorSubject(false);
      const source = new Subject<Op>();
      const released: string[] = [];
      source.pipe(prioritize({ gate, ...byKey, onEvent: (e) => events.push(e) })).subscribe((o) => released.push(o.id));
      source.next(op('chat', 0, 'chat'));
      for (let i = 1; i <= 50; i++) source.next(op(`move${i}`, 0, 'move'));
      source.next(op('fire')); // no key: never superseded
      source.next(op('fire2'));
      gate.next(true);
      expect(released).to.deep.equal(['chat', 'move50', 'fire', 'fire2']);
      expect(events).to.have.length(49);
      expect(events[48]).to.deep.equal({ type: 'superseded', item: op('move49', 0, 'move'), by: op('move50', 0, 'move') });
    });

    it('a superseding item takes its own priority and queues at the back of it', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a', 0, 'k'), b: op('b', 0), c: op('c', 1, 'k') };
        const gate = hot('    f----t', gates);
        expectObservable(hot('abc---', values).pipe(prioritize({ gate, ...byPriority, ...byKey }))).toBe('-----(cb)', values);
      });
    });
  });

  describe('ttl', () => {
    it('expires items that waited longer than ttl, reporting each', () => {
      const events: PrioritizeEvent<Op>[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a'), b: op('b') };
        const gate = hot('    f-------t', gates);
        const result = hot('a----b---', values).pipe(prioritize({ gate, ttl: 5, onEvent: (e) => events.push(e) }));
        expectObservable(result).toBe('--------b', values);
      });
      expect(events).to.deep.equal([{ type: 'expired', item: op('a'), queuedAt: 0 }]);
    });

    it('a function gives each item its own ttl; Infinity never expires', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a', 0), b: op('b', 1) };
        const gate = hot('    f---------t', gates);
        const ttl = (o: Op) => (o.p === 1 ? Infinity : 3);
        expectObservable(hot('ab--------', values).pipe(prioritize({ gate, ttl }))).toBe('----------b', values);
      });
    });

    it('released items are not expired afterwards', () => {
      const events: unknown[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a') };
        expectObservable(hot('a-----', values).pipe(prioritize({ gate: hot('-t', gates), ttl: 3, onEvent: (e) => events.push(e) }))).toBe(
          '-a----',
          values,
        );
      });
      expect(events).to.deep.equal([]);
    });
  });

  describe('capacity and overflow', () => {
    it("'error' (default) errors with QueueOverflowError and reports the overflow", () => {
      const events: PrioritizeEvent<Op>[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a'), b: op('b'), c: op('c') };
        const result = hot('abc', values).pipe(prioritize({ gate: hot('f', gates), capacity: 2, onEvent: (e) => events.push(e) }), errorAsValue());
        expectObservable(result).toBe('--(e|)', { e: { name: 'QueueOverflowError', info: { capacity: 2, item: op('c') } } });
      });
      expect(events).to.deep.equal([{ type: 'overflow', policy: 'error', item: op('c'), capacity: 2 }]);
    });

    it("'drop-oldest' removes the longest-queued item, whatever its priority, and reports it", () => {
      const events: PrioritizeEvent<Op>[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a', 5), b: op('b', 0), c: op('c', 1) };
        const gate = hot('    f---t', gates);
        const result = hot('abc-', values).pipe(
          prioritize({ gate, ...byPriority, capacity: 2, overflow: 'drop-oldest', onEvent: (e) => events.push(e) }),
        );
        expectObservable(result).toBe('----(cb)', values);
      });
      expect(events).to.deep.equal([{ type: 'overflow', policy: 'drop-oldest', item: op('c', 1), dropped: op('a', 5), capacity: 2 }]);
    });

    it('superseding never overflows', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a', 0, 'k'), b: op('b', 0, 'k') };
        expectObservable(hot('ab--', values).pipe(prioritize({ gate: hot('f--t', gates), ...byKey, capacity: 1 }))).toBe('---b', values);
      });
    });

    it('accepts an observer as onEvent', () => {
      const events = new Subject<PrioritizeEvent<Op>>();
      const seen: string[] = [];
      events.subscribe((e) => seen.push(e.type));
      from([op('a', 0, 'k'), op('b', 0, 'k')]).pipe(prioritize({ gate: new BehaviorSubject(false), ...byKey, onEvent: events })).subscribe();
      expect(seen).to.deep.equal(['superseded']);
    });
  });

  describe('termination', () => {
    it('completes only once the queue has drained', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const values = { a: op('a') };
        expectObservable(hot('a|----', values).pipe(prioritize({ gate: hot('f---t', gates) }))).toBe('----(a|)', values);
      });
    });

    it('completes when the last queued item expires', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('a|----', { a: op('a') }).pipe(prioritize({ gate: hot('f', gates), ttl: 3 }))).toBe('---|');
      });
    });

    it('passes a source error on at once, discarding the queue', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('a-#', { a: op('a') }).pipe(prioritize({ gate: hot('f---t', gates) }))).toBe('--#');
      });
    });
  });

  describe('invalid configuration', () => {
    for (const [label, config] of [
      ['missing gate', {}],
      ['zero capacity', { gate: new Subject(), capacity: 0 }],
      ['fractional capacity', { gate: new Subject(), capacity: 1.5 }],
      ['unknown overflow', { gate: new Subject(), overflow: 'drop-newest' }],
      ['negative ttl', { gate: new Subject(), ttl: -1 }],
    ] as const) {
      it(`throws a TypeError at creation for ${label}`, () => {
        expect(() => prioritize(config as never)).to.throw(TypeError);
      });
    }
  });

  it('keeps state per subscription: one operator instance on two sources', () => {
    newScheduler().run(({ hot, expectObservable }) => {
      const values = { a: op('a', 0, 'k'), b: op('b', 0, 'k'), c: op('c', 0, 'k') };
      const instance = prioritize<Op>({ gate: hot('f---t', gates), ...byKey, capacity: 1 });
      // if the queue were shared, c would supersede a and b would overflow
      expectObservable(hot('a---', values).pipe(instance)).toBe('----a', values);
      expectObservable(hot('-c--', values).pipe(instance)).toBe('----c', values);
    });
  });

  it('QueueOverflowError is an Error carrying info', () => {
    const err = new QueueOverflowError({ capacity: 3, item: 'x' });
    expect(err).to.be.instanceOf(Error);
    expect(err.name).to.equal('QueueOverflowError');
    expect(err.info).to.deep.equal({ capacity: 3, item: 'x' });
  });
});
