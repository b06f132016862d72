import { expect } from 'chai';
import { Dexie } from 'dexie';
import { firstValueFrom, filter } from 'rxjs';
import { databaseName, SCHEMA_V1, type StdbRxDB } from '../../storage/db.ts';
import {
  StorageClosedError,
  StorageError,
  StorageQuotaError,
  StorageUnavailableError,
  StorageUpgradeBlockedError,
} from '../../storage/errors.ts';
import type { StorageMode } from '../../storage/store.ts';
import type { StoreLease } from '../../storage/lease.ts';
import { until } from '../helpers/until.ts';
import { ALICE, FakeTime, freshIndexedDB, open, uniqueServer } from './helpers.ts';

/** DBCore middleware that fails every write to `table` with the browser's QuotaExceededError while `quota.full`. */
function quotaMiddleware(quota: { full: boolean }, table: string) {
  return (db: StdbRxDB) => {
    db.use({
      stack: 'dbcore',
      name: 'simulated-quota',
      create: down => ({
        ...down,
        table: name => {
          const inner = down.table(name);
          return {
            ...inner,
            mutate: req =>
              quota.full && name === table
                ? Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'))
                : inner.mutate(req),
          };
        },
      }),
    });
  };
}

describe('storage/failures', () => {
  it('a QuotaExceededError on write degrades to memory, reports a StorageError, and loses no call', async () => {
    const quota = { full: false };
    const errors: StorageError[] = [];
    const modes: StorageMode[] = [];
    const s = await open({ lease: 'none', configureDexie: quotaMiddleware(quota, 'outbox'), onError: e => errors.push(e) });
    try {
      s.mode$.subscribe(m => modes.push(m));
      await s.outbox.setIdentity(ALICE);
      const before = (await s.outbox.enqueue('send_chat', { text: 'stored durably' })).entry;
      const gone = (await s.outbox.enqueue('send_chat', { text: 'discarded before the switch' })).entry;
      await s.outbox.discard([gone.id]);
      const states: number[] = [];
      s.outbox.outbox$.subscribe(st => states.push(st.queued));

      quota.full = true;
      const during = await s.outbox.enqueue('send_chat', { text: 'hit the quota' }); // resolves, never throws
      expect(during.stored).to.equal(true);

      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(StorageQuotaError).and.instanceOf(StorageError);
      expect(errors[0].code).to.equal('quota-exceeded');
      expect(errors[0].operation).to.equal('outbox.insert');
      expect((errors[0].inner as Error).name).to.match(/QuotaExceededError|AbortError/);
      expect(JSON.stringify(errors[0].inner, ['name', 'inner'])).to.contain('QuotaExceededError');
      expect(s.mode).to.equal('memory');
      expect(modes).to.deep.equal(['durable', 'memory']);

      // Same API, now in memory: the earlier entry was carried over, and the drain goes on.
      const batch = await s.outbox.nextBatch(10);
      expect(batch.map(e => e.id)).to.deep.equal([before.id, during.entry.id]);
      const live = await firstValueFrom(s.outbox.outbox$.pipe(filter(st => st.queued === 2)));
      expect(live.pending).to.have.length(2);
      s.snapshots.write('player', { inserts: [] });
      await s.snapshots.flush();
      await s.tokens.set('t');
      expect(await s.tokens.get()).to.equal('t');
      expect(errors).to.have.length(1); // reported once
      // Outcome records made before the switch were carried over too.
      expect((await s.outbox.outcomes([gone.id])).map(o => o.outcome)).to.deep.equal(['discarded']);
    } finally {
      await s.close();
    }
  });

  it('a quota failure while flushing snapshots is reported and the cache keeps working', async () => {
    const quota = { full: true };
    const time = new FakeTime();
    const s = await open({ time, configureDexie: quotaMiddleware(quota, 'rows') });
    try {
      const errors = await (async () => {
        const seen: StorageError[] = [];
        s.errors$.subscribe(e => seen.push(e));
        s.snapshots.replace('player', []);
        await s.snapshots.flush();
        return seen;
      })();
      expect(errors.map(e => [e.name, e.operation])).to.deep.equal([['StorageQuotaError', 'snapshots.flush']]);
      expect(s.mode).to.equal('memory');
      // The failed flush was retried in memory.
      expect(await s.snapshots.load('player')).to.deep.equal({ rows: [], asOf: time.now() });
    } finally {
      await s.close();
    }
  });

  it('IndexedDB unavailable (private mode) starts in memory with the same API and says why', async () => {
    const denied = {
      open() {
        throw new DOMException('IndexedDB is disabled in private browsing', 'SecurityError');
      },
    };
    const errors: StorageError[] = [];
    const s = await open({ indexedDB: denied, lease: 'store', onError: e => errors.push(e) });
    try {
      expect(s.mode).to.equal('memory');
      expect(errors).to.have.length(1);
      expect(errors[0]).to.be.instanceOf(StorageUnavailableError);
      expect(errors[0].inner).to.exist;
      // Late subscribers still see why.
      expect((await firstValueFrom(s.errors$)).code).to.equal('unavailable');
      await s.outbox.setIdentity(ALICE);
      const { entry } = await s.outbox.enqueue('send_chat', { text: 'still works' });
      expect(await (s.lease as StoreLease).tryAcquire()).to.equal(true);
      expect((await s.outbox.claim(5)).map(e => e.id)).to.deep.equal([entry.id]);
    } finally {
      await s.close();
    }
  });

  it('no IndexedDB at all (Node without a factory) starts in memory', async () => {
    const s = await open({ indexedDB: undefined, IDBKeyRange: undefined });
    try {
      expect(s.mode).to.equal('memory');
      expect((await firstValueFrom(s.errors$)).code).to.equal('unavailable');
    } finally {
      await s.close();
    }
  });

  it('an upgrade blocked by another tab past openTimeoutMs starts in memory and reports upgrade-blocked', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const name = databaseName(server, 'arena');
    const oldTab = new Dexie(name, idb as ConstructorParameters<typeof Dexie>[1]);
    oldTab.version(1).stores(SCHEMA_V1);
    oldTab.on('versionchange', () => false); // an old tab that refuses to close
    await oldTab.open();

    const time = new FakeTime();
    const errors: StorageError[] = [];
    const opening = open({ ...idb, server, time, openTimeoutMs: 5_000, onError: e => errors.push(e) });
    await until(() => errors.length > 0, 'the blocked upgrade to be reported');
    expect(errors.map(e => e.code)).to.deep.equal(['upgrade-blocked']);
    time.advance(5_000);
    const s = await opening;
    try {
      expect(s.mode).to.equal('memory');
      expect(errors.map(e => e.constructor)).to.deep.equal([StorageUpgradeBlockedError]); // reported once
      expect((await firstValueFrom(s.errors$)).code).to.equal('upgrade-blocked');
      await s.outbox.setIdentity(ALICE);
      expect((await s.outbox.enqueue('send_chat', { text: 'in memory' })).stored).to.equal(true);
    } finally {
      await s.close();
      oldTab.close();
    }
  });

  it('another tab deleting or upgrading the database moves this one to memory', async () => {
    const idb = freshIndexedDB();
    const server = uniqueServer();
    const s = await open({ ...idb, server, lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      const { entry } = await s.outbox.enqueue('send_chat', { text: 'before' });
      await new Dexie(databaseName(server, 'arena'), idb as ConstructorParameters<typeof Dexie>[1]).delete();
      await firstValueFrom(s.mode$.pipe(filter(m => m === 'memory')));
      expect((await firstValueFrom(s.errors$)).constructor).to.equal(StorageClosedError);
      expect((await s.outbox.nextBatch(5)).map(e => e.id)).to.deep.equal([entry.id]);
    } finally {
      await s.close();
    }
  });
});
