/**
 * Argument values for calling an unknown module's reducers and procedures:
 * the "zero" of each algebraic type (0, '', [], false, the first variant,
 * `none` for options), and BSATN helpers over a module's typespace.
 */
import { AlgebraicType, BinaryReader, BinaryWriter } from 'spacetimedb';
import type { ModuleDescription } from '../devserver/host/moduleDef.ts';

type Types = { types: AlgebraicType[] };

const isOption = (ty: AlgebraicType & { tag: 'Sum' }) =>
  ty.value.variants.length === 2 && ty.value.variants[0].name === 'some' && ty.value.variants[1].name === 'none';

/** The zero value of `ty` (refs resolved through `types`). */
export function zeroValue(ty: AlgebraicType, types: readonly AlgebraicType[], depth = 0): unknown {
  if (depth > 32) throw new Error('type too deep for a zero value');
  switch (ty.tag) {
    case 'Ref':
      return zeroValue(types[ty.value], types, depth + 1);
    case 'Bool':
      return false;
    case 'String':
      return '';
    case 'F32':
    case 'F64':
    case 'I8':
    case 'U8':
    case 'I16':
    case 'U16':
    case 'I32':
    case 'U32':
      return 0;
    case 'I64':
    case 'U64':
    case 'I128':
    case 'U128':
    case 'I256':
    case 'U256':
      return 0n;
    case 'Array':
      return ty.value.tag === 'U8' ? new Uint8Array(0) : [];
    case 'Product': {
      const out: Record<string, unknown> = {};
      for (const e of ty.value.elements) out[e.name!] = zeroValue(e.algebraicType, types, depth + 1);
      return out;
    }
    case 'Sum': {
      if (isOption(ty)) return undefined;
      if (ty.value.variants.length === 2 && ty.value.variants[0].name === 'ok' && ty.value.variants[1].name === 'err') {
        return { ok: zeroValue(ty.value.variants[0].algebraicType, types, depth + 1) };
      }
      const v = ty.value.variants[0];
      return { tag: v.name, value: zeroValue(v.algebraicType, types, depth + 1) };
    }
  }
}

/** BSATN of `value` as `ty`. */
export function encode(ty: AlgebraicType, value: unknown, module: ModuleDescription): Uint8Array {
  const w = new BinaryWriter(64);
  AlgebraicType.makeSerializer(ty, module.typespace as Types)(w, value);
  return w.getBuffer().slice();
}

/** Decode BSATN `bytes` as `ty`. */
export function decode(ty: AlgebraicType, bytes: Uint8Array, module: ModuleDescription): unknown {
  return AlgebraicType.makeDeserializer(ty, module.typespace as Types)(new BinaryReader(bytes));
}
