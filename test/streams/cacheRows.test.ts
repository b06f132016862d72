/**
 * Reading a table's rows out of the SDK's cache: straight from its row map
 * with the SDK this project is built against, through `iter()` for any
 * other shape.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import type { DevServer } from '../../devserver/index.ts';
import { cacheRows } from '../../streams/cacheRows.ts';
import type { TableCacheLike } from '../../streams/liveQueries.ts';
import { connect, startBasicServer, type Connected } from '../helpers/sdk.ts';

/** A table double whose `iter()` counts its calls; `rows` is what the SDK's field would hold. */
function double(rows: unknown, listed: readonly unknown[], count = listed.length) {
  const table = {
    rows,
    iterCalls: 0,
    iter() {
      table.iterCalls++;
      return listed.values();
    },
    count: () => BigInt(count),
    onInsert() {},
    onDelete() {},
    removeOnInsert() {},
    removeOnDelete() {},
  };
  return table;
}

describe('cacheRows: a table of the SDK cache as an array', () => {
  describe('with the SDK and the dev server', () => {
    let server: DevServer;
    let c: Connected;
    before(async () => {
      server = await startBasicServer();
      c = await connect(server);
      for (const [name, age] of [['ada', 36], ['bob', 17], ['cy', 51]] as const) await c.conn.reducers.addPerson({ name, age });
      await new Promise<void>((resolve, reject) =>
        c.conn
          .subscriptionBuilder()
          .onApplied(() => resolve())
          .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
          .subscribe(['SELECT * FROM person']),
      );
    });
    after(async () => {
      c.conn.disconnect();
      await server.stop();
    });

    it('reads the rows from the cache without its iterator, the same rows in the same order as iter()', () => {
      const table = c.conn.db.person as unknown as TableCacheLike;
      const listed = [...table.iter()];
      expect(listed.map((p) => p.name)).to.deep.equal(['ada', 'bob', 'cy']);
      const iter = sinon.spy(table, 'iter');
      try {
        const rows = cacheRows(table);
        // A failure here means the SDK's cache changed shape: every sync now pays for the generator.
        expect(iter.callCount, 'iter() calls').to.equal(0);
        expect(rows).to.have.length(3);
        rows.forEach((row, i) => expect(row).to.equal(listed[i]));
      } finally {
        iter.restore();
      }
    });
  });

  describe('any other shape goes through iter()', () => {
    const a = { id: 1 };
    const b = { id: 2 };
    const cases: [string, unknown, number?][] = [
      ['no row map', undefined],
      ['a map whose values are not [row, count] pairs', new Map([[1, a], [2, b]])],
      ['pairs whose count is not a number', new Map([[1, [a, 1]], [2, [b, '1']]])],
      ['a map of another size than count()', new Map([[1, [a, 1]]])],
      ['a plain object', { 1: [a, 1], 2: [b, 1] }],
    ];
    for (const [what, rows] of cases) {
      it(what, () => {
        const t = double(rows, [a, b]);
        expect(cacheRows(t)).to.deep.equal([a, b]);
        expect(t.iterCalls).to.equal(1);
      });
    }

    it('the SDK shape is read from the map', () => {
      const t = double(new Map([[1, [a, 1]], [2, [b, 2]]]), [a, b]);
      const rows = cacheRows(t);
      expect(rows).to.have.length(2);
      expect(rows[0]).to.equal(a);
      expect(rows[1]).to.equal(b);
      expect(t.iterCalls).to.equal(0);
    });
  });
});
