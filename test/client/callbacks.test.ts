/**
 * Application code that throws — `onToken`, a token provider, a stream's
 * subscriber, an optimistic `predict` — is reported as a `CallbackError` on
 * `errors$`, never as a network or protocol failure, never by a reconnect
 * loop and never as an uncaught exception or unhandled rejection.
 */
import { expect } from 'chai';
import { map } from 'rxjs';
import { getGlobalLogLevel, setGlobalLogLevel } from 'spacetimedb';
import type { DevServer } from '../../devserver/index.ts';
import { CallbackError, ProtocolError, createSyncClient } from '../../src/index.ts';
import { DbConnection, tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, testClientOptions, type BasicClient } from '../helpers/syncClient.ts';

describe('sync client: exceptions thrown by application callbacks', () => {
  let server: DevServer;
  let client: BasicClient | undefined;
  const escaped: unknown[] = [];
  const onEscape = (e: unknown) => escaped.push(e);

  beforeEach(async () => {
    escaped.length = 0;
    process.on('unhandledRejection', onEscape);
    server = await startBasicServer();
  });
  afterEach(async () => {
    process.off('unhandledRejection', onEscape);
    await client?.close();
    client = undefined;
    await server.stop();
    expect(escaped, 'unhandled rejections').to.deep.equal([]);
  });

  const callbackErrors = (c: BasicClient) => {
    const seen: Error[] = [];
    c.errors$.subscribe((e) => seen.push(e));
    return seen;
  };

  it('onToken throwing: a CallbackError naming it, the connection stays live, no reconnect', async () => {
    client = basicClient(server, {
      onToken: () => {
        throw new Error('localStorage is not defined');
      },
    });
    const errors = callbackErrors(client);
    await live(client);
    await client.call('addPerson', { name: 'after onToken', age: 30 });
    const err = errors.find((e) => e instanceof CallbackError) as CallbackError;
    expect(err, 'a CallbackError').to.exist;
    expect(err.info).to.deep.equal({ callback: 'onToken' });
    expect((err.cause as Error).message).to.equal('localStorage is not defined');
    expect(errors.some((e) => e instanceof ProtocolError)).to.equal(false);
    expect(client.status.attempt).to.equal(0);
    expect(client.status.state).to.equal('live');
  });

  it('a token provider throwing: stops in offline with the CallbackError, never retried', async () => {
    let asked = 0;
    client = basicClient(server, {
      token: () => {
        asked++;
        throw new Error('no session');
      },
    });
    const errors = callbackErrors(client);
    const status = await next(client.status$, (s) => s.state === 'offline');
    expect(status.lastError).to.be.instanceOf(CallbackError);
    expect((status.lastError as unknown as CallbackError).info.callback).to.equal('token');
    expect(status.nextRetryAt).to.equal(null);
    // Reported as the error that stopped the client (the same error, whichever way errors$ carries it).
    expect(new Set(errors.filter((e) => e instanceof CallbackError)).size).to.equal(1);
    expect(asked).to.equal(1);
    expect(server.stats().connections).to.equal(0);
  });

  it('a subscriber of table$ (or of a stream piped from status$) throwing: CallbackError naming the stream, the subscription goes on', async () => {
    client = basicClient(server);
    const errors = callbackErrors(client);
    const sizes: number[] = [];
    const sub = client.table$(tables.person).subscribe((rows) => {
      sizes.push(rows.size);
      throw new Error('render failed');
    });
    const piped = client.status$.pipe(map((s) => s.state)).subscribe((state) => {
      if (state === 'live') throw new Error('status handler failed');
    });
    await live(client);
    await client.call('addPerson', { name: 'one', age: 1 });
    await client.call('addPerson', { name: 'two', age: 2 });
    await next(client.table$(tables.person), (m) => m.size === 2);
    // Still subscribed: every transaction reached the throwing subscriber.
    expect(sizes.at(-1)).to.equal(2);
    const thrown = errors.filter((e): e is CallbackError => e instanceof CallbackError);
    expect(thrown.filter((e) => e.info.stream === 'table$').length).to.equal(sizes.length);
    expect(thrown.some((e) => e.info.stream === 'status$' && e.info.callback === 'subscriber')).to.equal(true);
    expect(client.status.attempt).to.equal(0);
    sub.unsubscribe();
    piped.unsubscribe();
  });

  it('a subscriber of errors$ throwing is logged, not fed back into errors$', async () => {
    const logged: string[] = [];
    const keep = (message: string) => void logged.push(message);
    client = basicClient(server, { logger: { level: 'warn', sink: { error: keep, warn: keep, info: keep, debug: keep } } });
    client.errors$.subscribe(() => {
      throw new Error('error panel broke');
    });
    const errors = callbackErrors(client);
    client.table$(tables.person).subscribe(() => {
      throw new Error('render failed');
    });
    await live(client);
    await next(client.table$(tables.person));
    expect(errors.filter((e) => e instanceof CallbackError && e.info.stream === 'errors$')).to.deep.equal([]);
    expect(errors.some((e) => e instanceof CallbackError && e.info.stream === 'table$')).to.equal(true);
    expect(logged.some((m) => m.includes('A subscriber of errors$ threw: error panel broke'))).to.equal(true);
  });

  it('an optimistic predict throwing: CallbackError, the prediction rolled back, the call still goes through', async () => {
    client = basicClient(server);
    const errors = callbackErrors(client);
    await live(client);
    const shown = client.table$(tables.person).subscribe();
    await next(client.table$(tables.person));
    const handle = client.call('addPerson', { name: 'predicted', age: 3 }, {
      optimistic: {
        table: tables.person,
        predict: () => {
          throw new Error('bad prediction');
        },
      },
    });
    await handle;
    const rows = await next(client.table$(tables.person), (m) => m.size === 1);
    expect([...rows.values()].map((p) => p.name)).to.deep.equal(['predicted']);
    const err = errors.find((e) => e instanceof CallbackError) as CallbackError;
    expect(err.info).to.deep.equal({ callback: 'predict' });
    expect((err.cause as Error).message).to.equal('bad prediction');
    shown.unsubscribe();
  });

  it("lowers the SDK's own log level to warn unless told otherwise", async () => {
    client = createSyncClient({ builder: DbConnection.builder, ...testClientOptions(server), sdkLogLevel: undefined });
    expect(getGlobalLogLevel()).to.equal('warn');
    await client.close();
    const loud = createSyncClient({ builder: DbConnection.builder, ...testClientOptions(server), sdkLogLevel: 'info' });
    expect(getGlobalLogLevel()).to.equal('info');
    setGlobalLogLevel('warn');
    await loud.close();
  });
});
