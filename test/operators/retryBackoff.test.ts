import { expect } from 'chai';
import { defer, Subject } from 'rxjs';
import { retryBackoff, type RetryScheduled } from '../../operators/index.ts';
import { newScheduler, sequence } from './marbles.ts';

describe('retryBackoff', () => {
  describe('defaults (backoff-rxjs behaviour)', () => {
    it('resubscribes after initialInterval * 2^iteration and passes on the error after maxRetries', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('--#');
        const subs = [
          '                    ^-!',
          '                    -----^-!',
          '                    -------------^-!',
        ];
        const expected = '   ---------------#';
        expectObservable(source.pipe(retryBackoff({ initialInterval: 3, maxRetries: 2 }))).toBe(expected);
        expectSubscriptions(source.subscriptions).toBe(subs);
      });
    });

    it('mirrors values and completion of a source that recovers', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        let calls = 0;
        const failing = cold('-a-#');
        const healthy = cold('-b|');
        const source = defer(() => (calls++ === 0 ? failing : healthy));
        expectObservable(source.pipe(retryBackoff(4))).toBe('-a------b|');
      });
    });

    it('retries forever by default: a number argument is the initial interval', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('#');
        const unsub = '      ------------------!';
        expectObservable(source.pipe(retryBackoff(1)), unsub).toBe('-');
        // delays 1, 2, 4, 8 → subscriptions at 0, 1, 3, 7, 15
        expectSubscriptions(source.subscriptions).toBe(['(^!)', '-(^!)', '---(^!)', '-------(^!)', '---------------(^!)']);
      });
    });
  });

  describe('maxInterval', () => {
    it('caps every delay, and reports the capped delays', () => {
      const delays: number[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const op = retryBackoff({ initialInterval: 2, maxInterval: 5, maxRetries: 4, onRetry: (r) => delays.push(r.delay) });
        expectObservable(cold('#').pipe(op)).toBe('----------------#');
      });
      expect(delays).to.deep.equal([2, 4, 5, 5]);
    });
  });

  describe('shouldRetry', () => {
    it('passes a non-retryable error through at once, without waiting', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const source = cold('--#', undefined, new Error('fatal'));
        const op = retryBackoff({ initialInterval: 5, shouldRetry: (e: Error) => e.message !== 'fatal' });
        expectObservable(source.pipe(op)).toBe('--#', undefined, new Error('fatal'));
        expectSubscriptions(source.subscriptions).toBe('^-!');
      });
    });

    it('is asked for each error and stops retrying on the first false', () => {
      const seen: unknown[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        let calls = 0;
        const source = defer(() => cold('#', undefined, `e${++calls}`));
        const op = retryBackoff({
          initialInterval: 1,
          shouldRetry: (e) => {
            seen.push(e);
            return e !== 'e3';
          },
        });
        // retries after 1 and 2 ms, third error is final
        expectObservable(source.pipe(op)).toBe('---#', undefined, 'e3');
      });
      expect(seen).to.deep.equal(['e1', 'e2', 'e3']);
    });
  });

  describe('backoffDelay', () => {
    it('replaces the exponential curve, receiving the zero-based iteration and the initial interval', () => {
      const args: Array<[number, number]> = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const op = retryBackoff({
          initialInterval: 2,
          maxRetries: 3,
          backoffDelay: (iteration, initial) => {
            args.push([iteration, initial]);
            return initial; // constant
          },
        });
        expectObservable(cold('#').pipe(op)).toBe('------#');
      });
      expect(args).to.deep.equal([
        [0, 2],
        [1, 2],
        [2, 2],
      ]);
    });
  });

  describe('resetOnSuccess', () => {
    it('false (default): delays keep growing across successful emissions', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a#');
        const unsub = '      ----------!';
        // subscriptions at 0, 2 (after 1), 5 (after 2), 10 (after 4)
        expectObservable(source.pipe(retryBackoff({ initialInterval: 1 })), unsub).toBe('a-a--a----');
      });
    });

    it('true: each value resets the count, so every delay is initialInterval again', () => {
      const attempts: number[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('a#');
        const unsub = '      ----------!';
        const op = retryBackoff({ initialInterval: 1, resetOnSuccess: true, onRetry: (r) => attempts.push(r.attempt) });
        expectObservable(source.pipe(op), unsub).toBe('a-a-a-a-a-');
      });
      // failures at 1, 3, 5, 7, 9 — each one retried after 1 ms
      expect(attempts).to.deep.equal([1, 1, 1, 1, 1]);
    });

    it('true: maxRetries counts consecutive failures only', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        let calls = 0;
        // call 1 emits then fails; calls 2 and 3 fail without emitting
        const source = defer(() => (++calls === 1 ? cold('a#') : cold('#')));
        const op = retryBackoff({ initialInterval: 1, maxRetries: 1, resetOnSuccess: true });
        expectObservable(source.pipe(op)).toBe('a-#');
      });
    });
  });

  describe('jitter', () => {
    /** Runs three retries with the given jitter; asserts the final error comes after the sum of the reported delays. */
    function delaysWith(jitter: 'full' | 'equal' | 'decorrelated', random: () => number, expectedTotal: number) {
      const delays: number[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const op = retryBackoff({ initialInterval: 10, maxInterval: 100, maxRetries: 3, jitter, random, onRetry: (r) => delays.push(r.delay) });
        expectObservable(cold('#').pipe(op)).toBe(`${expectedTotal}ms #`);
      });
      return delays;
    }

    it("'none' (default) is exactly the un-jittered curve, whatever random returns", () => {
      const delays: number[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const op = retryBackoff({ initialInterval: 10, maxRetries: 3, random: () => 0.5, onRetry: (r) => delays.push(r.delay) });
        expectObservable(cold('#').pipe(op)).toBe('70ms #');
      });
      expect(delays).to.deep.equal([10, 20, 40]);
    });

    it("'full' draws uniformly from [0, d]", () => {
      expect(delaysWith('full', sequence(0.5, 0, 0.25), 15)).to.deep.equal([5, 0, 10]);
    });

    it("'equal' draws uniformly from [d/2, d]", () => {
      // d = 10, 20, 40 → 5 + 0·5, 10 + 0.5·10, 20 + 1·20
      expect(delaysWith('equal', sequence(0, 0.5, 1), 60)).to.deep.equal([5, 15, 40]);
    });

    it("'decorrelated' draws from [initialInterval, 3 * previous], capped at maxInterval", () => {
      // prev 10 → [10, 30]: r=0.5 → 20; prev 20 → [10, 60]: r=1 → 60; prev 60 → [10,180]: r=1 → 180 → cap 100
      expect(delaysWith('decorrelated', sequence(0.5, 1, 1), 180)).to.deep.equal([20, 60, 100]);
    });
  });

  describe('onRetry', () => {
    it('reports attempt, delay and error of every scheduled retry, before the wait', () => {
      const log: string[] = [];
      newScheduler().run(({ cold, expectObservable, flush }) => {
        let calls = 0;
        const source = defer(() => cold('-#', undefined, `e${++calls}`));
        const op = retryBackoff({ initialInterval: 2, maxRetries: 2, onRetry: (r) => log.push(JSON.stringify(r)) });
        expectObservable(source.pipe(op)).toBe('---------#', undefined, 'e3');
        flush();
      });
      expect(log).to.deep.equal([
        JSON.stringify({ attempt: 1, delay: 2, error: 'e1' }),
        JSON.stringify({ attempt: 2, delay: 4, error: 'e2' }),
      ]);
    });

    it('accepts an observer such as a Subject and never completes it', () => {
      const retries = new Subject<RetryScheduled>();
      const seen: RetryScheduled[] = [];
      let completed = false;
      retries.subscribe({ next: (r) => seen.push(r), complete: () => (completed = true) });
      newScheduler().run(({ cold, expectObservable }) => {
        expectObservable(cold('#', undefined, 'x').pipe(retryBackoff({ initialInterval: 1, maxRetries: 1, onRetry: retries }))).toBe(
          '-#',
          undefined,
          'x',
        );
      });
      expect(seen).to.deep.equal([{ attempt: 1, delay: 1, error: 'x' }]);
      expect(completed).to.equal(false);
    });
  });

  describe('no-op and invalid configuration', () => {
    it('maxRetries 0 returns the source itself: errors pass straight through', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const source = cold('-a#');
        const result = source.pipe(retryBackoff({ initialInterval: 5, maxRetries: 0 }));
        expect(result).to.equal(source);
        expectObservable(result).toBe('-a#');
      });
    });

    for (const [label, config] of [
      ['negative initialInterval', { initialInterval: -1 }],
      ['NaN initialInterval', { initialInterval: NaN }],
      ['missing initialInterval', {}],
      ['negative maxRetries', { initialInterval: 1, maxRetries: -1 }],
      ['negative maxInterval', { initialInterval: 1, maxInterval: -5 }],
      ['unknown jitter', { initialInterval: 1, jitter: 'some' }],
      ['non-function random', { initialInterval: 1, random: 0.5 }],
    ] as const) {
      it(`throws a TypeError at creation for ${label}`, () => {
        expect(() => retryBackoff(config as never)).to.throw(TypeError);
      });
    }
    it('throws a TypeError for a negative number argument', () => {
      expect(() => retryBackoff(-250)).to.throw(TypeError, /initialInterval/);
    });
  });

  describe('state per subscription', () => {
    it('one operator instance applied to two sources keeps two independent retry counters', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const op = retryBackoff({ initialInterval: 1, maxRetries: 2 });
        const a = cold('#');
        const b = cold('---#');
        // a: subs at 0, 1, 3 → error at 3.  b: 0..3, 4..7, 9..12 → error at 12
        expectObservable(a.pipe(op)).toBe('---#');
        expectObservable(b.pipe(op)).toBe('------------#');
        expectSubscriptions(a.subscriptions).toBe(['(^!)', '-(^!)', '---(^!)']);
        expectSubscriptions(b.subscriptions).toBe(['^--!', '----^--!', '---------^--!']);
      });
    });

    it('decorrelated jitter keeps its previous delay per subscription', () => {
      const delays: number[] = [];
      newScheduler().run(({ cold, expectObservable }) => {
        const op = retryBackoff({ initialInterval: 10, maxRetries: 2, jitter: 'decorrelated', random: () => 1, onRetry: (r) => delays.push(r.delay) });
        expectObservable(cold('#').pipe(op)).toBe('120ms #');
        expectObservable(cold('#').pipe(op)).toBe('120ms #');
      });
      // each subscription: 30 then 90 — the second does not continue from the first's 90
      expect(delays).to.deep.equal([30, 30, 90, 90]);
    });
  });
});
