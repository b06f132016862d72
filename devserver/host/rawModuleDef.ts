/**
 * The module description a SpacetimeDB 2.x module returns from
 * `__describe_module__`: a BSATN `RawModuleDef`, of which the dev server
 * understands the `V10` variant. Declared with the SDK's public type builders;
 * the field lists follow SpacetimeDB's `raw_def::v10` definitions.
 */
import { t, BinaryReader, type AlgebraicType as AlgebraicTypeValue, type Infer } from 'spacetimedb';
import type { TypeBuilder } from 'spacetimedb';

const AlgebraicTypeT: TypeBuilder<AlgebraicTypeValue, any> = t.enum('AlgebraicType', {
  Ref: t.u32(),
  get Sum() {
    return SumTypeT;
  },
  get Product() {
    return ProductTypeT;
  },
  get Array() {
    return AlgebraicTypeT;
  },
  String: t.unit(),
  Bool: t.unit(),
  I8: t.unit(),
  U8: t.unit(),
  I16: t.unit(),
  U16: t.unit(),
  I32: t.unit(),
  U32: t.unit(),
  I64: t.unit(),
  U64: t.unit(),
  I128: t.unit(),
  U128: t.unit(),
  I256: t.unit(),
  U256: t.unit(),
  F32: t.unit(),
  F64: t.unit(),
}) as any;

const ProductTypeT = t.object('ProductType', {
  get elements() {
    return t.array(t.object('ProductTypeElement', { name: t.option(t.string()), algebraicType: AlgebraicTypeT }));
  },
});

const SumTypeT = t.object('SumType', {
  get variants() {
    return t.array(t.object('SumTypeVariant', { name: t.option(t.string()), algebraicType: AlgebraicTypeT }));
  },
});

const TypespaceT = t.object('Typespace', { types: t.array(AlgebraicTypeT) });

const IndexAlgorithmT = t.enum('RawIndexAlgorithm', {
  BTree: t.array(t.u16()),
  Hash: t.array(t.u16()),
  Direct: t.u16(),
});

const TableDefT = t.object('RawTableDefV10', {
  sourceName: t.string(),
  productTypeRef: t.u32(),
  primaryKey: t.array(t.u16()),
  indexes: t.array(
    t.object('RawIndexDefV10', {
      sourceName: t.option(t.string()),
      accessorName: t.option(t.string()),
      algorithm: IndexAlgorithmT,
    }),
  ),
  constraints: t.array(
    t.object('RawConstraintDefV10', {
      sourceName: t.option(t.string()),
      data: t.enum('RawConstraintDataV9', {
        Unique: t.object('RawUniqueConstraintDataV9', { columns: t.array(t.u16()) }),
      }),
    }),
  ),
  sequences: t.array(
    t.object('RawSequenceDefV10', {
      sourceName: t.option(t.string()),
      column: t.u16(),
      start: t.option(t.i128()),
      minValue: t.option(t.i128()),
      maxValue: t.option(t.i128()),
      increment: t.i128(),
    }),
  ),
  tableType: t.enum('TableType', { System: t.unit(), User: t.unit() }),
  tableAccess: t.enum('TableAccess', { Public: t.unit(), Private: t.unit() }),
  defaultValues: t.array(t.object('RawColumnDefaultValueV10', { colId: t.u16(), value: t.byteArray() })),
  isEvent: t.bool(),
});

const FunctionVisibilityT = t.enum('FunctionVisibility', { Private: t.unit(), ClientCallable: t.unit() });

const ReducerDefT = t.object('RawReducerDefV10', {
  sourceName: t.string(),
  params: ProductTypeT,
  visibility: FunctionVisibilityT,
  okReturnType: AlgebraicTypeT,
  errReturnType: AlgebraicTypeT,
});

const ProcedureDefT = t.object('RawProcedureDefV10', {
  sourceName: t.string(),
  params: ProductTypeT,
  returnType: AlgebraicTypeT,
  visibility: FunctionVisibilityT,
});

const ViewDefT = t.object('RawViewDefV10', {
  sourceName: t.string(),
  index: t.u32(),
  isPublic: t.bool(),
  isAnonymous: t.bool(),
  params: ProductTypeT,
  returnType: AlgebraicTypeT,
});

const NameMappingT = t.object('NameMapping', { sourceName: t.string(), canonicalName: t.string() });

const HttpMethodT = t.enum('HttpMethod', {
  Get: t.unit(),
  Head: t.unit(),
  Post: t.unit(),
  Put: t.unit(),
  Delete: t.unit(),
  Connect: t.unit(),
  Options: t.unit(),
  Trace: t.unit(),
  Patch: t.unit(),
  Extension: t.string(),
});

const SectionT: TypeBuilder<any, any> = t.enum('RawModuleDefV10Section', {
  Typespace: TypespaceT,
  Types: t.array(
    t.object('RawTypeDefV10', {
      sourceName: t.object('RawScopedTypeNameV10', { scope: t.array(t.string()), sourceName: t.string() }),
      ty: t.u32(),
      customOrdering: t.bool(),
    }),
  ),
  Tables: t.array(TableDefT),
  Reducers: t.array(ReducerDefT),
  Procedures: t.array(ProcedureDefT),
  Views: t.array(ViewDefT),
  Schedules: t.array(
    t.object('RawScheduleDefV10', {
      sourceName: t.option(t.string()),
      tableName: t.string(),
      scheduleAtCol: t.u16(),
      functionName: t.string(),
    }),
  ),
  LifeCycleReducers: t.array(
    t.object('RawLifeCycleReducerDefV10', {
      lifecycleSpec: t.enum('Lifecycle', { Init: t.unit(), OnConnect: t.unit(), OnDisconnect: t.unit() }),
      functionName: t.string(),
    }),
  ),
  RowLevelSecurity: t.array(t.object('RawRowLevelSecurityDefV9', { sql: t.string() })),
  CaseConversionPolicy: t.enum('CaseConversionPolicy', { None: t.unit(), SnakeCase: t.unit() }),
  ExplicitNames: t.object('ExplicitNames', {
    entries: t.array(t.enum('ExplicitNameEntry', { Table: NameMappingT, Function: NameMappingT, Index: NameMappingT })),
  }),
  HttpHandlers: t.array(t.object('RawHttpHandlerDefV10', { sourceName: t.string() })),
  HttpRoutes: t.array(
    t.object('RawHttpRouteDefV10', {
      handlerFunction: t.string(),
      method: t.enum('MethodOrAny', { Any: t.unit(), Method: HttpMethodT }),
      path: t.string(),
    }),
  ),
  ViewPrimaryKeys: t.array(t.object('RawViewPrimaryKeyDefV10', { viewSourceName: t.string(), columns: t.array(t.string()) })),
  get Submodules() {
    return t.array(t.object('RawSubmoduleV10', { namespace: t.string(), module: RawModuleDefV10T }));
  },
});

const RawModuleDefV10T: TypeBuilder<any, any> = t.object('RawModuleDefV10', {
  get sections() {
    return t.array(SectionT);
  },
});

type RawTableDef = Infer<typeof TableDefT>;
type RawReducerDef = Infer<typeof ReducerDefT>;
export type RawProductType = Infer<typeof ProductTypeT>;

/** The sections of a V10 module description, as tagged values. */
export type RawSection = { tag: string; value: any };

/** Thrown when a module description cannot be decoded or is not V10. */
export class ModuleDefError extends Error {
  override readonly name = 'ModuleDefError';
}

/**
 * Decode the BSATN `RawModuleDef` a module's `__describe_module__` returns.
 * Only `V10` (the 2.x modules' format) is accepted.
 */
export function decodeRawModuleDef(bytes: Uint8Array): RawSection[] {
  const reader = new BinaryReader(bytes);
  const tag = reader.readU8();
  // RawModuleDef variants, in order: V8BackCompat, V9, V10.
  if (tag !== 2) {
    throw new ModuleDefError(`module description is RawModuleDef variant ${tag}; the dev server supports V10 (SpacetimeDB 2.x modules)`);
  }
  const def = RawModuleDefV10T.deserialize(reader) as { sections: RawSection[] };
  if (reader.offset !== bytes.length) {
    throw new ModuleDefError(`module description has ${bytes.length - reader.offset} trailing bytes`);
  }
  return def.sections;
}

/** The BSATN types of a V10 module description and of an algebraic type, for JSON renderings (the schema endpoint). */
export const rawModuleDefTypes = {
  get moduleDef(): AlgebraicTypeValue {
    return RawModuleDefV10T.algebraicType;
  },
  get algebraicType(): AlgebraicTypeValue {
    return AlgebraicTypeT.algebraicType;
  },
  /** Decode a V10 description (after its variant byte) into values of {@link moduleDef}. */
  decode(bytes: Uint8Array): unknown {
    const reader = new BinaryReader(bytes);
    if (reader.readU8() !== 2) throw new ModuleDefError('module description is not RawModuleDef V10');
    return RawModuleDefV10T.deserialize(reader);
  },
};
