/**
 * The HTTP API the SpacetimeDB CLI uses — `sql`, `call/:reducer`, `schema` —
 * with SpacetimeDB's status codes and bodies for good and bad input, and
 * row-level security on the SQL endpoint.
 */
import { expect } from 'chai';
import { until } from '../helpers/until.ts';
import { secureSuite, subscribeSecure } from '../helpers/secure.ts';

describe('HTTP API (sql, call, schema)', function () {
  const suite = secureSuite();
  const client = suite.client;
  const db = (rest: string) => `${suite.server.url}/v1/database/${suite.server.database}/${rest}`;
  const call = (reducer: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    fetch(db(`call/${reducer}`), { method: 'POST', headers, body });
  const sql = (query: string, token?: string) =>
    fetch(db('sql'), { method: 'POST', body: query, headers: token ? { authorization: `Bearer ${token}` } : {} });


  describe('POST /v1/database/:name/call/:reducer', () => {
    it('runs a reducer with JSON arguments (by position or by name) as the token holder, and subscribers see it', async () => {
      const a = await client();
      await subscribeSecure(a, ['SELECT * FROM message', 'SELECT * FROM room']);
      const res = await call('post', '["by position"]', { 'content-type': 'application/json', authorization: `Bearer ${a.token}` });
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('');
      expect(res.headers.get('spacetime-identity')).to.equal(null);
      const named = await call('post', '{"text": "by name"}', { 'content-type': 'application/json', authorization: `Bearer ${a.token}` });
      expect(named.status).to.equal(200);
      await until(() => a.conn.db.message.count() === 2n, 'messages from HTTP', 5000);
      expect([...a.conn.db.message.iter()].every((m) => m.owner.isEqual(a.identity))).to.equal(true);
      // Without a token the call runs as a fresh identity: A's filter hides its row from A.
      expect((await call('post', '["anonymous"]')).status).to.equal(200);
      expect((await call('create_room', '[7, "seven"]')).status).to.equal(200);
      await a.conn.reducers.post({ text: 'sync' });
      expect([...a.conn.db.message.iter()].map((m) => m.text).sort()).to.deep.equal(['by name', 'by position', 'sync']);
    });

    it('answers bad input with SpacetimeDB status codes and messages', async () => {
      const cases: [string, string, Record<string, string> | undefined, number, RegExp][] = [
        ['post', '["x"]', {}, 415, /^Expected request with `Content-Type: application\/json`$/],
        ['post', '["x"', undefined, 400, /^invalid arguments for reducer post: /],
        ['post', '[]', undefined, 400, /^invalid arguments for reducer post: expected an array of 1 element, found an array$/],
        ['post', '[42]', undefined, 400, /^invalid arguments for reducer post: \[0\]: expected a string, found the number 42$/],
        ['post', '{"txt": "x"}', undefined, 400, /unknown field "txt"/],
        ['create_room', '[4294967296, "big"]', undefined, 400, /4294967296 is out of range for u32/],
        ['no_such_reducer', '[]', undefined, 404, /^No such procedure$/],
        ['set_name', '[""]', undefined, 530, /^name must not be empty$/],
      ];
      for (const [reducer, body, headers, status, message] of cases) {
        const res = await call(reducer, body, headers);
        expect(res.status, `${reducer} ${body}`).to.equal(status);
        expect(await res.text(), `${reducer} ${body}`).to.match(message);
      }
      const bad = await fetch(`${suite.server.url}/v1/database/nope/call/post`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '["x"]' });
      expect(bad.status).to.equal(404);
      expect(await bad.text()).to.equal('No such database.');
      const forged = await call('post', '["x"]', { 'content-type': 'application/json', authorization: 'Bearer not.a.token' });
      expect(forged.status).to.equal(401);
      // Nothing of the refused calls was written.
      const rows = (await (await sql('SELECT * FROM room')).json()) as { rows: unknown[] }[];
      expect(rows[0].rows).to.deep.equal([]);
    });
  });

  describe('POST /v1/database/:name/sql', () => {
    it('returns the schema and rows as SATS JSON, filtered by row-level security for the caller', async () => {
      const a = await client();
      const b = await client();
      await a.conn.reducers.post({ text: 'from a' });
      await b.conn.reducers.post({ text: 'from b' });
      const res = await sql('SELECT * FROM message', a.token);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/json');
      const [stmt] = (await res.json()) as { schema: { elements: { name: { some: string }; algebraic_type: unknown }[] }; rows: unknown[][]; stats: object }[];
      expect(stmt.schema.elements.map((e) => e.name.some)).to.deep.equal(['id', 'owner', 'text']);
      expect(stmt.schema.elements[0].algebraic_type).to.deep.equal({ U64: [] });
      expect(stmt.rows.map((r) => r[2])).to.deep.equal(['from a']);
      expect(stmt.stats).to.deep.equal({ rows_inserted: 0, rows_deleted: 0, rows_updated: 0 });
      // An anonymous caller owns nothing.
      const anon = (await (await sql('SELECT * FROM message')).json()) as { rows: unknown[] }[];
      expect(anon[0].rows).to.deep.equal([]);
      // Views answer too.
      const mine = (await (await sql('SELECT * FROM my_messages', b.token)).json()) as { rows: unknown[][] }[];
      expect(mine[0].rows.map((r) => r[2])).to.deep.equal(['from b']);
    });

    it('answers a bad query with 400 and the reason', async () => {
      for (const [query, message] of [
        ['SELECT * FROM nope', /unknown table "nope"/],
        ['SELEC * FROM message', /./],
        ['DELETE FROM message', /unsupported: DELETE/],
        ['SELECT * FROM broken', /view broken failed/],
      ] as const) {
        const res = await sql(query);
        expect(res.status, query).to.equal(400);
        expect(await res.text(), query).to.match(message);
      }
    });
  });

  describe('GET /v1/database/:name/schema', () => {
    it('returns the module description (RawModuleDefV10 as JSON) with tables, views and filters', async () => {
      const res = await fetch(db('schema?version=10'));
      expect(res.status).to.equal(200);
      expect(res.headers.get('spacetime-identity')).to.match(/^c200[0-9a-f]{60}$/);
      const def = (await res.json()) as { sections: Record<string, any>[] };
      const section = (name: string) => def.sections.find((s) => name in s)?.[name];
      expect(section('Tables').map((t: { source_name: string }) => t.source_name)).to.include.members(['account', 'message', 'room']);
      const views = section('Views') as { source_name: string; is_anonymous: boolean }[];
      expect(views.map((v) => [v.source_name, v.is_anonymous])).to.deep.include.members([
        ['my_account', false],
        ['totals', true],
      ]);
      expect(section('RowLevelSecurity').map((r: { sql: string }) => r.sql)).to.include('SELECT * FROM message WHERE owner = :sender');
    });

    it('refuses a missing or unknown version as SpacetimeDB does', async () => {
      const missing = await fetch(db('schema'));
      expect(missing.status).to.equal(400);
      expect(await missing.text()).to.equal('Failed to deserialize query string: missing field `version`');
      const unknown = await fetch(db('schema?version=11'));
      expect(unknown.status).to.equal(400);
      expect(await unknown.text()).to.equal('Failed to deserialize query string: unknown variant `11`, expected `9` or `10`');
      expect((await fetch(db('schema?version=9'))).status).to.equal(400);
      expect((await fetch(`${suite.server.url}/v1/database/nope/schema?version=10`)).status).to.equal(404);
      expect((await fetch(db('schema?version=10'), { method: 'POST' })).status).to.equal(405);
      // CORS preflight still answers for these paths (browsers send it before a POST with a token).
      expect((await fetch(db('sql'), { method: 'OPTIONS', headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' } })).status).to.equal(204);
    });
  });
});
