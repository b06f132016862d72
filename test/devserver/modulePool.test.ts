/**
 * Module copies are pooled and re-pointed (Node cannot unload them): a
 * reused copy must serve only the database it served before, because the
 * module library caches what it asked the host (the database identity).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Identity } from 'spacetimedb';
import { importedModuleCopies } from '../../devserver/host/bundle.ts';
import { ModuleInstance } from '../../devserver/host/instance.ts';
import { identityFromClaims } from '../../devserver/auth.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MODULE = `
import { schema, table, t } from 'spacetimedb/server';
const seen = table({ name: 'seen' }, { id: t.u32().primaryKey(), db: t.identity() });
const spacetimedb = schema({ seen });
export default spacetimedb;
export const note = spacetimedb.reducer({}, (ctx) => { ctx.db.seen.insert({ id: ctx.db.seen.count() > 0n ? 2 : 1, db: ctx.identity }); });
`;

describe('devserver module copies', function () {
  this.timeout(60_000);
  const dir = join(ROOT, 'node_modules', '.cache', 'stdb-rx', 'test-modules', randomUUID());
  const file = join(dir, 'module.ts');
  before(() => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, MODULE);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const dbIdentityAfterNote = async (db: Identity) => {
    const m = await ModuleInstance.load(file, { databaseIdentity: db });
    try {
      const outcome = m.callReducer(m.reducer('note')!, { sender: Identity.zero(), connectionId: null, timestamp: 0n, args: new Uint8Array() });
      expect(outcome.status).to.equal('committed');
      const row = [...m.datastore.tableByName('seen')!.rows.values()][0].value as { db: Identity };
      return row.db.toHexString();
    } finally {
      m.dispose();
    }
  };

  it('reuses a copy for the same database, never for another one', async () => {
    const a = identityFromClaims('test', 'db-a');
    const b = identityFromClaims('test', 'db-b');
    const before = importedModuleCopies();
    expect(await dbIdentityAfterNote(a)).to.equal(a.toHexString());
    expect(await dbIdentityAfterNote(a)).to.equal(a.toHexString());
    expect(importedModuleCopies() - before, 'the second load of database a reused its copy').to.equal(1);
    expect(await dbIdentityAfterNote(b)).to.equal(b.toHexString());
    expect(importedModuleCopies() - before, 'database b got its own copy').to.equal(2);
  });

  it('refuses calls from a copy whose instance was disposed', async () => {
    const m = await ModuleInstance.load(file, { databaseIdentity: identityFromClaims('test', 'db-c') });
    m.dispose();
    const outcome = m.callReducer(m.reducer('note')!, { sender: Identity.zero(), connectionId: null, timestamp: 0n, args: new Uint8Array() });
    expect(outcome.status).to.equal('failed');
    expect((outcome as { message: string }).message).to.match(/shut down/);
  });
});
