import { expect } from 'chai';
import { VirtualTimeScheduler } from 'rxjs';
import { LiveQueries, type ConnectionLike } from '../../streams/liveQueries.ts';
import { compileRawQuery } from '../../streams/query.ts';

/** A connection whose subscriptions are applied when the test says so. */
function fakeConnection() {
  const pending: (() => void)[] = [];
  const table = { iter: () => [], onInsert() {}, onDelete() {}, removeOnInsert() {}, removeOnDelete() {} };
  const conn: ConnectionLike = {
    db: { thing: table },
    subscriptionBuilder() {
      let applied: (ctx: unknown) => void = () => {};
      const b = {
        onApplied(cb: (ctx: unknown) => void) {
          applied = cb;
          return b;
        },
        onError() {
          return b;
        },
        subscribe() {
          let active = false;
          pending.push(() => {
            active = true;
            applied({});
          });
          return { unsubscribe() {}, isActive: () => active, isEnded: () => false };
        },
      };
      return b;
    },
  };
  return { conn, applyAll: () => pending.splice(0).forEach((f) => f()) };
}

const thing = {
  sourceName: 'thing',
  accessorName: 'thing',
  tableDef: { columns: { id: { columnMetadata: { isPrimaryKey: true }, typeBuilder: { algebraicType: { tag: 'U32' } } } }, rowType: { elements: [] } },
} as never;

describe('LiveQueries regressions', () => {
  it('a query released (grace over) while a new connection syncs no longer holds the connection in syncing', () => {
    const scheduler = new VirtualTimeScheduler();
    const queries = new LiveQueries({ graceMs: 50, scheduler });
    const entry = queries.acquire(compileRawQuery(thing, 'SELECT * FROM thing', () => true));
    queries.release(entry); // grace period running
    const { conn, applyAll } = fakeConnection();
    let synced = 0;
    queries.attach(conn, () => synced++);
    scheduler.flush(); // the grace ends before the server answers
    expect(synced).to.equal(1);
    applyAll();
    expect(synced).to.equal(1);
    queries.close();
  });
});
