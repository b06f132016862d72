/**
 * A reconnect that lands while the previous connection's drain is still
 * starting (reading and requeueing the outbox) must drain on the new
 * connection: the chaos run found clients live, holding the lease, with
 * hundreds of queued entries and nothing sent, for good.
 */
import { expect } from 'chai';
import { Calls } from '../../streams/calls.ts';
import { until } from '../helpers/until.ts';
import { ALICE, open } from '../storage/helpers.ts';

describe('Calls: a drain asked for while the previous one is still starting', () => {
  it('starts on the new connection', async () => {
    const s = await open({ lease: 'none' });
    try {
      await s.outbox.setIdentity(ALICE);
      const calls = new Calls();
      calls.useDurable(s.callQueue({ canonical: (a) => (a === 'sendChat' ? 'send_chat' : a), accessor: (c) => (c === 'send_chat' ? 'sendChat' : c) }));
      const handle = calls.call('sendChat', { text: 'queued while offline' });
      await until(() => handle.mutationId !== undefined, 'the call to be stored');

      const first: string[] = [];
      const second: string[] = [];
      calls.setSender((reducer) => {
        first.push(reducer);
        return new Promise<void>(() => {});
      });
      const starting = calls.startDrain(); // reads the outbox: not done yet
      // The connection drops and the next one is live before that read returns.
      calls.connectionLost('close');
      calls.setSender((reducer) => {
        second.push(reducer);
        return Promise.resolve();
      });
      const again = calls.startDrain();
      await Promise.all([starting, again]);
      await until(() => second.length === 1, 'the queued call to go out on the new connection');
      expect(first).to.deep.equal([]);
      expect(second).to.deep.equal(['sendChat']);
      await handle;
      await calls.close();
    } finally {
      await s.close();
    }
  });
});
