/**
 * The order of a frame's work on the way from the socket to the game: the
 * streams emit what the frame brought within the socket's message event
 * (no later task), and the frame's bookkeeping (`metrics$`) comes after.
 */
import { expect } from 'chai';
import { Subscription, take } from 'rxjs';
import { WebSocket as UndiciWebSocket } from 'undici';
import type { DevServer } from '../../devserver/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

/** undici's WebSocket, counting the message events it has begun dispatching and telling when one ends. */
class CountingSocket extends UndiciWebSocket {
  static begun = 0;
  static ended = 0;
  // (typed loosely: undici's and the DOM's MessageEvent types disagree)
  override set onmessage(handler: any) {
    super.onmessage = handler
      ? (ev: any) => {
          CountingSocket.begun++;
          try {
            handler.call(this, ev);
          } finally {
            CountingSocket.ended++;
          }
        }
      : null;
  }
  override get onmessage(): any {
    return super.onmessage;
  }
}

describe('sync client: a frame’s work, in order', () => {
  let server: DevServer;
  let client: BasicClient;

  beforeEach(async () => {
    server = await startBasicServer();
    client = basicClient(server, { WebSocket: CountingSocket as never });
    await live(client);
  });
  afterEach(async () => {
    await client.close();
    await server.stop();
  });

  it('a transaction reaches changes$ inside the message event that brought it, before metrics$ counts that frame', async () => {
    const framesIn = () => {
      let n = -1;
      client.metrics$.pipe(take(1)).subscribe((m) => (n = m.framesIn));
      return n;
    };
    const seen: { inEvent: boolean; counted: number; begun: number }[] = [];
    const subs = new Subscription();
    subs.add(
      client.changes$(tables.person).subscribe((batch) => {
        if (!batch.some((c) => c.newRow?.name === 'ada')) return;
        seen.push({ inEvent: CountingSocket.begun === CountingSocket.ended + 1, counted: framesIn(), begun: CountingSocket.begun });
      }),
    );
    try {
      const before = { counted: framesIn(), begun: CountingSocket.begun };
      expect(before.counted, 'every frame so far counted').to.equal(before.begun);
      await client.call('addPerson', { name: 'ada', age: 30 });
      await next(client.table$(tables.person), (m) => m.size === 1);
      expect(seen).to.have.length(1);
      expect(seen[0].inEvent, 'emitted while the socket event runs').to.equal(true);
      // Every frame before this one is counted, this one not yet.
      expect(seen[0].counted).to.equal(seen[0].begun - 1);
      expect(framesIn(), 'counted once the event is over').to.be.at.least(seen[0].begun);
    } finally {
      subs.unsubscribe();
    }
  });
});
