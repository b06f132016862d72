/**
 * The module host: loading a real spacetimedb/server module, canonical names,
 * reducer outcomes and console routing.
 */
import { expect } from 'chai';
import { AlgebraicType, BinaryWriter, Identity } from 'spacetimedb';
import { ModuleInstance, type LogLevel } from '../../devserver/host/instance.ts';
import { toSnakeCase } from '../../devserver/host/moduleDef.ts';
import { ModuleLoadError } from '../../devserver/host/bundle.ts';
import { BASIC_MODULE } from '../helpers/sdk.ts';

describe('dev server module host', () => {
  let lines: [LogLevel, string][];
  let inst: ModuleInstance;
  const call = (name: string, args: object) => {
    const r = inst.reducer(name)!;
    const w = new BinaryWriter(32);
    AlgebraicType.makeSerializer(r.paramsType, inst.description.typespace as any)(w, args);
    return inst.callReducer(r, { sender: new Identity(42n), connectionId: null, timestamp: 1_000_000n, args: w.getBuffer().slice() });
  };

  beforeEach(async () => {
    lines = [];
    inst = await ModuleInstance.load(BASIC_MODULE, {
      databaseIdentity: new Identity(7n),
      logger: { log: (level, message) => lines.push([level, message]) },
    });
  });

  it('derives canonical snake_case names the way SpacetimeDB validates modules', () => {
    expect(inst.description.tables.map((t) => t.name)).to.include.members(['person', 'note', 'score', 'connections', 'secret']);
    const note = inst.description.tables.find((t) => t.name === 'note')!;
    expect(note.columns.map((c) => [c.name, c.field])).to.deep.include(['person_id', 'personId']);
    expect(inst.description.reducers.map((r) => r.name)).to.include.members(['add_person', 'count_adults', 'insert_twice_then_fail']);
    expect(inst.lifecycleReducer('onConnect')?.clientCallable).to.equal(false);
    expect(inst.description.tables.find((t) => t.name === 'secret')!.isPublic).to.equal(false);
    for (const [from, to] of [
      ['playerName', 'player_name'],
      ['HTTPServer', 'http_server'],
      ['player2Score', 'player_2_score'],
      ['already_snake', 'already_snake'],
      ['Mixed-Case name', 'mixed_case_name'],
    ]) {
      expect(toSnakeCase(from), from).to.equal(to);
    }
  });

  it('classifies a SenderError as the user failure and anything else as internal', () => {
    const user = call('add_person', { name: '', age: 1 });
    expect(user).to.deep.include({ status: 'failed', kind: 'user', message: 'name must not be empty' });
    const internal = call('insert_twice_then_fail', {});
    expect(internal).to.deep.include({ status: 'failed', kind: 'internal' });
    expect((internal as { message: string }).message).to.match(/boom/);
    expect(inst.datastore.rowCount(inst.datastore.tableIdFromName('person'))).to.equal(0);
  });

  it("routes the module's console to the host logger, leaving the process console alone", () => {
    const original = console.info;
    call('log_something', { message: 'hello from the module' });
    expect(lines).to.deep.include(['info', 'hello from the module']);
    expect(console.info).to.equal(original);
  });

  it('runs index range scans from inside the module', () => {
    for (const [name, age] of [['a', 10], ['b', 20], ['c', 30]] as const) call('add_person', { name, age });
    call('count_adults', { minAge: 18 });
    expect(lines).to.deep.include(['info', 'adults: 2']);
  });

  it('leaves the process globals as they were (no window alias, the same console)', async () => {
    expect(typeof (globalThis as { window?: unknown }).window).to.equal('undefined');
    const original = console;
    await ModuleInstance.load(BASIC_MODULE, { databaseIdentity: new Identity(9n) });
    expect(typeof (globalThis as { window?: unknown }).window).to.equal('undefined');
    expect(console).to.equal(original);
  });

  it('keeps two loads of one module apart', async () => {
    const other = await ModuleInstance.load(BASIC_MODULE, { databaseIdentity: new Identity(8n) });
    call('add_person', { name: 'only here', age: 1 });
    expect(other.datastore.rowCount(other.datastore.tableIdFromName('person'))).to.equal(0);
    expect(inst.datastore.rowCount(inst.datastore.tableIdFromName('person'))).to.equal(1);
  });

  it('refuses a missing module file with a typed error', async () => {
    let err: unknown;
    await ModuleInstance.load('/nonexistent/module.ts', { databaseIdentity: new Identity(1n) }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ModuleLoadError);
  });
});

describe('dev server module host: procedures over the raw protocol', () => {
  it('runs a procedure and returns its BSATN value in ProcedureResult; unknown ones get InternalError', async () => {
    const { startBasicServer } = await import('../helpers/sdk.ts');
    const { RawClient } = await import('../helpers/rawClient.ts');
    const lines: string[] = [];
    const server = await startBasicServer({ logger: { log: (_l, m) => lines.push(m) } });
    try {
      expect(lines.join('\n')).not.to.match(/procedure echo/);
      const raw = await RawClient.open(server);
      await raw.next('InitialConnection');
      const w = new BinaryWriter(16);
      w.writeString('hi there');
      raw.send({ tag: 'CallProcedure', value: { requestId: 3, flags: 0, procedure: 'echo', args: w.getBuffer().slice() } });
      const res = await raw.next('ProcedureResult', (m) => m.value.requestId === 3);
      expect(res.value.status.tag).to.equal('Returned');
      const back = new BinaryWriter(16);
      back.writeString('hi there');
      expect([...(res.value.status as { value: Uint8Array }).value]).to.deep.equal([...back.getBuffer()]);
      raw.send({ tag: 'CallProcedure', value: { requestId: 4, flags: 0, procedure: 'nope', args: new Uint8Array(0) } });
      const bad = await raw.next('ProcedureResult', (m) => m.value.requestId === 4);
      expect(bad.value.status).to.deep.equal({ tag: 'InternalError', value: 'no such procedure: nope' });
      raw.close();
    } finally {
      await server.stop();
    }
  });
});
