/**
 * The dev server answers browser pages of another origin on its public API
 * (a page served by the demo's own server exchanges its token with a POST
 * carrying Authorization, which needs a CORS preflight), and keeps the admin
 * endpoints same-origin.
 */
import { expect } from 'chai';
import { startDevServer, type DevServer } from '../../devserver/index.ts';

describe('dev server CORS', () => {
  let server: DevServer;
  beforeEach(async () => {
    server = await startDevServer({ module: 'test/fixtures/basic.module.ts', port: 0, admin: true });
  });
  afterEach(() => server.stop());

  it('answers the preflight of the token exchange, and the exchange itself, for any origin', async () => {
    const preflight = await fetch(`${server.url}/v1/identity/websocket-token`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1:8080', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers.get('access-control-allow-origin')).to.equal('*');
    expect(preflight.headers.get('access-control-allow-methods')).to.contain('POST');
    expect(preflight.headers.get('access-control-allow-headers')).to.equal('authorization');

    const minted = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const exchange = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { origin: 'http://127.0.0.1:8080', authorization: `Bearer ${minted.token}` } });
    expect(exchange.status).to.equal(200);
    expect(exchange.headers.get('access-control-allow-origin')).to.equal('*');
  });

  it('gives the admin endpoints no CORS headers', async () => {
    const stats = await fetch(`${server.url}/_dev/stats`, { headers: { origin: 'http://example.test' } });
    expect(stats.status).to.equal(200);
    expect(stats.headers.get('access-control-allow-origin')).to.equal(null);
    const preflight = await fetch(`${server.url}/_dev/drop-all`, { method: 'OPTIONS', headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).to.equal(null);
  });
});
