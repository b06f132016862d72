/** The dev server's subscription SQL engine: parse, compile, evaluate. */
export { SqlError } from './errors.ts';
export { parseSql, type SelectStmt, type Predicate, type Operand, type Literal, type ColumnRef, type CmpOp, type TableRef } from './parse.ts';
export {
  compileQuery,
  type CompileContext,
  type CompiledQuery,
  type CompiledJoin,
  type RowValue,
  type RowFilter,
  type PairFilter,
} from './compile.ts';
export { initialRows, deltaRows, type QueryDelta } from './evaluate.ts';
