/**
 * A module that mounts a submodule: its tables, reducers and procedures are
 * hosted under `namespace.name`; the HTTP handler and route the module
 * declares load with a warning and calls to them get a clear error.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { BinaryReader, BinaryWriter } from 'spacetimedb';
import { ModuleDefError, startDevServer, type DevServer } from '../../devserver/index.ts';
import { RawClient } from '../helpers/rawClient.ts';

const SUBMODULE_MODULE = fileURLToPath(new URL('../fixtures/submodule/index.module.ts', import.meta.url));

const str = (s: string) => {
  const w = new BinaryWriter(16);
  w.writeString(s);
  return w.getBuffer().slice();
};

describe('dev server: submodules', () => {
  let server: DevServer;
  let lines: string[];
  let raw: RawClient;

  beforeEach(async () => {
    lines = [];
    server = await startDevServer({ module: SUBMODULE_MODULE, port: 0, logger: { log: (level, m) => lines.push(`${level} ${m}`) } });
    raw = await RawClient.open(server);
    await raw.next('InitialConnection');
  });

  afterEach(async () => {
    raw.close();
    await server.stop();
  });

  it('mounts the submodule under its namespace, its types appended to one typespace', () => {
    const d = server.module.description;
    expect(d.submodules).to.deep.equal(['lib']);
    expect(d.tables.map((t) => t.name)).to.deep.equal(['note', 'lib.libEntry']);
    expect(d.reducers.map((r) => r.name)).to.include.members(['add_note', 'lib.lib_insert', 'lib.lib_find']);
    expect(d.procedures.map((p) => p.name)).to.deep.equal(['lib.lib_count']);
    const meta = d.tables.find((t) => t.name === 'lib.libEntry')!.columns.find((c) => c.name === 'meta')!;
    expect(meta.type.tag).to.equal('Product');
    const fields = (meta.type as { value: { elements: { name: string; algebraicType: { tag: string } }[] } }).value.elements;
    expect(fields.map((e) => [e.name, e.algebraicType.tag])).to.deep.equal([
      ['length', 'U32'],
      ['shout', 'String'],
    ]);
  });

  it("runs the submodule's reducers (through its own index) and procedures on its own tables", async () => {
    raw.send({ tag: 'CallReducer', value: { requestId: 1, flags: 0, reducer: 'lib.lib_insert', args: str('alpha') } });
    const inserted = await raw.next('ReducerResult', (m) => m.value.requestId === 1);
    expect(inserted.value.result.tag).to.equal('Ok');
    raw.send({ tag: 'CallReducer', value: { requestId: 2, flags: 0, reducer: 'lib.lib_find', args: str('alpha') } });
    expect((await raw.next('ReducerResult', (m) => m.value.requestId === 2)).value.result.tag).to.equal('Ok');
    raw.send({ tag: 'CallReducer', value: { requestId: 3, flags: 0, reducer: 'lib.lib_find', args: str('beta') } });
    const missing = await raw.next('ReducerResult', (m) => m.value.requestId === 3);
    expect(missing.value.result.tag).to.equal('InternalError');
    expect((missing.value.result as { value: string }).value).to.match(/no lib entry beta/);

    raw.send({ tag: 'CallProcedure', value: { requestId: 4, flags: 0, procedure: 'lib.lib_count', args: new Uint8Array(0) } });
    const count = await raw.next('ProcedureResult', (m) => m.value.requestId === 4);
    expect(count.value.status.tag).to.equal('Returned');
    expect(new BinaryReader((count.value.status as { value: Uint8Array }).value).readU64()).to.equal(1n);
    expect([...server.module.datastore.scan('lib.libEntry')].map((r) => [r.value.value, r.value.meta])).to.deep.equal([['alpha', { length: 5, shout: 'ALPHA' }]]);
    expect([...server.module.datastore.scan('note')]).to.deep.equal([]);
  });

  it('warns at load about the HTTP handler and route, and answers the route with 501', async () => {
    expect(lines.join('\n')).to.match(/warn the dev server does not run these parts of the module: HTTP handler hello, HTTP route GET \/hello → hello/);
    const res = await fetch(`${server.url}/v1/database/${server.database}/route/hello`);
    expect(res.status).to.equal(501);
    expect(await res.text()).to.match(/module HTTP routes are not served by the stdb-rx dev server \(the module declares GET \/hello\)/);
    const unknown = await fetch(`${server.url}/v1/database/nope/route/hello`);
    expect(unknown.status).to.equal(404);
  });
});

describe('dev server: submodules that SpacetimeDB refuses', () => {
  it('refuses a lifecycle reducer inside a submodule with a ModuleDefError naming it', async () => {
    const file = fileURLToPath(new URL('../fixtures/submodule_lifecycle/index.module.ts', import.meta.url));
    let err: unknown;
    await startDevServer({ module: file, port: 0 }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ModuleDefError);
    expect((err as Error).message).to.match(/submodule lib declares a lifecycle reducer \(init\)/);
  });
});
