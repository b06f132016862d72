/** The scheduler's pure parts: the manual clock, interval arithmetic, ScheduleAt decoding. */
import { expect } from 'chai';
import { TimeDuration, Timestamp } from 'spacetimedb';
import { ManualClock, nextIntervalTick, readScheduleAt, systemClock } from '../../devserver/host/scheduler.ts';

describe('dev server scheduler parts', () => {
  it('ManualClock runs due timers in time order, each at its own time, and never runs cancelled ones', () => {
    const clock = new ManualClock(1_000n);
    const seen: [string, bigint][] = [];
    clock.setTimer(3_000n, () => seen.push(['c', clock.now()]));
    clock.setTimer(1_000n, () => {
      seen.push(['a', clock.now()]);
      // Set from inside a timer: still runs within the same advance when due.
      clock.setTimer(500n, () => seen.push(['a2', clock.now()]));
    });
    const cancel = clock.setTimer(2_000n, () => seen.push(['b', clock.now()]));
    cancel();
    clock.advanceMicros(2_500n);
    expect(seen).to.deep.equal([
      ['a', 2_000n],
      ['a2', 2_500n],
    ]);
    expect(clock.now()).to.equal(3_500n);
    expect(clock.pending).to.equal(1);
    clock.advance(1);
    expect(seen.at(-1)).to.deep.equal(['c', 4_000n]);
    expect(() => clock.advanceMicros(-1n)).to.throw(RangeError);
  });

  it('nextIntervalTick keeps the anchor, skips missed ticks and is strictly after now', () => {
    expect(nextIntervalTick(1_000n, 100n, 1_000n)).to.equal(1_100n);
    expect(nextIntervalTick(1_000n, 100n, 1_350n)).to.equal(1_400n);
    expect(nextIntervalTick(1_000n, 100n, 1_300n)).to.equal(1_400n);
    expect(nextIntervalTick(1_000n, 100n, 900n)).to.equal(1_100n);
    expect(nextIntervalTick(1_000n, -100n, 1_050n)).to.equal(1_100n);
  });

  it('reads both ScheduleAt variants as the SDK decodes them, and refuses anything else', () => {
    expect(readScheduleAt({ tag: 'Time', value: new Timestamp(42n) })).to.deep.equal({ tag: 'Time', micros: 42n });
    expect(readScheduleAt({ tag: 'Interval', value: new TimeDuration(7n) })).to.deep.equal({ tag: 'Interval', micros: 7n });
    expect(() => readScheduleAt({ tag: 'Later', value: {} })).to.throw(TypeError);
  });

  it('systemClock timers fire and can be cancelled', async () => {
    let cancelledRan = false;
    const cancel = systemClock.setTimer(1_000n, () => (cancelledRan = true));
    cancel();
    const fired = await new Promise<bigint>((resolve) => {
      const start = systemClock.now();
      systemClock.setTimer(2_000n, () => resolve(systemClock.now() - start));
    });
    expect(fired >= 2_000n).to.equal(true);
    expect(cancelledRan).to.equal(false);
  });
});
