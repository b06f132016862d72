/**
 * The one error type of the subscription SQL engine. Everything the engine
 * rejects — a syntax error, a construct outside the subscription subset, an
 * unknown name, a type mismatch — is a `SqlError`, so the protocol layer can
 * turn it into a `SubscriptionError` without guessing.
 */
export class SqlError extends Error {
  override readonly name = 'SqlError';

  /**
   * @param message What is wrong, e.g. `unsupported: NOT`.
   * @param position Character offset in the SQL text where the problem
   * starts, when there is one.
   */
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(message);
  }
}
