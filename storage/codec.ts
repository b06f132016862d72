/**
 * BSATN argument and row codecs. They live in `streams/codec.ts` because the
 * client checks reducer arguments without storage; storage reads them here.
 */
export * from '../streams/codec.ts';
