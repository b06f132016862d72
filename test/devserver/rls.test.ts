/**
 * Row-level security (client visibility filters) as the unmodified SDK sees
 * it: one client never receives another's rows — in initial rows, in
 * transaction updates, in one-off queries, through joins, after a reconnect.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BinaryReader, t, type Identity } from 'spacetimedb';
import { startDevServer } from '../../devserver/index.ts';
import { RowLevelSecurityError } from '../../devserver/rls.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { until } from '../helpers/until.ts';
import { secureSuite, startSecureServer, subscribeSecure } from '../helpers/secure.ts';

const hex = (i: Identity) => i.toHexString();

const MESSAGE_TYPE = t.object('Message', { id: t.u64(), owner: t.identity(), text: t.string() });

/** Decode the rows of a one-off query answer. */
function decodeRows(rowsData: Uint8Array, type: typeof MESSAGE_TYPE): Record<string, unknown>[] {
  const r = new BinaryReader(rowsData);
  const out: Record<string, unknown>[] = [];
  while (r.offset < rowsData.length) out.push(type.deserialize(r) as Record<string, unknown>);
  return out;
}

describe('row-level security (client visibility filters)', function () {
  const suite = secureSuite();
  const client = suite.client;


  it("never sends one client another's rows: initial rows and every transaction's updates", async () => {
    const a = await client();
    const b = await client();
    await b.conn.reducers.setName({ name: 'bob' });
    await b.conn.reducers.post({ text: 'b1' });
    await a.conn.reducers.setName({ name: 'ann' });
    await a.conn.reducers.post({ text: 'a1' });
    await subscribeSecure(a, ['SELECT * FROM account', 'SELECT * FROM message']);
    await subscribeSecure(b, ['SELECT * FROM *']);
    expect([...a.conn.db.account.iter()].map((r) => r.name)).to.deep.equal(['ann']);
    expect([...a.conn.db.message.iter()].map((r) => r.text)).to.deep.equal(['a1']);
    expect([...b.conn.db.message.iter()].map((r) => r.text)).to.deep.equal(['b1']);

    const aMessages: string[] = [];
    a.conn.db.message.onInsert((_ctx, row) => aMessages.push(row.text));
    await b.conn.reducers.post({ text: 'b2' });
    await b.conn.reducers.setName({ name: 'bobby' });
    await b.conn.reducers.deleteMine({});
    // A's own call is answered after every earlier transaction's update to A.
    await a.conn.reducers.post({ text: 'a2' });
    await until(() => aMessages.includes('a2'), "a's own message", 5000);
    expect(aMessages).to.deep.equal(['a2']);
    expect([...a.conn.db.account.iter()].map((r) => r.name)).to.deep.equal(['ann']);
    expect([...a.conn.db.message.iter()].every((r) => hex(r.owner) === hex(a.identity))).to.equal(true);
    // B saw its own delete, and nothing of A's.
    await until(() => b.conn.db.message.count() === 0n, "b's messages deleted", 5000);
    expect([...b.conn.db.account.iter()].map((r) => r.name)).to.deep.equal(['bobby']);
  });

  it('filters one-off queries', async () => {
    const b = await client();
    await b.conn.reducers.post({ text: 'secret of b' });
    const raw = await RawClient.open(suite.server);
    const hello = await raw.next('InitialConnection');
    const mine = hex(hello.value.identity);
    raw.send({ tag: 'CallReducer', value: { requestId: 1, flags: 0, reducer: 'post', args: bsatnString('mine') } });
    await raw.next('ReducerResult', (m) => m.value.requestId === 1);
    raw.send({ tag: 'OneOffQuery', value: { requestId: 2, queryString: 'SELECT * FROM message' } });
    const res = await raw.next('OneOffQueryResult');
    expect(res.value.result.tag).to.equal('Ok');
    const tables = (res.value.result as { value: { tables: { table: string; rows: { rowsData: Uint8Array } }[] } }).value.tables;
    const rows = decodeRows(tables[0].rows.rowsData, MESSAGE_TYPE);
    expect(rows.map((r) => r.text)).to.deep.equal(['mine']);
    expect(rows.every((r) => hex(r.owner as Identity) === mine)).to.equal(true);
    raw.close();
  });

  it('applies a filter through a join, and follows changes of the table it reads', async () => {
    const a = await client();
    const b = await client();
    await a.conn.reducers.createRoom({ id: 1, title: 'a-room' });
    await a.conn.reducers.join({ roomId: 1 });
    await b.conn.reducers.createRoom({ id: 2, title: 'b-room' });
    await b.conn.reducers.join({ roomId: 2 });
    await subscribeSecure(a, ['SELECT * FROM room', 'SELECT * FROM member']);
    const rooms = () => [...a.conn.db.room.iter()].map((r) => r.title).sort();
    expect(rooms()).to.deep.equal(['a-room']);
    // Joining B's room makes it visible to A; leaving hides it again.
    await a.conn.reducers.join({ roomId: 2 });
    await until(() => rooms().length === 2, 'b-room visible', 5000);
    expect(rooms()).to.deep.equal(['a-room', 'b-room']);
    // Member rows stay filtered: A sees its own memberships only.
    expect([...a.conn.db.member.iter()].every((m) => hex(m.identity) === hex(a.identity))).to.equal(true);
    await a.conn.reducers.leave({ roomId: 2 });
    await until(() => rooms().length === 1, 'b-room hidden', 5000);
    // B renaming nothing of A's: a new room for B alone never reaches A.
    await b.conn.reducers.createRoom({ id: 3, title: 'b-other' });
    await b.conn.reducers.join({ roomId: 3 });
    await a.conn.reducers.post({ text: 'sync' });
    expect(rooms()).to.deep.equal(['a-room']);
  });

  it('filters both sides of a subscription join', async () => {
    const a = await client();
    const b = await client();
    await a.conn.reducers.setName({ name: 'ann' });
    await b.conn.reducers.setName({ name: 'bob' });
    await a.conn.reducers.post({ text: 'from a' });
    await b.conn.reducers.post({ text: 'from b' });
    await subscribeSecure(a, ['SELECT message.* FROM message JOIN account ON message.owner = account.identity']);
    expect([...a.conn.db.message.iter()].map((r) => r.text)).to.deep.equal(['from a']);
    await b.conn.reducers.post({ text: 'from b again' });
    await a.conn.reducers.post({ text: 'from a again' });
    await until(() => a.conn.db.message.count() === 2n, "a's second message", 5000);
    expect([...a.conn.db.message.iter()].map((r) => r.text).sort()).to.deep.equal(['from a', 'from a again']);
  });

  it('combines several filters on one table as a union', async () => {
    const a = await client();
    const b = await client();
    await a.conn.reducers.postNotice({ broadcast: true, text: 'a-public' });
    await a.conn.reducers.postNotice({ broadcast: false, text: 'a-private' });
    await b.conn.reducers.postNotice({ broadcast: false, text: 'b-private' });
    await subscribeSecure(b, ['SELECT * FROM notice']);
    const seen = () => [...b.conn.db.notice.iter()].map((r) => r.text).sort();
    expect(seen()).to.deep.equal(['a-public', 'b-private']);
    await a.conn.reducers.postNotice({ broadcast: true, text: 'a-public-2' });
    await a.conn.reducers.postNotice({ broadcast: false, text: 'a-private-2' });
    await b.conn.reducers.postNotice({ broadcast: false, text: 'b-private-2' });
    await until(() => seen().length === 4, 'new notices', 5000);
    expect(seen()).to.deep.equal(['a-public', 'a-public-2', 'b-private', 'b-private-2']);
  });

  it('keeps filtering after a reconnect with the saved token', async () => {
    const a = await client();
    const b = await client();
    await a.conn.reducers.post({ text: 'a1' });
    await b.conn.reducers.post({ text: 'b1' });
    a.conn.disconnect();
    const again = await client(a.token);
    expect(hex(again.identity)).to.equal(hex(a.identity));
    await subscribeSecure(again, ['SELECT * FROM message']);
    expect([...again.conn.db.message.iter()].map((r) => r.text)).to.deep.equal(['a1']);
    await b.conn.reducers.post({ text: 'b2' });
    await again.conn.reducers.post({ text: 'a2' });
    await until(() => again.conn.db.message.count() === 2n, 'a2', 5000);
    expect([...again.conn.db.message.iter()].map((r) => r.text).sort()).to.deep.equal(['a1', 'a2']);
  });

  it('exempts the database owner, as SpacetimeDB does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stdb-rx-rls-'));
    try {
      // The owner's identity must exist before the server that names it starts.
      const first = await startSecureServer({ dataDir: dir });
      const minted = (await (await fetch(`${first.url}/v1/identity`, { method: 'POST' })).json()) as { identity: string; token: string };
      await first.stop();
      await suite.server.stop();
      suite.server = await startSecureServer({ dataDir: dir, owner: minted.identity });
      const other = await client();
      await other.conn.reducers.post({ text: 'not the owner' });
      const owner = await client(minted.token);
      await owner.conn.reducers.post({ text: 'owner' });
      await subscribeSecure(owner, ['SELECT * FROM message']);
      expect([...owner.conn.db.message.iter()].map((r) => r.text).sort()).to.deep.equal(['not the owner', 'owner']);
      await subscribeSecure(other, ['SELECT * FROM message']);
      expect([...other.conn.db.message.iter()].map((r) => r.text)).to.deep.equal(['not the owner']);
      // The owner also reads private tables; others are told the table is private.
      const sql = (token: string) =>
        fetch(`${suite.server.url}/v1/database/${suite.server.database}/sql`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'SELECT * FROM audit' });
      const asOwner = await sql(minted.token);
      expect(asOwner.status).to.equal(200);
      expect(((await asOwner.json()) as { rows: unknown[][] }[])[0].rows.map((r) => r[1]).sort()).to.deep.equal(['post: not the owner', 'post: owner']);
      const asOther = await sql(other.token);
      expect(asOther.status).to.equal(400);
      expect(await asOther.text()).to.match(/private/);
    } finally {
      suite.disconnectAll();
      await suite.server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an owner that is not an identity', async () => {
    let error: unknown;
    await startSecureServer({ owner: 'me' }).then(
      (s) => s.stop(),
      (e) => (error = e),
    );
    expect(error).to.be.instanceOf(TypeError);
    expect((error as Error).message).to.equal('owner must be an identity as 64 hex digits, got "me"');
  });

  it('refuses to host a module whose filter is invalid (it would leak rows otherwise)', async () => {
    const bad = fileURLToPath(new URL('../fixtures/badfilter.module.ts', import.meta.url));
    let error: unknown;
    await startDevServer({ module: bad, port: 0 }).then(
      (s) => s.stop(),
      (e) => (error = e),
    );
    expect(error).to.be.instanceOf(RowLevelSecurityError);
    expect((error as Error).message).to.match(/client visibility filter .*no_such_column/);
    expect((error as RowLevelSecurityError).info.sql).to.include('no_such_column');
  });
});

function bsatnString(s: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8');
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  out.set(bytes, 4);
  return out;
}
