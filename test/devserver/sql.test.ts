import { expect } from 'chai';
import {
  AlgebraicType,
  ConnectionId,
  Identity,
  Timestamp,
  Uuid,
  and,
  evaluateBooleanExpr,
  getQueryWhereClause,
  makeQueryBuilder,
  not,
  or,
  schema,
  t,
  table,
  toSql,
} from 'spacetimedb';
import { compileQuery, type CompiledQuery } from '../../devserver/sql/compile.ts';
import { SqlError } from '../../devserver/sql/errors.ts';
import { initialRows } from '../../devserver/sql/evaluate.ts';
import { parseInteger, parseTimestampMicros } from '../../devserver/sql/literals.ts';
import { parseSql } from '../../devserver/sql/parse.ts';
import { bag, contextFor, makeTable, MemorySource, type TestTable } from './sqlKit.ts';

const T = AlgebraicType;
const idType = T.Product({ elements: [{ name: '__identity__', algebraicType: T.U256 }] });
const connType = T.Product({ elements: [{ name: '__connection_id__', algebraicType: T.U128 }] });
const tsType = T.Product({ elements: [{ name: '__timestamp_micros_since_unix_epoch__', algebraicType: T.I64 }] });
const uuidType = T.Product({ elements: [{ name: '__uuid__', algebraicType: T.U128 }] });
const durationType = T.Product({ elements: [{ name: '__time_duration_micros__', algebraicType: T.I64 }] });
const optionU32 = T.Sum({
  variants: [
    { name: 'some', algebraicType: T.U32 },
    { name: 'none', algebraicType: T.Product({ elements: [] }) },
  ],
});

/** The server-side picture of the tables the SDK schema below describes. */
const player = makeTable('player', {
  id: { type: T.U64, primaryKey: true },
  name: { type: T.String },
  owner_id: { type: idType, field: 'ownerId', indexed: true },
  hp: { type: T.I32 },
  alive: { type: T.Bool },
  joined_at: { type: tsType, field: 'joinedAt' },
  conn: { type: connType },
  uid: { type: uuidType },
  data: { type: T.Array(T.U8) },
  score: { type: T.F64 },
  guild_id: { type: T.U64, field: 'guildId', indexed: true },
});
const guild = makeTable('guild', {
  id: { type: T.U64, primaryKey: true },
  leader: { type: T.U64, indexed: true },
  title: { type: T.String },
});
const ints = makeTable('ints', {
  i8: { type: T.I8 },
  u8: { type: T.U8 },
  i16: { type: T.I16 },
  u16: { type: T.U16 },
  i32: { type: T.I32 },
  u32: { type: T.U32 },
  i64: { type: T.I64 },
  u64: { type: T.U64 },
  i128: { type: T.I128 },
  u128: { type: T.U128 },
  i256: { type: T.I256 },
  u256: { type: T.U256 },
  f32: { type: T.F32 },
  f64: { type: T.F64 },
  opt: { type: optionU32 },
  dur: { type: durationType },
  list: { type: T.Array(T.U32) },
});
const secret = makeTable('secret', { id: { type: T.U32, primaryKey: true } }, { isPublic: false });
const events = makeTable('events', { guild: { type: T.U64 }, what: { type: T.String } }, { isEvent: true });
const loose = makeTable('loose', { g: { type: T.U64 }, s: { type: T.String } });
const tables: TestTable[] = [player, guild, ints, secret, events, loose];

const SENDER = new Identity(0xc200_1234n);
const ctx = contextFor(tables, SENDER);
const compile1 = (sql: string): CompiledQuery => {
  const qs = compileQuery(sql, ctx);
  expect(qs).to.have.length(1);
  return qs[0];
};

function expectSqlError(sql: string, message: string | RegExp, position?: number): SqlError {
  let error: unknown;
  try {
    compileQuery(sql, ctx);
  } catch (e) {
    error = e;
  }
  expect(error, `no error for ${sql}`).to.be.instanceOf(SqlError);
  const e = error as SqlError;
  if (typeof message === 'string') expect(e.message).to.include(message);
  else expect(e.message).to.match(message);
  if (position !== undefined) expect(e.position, `position in ${sql}`).to.equal(position);
  return e;
}

// ---- rows ------------------------------------------------------------------

const ID_A = Identity.fromString('c2000000000000000000000000000000000000000000000000000000000000aa');
const ID_B = Identity.fromString('c2000000000000000000000000000000000000000000000000000000000000bb');
const T0 = Timestamp.fromDate(new Date('2025-01-31T12:00:00Z'));
const micros = (ts: Timestamp, add: bigint) => new Timestamp(ts.__timestamp_micros_since_unix_epoch__ + add);

function playerRow(id: bigint, over: Partial<Record<string, unknown>> = {}) {
  return player.row({
    id,
    name: `p${id}`,
    ownerId: ID_A,
    hp: 10,
    alive: true,
    joinedAt: T0,
    conn: new ConnectionId(5n),
    uid: new Uuid(7n),
    data: new Uint8Array([1, 2]),
    score: 1.5,
    guildId: 1n,
    ...over,
  });
}

const players = [
  playerRow(1n),
  playerRow(2n, { name: "o'neil", hp: -5, alive: false, ownerId: ID_B }),
  playerRow(3n, { name: 'Zed', hp: 100, joinedAt: micros(T0, 1n), data: new Uint8Array([1, 3]), score: -2 }),
  playerRow(4n, { name: 'émile', hp: 0, conn: new ConnectionId(6n), uid: new Uuid(8n), guildId: 2n }),
  playerRow(5n, { name: '😀', joinedAt: micros(T0, -1_000_000n), data: new Uint8Array([]), ownerId: SENDER }),
];
const source = new MemorySource(tables);
source.insert(...players.map((r) => [player, r] as [TestTable, typeof r]));
source.insert(
  [guild, guild.row({ id: 10n, leader: 1n, title: 'ten' })],
  [guild, guild.row({ id: 11n, leader: 1n, title: 'eleven' })],
  [guild, guild.row({ id: 12n, leader: 3n, title: 'twelve' })],
);

/** Ids of the player rows a query returns, with repeats, sorted. */
function ids(sql: string): bigint[] {
  return initialRows(compile1(sql), source)
    .map((r) => r.value.id as bigint)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// ---- the SDK's query builder -------------------------------------------------

const sdk = schema({
  player: table(
    { name: 'player', public: true },
    {
      id: t.u64().primaryKey(),
      name: t.string(),
      ownerId: t.identity().index().name('owner_id'),
      hp: t.i32(),
      alive: t.bool(),
      joinedAt: t.timestamp().name('joined_at'),
      conn: t.connectionId(),
      uid: t.uuid(),
      data: t.byteArray(),
      score: t.f64(),
      guildId: t.u64().index().name('guild_id'),
    },
  ),
  guild: table({ name: 'guild', public: true }, { id: t.u64().primaryKey(), leader: t.u64().index(), title: t.string() }),
});
// The builder's types are generic over the schema; the tests drive it dynamically.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const qb = makeQueryBuilder(sdk.schemaType) as any;

describe('subscription SQL', () => {
  describe('the SDK query builder', () => {
    // Each case: the builder query, and the ids the server must return.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const cases: [string, any][] = [
      ['whole table', qb.player],
      ['bigint and string with a quote', qb.player.where((r: any) => r.name.eq("o'neil").and(r.id.gt(1n)))],
      ['number', qb.player.where((r: any) => r.hp.lte(0))],
      ['negative number', qb.player.where((r: any) => r.hp.eq(-5))],
      ['float', qb.player.where((r: any) => r.score.lt(0.5))],
      ['bool column alone', qb.player.where((r: any) => r.alive)],
      ['bool literal', qb.player.where((r: any) => r.alive.eq(false))],
      ['constant true', qb.player.where(() => true)],
      ['Identity', qb.player.where((r: any) => r.ownerId.eq(ID_B))],
      ['Identity ordering', qb.player.where((r: any) => r.ownerId.gt(ID_A))],
      ['Timestamp', qb.player.where((r: any) => r.joinedAt.gt(T0))],
      ['Timestamp before the epoch second', qb.player.where((r: any) => r.joinedAt.lt(T0))],
      ['ConnectionId', qb.player.where((r: any) => r.conn.eq(new ConnectionId(6n)))],
      ['Uuid', qb.player.where((r: any) => r.uid.ne(new Uuid(7n)))],
      ['ne renders <>', qb.player.where((r: any) => r.name.ne('p1'))],
      ['or and and', qb.player.where((r: any) => or(r.hp.gt(50), and(r.alive.eq(true), r.id.lt(2n))))],
      ['chained where', qb.player.where((r: any) => r.hp.gte(0)).where((r: any) => r.guildId.eq(1n))],
      ['column vs column', qb.player.where((r: any) => r.id.eq(r.guildId))],
    ];
    for (const [label, query] of cases) {
      it(`compiles and evaluates: ${label}`, () => {
        const sql = toSql(query);
        const q = compile1(sql);
        expect(q.table.name).to.equal('player');
        const where = getQueryWhereClause(query);
        const expected = players
          .filter((r) => !where || evaluateBooleanExpr(where, r.value))
          .map((r) => r.value.id);
        expect(initialRows(q, source).map((r) => r.value.id)).to.have.members(expected as bigint[]);
        expect(expected.length, 'case selects something').to.be.greaterThan(0);
        if (where && label !== 'constant true') {
          expect(expected.length, 'case filters something').to.be.lessThan(players.length);
        }
      });
    }

    it('emits the forms this engine is written against', () => {
      expect(toSql(qb.player.where((r: any) => r.name.eq("o'neil").and(r.id.gt(3n))))).to.equal(
        `SELECT * FROM "player" WHERE ("player"."name" = 'o''neil') AND ("player"."id" > 3)`,
      );
      expect(toSql(qb.player.where((r: any) => r.ownerId.eq(ID_A)))).to.equal(
        `SELECT * FROM "player" WHERE "player"."owner_id" = 0x${ID_A.toHexString()}`,
      );
      expect(toSql(qb.player.where((r: any) => r.joinedAt.eq(micros(T0, 123456n))))).to.equal(
        `SELECT * FROM "player" WHERE "player"."joined_at" = '2025-01-31T12:00:00.123456Z'`,
      );
    });

    it('right semijoin: rows of the joined table, once per match', () => {
      const query = qb.player.rightSemijoin(qb.guild, (p: any, g: any) => p.id.eq(g.leader));
      const sql = toSql(query);
      expect(sql).to.equal(`SELECT "guild".* FROM "player" JOIN "guild" ON "player"."id" = "guild"."leader"`);
      const q = compile1(sql);
      expect(q.table.name).to.equal('guild');
      expect(q.join!.table.name).to.equal('player');
      expect(initialRows(q, source).map((r) => r.value.id)).to.have.members([10n, 11n, 12n]);
    });

    it('left semijoin with WHERE on both sides: player rows repeated per matching guild', () => {
      const query = qb.player
        .where((p: any) => p.hp.gt(0))
        .leftSemijoin(qb.guild, (p: any, g: any) => p.id.eq(g.leader))
        .where((p: any) => p.alive.eq(true));
      const sql = toSql(query);
      expect(sql).to.equal(
        `SELECT "player".* FROM "guild" JOIN "player" ON "player"."id" = "guild"."leader" WHERE ("player"."hp" > 0) AND ("player"."alive" = TRUE)`,
      );
      expect(ids(sql)).to.deep.equal([1n, 1n, 3n]);
    });

    it('semijoin filtered on the other table', () => {
      const query = qb.guild.where((g: any) => g.title.ne('ten')).rightSemijoin(qb.player, (g: any, p: any) => g.leader.eq(p.id));
      expect(ids(toSql(query))).to.deep.equal([1n, 3n]);
    });

    it('rejects what the builder renders for NOT, naming it', () => {
      expectSqlError(toSql(qb.player.where((r: any) => not(r.hp.eq(3)))), 'unsupported: NOT');
    });

    it('rejects the JSON the builder renders for a Uint8Array, explaining why', () => {
      const sql = toSql(qb.player.where((r: any) => r.data.eq(new Uint8Array([1, 2]))));
      expect(sql).to.include(`'{"0":1,"1":2}'`);
      expectSqlError(sql, /cannot be parsed as type Array<U8>.*hex/);
    });
  });

  describe('parser', () => {
    it('accepts keywords in any case, quoted identifiers with "" escapes, comments and a trailing ;', () => {
      const stmt = parseSql(`sElEcT * fRoM "we""ird" -- note\n wHeRe /* c */ "we""ird"."a b" = 1;`);
      expect(stmt.from).to.deep.include({ name: 'we"ird', alias: 'we"ird' });
      expect(stmt.where).to.deep.include({ kind: 'cmp', op: '=' });
      expect((stmt.where as { left: unknown }).left).to.deep.include({ table: 'we"ird', column: 'a b' });
    });

    it('reads aliases with and without AS, and SELECT t.*', () => {
      expect(parseSql('SELECT p.* FROM player AS p').from).to.deep.include({ name: 'player', alias: 'p' });
      expect(parseSql('SELECT p.* FROM player p WHERE p.id = 1').from).to.deep.include({ alias: 'p' });
      expect(parseSql('SELECT player.* FROM player').projection).to.deep.include({ table: 'player' });
      const j = parseSql('SELECT a.* FROM t a INNER JOIN s AS b ON a.x = b.y');
      expect(j.join!.table).to.deep.include({ name: 's', alias: 'b' });
      expect(j.join!.on.left).to.deep.include({ table: 'a', column: 'x' });
    });

    it('reads every literal form', () => {
      const lit = (text: string) => {
        const w = parseSql(`SELECT * FROM t WHERE c = ${text}`).where as { right: unknown };
        return w.right;
      };
      expect(lit('42')).to.deep.include({ kind: 'number', text: '42' });
      expect(lit('-42')).to.deep.include({ kind: 'number', text: '-42' });
      expect(lit('+4.5e-3')).to.deep.include({ kind: 'number', text: '4.5e-3' });
      expect(lit('.5')).to.deep.include({ kind: 'number', text: '.5' });
      expect(lit("'it''s'")).to.deep.include({ kind: 'string', value: "it's" });
      expect(lit("''")).to.deep.include({ kind: 'string', value: '' });
      expect(lit('TRUE')).to.deep.include({ kind: 'bool', value: true });
      expect(lit('false')).to.deep.include({ kind: 'bool', value: false });
      expect(lit('0xC2ff')).to.deep.include({ kind: 'hex', digits: 'C2ff' });
      expect(lit("X'00ff'")).to.deep.include({ kind: 'hex', digits: '00ff' });
      expect(lit(':sender')).to.deep.include({ kind: 'sender' });
    });

    it('gives AND precedence over OR and honours parentheses', () => {
      const w = parseSql('SELECT * FROM t WHERE a = 1 OR b = 2 AND c = 3').where!;
      expect(w.kind).to.equal('or');
      expect((w as { right: { kind: string } }).right.kind).to.equal('and');
      const p = parseSql('SELECT * FROM t WHERE (a = 1 OR b = 2) AND c = 3').where!;
      expect(p.kind).to.equal('and');
      expect((p as { left: { kind: string } }).left.kind).to.equal('or');
      expect(parseSql('SELECT * FROM t WHERE ((a)) = 1').where).to.deep.include({ kind: 'cmp' });
    });

    it('normalises <> to != and keeps literals on the left', () => {
      const w = parseSql('SELECT * FROM t WHERE 3 <> a').where as { op: string; left: { kind: string } };
      expect(w.op).to.equal('!=');
      expect(w.left.kind).to.equal('number');
    });

    it('parses SELECT * FROM *', () => {
      expect(parseSql('SELECT * FROM *').from).to.equal('*');
    });
  });

  describe('rejections', () => {
    const cases: [string, string | RegExp, number?][] = [
      ['SELECT * FROM player WHERE NOT (hp = 1)', 'unsupported: NOT', 27],
      ['SELECT * FROM player WHERE hp NOT IN (1)', 'unsupported: NOT'],
      ['SELECT * FROM player WHERE hp + 1 = 2', 'unsupported: arithmetic', 30],
      ['SELECT * FROM player WHERE hp = 1 * 2', 'unsupported: arithmetic'],
      ['SELECT * FROM player WHERE hp = -id', 'unsupported: arithmetic'],
      ['SELECT * FROM player WHERE name || name = name', 'unsupported: string concatenation'],
      ['SELECT * FROM player WHERE hp = NULL', 'unsupported: NULL'],
      ['SELECT * FROM player WHERE hp IS NULL', 'unsupported: IS [NOT] NULL'],
      ['SELECT * FROM player WHERE hp IN (1, 2)', 'unsupported: IN'],
      ["SELECT * FROM player WHERE name LIKE 'a%'", 'unsupported: LIKE'],
      ['SELECT * FROM player WHERE hp BETWEEN 1 AND 2', 'unsupported: BETWEEN'],
      ['SELECT * FROM player WHERE lower(name) = 1', 'unsupported: function calls'],
      ['SELECT * FROM player WHERE hp = 1 = 2', 'unsupported: chained comparisons'],
      ['SELECT * FROM player WHERE hp = (hp = 1)', 'unsupported: comparing the result of a comparison'],
      ['SELECT * FROM player ORDER BY id', 'unsupported: ORDER BY'],
      ['SELECT * FROM player LIMIT 5', 'unsupported: LIMIT'],
      ['SELECT * FROM player GROUP BY id', 'unsupported: GROUP BY'],
      ['SELECT * FROM player UNION SELECT * FROM guild', 'unsupported: set operations (UNION)'],
      ['SELECT DISTINCT * FROM player', 'unsupported: DISTINCT'],
      ['SELECT id FROM player', 'unsupported: column projections'],
      ['SELECT id, name FROM player', 'unsupported: column projections'],
      ['SELECT COUNT(*) AS n FROM player', 'unsupported: aggregates'],
      ['SELECT * FROM (SELECT * FROM player)', 'unsupported: subqueries'],
      ['SELECT * FROM player WHERE id = (SELECT id FROM guild)', 'unsupported: subqueries'],
      ['SELECT player.* FROM player, guild', 'unsupported: implicit joins'],
      ['SELECT player.* FROM player LEFT JOIN guild ON player.id = guild.leader', 'unsupported: LEFT JOIN'],
      ['SELECT player.* FROM player JOIN guild', 'unsupported: JOIN without ON'],
      ['SELECT player.* FROM player JOIN guild USING (id)', 'unsupported: JOIN … USING'],
      ['SELECT player.* FROM player JOIN guild ON player.id < guild.leader', "unsupported: join condition with '<'"],
      ['SELECT player.* FROM player JOIN guild ON player.id = 1', 'unsupported: literals in the join condition'],
      ['SELECT player.* FROM player JOIN guild ON player.id = guild.leader AND guild.id = 1', 'unsupported: compound join conditions'],
      ['SELECT a.* FROM player a JOIN guild b ON a.id = b.leader JOIN guild c ON a.id = c.leader', 'unsupported: more than two tables'],
      ['SELECT * FROM player; SELECT * FROM guild', 'unsupported: multiple statements'],
      ['DELETE FROM player', 'unsupported: DELETE statements'],
      ["INSERT INTO player VALUES (1)", 'unsupported: INSERT statements'],
      ['WITH x AS (SELECT 1) SELECT * FROM x', 'unsupported: WITH'],
      ['SELECT * FROM player WHERE id = :other', 'unsupported: parameter :other'],
      ['SELECT * FROM public.player', 'unsupported: multi-part table names'],
      ['', 'empty query', 0],
      ['   ', 'empty query'],
      ['SELECT * FROM player WHERE name = \'open', 'unterminated string literal', 34],
      ['SELECT * FROM "player', 'unterminated quoted identifier'],
      ['SELECT * FROM player WHERE id = 0xZZ', 'invalid hex literal'],
      ['SELECT * FROM player WHERE id = 12abc', 'invalid number'],
      ['SELECT * FROM player WHERE id = 1 #', "unexpected character '#'"],
      ['SELECT * FROM player WHERE', 'expected a column or a literal, found end of query'],
      ['SELECT * FROM player WHERE id = 1 garbage', 'expected end of query'],
      ['SELECT * player', 'expected FROM'],
      // names
      ['SELECT * FROM nobody', 'unknown table "nobody"', 14],
      ['SELECT * FROM Player', 'unknown table "Player"'],
      ['SELECT * FROM player WHERE nope = 1', 'unknown column "nope" on table "player"', 27],
      ['SELECT * FROM player WHERE ID = 1', 'unknown column "ID" on table "player"'],
      ['SELECT * FROM player WHERE ownerID = 1', 'unknown column "ownerID" on table "player"'],
      ['SELECT * FROM player WHERE guild.id = 1', 'unknown table "guild"'],
      ['SELECT * FROM player AS p WHERE player.id = 1', 'unknown table "player"'],
      ['SELECT g.* FROM player', 'unknown table "g"'],
      ['SELECT * FROM secret', 'table "secret" is private'],
      ['SELECT player.* FROM player JOIN secret ON player.id = secret.id', 'table "secret" is private'],
      // joins
      ['SELECT * FROM player JOIN guild ON player.id = guild.leader', 'unsupported: SELECT * with a join'],
      ['SELECT player.* FROM player JOIN guild ON id = guild.leader', 'names must be qualified when using joins'],
      ['SELECT player.* FROM player JOIN guild ON player.id = guild.leader WHERE hp = 1', 'names must be qualified when using joins'],
      ['SELECT player.* FROM player JOIN guild ON player.id = player.guild_id', 'must compare a column of each joined table'],
      ['SELECT player.* FROM player JOIN guild ON player.name = guild.leader', 'join columns must have the same type'],
      ['SELECT loose.* FROM loose JOIN player ON loose.s = player.name', 'Subscriptions require indexes on join columns'],
      ['SELECT player.* FROM player JOIN player ON player.id = player.guild_id', 'duplicate table alias "player"'],
      ['SELECT player.* FROM player JOIN events ON player.guild_id = events.guild', 'event tables cannot be used as the lookup table'],
      ['SELECT events.* FROM events JOIN loose ON events.guild = loose.g', 'Subscriptions require indexes on join columns'],
      // FROM *
      ['SELECT player.* FROM *', 'unsupported: SELECT player.* FROM *'],
      ['SELECT * FROM * WHERE id = 1', 'unsupported: WHERE with FROM *'],
      // types
      ['SELECT * FROM player WHERE hp = TRUE', 'type mismatch: column "hp" has type I32, the literal TRUE is Bool'],
      ['SELECT * FROM player WHERE alive = 1', 'the literal 1 cannot be parsed as type Bool'],
      ['SELECT * FROM player WHERE hp = 1.5', 'the literal 1.5 cannot be parsed as type I32 (column "hp"): not an integer'],
      ["SELECT * FROM player WHERE hp = 'x'", "the literal 'x' cannot be parsed as type I32"],
      ['SELECT * FROM ints WHERE u8 = 256', 'cannot be parsed as type U8 (column "u8"): out of range'],
      ['SELECT * FROM ints WHERE u8 = -1', 'out of range'],
      ['SELECT * FROM ints WHERE i8 = -129', 'out of range'],
      ['SELECT * FROM ints WHERE u64 = 18446744073709551616', 'out of range'],
      ['SELECT * FROM ints WHERE i32 = 1e400', 'out of range'],
      ['SELECT * FROM ints WHERE f64 = 1e400', 'cannot be parsed as type F64'],
      ["SELECT * FROM ints WHERE f64 = 'abc'", 'not a number'],
      ['SELECT * FROM player WHERE owner_id = 0x1234', 'cannot be parsed as type Identity (column "owner_id"): expected 64 hex digits'],
      ['SELECT * FROM player WHERE owner_id = 5', 'expected 64 hex digits'],
      ['SELECT * FROM player WHERE conn = 0x12', 'expected 32 hex digits'],
      ["SELECT * FROM player WHERE uid = 'not-a-uuid'", 'expected 32 hex digits or a dashed UUID'],
      ["SELECT * FROM player WHERE joined_at = '2025-13-01T00:00:00Z'", 'cannot be parsed as type Timestamp'],
      ["SELECT * FROM player WHERE joined_at = '2025-02-30T00:00:00Z'", 'cannot be parsed as type Timestamp'],
      ["SELECT * FROM player WHERE joined_at = '2025-01-01'", 'cannot be parsed as type Timestamp'],
      ['SELECT * FROM player WHERE joined_at = 1700000000', 'timestamps are written as RFC 3339 strings'],
      ['SELECT * FROM player WHERE data = 0x123', 'expected an even number of hex digits'],
      ['SELECT * FROM player WHERE hp = :sender', 'type mismatch: column "hp" has type I32, :sender is an Identity'],
      ['SELECT * FROM ints WHERE opt = 1', 'unsupported: comparing "opt" of type Option<U32>'],
      ['SELECT * FROM ints WHERE dur > 1', 'unsupported: comparing "dur" of type TimeDuration'],
      ['SELECT * FROM ints WHERE list = 1', 'unsupported: comparing "list" of type Array<U32>'],
      ['SELECT * FROM player WHERE hp = name', 'type mismatch: "hp" is I32, "name" is String'],
      ['SELECT * FROM player WHERE 1 = 1', 'cannot resolve the type of 1 = 1'],
      ['SELECT * FROM player WHERE hp', 'expected a condition, found column "hp" of type I32'],
      ["SELECT * FROM player WHERE 'x'", "expected a condition, found the literal 'x'"],
    ];
    for (const [sql, message, position] of cases) {
      it(`${sql || '(empty)'} → ${message}`, () => {
        expectSqlError(sql, message, position);
      });
    }

    it('errors are SqlError instances with a name and a position', () => {
      const e = expectSqlError('SELECT * FROM player WHERE NOT hp = 1', 'unsupported: NOT');
      expect(e).to.be.instanceOf(Error);
      expect(e.name).to.equal('SqlError');
      expect(e.position).to.equal(27);
    });
  });

  describe('compiler', () => {
    it('SELECT * FROM * expands to one query per public table, event tables included', () => {
      const qs = compileQuery('SELECT * FROM *', ctx);
      expect(qs.map((q) => q.table.name)).to.deep.equal(['player', 'guild', 'ints', 'events', 'loose']);
      expect(qs.map((q) => q.sql)).to.include('SELECT * FROM "player"');
      expect(initialRows(qs[0], source)).to.have.length(players.length);
    });

    it("finds a column by the module's own name too (SpacetimeDB's column alias)", () => {
      expect(ids('SELECT * FROM player WHERE ownerId = :sender')).to.deep.equal(ids('SELECT * FROM player WHERE owner_id = :sender'));
      expect(ids('SELECT * FROM player WHERE ownerId = :sender')).to.have.length.greaterThan(0);
    });

    it('reports the tables a query reads and whether it uses :sender', () => {
      const q = compile1('SELECT g.* FROM guild g JOIN player p ON g.leader = p.id WHERE p.owner_id = :sender');
      expect(q.table.name).to.equal('guild');
      expect(q.join!.table.name).to.equal('player');
      expect(q.join!.column.name).to.equal('leader');
      expect(q.join!.otherColumn.name).to.equal('id');
      expect(q.tables).to.deep.equal(['guild', 'player']);
      expect(q.usesSender).to.equal(true);
      expect(compile1('SELECT * FROM player').usesSender).to.equal(false);
    });

    it('splits WHERE conjuncts by the table they read', () => {
      const q = compile1(
        "SELECT p.* FROM player p JOIN guild g ON p.id = g.leader WHERE p.hp > 0 AND g.title = 'ten' AND (p.hp > 50 OR g.id = 11)",
      );
      const j = q.join!;
      const p = (hp: number) => ({ hp });
      const g = (title: string, id: bigint) => ({ title, id });
      expect(q.rowFilter(p(1))).to.equal(true);
      expect(q.rowFilter(p(0))).to.equal(false);
      expect(j.otherFilter(g('ten', 10n))).to.equal(true);
      expect(j.otherFilter(g('x', 10n))).to.equal(false);
      expect(j.pairFilter(p(60), g('x', 10n))).to.equal(true);
      expect(j.pairFilter(p(1), g('x', 11n))).to.equal(true);
      expect(j.pairFilter(p(1), g('x', 10n))).to.equal(false);
    });

    it('folds constant conditions', () => {
      expect(ids('SELECT * FROM player WHERE TRUE')).to.have.length(5);
      expect(ids('SELECT * FROM player WHERE FALSE')).to.deep.equal([]);
      expect(ids('SELECT * FROM player WHERE TRUE = FALSE OR id = 2')).to.deep.equal([2n]);
      expect(ids('SELECT * FROM player WHERE FALSE AND id = 2')).to.deep.equal([]);
      expect(ids('SELECT * FROM player WHERE TRUE <> FALSE AND id = 2')).to.deep.equal([2n]);
    });

    it('coerces integer literals: number up to 32 bits, bigint above, exact decimal forms', () => {
      const row = ints.row({
        i8: -128, u8: 255, i16: -32768, u16: 65535, i32: -2147483648, u32: 4294967295,
        i64: -(2n ** 63n), u64: 2n ** 64n - 1n, i128: -(2n ** 127n), u128: 2n ** 128n - 1n,
        i256: -(2n ** 255n), u256: 2n ** 256n - 1n, f32: 1.100000023841858, f64: 0.1,
        opt: { tag: 'none', value: {} }, dur: { __time_duration_micros__: 0n }, list: [],
      });
      const src = new MemorySource([ints]);
      src.insert([ints, row]);
      const hit = (where: string) => initialRows(compile1(`SELECT * FROM ints WHERE ${where}`), src).length === 1;
      expect(hit('i8 = -128 AND u8 = 255 AND i16 = -32768 AND u16 = 65535')).to.equal(true);
      expect(hit('i32 = -2147483648 AND u32 = 4294967295')).to.equal(true);
      expect(hit('i64 = -9223372036854775808 AND u64 = 18446744073709551615')).to.equal(true);
      expect(hit(`i128 = -${2n ** 127n} AND u128 = ${2n ** 128n - 1n}`)).to.equal(true);
      expect(hit(`i256 = -${2n ** 255n} AND u256 = ${2n ** 256n - 1n}`)).to.equal(true);
      expect(hit('u8 = 2.55e2 AND u16 = 65535.000')).to.equal(true);
      expect(hit("u32 = '4294967295'")).to.equal(true); // text is parsed as the column's type, as SpacetimeDB does
      expect(hit('f32 = 1.1')).to.equal(true); // the literal is rounded to f32 like the column
      expect(hit('f64 = 0.1 AND f64 > 0.09999 AND f64 < 1e-0')).to.equal(true);
      expect(hit('u64 < 18446744073709551615')).to.equal(false);
    });

    it('exact integer parsing', () => {
      expect(parseInteger('12')).to.equal(12n);
      expect(parseInteger('-1.20e1')).to.equal(-12n);
      expect(parseInteger('1e3')).to.equal(1000n);
      expect(parseInteger('1.5')).to.equal(undefined);
      expect(parseInteger('12e-1')).to.equal(undefined);
      expect(parseInteger('120e-1')).to.equal(12n);
      expect(parseInteger('.')).to.equal(undefined);
    });

    it('parses RFC 3339 timestamps to the microsecond, with offsets', () => {
      const base = BigInt(Date.UTC(2025, 0, 31, 12)) * 1000n;
      expect(parseTimestampMicros('2025-01-31T12:00:00Z')).to.equal(base);
      expect(parseTimestampMicros('2025-01-31T12:00:00.000001Z')).to.equal(base + 1n);
      expect(parseTimestampMicros('2025-01-31T12:00:00.123456789Z')).to.equal(base + 123456n);
      expect(parseTimestampMicros('2025-01-31T14:00:00+02:00')).to.equal(base);
      expect(parseTimestampMicros('2025-01-31 11:30:00-00:30')).to.equal(base);
      expect(parseTimestampMicros('0001-01-01T00:00:00Z')).to.equal(-62135596800000000n);
      expect(parseTimestampMicros('2025-01-31T12:00:00')).to.equal(undefined);
    });

    it('compares timestamps, identities, connection ids, uuids and bytes by value', () => {
      expect(ids(`SELECT * FROM player WHERE joined_at = '${micros(T0, 1n).toISOString()}'`)).to.deep.equal([3n]);
      expect(ids(`SELECT * FROM player WHERE joined_at >= '2025-01-31T13:00:00+01:00'`)).to.deep.equal([1n, 2n, 3n, 4n]);
      expect(ids(`SELECT * FROM player WHERE owner_id = '${ID_B.toHexString()}'`)).to.deep.equal([2n]);
      expect(ids(`SELECT * FROM player WHERE owner_id = X'${ID_B.toHexString()}'`)).to.deep.equal([2n]);
      expect(ids(`SELECT * FROM player WHERE owner_id = :sender`)).to.deep.equal([5n]);
      expect(ids(`SELECT * FROM player WHERE :sender <> owner_id`)).to.deep.equal([1n, 2n, 3n, 4n]);
      expect(ids(`SELECT * FROM player WHERE conn = 0x${new ConnectionId(6n).toHexString()}`)).to.deep.equal([4n]);
      expect(ids(`SELECT * FROM player WHERE uid = '00000000-0000-0000-0000-000000000008'`)).to.deep.equal([4n]);
      expect(ids(`SELECT * FROM player WHERE data = 0x0102`)).to.deep.equal([1n, 2n, 4n]);
      expect(ids(`SELECT * FROM player WHERE data > X'0102'`)).to.deep.equal([3n]);
      expect(ids(`SELECT * FROM player WHERE data < 0x01`)).to.deep.equal([5n]);
      expect(ids(`SELECT * FROM player WHERE data = ''`)).to.deep.equal([5n]);
    });

    it('compares strings by code point, like UTF-8 byte order', () => {
      // '😀' (a surrogate pair in UTF-16) sorts after 'é' and after U+FF5E in code point order.
      expect(ids(`SELECT * FROM player WHERE name > '\uff5e'`)).to.deep.equal([5n]);
      expect(ids(`SELECT * FROM player WHERE name > 'p'`)).to.deep.equal([1n, 4n, 5n]);
      expect(ids(`SELECT * FROM player WHERE name < 'a'`)).to.deep.equal([3n]);
      expect(ids(`SELECT * FROM player WHERE name = 'o''neil'`)).to.deep.equal([2n]);
    });

    it('accepts every comparison operator with the literal on either side', () => {
      const cmp = (op: string) => [ids(`SELECT * FROM player WHERE hp ${op} 10`), ids(`SELECT * FROM player WHERE 10 ${op} hp`)];
      expect(cmp('=')).to.deep.equal([[1n, 5n], [1n, 5n]]);
      expect(cmp('!=')).to.deep.equal([[2n, 3n, 4n], [2n, 3n, 4n]]);
      expect(cmp('<>')).to.deep.equal([[2n, 3n, 4n], [2n, 3n, 4n]]);
      expect(cmp('<')).to.deep.equal([[2n, 4n], [3n]]);
      expect(cmp('<=')).to.deep.equal([[1n, 2n, 4n, 5n], [1n, 3n, 5n]]);
      expect(cmp('>')).to.deep.equal([[3n], [2n, 4n]]);
      expect(cmp('>=')).to.deep.equal([[1n, 3n, 5n], [1n, 2n, 4n, 5n]]);
    });

    it('orders bools, and floats with negative values', () => {
      expect(ids('SELECT * FROM player WHERE alive < TRUE')).to.deep.equal([2n]);
      expect(ids('SELECT * FROM player WHERE score < -1.5')).to.deep.equal([3n]);
      expect(ids('SELECT * FROM player WHERE score >= 1.5')).to.deep.equal([1n, 2n, 4n, 5n]);
    });

    it('resolves aliases and qualified or bare names in single-table queries', () => {
      expect(ids('SELECT p.* FROM player AS p WHERE p.hp = 10 AND hp = 10')).to.deep.equal([1n, 5n]);
      expect(ids('select player.* from player where player.id = 2')).to.deep.equal([2n]);
      expect(ids('SELECT * FROM "player" WHERE "player"."guild_id" = 2')).to.deep.equal([4n]);
    });

    it('joins a table with itself through aliases', () => {
      const q = compile1('SELECT a.* FROM player a JOIN player b ON a.id = b.guild_id');
      expect(q.table.name).to.equal('player');
      expect(q.join!.table.name).to.equal('player');
      expect(q.tables).to.deep.equal(['player']);
      // guild_id is 1 for players 1,2,3,5 and 2 for player 4.
      expect(initialRows(q, source).map((r) => r.value.id)).to.have.members([1n, 1n, 1n, 1n, 2n]);
    });

    it('returns the same StoredRow objects the source holds', () => {
      const rows = initialRows(compile1('SELECT * FROM player WHERE id = 1'), source);
      expect(rows[0]).to.equal(players[0]);
      const joined = initialRows(compile1('SELECT p.* FROM player p JOIN guild g ON p.id = g.leader'), source);
      expect(bag(joined)).to.deep.equal(new Map([[players[0].key, 2], [players[2].key, 1]]));
      expect(joined.every((r) => players.includes(r))).to.equal(true);
    });
  });
});
