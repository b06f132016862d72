/**
 * Bad tokens, at both doors: `POST /v1/identity/websocket-token` answers 401
 * with a reason, and the WebSocket upgrade (token in `?token=` or in
 * `Authorization: Bearer`) answers 401 before upgrading. No answer contains
 * the token. The server shares its signing key with the test through a data
 * folder, so the test can sign tokens the server would sign, but with the
 * wrong issuer, audience or times.
 */
import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DevServer } from '../../devserver/index.ts';
import { TokenAuthority } from '../../devserver/auth.ts';
import { RawClient } from '../helpers/rawClient.ts';
import { connect, rawHttp, startBasicServer, upgradeRequest, Watch } from './harness.ts';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

/** Sign header and payload as they are with `key` (ES256, P1363 signature). */
function signWith(key: crypto.KeyObject, payload: unknown, header: unknown = { typ: 'JWT', alg: 'ES256' }): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** The token, and every piece of it long enough to be recognisable, must be absent from `text`. */
function expectNoToken(text: string, token: string, where: string) {
  if (token.length > 0) expect(text, where).to.not.include(token);
  for (const part of token.split('.')) if (part.length > 8) expect(text, `${where} (a part of the token)`).to.not.include(part);
}

describe('reliability: tokens', function () {
  this.timeout(20_000);
  let dir: string;
  let server: DevServer;
  let watch: Watch;
  let good: string;
  const bad = new Map<string, string>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stdb-rx-tokens-'));
    watch = new Watch().start();
    server = await startBasicServer({ dataDir: dir, logger: watch.logger });
    // The same key file: this authority signs what the server would accept.
    const sameKey = TokenAuthority.fromDataDir(dir);
    good = (await sameKey.mint()).token;
    const claims = claimsOf(good);
    const [h, p] = good.split('.');
    const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const minutesAgo = (m: number) => TokenAuthority.fromDataDir(dir, { now: () => Date.now() - m * 60_000 });
    bad.set('forged signature (another key)', signWith(otherKey, claims));
    bad.set('tampered payload (signature of another payload)', `${h}.${b64({ ...claims, sub: 'mallory' })}.${good.split('.')[2]}`);
    bad.set('random signature bytes', `${h}.${p}.${crypto.randomBytes(64).toString('base64url')}`);
    bad.set('expired (exp two minutes past, beyond the 60 s leeway)', await minutesAgo(3).shortLived(good));
    bad.set('expired long ago', await sameKey.sign({ ...claims, iat: 1_000_000, exp: 1_000_060 }));
    bad.set('wrong issuer', (await TokenAuthority.fromDataDir(dir, { issuer: 'https://evil.example' }).mint()).token);
    bad.set('wrong audience', await sameKey.sign({ ...claims, aud: ['someone-else'] }));
    bad.set('no audience', await sameKey.sign({ ...claims, aud: [] }));
    // sign() derives hex_identity itself: sign this one with the key file directly.
    const serverKey = crypto.createPrivateKey(readFileSync(TokenAuthority.keyPath(dir), 'utf8'));
    bad.set('hex_identity that does not match iss/sub', signWith(serverKey, { ...claims, hex_identity: 'c200' + '0'.repeat(60) }));
    bad.set('alg none, no signature', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`);
    bad.set('alg none, with the real signature', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${good.split('.')[2]}`);
    bad.set('alg HS256 keyed with the public key', (() => {
      const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${p}`;
      const mac = crypto.createHmac('sha256', sameKey.publicKeyPem).update(input).digest('base64url');
      return `${input}.${mac}`;
    })());
    bad.set('garbage', 'garbage');
    bad.set('three garbage parts', 'eyJub3Q.eyJqc29u.c2ln');
    bad.set('header that is not JSON', `${b64('not json')}.${p}.${good.split('.')[2]}`);
    bad.set('a 4 KiB token', 'x'.repeat(4096));
  });
  after(async () => {
    await server.stop();
    watch.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => watch.expectClean());

  it('the good token works at both doors (control)', async () => {
    const res = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${good}` } });
    expect(res.status).to.equal(200);
    const { token: short } = (await res.json()) as { token: string };
    expect(claimsOf(short).exp - claimsOf(short).iat).to.equal(60);
    const r = await RawClient.open(server, { token: short });
    const init = await r.next('InitialConnection');
    expect(init.value.identity.toHexString()).to.equal(claimsOf(good).hex_identity);
    r.close();
    const viaHeader = await rawHttp(server.port, upgradeRequest(`/v1/database/${server.database}/subscribe`, [`Authorization: Bearer ${good}`]), 500);
    expect(viaHeader.status).to.equal(101);
  });

  it('refuses every bad token on POST /v1/identity/websocket-token with 401 and a reason without the token', async () => {
    for (const [what, token] of bad) {
      const res = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      expect(res.status, what).to.equal(401);
      expect(text, `${what}: a reason`).to.not.equal('');
      expectNoToken(text, token, what);
    }
  });

  it('refuses every bad token on the upgrade (?token= and Authorization: Bearer) with 401 before upgrading', async () => {
    const path = `/v1/database/${server.database}/subscribe?compression=None`;
    for (const [what, token] of bad) {
      const inQuery = await rawHttp(server.port, upgradeRequest(`${path}&token=${encodeURIComponent(token)}`));
      expect(inQuery.status, `${what} in ?token=`).to.equal(401);
      expect(inQuery.text, `${what}: no WebSocket frames after the 401`).to.not.match(/\r\n\r\n[\s\S]*\x82/);
      expectNoToken(inQuery.text, token, `${what} in ?token=`);
      const inHeader = await rawHttp(server.port, upgradeRequest(path, [`Authorization: Bearer ${token}`]));
      expect(inHeader.status, `${what} in Authorization`).to.equal(401);
      expectNoToken(inHeader.text, token, `${what} in Authorization`);
    }
    expect(server.stats().connections).to.equal(0);
  });

  it('names the reason: expired, signature, issuer, audience', async () => {
    const reason = async (what: string) =>
      (await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${bad.get(what)}` } })).text();
    expect(await reason('expired long ago')).to.match(/expired/);
    expect(await reason('forged signature (another key)')).to.match(/signature/);
    expect(await reason('alg none, no signature')).to.match(/compact JWS|algorithm/);
    expect(await reason('alg none, with the real signature')).to.match(/algorithm "none" is not ES256/);
    expect(await reason('wrong issuer')).to.match(/issuer/);
    expect(await reason('wrong audience')).to.match(/audience/);
  });

  it('makes the unmodified SDK fail its connect on a bad token (onConnectError), and the server keeps serving', async () => {
    for (const what of ['forged signature (another key)', 'expired long ago', 'wrong issuer']) {
      let error: unknown;
      await connect(server, { token: bad.get(what) }).then(
        (c) => {
          c.conn.disconnect();
          expect.fail(`connected with a token that is ${what}`);
        },
        (e) => (error = e),
      );
      expect(String(error), what).to.match(/Failed to verify token/);
    }
    const ok = await connect(server, { token: good });
    await ok.conn.reducers.addPerson({ name: 'token-ok', age: 1 });
    ok.conn.disconnect();
  });

  it('refuses a short-lived token once it is past exp + the 60 s leeway, and accepts it inside the leeway (as the real server)', async () => {
    const path = (t: string) => `/v1/database/${server.database}/subscribe?compression=None&token=${encodeURIComponent(t)}`;
    // Issued 90 s ago with the standard 60 s lifetime: expired 30 s ago, within the leeway.
    const recent = await TokenAuthority.fromDataDir(dir, { now: () => Date.now() - 90_000 }).shortLived(good);
    expect((await rawHttp(server.port, upgradeRequest(path(recent)), 500)).status).to.equal(101);
    // Issued 130 s ago: expired 70 s ago, past the leeway.
    const stale = await TokenAuthority.fromDataDir(dir, { now: () => Date.now() - 130_000 }).shortLived(good);
    const refused = await rawHttp(server.port, upgradeRequest(path(stale)));
    expect(refused.status).to.equal(401);
    expect(refused.text).to.match(/expired/);
  });

  it('never extends a token by exchanging it: the short-lived token expires no later than the one presented', async () => {
    const sameKey = TokenAuthority.fromDataDir(dir);
    const nowS = Math.floor(Date.now() / 1000);
    const expiring = await sameKey.sign({ ...claimsOf(good), iat: nowS, exp: nowS + 10 });
    const exchange = async (t: string) => {
      const res = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${t}` } });
      return { status: res.status, body: res.status === 200 ? ((await res.json()) as { token: string }).token : await res.text() };
    };
    const first = await exchange(expiring);
    expect(first.status).to.equal(200);
    expect(claimsOf(first.body).exp).to.equal(nowS + 10);
    // A token already expired (inside the leeway) cannot be turned into a fresh one.
    const lapsed = await sameKey.sign({ ...claimsOf(good), iat: nowS - 100, exp: nowS - 30 });
    const second = await exchange(lapsed);
    expect(second.status).to.equal(200);
    expect(claimsOf(second.body).exp, 'the exchanged token keeps the lapsed expiry').to.equal(nowS - 30);
    // Tokens without exp (what the server mints, what the SDK keeps) still get the 60 s lifetime.
    const fresh = await exchange(good);
    expect(claimsOf(fresh.body).exp - claimsOf(fresh.body).iat).to.equal(60);
  });
});
