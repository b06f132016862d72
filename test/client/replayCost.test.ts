/**
 * Replay after reconnect reads and writes the outbox in O(1) operations per
 * batch, not per change: the `Calls` drain against a real `Outbox` (Dexie on
 * fake-indexeddb, and the in-memory store) whose store counts every
 * operation and every entry it returns.
 */
import { expect } from 'chai';
import { tap } from 'rxjs';
import { Calls } from '../../streams/calls.ts';
import type { OutboxRecord } from '../../storage/db.ts';
import { StdbRxDB } from '../../storage/db.ts';
import { DexieStore } from '../../storage/dexieStore.ts';
import { Outbox } from '../../storage/outbox.ts';
import { outboxQueue } from '../../storage/outboxQueue.ts';
import { ModuleCodecs } from '../../storage/schema.ts';
import { MemoryStore, type Store } from '../../storage/store.ts';
import { until } from '../helpers/until.ts';
import { ALICE, arena, freshIndexedDB } from '../storage/helpers.ts';

let dbs = 0;

/** Wrap the storage's store so every outbox operation is counted. */
function countStore(store: Store) {
  const counts = { lists: 0, modifies: 0, inserts: 0, entriesRead: 0 };
  const list = store.outboxList.bind(store);
  const modify = store.outboxModify.bind(store);
  const insert = store.outboxInsert.bind(store);
  store.outboxList = async (q) => {
    counts.lists++;
    const r = await list(q);
    counts.entriesRead += r.length;
    return r;
  };
  store.outboxModify = async (q, fn) => {
    counts.modifies++;
    let seen = 0;
    const r = await modify(q, (e: OutboxRecord) => {
      seen++;
      return fn(e);
    });
    counts.entriesRead += seen;
    return r;
  };
  store.outboxInsert = (e) => {
    counts.inserts++;
    return insert(e);
  };
  // Whole-outbox reads through the live stream count too.
  const live = store.outbox$.bind(store);
  store.outbox$ = () => live().pipe(tap((all) => (counts.entriesRead += all.length)));
  return counts;
}

for (const memory of [false, true]) {
  describe(`outbox replay cost (${memory ? 'memory' : 'Dexie'} store)`, function () {
    this.timeout(60_000);

    it('replays n queued calls with a bounded number of storage operations and O(n) entries read', async () => {
      const N = 400;
      // The outbox over a store of our own (the public constructor), so the
      // test counts what the drain asks of it without reaching inside.
      const store = memory ? new MemoryStore() : new DexieStore(new StdbRxDB(`replay-${process.pid}-${++dbs}`, freshIndexedDB()));
      const counts = countStore(store);
      const outbox = new Outbox({ store, codecs: new ModuleCodecs(arena) });
      await outbox.setIdentity(ALICE);
      const calls = new Calls();
      calls.useDurable(outboxQueue(outbox));
      const handles = Array.from({ length: N }, (_, i) => calls.call('send_chat', { text: `m${i}` }, { priority: i % 3 }));
      await until(() => handles.every((h) => h.mutationId !== undefined), 'every call to be stored', 20_000);
      expect(counts.inserts).to.equal(N);

      // Counted from here: everything after the inserts were stored, also the
      // passes their change signals start (no pause to let those go by).
      const before = { ...counts };
      const sent: string[] = [];
      const answers: (() => void)[] = [];
      calls.setSender((_reducer, args) => {
        sent.push((args as { text: string }).text);
        return new Promise<void>((resolve) => answers.push(resolve));
      });
      await calls.startDrain([]);
      await until(() => sent.length === N, 'every call to be sent', 20_000);
      // Every call is sent at once (pipelined), priority first then FIFO.
      const expected = Array.from({ length: N }, (_, i) => i).sort((a, b) => (b % 3) - (a % 3) || a - b).map((i) => `m${i}`);
      expect(sent).to.deep.equal(expected);
      // Answers arrive one by one, each in its own task (as frames do).
      for (const answer of answers) {
        answer();
        await new Promise((r) => setImmediate(r));
      }
      let confirmed = 0;
      await Promise.all(handles.map((h) => h.then(() => confirmed++)));
      expect(confirmed).to.equal(N);
      // Confirmations are written in batches after the handles settle.
      await until(async () => (await outbox.entries()).length === 0, 'the confirmations to be written');

      const ops = counts.lists + counts.modifies - before.lists - before.modifies;
      const read = counts.entriesRead - before.entriesRead;
      // One read to recover, one to feed, one markSent, then confirmations
      // (with IndexedDB in batches: one write for the answers that arrived
      // while the previous write ran), plus a small read per change signal.
      // The old drain read the whole outbox on every change.
      if (!memory) expect(ops, `storage operations for ${N} calls`).to.be.lessThan(N / 2);
      else expect(ops, `storage operations for ${N} calls`).to.be.lessThan(3 * N);
      expect(read, `entries read for ${N} calls`).to.be.lessThan(5 * N);
      await calls.close();
      store.close();
    });
  });
}
