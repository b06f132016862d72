/**
 * The one polling wait of the tests: resolves with the first truthy value
 * `predicate()` returns, checking again after every macrotask turn (so I/O
 * callbacks, fake-indexeddb work and socket frames get to run between
 * checks), and fails with a message naming `what` after `ms` milliseconds
 * (`what` may be a function, to report the state at the time of failure).
 *
 * Use it for positive conditions only. A test that asserts something did NOT
 * happen waits for a later signal that proves it would have happened by then
 * (or runs in virtual time), never for a while.
 */
export async function until<T>(
  predicate: () => T | Promise<T>,
  what: string | (() => string) = 'condition',
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (let turn = 0; ; turn++) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    // The first turns are immediate (in-process work settles there); after
    // that, poll every few milliseconds so a long wait does not spin a core.
    await new Promise((resolve) => (turn < 50 ? setImmediate(resolve) : setTimeout(resolve, 4)));
  }
}
