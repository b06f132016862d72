import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import { AuthError, type TokenRequest } from '../../src/index.ts';
import { tables } from '../fixtures/basic_bindings/index.ts';
import { startBasicServer } from '../helpers/sdk.ts';
import { basicClient, live, next, type BasicClient } from '../helpers/syncClient.ts';

async function mintToken(server: DevServer): Promise<{ identity: string; token: string }> {
  const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
  return (await res.json()) as { identity: string; token: string };
}

describe('sync client: tokens and identity', () => {
  let server: DevServer;
  let client: BasicClient | undefined;

  beforeEach(async () => {
    server = await startBasicServer();
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await server.stop();
  });

  it('stops with an AuthError instead of looping when the token is refused', async () => {
    client = basicClient(server, { token: 'not-a-valid-token' });
    const status = await next(client.status$, (s) => s.state === 'offline');
    expect(status.lastError).to.be.instanceOf(AuthError);
    expect((status.lastError as AuthError).info.status).to.equal(401);
    expect(status.nextRetryAt).to.equal(null);
    expect(status.attempt).to.equal(0);
    expect(server.stats().connections).to.equal(0);
  });

  it('asks the OIDC token provider again when the server refuses a token, then gives up with AuthError', async () => {
    const asked: TokenRequest['reason'][] = [];
    client = basicClient(server, {
      token: (req) => {
        asked.push(req.reason);
        return 'expired-or-bogus';
      },
    });
    const status = await next(client.status$, (s) => s.state === 'offline');
    expect(asked).to.deep.equal(['connect', 'refused']);
    expect(status.lastError).to.be.instanceOf(AuthError);
    expect((status.lastError as AuthError).info.refreshed).to.equal(true);
  });

  it('connects with the fresh token the provider returns after a refusal', async () => {
    const fresh = await mintToken(server);
    const asked: TokenRequest['reason'][] = [];
    client = basicClient(server, {
      token: (req) => {
        asked.push(req.reason);
        return req.reason === 'refused' ? fresh.token : 'stale';
      },
    });
    await live(client);
    expect(asked).to.deep.equal(['connect', 'refused']);
    expect((await next(client.identity$)).toHexString()).to.equal(fresh.identity);
  });

  it('keeps the minted anonymous token across reconnects: same identity, identity$ emits once', async () => {
    const tokens: string[] = [];
    client = basicClient(server, { onToken: (t) => tokens.push(t) });
    await live(client);
    const identities: string[] = [];
    const sub = client.identity$.subscribe((i) => identities.push(i.toHexString()));
    server.faults.dropAll();
    await next(client.status$, (s) => s.state === 'reconnecting');
    await live(client);
    server.faults.dropAll();
    await next(client.status$, (s) => s.state === 'reconnecting');
    await live(client);
    expect(identities).to.have.length(1);
    expect(tokens).to.have.length(3);
    expect(new Set(tokens).size).to.equal(1);
    // The server saw one identity: the connections row is keyed by identity.
    const rows = await next(client.table$(tables.connections), (m) => m.size > 0);
    expect(rows.size).to.equal(1);
    sub.unsubscribe();
  });
});
