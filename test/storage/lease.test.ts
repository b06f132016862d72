import { expect } from 'chai';
import { StoreLease, WebLocksLease, type LockManagerLike } from '../../storage/lease.ts';
import { until } from '../helpers/until.ts';
import { ALICE, FakeTime, freshIndexedDB, open, settle, uniqueServer } from './helpers.ts';

/**
 * Wait until every running lease has finished its attempt: each attempt ends
 * by arming its next timer (renew or retry) on the fake clock, so `n` armed
 * timers mean the `n` running leases are all between attempts.
 */
function attemptsDone(time: FakeTime, n: number): Promise<boolean> {
  return until(() => time.pending === n, () => `${n} lease attempt(s) to finish (timers armed: ${time.pending})`);
}

describe('storage/drain lease', () => {
  describe('StoreLease (lease row with expiry)', () => {
    async function twoTabs(time: FakeTime) {
      const idb = freshIndexedDB();
      const server = uniqueServer();
      const a = await open({ ...idb, server, time, lease: 'store', leaseTtlMs: 9_000 });
      const b = await open({ ...idb, server, time, lease: 'store', leaseTtlMs: 9_000 });
      return { a, b, leaseA: a.lease as StoreLease, leaseB: b.lease as StoreLease };
    }

    it('two instances on one database: only one holds the lease at a time', async () => {
      const time = new FakeTime();
      const { a, b, leaseA, leaseB } = await twoTabs(time);
      try {
        expect(await leaseA.tryAcquire()).to.equal(true);
        expect(await leaseB.tryAcquire()).to.equal(false);
        expect([leaseA.held, leaseB.held]).to.deep.equal([true, false]);
        time.advance(8_000);
        expect(await leaseA.tryAcquire()).to.equal(true); // renewal
        time.advance(8_000); // past the first expiry, within the renewed one
        expect(await leaseB.tryAcquire()).to.equal(false);

        // Only the holder's claim hands out entries; the other tab still enqueues.
        for (const s of [a, b]) await s.outbox.setIdentity(ALICE);
        const queuedByB = (await b.outbox.enqueue('send_chat', { text: 'from tab b' })).entry;
        expect(await b.outbox.claim(10)).to.deep.equal([]);
        expect((await a.outbox.claim(10)).map(e => e.id)).to.deep.equal([queuedByB.id]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('an expired lease (frozen or closed owner) is taken over, and the old owner knows it lost it', async () => {
      const time = new FakeTime();
      const { a, b, leaseA, leaseB } = await twoTabs(time);
      try {
        expect(await leaseA.tryAcquire()).to.equal(true);
        time.advance(9_000); // tab A froze: no renewal
        expect(leaseA.held).to.equal(false);
        expect(await leaseB.tryAcquire()).to.equal(true);
        // A thaws and tries to renew: B holds an unexpired lease now.
        expect(await leaseA.tryAcquire()).to.equal(false);
        await a.outbox.setIdentity(ALICE);
        await a.outbox.enqueue('send_chat', { text: 'queued by the thawed tab' });
        expect(await a.outbox.claim(5)).to.deep.equal([]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('start() keeps renewing on the injected timers; stop() releases it for the next tab', async () => {
      const time = new FakeTime();
      const { a, b, leaseA, leaseB } = await twoTabs(time);
      try {
        const heldA: boolean[] = [];
        leaseA.held$.subscribe(h => heldA.push(h));
        leaseA.start();
        await attemptsDone(time, 1);
        leaseB.start();
        await attemptsDone(time, 2);
        expect([leaseA.held, leaseB.held]).to.deep.equal([true, false]);
        for (let i = 0; i < 10; i++) {
          time.advance(3_000); // renew every ttl/3
          await attemptsDone(time, 2);
        }
        expect([leaseA.held, leaseB.held]).to.deep.equal([true, false]);

        await leaseA.stop();
        expect(time.pending, "A's renewal is cancelled").to.equal(1);
        time.advance(4_500); // B's next retry (ttl/2)
        await attemptsDone(time, 1);
        expect([leaseA.held, leaseB.held]).to.deep.equal([false, true]);
        expect(heldA).to.deep.equal([false, true, false]);
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  describe('WebLocksLease (navigator.locks)', () => {
    /** An in-process lock manager with the Web Locks request/abort semantics the lease uses. */
    class FakeLocks implements LockManagerLike {
      private held = new Set<string>();
      private waiting: { name: string; grant: () => void }[] = [];

      request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown> {
        return new Promise((resolve, reject) => {
          const grant = () => {
            this.held.add(name);
            callback({ name }).then(
              v => {
                this.held.delete(name);
                this.next(name);
                resolve(v);
              },
              reject,
            );
          };
          if (!this.held.has(name)) return grant();
          const waiter = { name, grant };
          this.waiting.push(waiter);
          options.signal?.addEventListener('abort', () => {
            this.waiting = this.waiting.filter(w => w !== waiter);
            reject(new DOMException('aborted', 'AbortError'));
          });
        });
      }

      private next(name: string) {
        const i = this.waiting.findIndex(w => w.name === name);
        if (i >= 0) this.waiting.splice(i, 1)[0].grant();
      }
    }

    it('one tab holds the lock; the waiting tab gets it when the holder stops', async () => {
      const locks = new FakeLocks();
      const a = new WebLocksLease(locks, 'drain');
      const b = new WebLocksLease(locks, 'drain');
      a.start();
      b.start();
      await settle();
      expect([a.held, b.held]).to.deep.equal([true, false]);
      await a.stop();
      await settle();
      expect([a.held, b.held]).to.deep.equal([false, true]);
      await b.stop();
      expect(b.held).to.equal(false);
    });

    it('a waiting tab that stops gives up its place', async () => {
      const locks = new FakeLocks();
      const a = new WebLocksLease(locks, 'drain');
      const b = new WebLocksLease(locks, 'drain');
      const c = new WebLocksLease(locks, 'drain');
      a.start();
      b.start();
      c.start();
      await b.stop();
      await a.stop();
      await settle();
      expect([a.held, b.held, c.held]).to.deep.equal([false, false, true]);
      await c.stop();
    });
  });
});
