/**
 * `Serial`: one run at a time, one more for every burst of requests made
 * while it ran, errors reported, nothing after close. The jobs here wait on
 * gates the test opens, so every step is an awaited signal.
 */
import { expect } from 'chai';
import { Serial } from '../../streams/serial.ts';

/** A promise the test resolves by hand. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** A job recording its arguments, each run waiting on a gate of its own. */
function recorder<A>() {
  const runs: A[] = [];
  const gates: ReturnType<typeof gate>[] = [];
  const job = async (arg: A) => {
    runs.push(arg);
    const g = gate();
    gates.push(g);
    await g.promise;
  };
  return { runs, gates, job };
}

/** Let every queued microtask and promise callback run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Serial', () => {
  it('starts the job at once, synchronously, when idle', () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    void s.request(1);
    expect(r.runs).to.deep.equal([1]);
  });

  it('a job that returns no promise ends its run in the same step', () => {
    const runs: number[] = [];
    const s = new Serial<number>((n) => void runs.push(n), { onError: (e) => expect.fail(e.message) });
    void s.request(1);
    void s.request(2);
    expect(runs, 'the second request started a run of its own at once').to.deep.equal([1, 2]);
  });

  it('runs once more after the run under way for every burst of requests, with the latest argument', async () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    const first = s.request(1);
    const second = s.request(2);
    const third = s.request(3);
    expect(r.runs, 'no second run while the first is under way').to.deep.equal([1]);
    r.gates[0].open();
    await flush();
    expect(r.runs, 'one run for the two requests made meanwhile').to.deep.equal([1, 3]);
    r.gates[1].open();
    await Promise.all([first, second, third]);
    expect(r.runs).to.deep.equal([1, 3]);
  });

  it('folds the arguments of the requests made meanwhile with `merge`', async () => {
    const r = recorder<string[]>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message), merge: (a, b) => [...a, ...b] });
    void s.request(['a']);
    void s.request(['b']);
    const last = s.request(['c']);
    r.gates[0].open();
    await flush();
    r.gates[1].open();
    await last;
    expect(r.runs).to.deep.equal([['a'], ['b', 'c']]);
  });

  it('a request resolves only after a run that started after it has finished', async () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    void s.request(1);
    let resolved = false;
    void s.request(2).then(() => (resolved = true));
    r.gates[0].open();
    await flush();
    expect(resolved, 'its run has only started').to.equal(false);
    r.gates[1].open();
    await flush();
    expect(resolved).to.equal(true);
  });

  it('starts a fresh run for a request made right after the last run ended', async () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    const first = s.request(1);
    r.gates[0].open();
    await first;
    void s.request(2);
    expect(r.runs).to.deep.equal([1, 2]);
  });

  it('waits for a request made from inside the job\'s first synchronous step', async () => {
    let s!: Serial<number>;
    const runs: number[] = [];
    const g = gate();
    s = new Serial(
      async (n) => {
        runs.push(n);
        if (n === 1) void s.request(2);
        if (n === 1) await g.promise;
      },
      { onError: (e) => expect.fail(e.message) },
    );
    const done = s.request(1);
    expect(runs, 'not two runs at once').to.deep.equal([1]);
    g.open();
    await done;
    expect(runs).to.deep.equal([1, 2]);
  });

  it('reports a failing run to onError and goes on with the next one', async () => {
    const errors: string[] = [];
    const runs: number[] = [];
    const g = gate();
    const s = new Serial<number>(
      async (n) => {
        runs.push(n);
        if (n === 1) {
          await g.promise;
          throw new Error('write failed');
        }
        if (n === 2) throw 'not an Error';
      },
      { onError: (e) => errors.push(e.message) },
    );
    const first = s.request(1);
    void s.request(2);
    g.open();
    await first;
    expect(runs).to.deep.equal([1, 2]);
    expect(errors).to.deep.equal(['write failed', 'not an Error']);
    await s.request(3);
    expect(runs).to.deep.equal([1, 2, 3]);
  });

  it('cancel drops the pending run and tells the one under way', async () => {
    const g = gate();
    const runs: number[] = [];
    const seen: boolean[] = [];
    const s = new Serial<number>(
      async (n, run) => {
        runs.push(n);
        if (n === 1) await g.promise;
        seen.push(run.cancelled);
      },
      { onError: (e) => expect.fail(e.message) },
    );
    const first = s.request(1);
    void s.request(2);
    s.cancel();
    g.open();
    await first;
    expect(runs, 'the pending run was dropped').to.deep.equal([1]);
    expect(seen, 'the run under way saw the cancel').to.deep.equal([true]);
    // A later request gets a fresh, uncancelled run.
    await s.request(3);
    expect(runs).to.deep.equal([1, 3]);
    expect(seen).to.deep.equal([true, false]);
  });

  it('close starts nothing more and resolves when the run under way ends', async () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    void s.request(1);
    void s.request(2);
    let closed = false;
    const closing = s.close().then(() => (closed = true));
    await flush();
    expect(closed, 'the run under way is still going').to.equal(false);
    r.gates[0].open();
    await closing;
    expect(r.runs, 'the pending run was dropped').to.deep.equal([1]);
    await s.request(3);
    expect(r.runs, 'nothing runs after close').to.deep.equal([1]);
  });

  it('idle resolves once the runs asked for meanwhile are done too', async () => {
    const r = recorder<number>();
    const s = new Serial(r.job, { onError: (e) => expect.fail(e.message) });
    await s.idle();
    void s.request(1);
    void s.request(2);
    let idle = false;
    void s.idle().then(() => (idle = true));
    r.gates[0].open();
    await flush();
    expect(idle).to.equal(false);
    r.gates[1].open();
    await flush();
    expect(idle).to.equal(true);
  });
});
