import { expect } from 'chai';
import { asyncScheduler, Subject } from 'rxjs';
import { heartbeat, HeartbeatTimeoutError, type HeartbeatEvent } from '../../operators/index.ts';
import { errorAsValue, newScheduler } from './marbles.ts';

const isOut = (v: string) => v === 'o';

describe('heartbeat', () => {
  it('probes after interval of silence, measures the round trip, degrades past the deadline and errors when the follow-up probe goes unanswered', () => {
    const probes: number[] = [];
    newScheduler().run(({ hot, expectObservable }) => {
      const activity = hot('--a-a--------a');
      // probe at 9, answered at 13 (srtt 4, rttvar 2, deadline 12); probe at 18, degraded at 30, lost at 54
      const result = activity.pipe(heartbeat({ interval: 5, timeout: 4, probe: () => probes.push(asyncScheduler.now()) }), errorAsValue());
      expectObservable(result).toBe('-------------m----------------d-----------------------(e|)', {
        m: { type: 'rtt', rttMs: 4, probeAt: 9, source: 'probe', srttMs: 4, rttVarMs: 2, deadlineMs: 12 },
        d: { type: 'degraded', waitingSince: 18, deadlineMs: 12, cause: 'probe' },
        e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: 13, probeAt: 30, probesSent: 3, timeout: 24 } },
      });
    });
    expect(probes).to.deep.equal([9, 18, 30]);
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

    it('counts silence from the subscription when nothing ever arrived, and uses timeout as the first deadline', () => {
      const probeTimes: number[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const activity = hot('-');
        expectObservable(activity.pipe(heartbeat({ interval: 5, timeout: 3, probe: () => probeTimes.push(asyncScheduler.now()) }), errorAsValue())).toBe(
          '--------d-----(e|)',
          {
            d: { type: 'degraded', waitingSince: 5, deadlineMs: 3, cause: 'probe' },
            e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: null, probeAt: 8, probesSent: 2, timeout: 6 } },
          },
        );
      });
      expect(probeTimes).to.deep.equal([5, 8]);
    });

    it('probes again interval after each answer, smoothing the round trips', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const replies = new Subject<string>();
        const unsub = '^-------------------!';
        const result = replies.pipe(heartbeat({ interval: 5, timeout: 3, probe: () => cold('-r').subscribe(replies) }));
        expectObservable(result, unsub).toBe('------a-----b-----c-', {
          a: { type: 'rtt', rttMs: 1, probeAt: 5, source: 'probe', srttMs: 1, rttVarMs: 0.5, deadlineMs: 3 },
          b: { type: 'rtt', rttMs: 1, probeAt: 11, source: 'probe', srttMs: 1, rttVarMs: 0.375, deadlineMs: 3 },
          c: { type: 'rtt', rttMs: 1, probeAt: 17, source: 'probe', srttMs: 1, rttVarMs: 0.28125, deadlineMs: 3 },
        });
      });
    });
  });

  describe('adaptive deadline', () => {
    it('follows RFC 6298: srtt + 4·rttvar, updated with gains 1/8 and 1/4, within [timeout, maxTimeout]', () => {
      const scheduler = newScheduler();
      const wire = new Subject<string>();
      const seen: any[] = [];
      wire.pipe(heartbeat({ interval: 1000, timeout: 50, maxTimeout: 500, probe: () => {}, isRequest: isOut, scheduler })).subscribe((e) => seen.push(e));
      // request at 0 answered at 40; request at 200 answered at 230; request at 300 answered only at 500
      for (const [t, v] of [[0, 'o'], [40, 'a'], [200, 'o'], [230, 'a'], [300, 'o'], [500, 'a']] as const) scheduler.schedule(() => wire.next(v), t);
      scheduler.flush();
      // 1st: srtt 40, var 20 → 120.  2nd: var .75·20 + .25·|40−30| = 17.5, srtt .875·40 + .125·30 = 38.75 → 108.75.
      expect(seen.slice(0, 2).map((e) => [e.rttMs, e.srttMs, e.rttVarMs, e.deadlineMs])).to.deep.equal([
        [40, 40, 20, 120],
        [30, 38.75, 17.5, 108.75],
      ]);
      // 3rd: unanswered at 300 + 108.75 → degraded; the answer at 500 recovers without a sample (Karn).
      expect(seen[2]).to.deep.equal({ type: 'degraded', waitingSince: 300, deadlineMs: 108.75, cause: 'request' });
      expect(seen[3]).to.deep.equal({ type: 'recovered', degradedMs: 91.25 });
      expect(seen).to.have.length(4);
    });

    it('never goes below timeout nor above maxTimeout', () => {
      const scheduler = newScheduler();
      const wire = new Subject<string>();
      const seen: any[] = [];
      wire.pipe(heartbeat({ interval: 10_000, timeout: 40, maxTimeout: 100, probe: () => {}, isRequest: isOut, scheduler })).subscribe({ next: (e) => seen.push(e), error: (e) => seen.push({ type: e.name, at: scheduler.now() }) });
      scheduler.schedule(() => wire.next('o'), 0);
      scheduler.schedule(() => wire.next('a'), 1); // srtt 1, var .5 → 3, floored to 40
      scheduler.schedule(() => wire.next('o'), 10);
      scheduler.schedule(() => wire.next('a'), 90); // 80 > 40 → degraded at 50, recovered at 90
      scheduler.schedule(() => wire.next('o'), 100);
      scheduler.schedule(() => wire.next('a'), 400); // srtt unchanged (Karn), so deadline 40 again: degraded at 140
      scheduler.flush();
      expect(seen.map((e) => e.type === 'rtt' ? ['rtt', e.deadlineMs] : e.type === 'degraded' ? ['degraded', e.waitingSince, e.deadlineMs] : [e.type])).to.deep.equal([
        ['rtt', 40],
        ['degraded', 10, 40],
        ['recovered'],
        ['degraded', 100, 40],
        ['HeartbeatTimeoutError'],
      ]);
      // the follow-up probe at 140 waits min(100, 2·40) = 80: lost at 220, before the answer at 400
      expect(seen[4].at).to.equal(220);
    });
  });

  describe('requests', () => {
    it('an unanswered request degrades the link after the deadline and sends a probe at once', () => {
      const probes: number[] = [];
      newScheduler().run(({ hot, expectObservable }) => {
        const wire = hot('-o--------');
        const unsub = '   ^--------!';
        expectObservable(wire.pipe(heartbeat({ interval: 20, timeout: 3, probe: () => probes.push(asyncScheduler.now()), isRequest: isOut })), unsub).toBe('----d', {
          d: { type: 'degraded', waitingSince: 1, deadlineMs: 3, cause: 'request' },
        });
      });
      expect(probes).to.deep.equal([4]);
    });

    it('the oldest unanswered request sets the deadline; an answer to it measures the round trip', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const wire = hot('-o-o-a----');
        const unsub = '   ^--------!';
        expectObservable(wire.pipe(heartbeat({ interval: 20, timeout: 5, probe: () => {}, isRequest: isOut })), unsub).toBe('-----m', {
          m: { type: 'rtt', rttMs: 4, probeAt: 1, source: 'request', srttMs: 4, rttVarMs: 2, deadlineMs: 12 },
        });
      });
    });

    it('a request does not count as activity: the silence timer keeps running for a link that only sends', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const wire = hot('o-o-o-o-o-o-');
        expectObservable(wire.pipe(heartbeat({ interval: 50, timeout: 3, probe: () => {}, isRequest: isOut }), errorAsValue())).toBe('---d-----(e|)', {
          d: { type: 'degraded', waitingSince: 0, deadlineMs: 3, cause: 'request' },
          e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: null, probeAt: 3, probesSent: 1, timeout: 6 } },
        });
      });
    });

    it('requests answered in turn: the next probe goes out interval after the last answer, and a late answer recovers the link', () => {
      const probes: number[] = [];
      const seen: [number, HeartbeatEvent][] = [];
      newScheduler().run(({ hot }) => {
        // Request/answer pairs until 10; silence → a probe at 15; unanswered past its deadline (4.25) → degraded and a
        // second probe at 19.25; activity at 24 → recovered. Unsubscribed at 28, before the next silence ends (29).
        const wire = hot('o-a-o-a-o-a-------------a---|');
        wire
          .pipe(heartbeat({ interval: 5, timeout: 2, maxTimeout: 10, probe: () => probes.push(asyncScheduler.now()), isRequest: isOut }))
          .subscribe((e) => seen.push([asyncScheduler.now(), e]));
      });
      expect(seen).to.deep.equal([
        [2, { type: 'rtt', rttMs: 2, probeAt: 0, source: 'request', srttMs: 2, rttVarMs: 1, deadlineMs: 6 }],
        [6, { type: 'rtt', rttMs: 2, probeAt: 4, source: 'request', srttMs: 2, rttVarMs: 0.75, deadlineMs: 5 }],
        [10, { type: 'rtt', rttMs: 2, probeAt: 8, source: 'request', srttMs: 2, rttVarMs: 0.5625, deadlineMs: 4.25 }],
        [19.25, { type: 'degraded', waitingSince: 15, deadlineMs: 4.25, cause: 'probe' }],
        [24, { type: 'recovered', degradedMs: 4.75 }],
      ]);
      expect(probes).to.deep.equal([15, 19.25]);
    });

    it('a link busy with requests and answers re-arms its timer once per deadline, not per message', () => {
      let scheduled = 0;
      const rtts: number[] = [];
      newScheduler().run(({ hot }) => {
        const counting = { now: () => asyncScheduler.now(), schedule: (...a: Parameters<typeof asyncScheduler.schedule>) => (scheduled++, asyncScheduler.schedule(...a)) };
        const wire = hot('oaoaoaoaoaoaoaoaoaoaoaoaoaoaoaoaoaoaoaoa|');
        wire.pipe(heartbeat({ interval: 50, timeout: 10, probe: () => {}, isRequest: isOut, scheduler: counting as never })).subscribe((e) => e.type === 'rtt' && rtts.push(e.rttMs));
      });
      // 20 round trips measured, 40 messages; the first request's deadline (10) is the earliest thing due, so the timer
      // armed for it fires at 10, 20, 30 and re-arms for the deadline then due: about once per 10 frames.
      expect(rtts).to.have.length(20);
      expect(scheduled).to.be.within(1, 6);
    });
  });

  describe('timeout', () => {
    it('any activity after the probe counts as its answer', () => {
      newScheduler().run(({ hot, expectObservable }) => {
        const activity = hot('------x---');
        const unsub = '      ^---------!';
        expectObservable(activity.pipe(heartbeat({ interval: 3, timeout: 4, probe: () => {} })), unsub).toBe('------m---', {
          m: { type: 'rtt', rttMs: 3, probeAt: 3, source: 'probe', srttMs: 3, rttVarMs: 1.5, deadlineMs: 9 },
        });
      });
    });

    it('errors with HeartbeatTimeoutError and unsubscribes from the activity', () => {
      newScheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
        const activity = hot('-a--------------x');
        expectObservable(activity.pipe(heartbeat({ interval: 2, timeout: 4, probe: () => {} }), errorAsValue())).toBe('-------d-------(e|)', {
          d: { type: 'degraded', waitingSince: 3, deadlineMs: 4, cause: 'probe' },
          e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: 1, probeAt: 7, probesSent: 2, timeout: 8 } },
        });
        expectSubscriptions(activity.subscriptions).toBe('^--------------!');
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
      expect((errors[0] as Error).message).to.match(/No activity within 2 ms/);
    });
  });

  describe('probe', () => {
    it('an answer delivered synchronously by the probe measures 0 ms', () => {
      newScheduler().run(({ expectObservable }) => {
        const activity = new Subject<void>();
        const result = activity.pipe(heartbeat({ interval: 2, timeout: 5, probe: () => activity.next() }));
        expectObservable(result, '^-----!').toBe('--a-b-', {
          a: { type: 'rtt', rttMs: 0, probeAt: 2, source: 'probe', srttMs: 0, rttVarMs: 0, deadlineMs: 5 },
          b: { type: 'rtt', rttMs: 0, probeAt: 4, source: 'probe', srttMs: 0, rttVarMs: 0, deadlineMs: 5 },
        });
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
      const scheduler = newScheduler();
      const activity = new Subject<void>();
      const seen: unknown[] = [];
      activity.pipe(heartbeat({ interval: 10, timeout: 5, probe: () => {}, scheduler })).subscribe({ next: (m) => seen.push(m.type), error: (e) => seen.push(e.name) });
      scheduler.schedule(() => activity.next(), 13);
      scheduler.flush();
      // probe at 10, answered at 13 (deadline 3 + 4·1.5 = 9), probe at 23, degraded at 32, lost at 50
      expect(seen).to.deep.equal(['rtt', 'degraded', 'HeartbeatTimeoutError']);
      expect(scheduler.now()).to.equal(50);
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
      ['maxTimeout below timeout', { interval: 1, timeout: 10, maxTimeout: 5, probe: () => {} }],
      ['isRequest not a function', { interval: 1, timeout: 1, probe: () => {}, isRequest: 3 }],
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
        expectObservable(quiet.pipe(op, errorAsValue())).toBe('-----d---(e|)', {
          d: { type: 'degraded', waitingSince: 3, deadlineMs: 2, cause: 'probe' },
          e: { name: 'HeartbeatTimeoutError', info: { lastActivityAt: null, probeAt: 5, probesSent: 2, timeout: 4 } },
        });
        expectObservable(chatty.pipe(op), '^--------------!').toBe('-');
      });
    });
  });
});
