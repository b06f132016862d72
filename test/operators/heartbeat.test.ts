import { expect } from 'chai';
import { asyncScheduler, Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { heartbeat, HeartbeatTimeoutError } from '../../operators/index.ts';
import { errorAsValue, newScheduler } from './marbles.ts';

describe('heartbeat', () => {
  it('probes after interval of silence, emits the round trip, and errors when a probe goes unanswered', () => {
    const probes: number[] = [];
    newScheduler().run(({ hot, expectObservable, time }) => {
      const activity = hot('--a-a--------a-----------');
      const expected = '    -------------m--------(e|)';
      const result = activity.pipe(
        heartbeat({ interval: time('-----|'), timeout: time('----|'), probe: () => probes.push(asyncScheduler.now()) }),
      );
      expectObservable(result.pipe(errorAsValue())).toBe(expected, {
        m: { rttMs: 4, probeAt: 9 },
        e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: 13, probeAt: 18, probesSent: 2, timeout: 4 } },
      });
    });
    expect(probes).to.deep.equal([9, 18]);
  });

  describe('interval', () => {
    it('never probes a busy connection', () => {
      let probes = 0;
      newScheduler().run(({ hot, expectObservable }) => {
        const activity = hot('a---a---a---a---a---a---');
        const unsub = '      -----------------------!';
        expectObservable(activity.pipe(heartbeat({ interval: 5, timeout: 2, probe: () => probes++ })), unsub).toBe('-');
      });
      expect(probes).to.equal(0);
    });

    it('counts silence from the subscription when nothing ever arrived', () => {
      const probeTimes: number[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const activity = hot('-');
        expectObservable(activity.pipe(heartbeat({ interval: 5, timeout: 3, probe: () => probeTimes.push(asyncScheduler.now()) }), errorAsValue())).toBe(
          '--------(e|)',
          { e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: null, probeAt: 5, probesSent: 1, timeout: 3 } } },
        );
      });
      expect(probeTimes).to.deep.equal([5]);
    });

    it('probes again interval after each answer', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        // the probe is answered 1 frame later by the reply stream below
        const replies = new Subject<string>();
        const unsub = '^-------------------!';
        const result = replies.pipe(heartbeat({ interval: 5, timeout: 3, probe: () => cold('-r').subscribe(replies) }));
        expectObservable(result, unsub).toBe('------a-----b-----c-', {
          a: { rttMs: 1, probeAt: 5 },
          b: { rttMs: 1, probeAt: 11 },
          c: { rttMs: 1, probeAt: 17 },
        });
      });
    });
  });

  describe('timeout', () => {
    it('any activity within timeout after the probe counts as its answer', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const activity = hot('------x---');
        const unsub = '      ^---------!';
        expectObservable(activity.pipe(heartbeat({ interval: 3, timeout: 4, probe: () => {} })), unsub).toBe('------m---', {
          m: { rttMs: 3, probeAt: 3 },
        });
      });
    });

    it('errors with HeartbeatTimeoutError exactly timeout after the probe and unsubscribes from the activity', () => {
      newScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const activity = hot('-a------x');
        expectObservable(activity.pipe(heartbeat({ interval: 2, timeout: 4, probe: () => {} }), errorAsValue())).toBe('-------(e|)', {
          e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: 1, probeAt: 3, probesSent: 1, timeout: 4 } },
        });
        expectSubscriptions(activity.subscriptions).toBe('^------!');
      });
    });

    it('the error is an instance of HeartbeatTimeoutError with a readable message', () => {
      const errors: unknown[] = [];
      newScheduler().run(({ hot, flush }) => {
        hot('-').pipe(heartbeat({ interval: 1, timeout: 1, probe: () => {} })).subscribe({ error: (e) => errors.push(e) });
        flush();
      });
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(HeartbeatTimeoutError);
      expect((errors[0] as Error).message).to.match(/No activity within 1 ms/);
    });
  });

  describe('probe', () => {
    it('an answer delivered synchronously by the probe measures 0 ms', () => {
      newScheduler().run(({ expectObservable }) => {
        const activity = new Subject<void>();
        const result = activity.pipe(heartbeat({ interval: 2, timeout: 5, probe: () => activity.next() }));
        expectObservable(result, '^-----!').toBe('--a-b-', { a: { rttMs: 0, probeAt: 2 }, b: { rttMs: 0, probeAt: 4 } });
      });
    });

    it('an exception thrown by the probe becomes the error of the result', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const result = hot('-').pipe(
          heartbeat({
            interval: 2,
            timeout: 5,
            probe: () => {
              throw new Error('socket closed');
            },
          }),
        );
        expectObservable(result).toBe('--#', undefined, new Error('socket closed'));
      });
    });
  });

  describe('scheduler', () => {
    it('times the silence and measures with the given scheduler', () => {
      const scheduler = new TestScheduler(() => {});
      const activity = new Subject<void>();
      const seen: unknown[] = [];
      activity.pipe(heartbeat({ interval: 10, timeout: 5, probe: () => {}, scheduler })).subscribe({ next: (m) => seen.push(m), error: (e) => seen.push(e.name) });
      scheduler.schedule(() => activity.next(), 13);
      scheduler.flush();
      // probe at 10, answered at 13, probe at 23, timeout at 28
      expect(seen).to.deep.equal([{ rttMs: 3, probeAt: 10 }, 'HeartbeatTimeoutError']);
    });
  });

  describe('source termination', () => {
    it('passes completion through and stops probing', () => {
      let probes = 0;
      newScheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('--|').pipe(heartbeat({ interval: 3, timeout: 3, probe: () => probes++ }))).toBe('--|');
      });
      expect(probes).to.equal(0);
    });

    it('passes errors through', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        expectObservable(hot('--#', undefined, 'boom').pipe(heartbeat({ interval: 3, timeout: 3, probe: () => {} }))).toBe('--#', undefined, 'boom');
      });
    });
  });

  describe('invalid configuration', () => {
    for (const [label, config] of [
      ['zero interval', { interval: 0, timeout: 1, probe: () => {} }],
      ['negative timeout', { interval: 1, timeout: -1, probe: () => {} }],
      ['infinite interval', { interval: Infinity, timeout: 1, probe: () => {} }],
      ['missing probe', { interval: 1, timeout: 1 }],
    ] as const) {
      it(`throws a TypeError at creation for ${label}`, () => {
        expect(() => heartbeat(config as never)).to.throw(TypeError);
      });
    }
  });

  describe('state per subscription', () => {
    it('one operator instance applied to two sources keeps independent timers and counters', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const op = heartbeat({ interval: 3, timeout: 2, probe: () => {} });
        const quiet = hot('---------');
        const chatty = hot('-a-a-a-a-a-a-a-a');
        expectObservable(quiet.pipe(op, errorAsValue())).toBe('-----(e|)', {
          e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: null, probeAt: 3, probesSent: 1, timeout: 2 } },
        });
        expectObservable(chatty.pipe(op), '^--------------!').toBe('-');
      });
    });
  });
});

