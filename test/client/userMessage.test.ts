import { expect } from 'chai';
import { SenderError } from 'spacetimedb';
import { AuthError, ConnectionLostError, HeartbeatTimeoutError, MigrationError, ProtocolError, ReducerRejectedError, StorageQuotaError, StorageUnavailableError, SubscriptionError, userMessage, withUserMessage } from '../../src/index.ts';

/** What a player must never read: timestamps, protocol message names, exception class names, millisecond counts. */
const INTERNALS = /\d{10,}|InitialConnection|OneOffQuery|ServerMessage|TransactionUpdate|\b\w+(Error|Exception)\b|\d+ ?ms\b/;

describe('userMessage: errors in the player\'s words', () => {
  const cases: [string, unknown, string, boolean?][] = [
    ['a socket close after being live', new ConnectionLostError('Socket closed (code 1006).', { reason: 'close' }), 'Connection lost — reconnecting'],
    ['a failed connect before ever being live', new ConnectionLostError('Could not connect: Failed to fetch', { reason: 'connect-failed' }), "Can't reach the server", false],
    ['a failed connect after being live', new ConnectionLostError('No InitialConnection within 5000 ms.', { reason: 'connect-failed' }), 'Connection lost — reconnecting'],
    ['a heartbeat timeout', new HeartbeatTimeoutError({ lastActivityAt: 1796006723042, probeAt: 1796006726042, probesSent: 2, timeout: 3000 }), 'Connection lost — reconnecting'],
    ['a heartbeat timeout before ever being live', new HeartbeatTimeoutError({ lastActivityAt: null, probeAt: 5, probesSent: 1, timeout: 3000 }), "Can't reach the server", false],
    ['a call in flight when the link died', new ConnectionLostError("The connection was lost while 'moveNode' was in flight; its outcome is unknown.", { reason: 'heartbeat', reducer: 'moveNode' }), 'Connection lost — this change may not have been saved'],
    ['the browser going offline', new ConnectionLostError('The network went offline.', { reason: 'offline' }), "You're offline"],
    ['a refused token', new AuthError('The server refused the token (HTTP 401).', { status: 401, refreshed: false }), 'Sign-in was refused — please sign in again'],
    [
      'a SenderError with a sentence',
      new ReducerRejectedError('moveNode rejected: not your node', { reducer: 'moveNode', args: {}, kind: 'sender' }, { cause: new SenderError('not your node') }),
      'The server rejected this change: not your node',
    ],
    [
      'a rejection whose text is technical',
      new ReducerRejectedError('x rejected: TypeError: cannot read properties of undefined\n at foo (bar.ts:1)', { reducer: 'x', args: {}, kind: 'sender' }),
      'The server rejected this change',
    ],
    ['a superseded call', new ReducerRejectedError("Superseded by a newer call with key 'move:1'.", { reducer: 'moveNode', args: {}, kind: 'superseded' }), 'Replaced by a newer change'],
    ['an expired call', new ReducerRejectedError('expired', { reducer: 'moveNode', args: {}, kind: 'expired' }), 'This change expired before it could be sent'],
    ['a panicking reducer', new ReducerRejectedError('x rejected: panic', { reducer: 'x', args: {}, kind: 'internal' }), 'The server could not apply this change'],
    ['an unreadable frame', new ProtocolError('Could not read a frame: unknown ServerMessage tag 238', { direction: 'in', bytes: 12 }), 'Sync problem — reconnecting'],
    ['a refused subscription', new SubscriptionError('no such table', { sql: ['SELECT * FROM x'], table: 'x' }), "Some game data couldn't be loaded"],
    ['a full disk', new StorageQuotaError('outbox.enqueue'), 'This device is out of space — changes are kept until you close the game'],
    ['IndexedDB missing', new StorageUnavailableError('open'), "Can't save on this device — changes are kept until you close the game"],
    ['a failed outbox migration', new MigrationError('moveNode', 'entry 3 could not be migrated'), "A saved change couldn't be carried over to this version"],
    ['anything else', new TypeError('x is undefined'), 'Something went wrong'],
  ];
  for (const [label, error, expected, connectedBefore] of cases) {
    it(label, () => {
      const text = userMessage(error, { connectedBefore: connectedBefore ?? true });
      expect(text).to.equal(expected);
      expect(text).to.not.match(INTERNALS);
    });
  }

  it('withUserMessage attaches it once, not enumerable, and keeps an existing one', () => {
    const e = new ConnectionLostError('Socket closed.', { reason: 'close' });
    const same = withUserMessage(e, { connectedBefore: false });
    expect(same).to.equal(e);
    expect(same.userMessage).to.equal("Can't reach the server");
    expect(Object.keys(e)).to.not.include('userMessage');
    expect(withUserMessage(e, { connectedBefore: true }).userMessage, 'the first text stays').to.equal("Can't reach the server");
    const wrapped = withUserMessage('plain string');
    expect(wrapped).to.be.instanceOf(Error);
    expect(wrapped.userMessage).to.equal('Something went wrong');
  });
});
