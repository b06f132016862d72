/**
 * The arena demo's client bindings (demo/arena/bindings, written by the dev
 * server's generator: `npm run devserver -- generate --module
 * demo/arena/module.ts --out demo/arena/bindings`) against the module they
 * describe (demo/arena/module.ts, as the dev server's host describes it), so
 * that the two cannot drift apart: the committed files must be exactly what
 * the generator writes today, and they must also agree with the module's
 * description rule by rule.
 *
 * The rules are those of SpacetimeDB's TypeScript code generator:
 * - the bindings hold the module's public tables, under their canonical
 *   names (`name`), with camelCase accessors;
 * - a column's key is the camelCase of its canonical name, and a column
 *   whose key differs from its canonical name carries it in `.name(…)`;
 * - the bindings hold the client-callable reducers (no lifecycle ones), by
 *   canonical name, with camelCase parameter keys;
 * - types travel by position, so they must match element for element. Inside
 *   nested types the generator writes camelCase field and PascalCase variant
 *   names, whatever casing the module description uses.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import {
  AlgebraicType,
  BinaryReader,
  Identity,
  Timestamp,
  toCamelCase,
  toPascalCase,
  toSql,
} from 'spacetimedb';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { generateBindings } from '../../devserver/codegen/index.ts';
import { loadModuleDef, type ModuleDescription } from '../../devserver/host/moduleDef.ts';
import { DbConnection, reducers, tables } from '../../demo/arena/bindings/index.ts';
import { until } from '../helpers/until.ts';

/** The socket type `withWSFn` factories resolve to (the SDK does not export it by name). */
type WsFactory = Parameters<ReturnType<typeof DbConnection.builder>['withWSFn']>[0];
type WebSocketAdapter = Awaited<ReturnType<WsFactory>>;

const MODULE_PATH = fileURLToPath(new URL('../../demo/arena/module.ts', import.meta.url));

type ProductType = { elements: { name: string | undefined; algebraicType: AlgebraicType }[] };

/** What the bindings say about one table, read off their exported schema objects. */
interface BoundTable {
  accessor: string;
  name: string;
  columns: { key: string; name: string; type: AlgebraicType; primaryKey: boolean }[];
  indexes: { accessor: string; name: string; algorithm: string; columns: string[] }[];
  constraints: { name: string; constraint: string; columns: string[] }[];
}

function boundTables(): BoundTable[] {
  return Object.entries(tables).map(([accessor, ref]) => ({
    accessor,
    name: ref.sourceName,
    columns: Object.entries(ref.columns as Record<string, any>).map(([key, builder]) => ({
      key,
      name: builder.columnMetadata.name ?? key,
      type: builder.typeBuilder.algebraicType as AlgebraicType,
      primaryKey: builder.columnMetadata.isPrimaryKey === true,
    })),
    indexes: (ref.indexes as any[]).map(ix => ({
      accessor: ix.accessor,
      name: ix.name,
      algorithm: ix.algorithm,
      columns: [...ix.columns],
    })),
    // The declared constraints; `table()` adds unnamed ones of its own for
    // `.primaryKey()` columns.
    constraints: (ref.constraints as any[]).filter(c => c.name !== undefined).map(c => ({
      name: c.name,
      constraint: c.constraint,
      columns: [...c.columns],
    })),
  }));
}

/** Name equality up to the case conversions the generator applies. */
const sameField = (a: string | undefined, b: string | undefined) =>
  a === b || (a !== undefined && b !== undefined && toCamelCase(a) === toCamelCase(b));
const sameVariant = (a: string | undefined, b: string | undefined) =>
  a === b || (a !== undefined && b !== undefined && toPascalCase(a) === toPascalCase(b));

/**
 * Structural difference between the module's type and the bindings' type at
 * `path`, or undefined when they match. Neither side may contain a `Ref`.
 */
function typeDifference(moduleType: AlgebraicType, boundType: AlgebraicType, path: string): string | undefined {
  if (moduleType.tag === 'Ref' || boundType.tag === 'Ref') return `${path}: unresolved Ref`;
  if (moduleType.tag !== boundType.tag) return `${path}: module has ${moduleType.tag}, bindings have ${boundType.tag}`;
  switch (moduleType.tag) {
    case 'Array':
      return typeDifference(moduleType.value, (boundType as typeof moduleType).value, `${path}[]`);
    case 'Product': {
      const m = moduleType.value.elements;
      const b = (boundType as typeof moduleType).value.elements;
      if (m.length !== b.length) return `${path}: module has ${m.length} fields, bindings ${b.length}`;
      for (let i = 0; i < m.length; i++) {
        if (!sameField(m[i].name, b[i].name)) {
          return `${path}: field ${i} is ${m[i].name} in the module, ${b[i].name} in the bindings`;
        }
        const d = typeDifference(m[i].algebraicType, b[i].algebraicType, `${path}.${m[i].name}`);
        if (d) return d;
      }
      return undefined;
    }
    case 'Sum': {
      const m = moduleType.value.variants;
      const b = (boundType as typeof moduleType).value.variants;
      if (m.length !== b.length) return `${path}: module has ${m.length} variants, bindings ${b.length}`;
      for (let i = 0; i < m.length; i++) {
        if (!sameVariant(m[i].name, b[i].name)) {
          return `${path}: variant ${i} is ${m[i].name} in the module, ${b[i].name} in the bindings`;
        }
        const d = typeDifference(m[i].algebraicType, b[i].algebraicType, `${path}::${m[i].name}`);
        if (d) return d;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

const tableKind = (t: ModuleDescription['tables'][number]) => ((t as { isPublic?: boolean }).isPublic === false ? 'private' : 'public');
const callable = (r: ModuleDescription['reducers'][number]) =>
  r.lifecycle === undefined && (r as { clientCallable?: boolean }).clientCallable !== false;

describe('demo/arena bindings against demo/arena/module.ts', function () {
  this.timeout(60_000);
  let def: ModuleDescription;

  before(async () => {
    def = await loadModuleDef(MODULE_PATH);
  });

  describe('drift', () => {
    const BINDINGS = fileURLToPath(new URL('../../demo/arena/bindings', import.meta.url));
    const listFiles = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? listFiles(join(dir, e.name)) : [relative(BINDINGS, join(dir, e.name)).split('\\').join('/')]
      );

    it('are exactly what the generator writes for the module today (regenerate with `npm run devserver -- generate`)', async () => {
      const generated = await generateBindings(MODULE_PATH);
      expect(listFiles(BINDINGS).sort(), 'files in demo/arena/bindings').to.deep.equal(generated.map((f) => f.filename).sort());
      for (const f of generated) {
        expect(readFileSync(join(BINDINGS, f.filename), 'utf8'), `demo/arena/bindings/${f.filename}`).to.equal(f.code);
      }
    });
  });

  describe('tables', () => {
    it('holds exactly the public tables of the module, under their canonical names', () => {
      const publicNames = def.tables.filter(t => tableKind(t) === 'public').map(t => t.name).sort();
      const boundNames = boundTables().map(t => t.name).sort();
      expect(boundNames).to.deep.equal(publicNames);
      expect(publicNames).to.have.length.greaterThan(0);
    });

    it('keeps private tables out (the generator skips them by default)', () => {
      const privateNames = def.tables.filter(t => tableKind(t) === 'private').map(t => t.name);
      expect(privateNames).to.include('telemetry');
      expect(boundTables().map(t => t.name)).not.to.include.members(privateNames);
    });

    it('lists tables in canonical-name order under camelCase accessors', () => {
      const bound = boundTables();
      expect(bound.map(t => t.name)).to.deep.equal([...bound.map(t => t.name)].sort());
      for (const t of bound) expect(t.accessor, t.name).to.equal(toCamelCase(t.name));
    });

    it('has the same columns in the same order, with canonical names and the same types', () => {
      for (const bound of boundTables()) {
        const table = def.tables.find(t => t.name === bound.name)!;
        expect(bound.columns.map(c => c.name), `columns of ${bound.name}`).to.deep.equal(table.columns.map(c => c.name));
        for (const [i, col] of table.columns.entries()) {
          const b = bound.columns[i];
          expect(b.key, `key of ${bound.name}.${col.name}`).to.equal(toCamelCase(col.name));
          const d = typeDifference(col.type, b.type, `${bound.name}.${col.name}`);
          expect(d, d).to.equal(undefined);
        }
      }
    });

    it('has the same primary keys', () => {
      for (const bound of boundTables()) {
        const table = def.tables.find(t => t.name === bound.name)!;
        const boundPk = bound.columns.flatMap((c, i) => (c.primaryKey ? [i] : []));
        expect(boundPk, `primary key of ${bound.name}`).to.deep.equal([...table.primaryKey]);
      }
    });

    it('declares the indexes and unique constraints of the module under their canonical names', () => {
      for (const bound of boundTables()) {
        const table = def.tables.find(t => t.name === bound.name)! as ModuleDescription['tables'][number] & {
          indexes?: { accessorName?: string; columns: readonly number[] }[];
          uniques?: (readonly number[])[];
        };
        expect(table.indexes, `the host's description of ${bound.name} lists its indexes`).to.be.an('array');
        expect(table.uniques, `the host's description of ${bound.name} lists its unique constraints`).to.be.an('array');
        const canonical = (cols: readonly number[]) => cols.map(c => table.columns[c].name);
        const key = (cols: readonly number[]) => cols.map(c => toCamelCase(table.columns[c].name));

        const expectedIndexes = table
          .indexes!.map(ix => ({
            accessor: ix.accessorName,
            name: `${table.name}_${canonical(ix.columns).join('_')}_idx_btree`,
            algorithm: 'btree',
            columns: key(ix.columns),
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
        expect(bound.indexes, `indexes of ${bound.name}`).to.deep.equal(expectedIndexes);

        const expectedConstraints = table
          .uniques!.map(cols => ({
            name: `${table.name}_${canonical(cols).join('_')}_key`,
            constraint: 'unique',
            columns: key(cols),
          }))
          .sort((a, b) => a.name.localeCompare(b.name));
        expect(bound.constraints, `unique constraints of ${bound.name}`).to.deep.equal(expectedConstraints);
      }
    });

    it('builds subscription SQL with canonical table and column names', () => {
      const node = def.tables.find(t => t.name === 'game_node')!;
      const updatedAt = node.columns.find(c => c.name === 'updated_at');
      expect(updatedAt, 'module column game_node.updated_at').not.to.equal(undefined);
      const sql = toSql(tables.gameNode.where(row => row.updatedAt.gt(Timestamp.UNIX_EPOCH)));
      expect(sql).to.contain('"game_node"."updated_at"');
      expect(sql).to.match(/^SELECT \* FROM "game_node"/);
    });
  });

  describe('reducers', () => {
    it('holds exactly the client-callable reducers, under their canonical names', () => {
      const moduleNames = def.reducers.filter(callable).map(r => r.name).sort();
      const boundNames = Object.values(reducers).map(r => r.name).sort();
      expect(boundNames).to.deep.equal(moduleNames);
      expect(moduleNames).to.include('create_node');
    });

    it('leaves the lifecycle reducers out', () => {
      const lifecycle = def.reducers.filter(r => r.lifecycle !== undefined).map(r => r.name).sort();
      expect(lifecycle).to.deep.equal(['client_connected', 'client_disconnected', 'init']);
      expect(Object.values(reducers).map(r => r.name)).not.to.include.members(lifecycle);
    });

    it('exposes each reducer under the camelCase of its name', () => {
      for (const [accessor, r] of Object.entries(reducers)) {
        expect(accessor, r.name).to.equal(toCamelCase(r.name));
        expect(r.accessorName, r.name).to.equal(accessor);
      }
    });

    it('has the same parameters in the same order, with the same types', () => {
      for (const bound of Object.values(reducers)) {
        const reducer = def.reducers.find(r => r.name === bound.name)!;
        const boundParams = (bound.paramsType as ProductType).elements;
        expect(boundParams.map(p => p.name), `parameters of ${bound.name}`).to.deep.equal(
          reducer.params.map(p => toCamelCase(p.name))
        );
        for (const [i, param] of reducer.params.entries()) {
          const d = typeDifference(param.type, boundParams[i].algebraicType, `${bound.name}(${param.name})`);
          expect(d, d).to.equal(undefined);
        }
      }
    });

    it('takes a mutation id first in every reducer but the receipt pruning', () => {
      for (const bound of Object.values(reducers)) {
        const first = (bound.paramsType as ProductType).elements[0];
        if (bound.name === 'prune_receipts') continue;
        expect(first?.name, bound.name).to.equal('mutationId');
        expect(first?.algebraicType.tag, bound.name).to.equal('String');
      }
    });
  });

  describe('DbConnection', () => {
    /** A socket that accepts the v2 protocol and records what the SDK sends. */
    function fakeSocket() {
      const sent: Uint8Array[] = [];
      const handlers: { open?: () => void } = {};
      const socket: WebSocketAdapter = {
        protocol: 'v2.bsatn.spacetimedb',
        send: (msg: Uint8Array) => void sent.push(msg.slice()),
        close: () => {},
        set onclose(_h: (ev: CloseEvent) => void) {},
        set onopen(h: () => void) {
          handlers.open = h;
        },
        set onmessage(_h: (msg: { data: Uint8Array }) => void) {},
        set onerror(_h: (msg: ErrorEvent) => void) {},
      };
      return { socket, sent, open: () => handlers.open?.() };
    }

    /** Decode a v2 `CallReducer` client message (tag 3). */
    function decodeCallReducer(frame: Uint8Array) {
      const reader = new BinaryReader(frame);
      expect(reader.readU8(), 'client message tag').to.equal(3);
      const requestId = reader.readU32();
      const flags = reader.readU8();
      const reducer = reader.readString();
      const args = reader.readUInt8Array();
      return { requestId, flags, reducer, args };
    }

    it('connects through withWSFn and sends reducer calls the module decodes', async () => {
      const fake = fakeSocket();
      let requested: { url: URL; nameOrAddress: string; wsProtocol: string[] } | undefined;
      const conn = DbConnection.builder()
        .withUri('ws://127.0.0.1:1')
        .withDatabaseName('arena')
        .withWSFn(async args => {
          requested = args;
          return fake.socket;
        })
        .build();
      await until(() => requested !== undefined, 'the SDK to ask for its socket');
      expect(requested?.nameOrAddress).to.equal('arena');
      fake.open();

      const owner = Identity.fromString('c200' + '00'.repeat(28) + 'ab42');
      void conn.reducers.createNode({ mutationId: 'm-1', parent: 7n, x: 1.5, y: -2.25, data: '{"hp":3}' });
      void conn.reducers.endMatch({ mutationId: 'm-2', matchId: 9n, winner: owner });
      void conn.reducers.reportTelemetry({
        mutationId: 'm-3',
        events: [{ kind: 'frame_ms', value: 16.7, clientTime: new Timestamp(1_000_000n) }],
      });
      void conn.reducers.pruneReceipts({ olderThan: undefined, keepNewest: 10 });
      expect(fake.sent).to.have.length(4);

      const decodeWithModule = (frame: Uint8Array) => {
        const call = decodeCallReducer(frame);
        const reducer = def.reducers.find(r => r.name === call.reducer);
        expect(reducer, `module reducer ${call.reducer}`).not.to.equal(undefined);
        const params: AlgebraicType = AlgebraicType.Product({
          elements: reducer!.params.map(p => ({ name: p.name, algebraicType: p.type })),
        });
        const reader = new BinaryReader(call.args);
        const value = AlgebraicType.makeDeserializer(params)(reader) as Record<string, any>;
        expect(reader.remaining, `bytes left after the ${call.reducer} arguments`).to.equal(0);
        return { name: call.reducer, value };
      };

      const create = decodeWithModule(fake.sent[0]);
      expect(create.name).to.equal('create_node');
      expect(create.value).to.deep.equal({ mutation_id: 'm-1', parent: 7n, x: 1.5, y: -2.25, data: '{"hp":3}' });

      const end = decodeWithModule(fake.sent[1]);
      expect(end.name).to.equal('end_match');
      expect(end.value.match_id).to.equal(9n);
      expect((end.value.winner as Identity).toHexString()).to.equal(owner.toHexString());

      const telemetry = decodeWithModule(fake.sent[2]);
      expect(telemetry.name).to.equal('report_telemetry');
      expect(telemetry.value.events).to.have.length(1);
      const event = telemetry.value.events[0] as Record<string, unknown>;
      expect(Object.values(event)[0]).to.equal('frame_ms');
      expect(Object.values(event)[1]).to.equal(16.7);
      expect((Object.values(event)[2] as Timestamp).microsSinceUnixEpoch).to.equal(1_000_000n);

      const prune = decodeWithModule(fake.sent[3]);
      expect(prune.name).to.equal('prune_receipts');
      expect(prune.value).to.deep.equal({ older_than: undefined, keep_newest: 10 });

      conn.disconnect();
    });
  });
});
