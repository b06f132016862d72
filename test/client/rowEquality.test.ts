import { expect } from 'chai';
import { compileRawQuery } from '../../streams/query.ts';

describe('row equality of a table (re-sync comparator)', () => {
  // Ten columns, so the comparator's per-position functions (eight) and its loop over the rest both run.
  const tags = ['U64', 'F64', 'String', 'Product', 'U32', 'Bool', 'I64', 'F32', 'String', 'Array'];
  const columns = Object.fromEntries(
    tags.map((tag, i) => [`c${i}`, { columnMetadata: { isPrimaryKey: i === 0 }, typeBuilder: { algebraicType: { tag } } }]),
  );
  const table = { sourceName: 't', accessorName: 't', tableDef: { columns, rowType: undefined } };
  const same = compileRawQuery<Record<string, unknown>>(table, 'SELECT * FROM t', () => true).same!;
  const row = () => ({ c0: 1n, c1: NaN, c2: 'a', c3: { x: 1, y: [2] }, c4: 7, c5: true, c6: -3n, c7: 0.5, c8: 'z', c9: [{ k: 1 }] });

  it('equal rows are the same (NaN equals NaN; objects compared deeply), whatever the column position', () => {
    expect(same(row(), row())).to.equal(true);
  });

  it('a difference in any one column, first eight or beyond, makes them differ', () => {
    const changed: Record<string, unknown> = { c0: 2n, c1: 1, c2: 'b', c3: { x: 1, y: [3] }, c4: 8, c5: false, c6: -4n, c7: NaN, c8: 'y', c9: [{ k: 2 }] };
    for (const [name, value] of Object.entries(changed)) {
      expect(same(row(), { ...row(), [name]: value }), name).to.equal(false);
      expect(same({ ...row(), [name]: value }, row()), name).to.equal(false);
    }
  });
});

describe('key and equality functions of a table definition', () => {
  const def = () => ({
    columns: {
      id: { columnMetadata: { isPrimaryKey: true }, typeBuilder: { algebraicType: { tag: 'U64' } } },
      name: { columnMetadata: {}, typeBuilder: { algebraicType: { tag: 'String' } } },
    },
    rowType: undefined,
  });

  it('every query on one table definition shares them (another connection’s queries included), another definition has its own', () => {
    const tableDef = def();
    const table = { sourceName: 't', accessorName: 't', tableDef };
    const a = compileRawQuery<{ id: bigint; name: string }>(table, 'SELECT * FROM t', () => true);
    const b = compileRawQuery<{ id: bigint; name: string }>({ ...table }, 'SELECT * FROM t WHERE id = 1', () => true);
    expect(b.keyOf).to.equal(a.keyOf);
    expect(b.toKey).to.equal(a.toKey);
    expect(b.same).to.equal(a.same);
    const other = compileRawQuery<{ id: bigint; name: string }>({ ...table, tableDef: def() }, 'SELECT * FROM t', () => true);
    expect(other.keyOf).to.not.equal(a.keyOf);
    expect(other.same).to.not.equal(a.same);
    // Shared, and still right.
    expect(a.keyOf({ id: 5n, name: 'x' })).to.equal(5n);
    expect(a.same!({ id: 5n, name: 'x' }, { id: 5n, name: 'y' })).to.equal(false);
  });
});
