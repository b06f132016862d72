/**
 * The storage and refused-call error families. They live in
 * `streams/storageErrors.ts` so the client can name them without importing
 * storage; storage reads them here.
 */
export * from '../streams/storageErrors.ts';
