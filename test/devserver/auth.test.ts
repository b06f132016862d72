import { expect } from 'chai';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { BinaryWriter, Identity } from 'spacetimedb';
import {
  AuthError,
  TokenAuthority,
  identityBytesFromClaims,
  identityFromClaims,
  type AuthErrorCode,
} from '../../devserver/auth.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function decodePayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

async function expectAuthError(fn: () => Promise<unknown>, code: AuthErrorCode, token?: string): Promise<AuthError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected AuthError(${code})`).to.be.instanceOf(AuthError);
  const err = caught as AuthError;
  expect(err.code).to.equal(code);
  if (token) {
    expect(err.message).to.not.include(token);
    for (const part of token.split('.')) if (part.length > 8) expect(err.message).to.not.include(part);
  }
  return err;
}

/** Sign arbitrary header/payload with a P-256 key (to build tokens the authority never minted). */
function forge(key: crypto.KeyObject, payload: unknown, header: unknown = { typ: 'JWT', alg: 'ES256' }): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

describe('devserver auth: identities', () => {
  it('matches a known SpacetimeDB identity (iss example.com, sub 123)', async () => {
    // From SpacetimeDB's C# runtime tests (JwtClaimsTest): the identity of {"sub":"123","iss":"example.com"}.
    expect(identityFromClaims('example.com', '123').toHexString()).to.equal(
      'c200ef884364c1a99be0298dc68f2004e6b97c09d1b1658b7db22f51fb662059',
    );
  });

  it('uses blake3 as specified (official empty-input vector)', async () => {
    expect(hex(blake3(new Uint8Array(0)))).to.equal('af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
  });

  it('lays out c200 ‖ checksum ‖ hash26, big-endian', async () => {
    for (const [iss, sub] of [['localhost', 'alice'], ['https://auth.example', 'ünïcødé'], ['a', '']]) {
      const bytes = identityBytesFromClaims(iss!, sub!);
      expect(bytes).to.have.length(32);
      const hash26 = blake3(new TextEncoder().encode(`${iss}|${sub}`)).subarray(0, 26);
      expect(hex(bytes.subarray(6))).to.equal(hex(hash26));
      const checksum = blake3(Uint8Array.from([0xc2, 0x00, ...hash26])).subarray(0, 4);
      expect(hex(bytes.subarray(2, 6))).to.equal(hex(checksum));
      const id = identityFromClaims(iss!, sub!);
      expect(id.toHexString()).to.equal(hex(bytes));
      expect(id.toHexString().startsWith('c200')).to.equal(true);
    }
  });

  it('is stable and distinguishes issuer from subject', async () => {
    const a = identityFromClaims('localhost', 'alice');
    expect(identityFromClaims('localhost', 'alice').isEqual(a)).to.equal(true);
    expect(identityFromClaims('localhost', 'bob').isEqual(a)).to.equal(false);
    expect(identityFromClaims('localhost|a', 'b').isEqual(identityFromClaims('localhost', 'a|b'))).to.equal(true); // same "iss|sub" string, as in SpacetimeDB
    expect(identityFromClaims('x', 'alice').isEqual(a)).to.equal(false);
  });

  it('serialises on the wire little-endian, so the c2 byte comes last', async () => {
    const id = identityFromClaims('localhost', 'alice');
    const w = new BinaryWriter(32);
    w.writeU256(id.__identity__);
    const wire = w.getBuffer();
    expect(wire[31]).to.equal(0xc2);
    expect(wire[30]).to.equal(0x00);
    expect(hex(Uint8Array.from(wire).reverse())).to.equal(id.toHexString());
    expect(new Identity(id.toHexString()).isEqual(id)).to.equal(true);
  });
});

describe('devserver auth: tokens', () => {
  let now = Date.UTC(2030, 0, 1);
  const clock = () => now;
  let authority: TokenAuthority;
  const tmpDirs: string[] = [];

  beforeEach(() => {
    now = Date.UTC(2030, 0, 1);
    authority = TokenAuthority.ephemeral({ now: clock });
  });
  after(() => {
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  });
  const tmpDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'stdb-rx-auth-'));
    tmpDirs.push(d);
    return d;
  };

  it('mints an ES256 JWT with the SpacetimeDB claims and no expiry', async () => {
    const { identity, token, claims } = await authority.mint();
    const [h] = token.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).to.deep.equal({ typ: 'JWT', alg: 'ES256' });
    const payload = decodePayload(token);
    expect(payload).to.include({ iss: 'localhost', iat: Math.floor(now / 1000), hex_identity: identity.toHexString() });
    expect(payload.aud).to.deep.equal(['spacetimedb']);
    expect(payload.sub).to.match(/^[0-9a-f-]{36}$/);
    expect(payload).to.not.have.property('exp');
    expect(claims.sub).to.equal(payload.sub);
    expect(identity.isEqual(identityFromClaims('localhost', payload.sub as string))).to.equal(true);
    expect(identity.toHexString().startsWith('c200')).to.equal(true);
  });

  it('mints a different identity every time', async () => {
    const a = await authority.mint();
    const b = await authority.mint();
    expect(a.identity.isEqual(b.identity)).to.equal(false);
    expect(a.token).to.not.equal(b.token);
  });

  it('verifies its tokens, always to the same identity', async () => {
    const { identity, token } = await authority.mint();
    for (let i = 0; i < 3; i++) {
      const v = await authority.verify(token);
      expect(v.identity.isEqual(identity)).to.equal(true);
      expect(v.claims.iss).to.equal('localhost');
      expect(v.claims.hex_identity).to.equal(identity.toHexString());
    }
    now += 10 * 365 * 24 * 3600 * 1000;
    expect((await authority.verify(token)).identity.isEqual(identity)).to.equal(true);
  });

  it('re-signs the same claims with a 60 s expiry for websocket tokens', async () => {
    const { identity, token } = await authority.mint();
    now += 5000;
    const short = await authority.shortLived(token);
    expect(short).to.not.equal(token);
    const payload = decodePayload(short);
    const iat = Math.floor(now / 1000);
    expect(payload).to.include({ iss: 'localhost', sub: decodePayload(token).sub, iat, exp: iat + 60 });
    expect((await authority.verify(short)).identity.isEqual(identity)).to.equal(true);
    // Past expiry plus the 60 s leeway the real server's JWT library allows:
    now += 121_000;
    await expectAuthError(() => authority.verify(short), 'expired', short);
    // The long-lived token still works.
    expect((await authority.verify(token)).identity.isEqual(identity)).to.equal(true);
  });

  it('keeps extra claims when re-signing', async () => {
    const token = await authority.sign({ iss: 'localhost', sub: 'carol', aud: ['spacetimedb'], iat: 1, email: 'c@example.com' });
    const payload = decodePayload(await authority.shortLived(token));
    expect(payload.email).to.equal('c@example.com');
    expect(payload.hex_identity).to.equal(identityFromClaims('localhost', 'carol').toHexString());
  });

  it('rejects a token signed by another key as bad-signature', async () => {
    const other = TokenAuthority.ephemeral({ now: clock });
    const { token } = await other.mint();
    await expectAuthError(() => authority.verify(token), 'bad-signature', token);
    await expectAuthError(() => authority.shortLived(token), 'bad-signature', token);
  });

  it('rejects tampered payloads and stripped or foreign algorithms as bad-signature', async () => {
    const { token } = await authority.mint();
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = decodePayload(token);
    const tampered = `${h}.${b64({ ...claims, sub: 'someone-else', hex_identity: undefined })}.${s}`;
    await expectAuthError(() => authority.verify(tampered), 'bad-signature', tampered);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${s}`;
    await expectAuthError(() => authority.verify(none), 'bad-signature', none);
    const hs = `${b64({ alg: 'HS256', typ: 'JWT' })}.${p}.${s}`;
    await expectAuthError(() => authority.verify(hs), 'bad-signature', hs);
    const shortSig = `${h}.${p}.${s.slice(0, 20)}`;
    await expectAuthError(() => authority.verify(shortSig), 'bad-signature', shortSig);
  });

  it('rejects expired tokens (beyond the leeway) and accepts them within it', async () => {
    const iat = Math.floor(now / 1000);
    const token = await authority.sign({ iss: 'localhost', sub: 'dave', aud: ['spacetimedb'], iat: iat - 3600, exp: iat - 30 });
    expect((await authority.verify(token)).claims.exp).to.equal(iat - 30);
    const strict = TokenAuthority.ephemeral({ now: clock, leewaySeconds: 0 });
    const strictToken = await strict.sign({ iss: 'localhost', sub: 'dave', aud: ['spacetimedb'], iat: iat - 3600, exp: iat - 30 });
    await expectAuthError(() => strict.verify(strictToken), 'expired', strictToken);
    const old = await authority.sign({ iss: 'localhost', sub: 'dave', aud: ['spacetimedb'], iat: iat - 3600, exp: iat - 61 });
    await expectAuthError(() => authority.verify(old), 'expired', old);
  });

  it('rejects a wrong issuer, a wrong audience and a lying hex_identity', async () => {
    const iat = Math.floor(now / 1000);
    const elsewhere = await authority.sign({ iss: 'https://auth.example', sub: 'eve', aud: ['spacetimedb'], iat });
    await expectAuthError(() => authority.verify(elsewhere), 'wrong-issuer', elsewhere);
    const otherAud = await authority.sign({ iss: 'localhost', sub: 'eve', aud: ['some-api'], iat });
    await expectAuthError(() => authority.verify(otherAud), 'wrong-audience', otherAud);
    const noAud = await authority.sign({ iss: 'localhost', sub: 'eve', aud: [], iat });
    await expectAuthError(() => authority.verify(noAud), 'wrong-audience', noAud);

    // A single-string audience is accepted, as SpacetimeDB does.
    const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const pemDir = tmpDir();
    fs.writeFileSync(TokenAuthority.keyPath(pemDir), key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const withKey = TokenAuthority.fromDataDir(pemDir, { now: clock });
    const single = forge(key, { iss: 'localhost', sub: 'eve', aud: 'spacetimedb', iat });
    expect((await withKey.verify(single)).claims.aud).to.deep.equal(['spacetimedb']);
    // hex_identity must match iss/sub.
    const liar = forge(key, {
      iss: 'localhost',
      sub: 'eve',
      aud: ['spacetimedb'],
      iat,
      hex_identity: identityFromClaims('localhost', 'mallory').toHexString(),
    });
    await expectAuthError(() => withKey.verify(liar), 'identity-mismatch', liar);
    // Upper case or 0x-prefixed hex of the right identity is fine.
    const upper = forge(key, {
      iss: 'localhost',
      sub: 'eve',
      aud: ['spacetimedb'],
      iat,
      hex_identity: '0x' + identityFromClaims('localhost', 'eve').toHexString().toUpperCase(),
    });
    expect((await withKey.verify(upper)).identity.isEqual(identityFromClaims('localhost', 'eve'))).to.equal(true);
  });

  it('rejects garbage and structurally bad tokens as malformed', async () => {
    for (const garbage of ['', 'not-a-jwt', 'a.b', 'a.b.c.d', 'a..c', 'ab$.cd.ef', `${b64('not json')}.${b64({})}.${b64('x')}`]) {
      await expectAuthError(() => authority.verify(garbage), 'malformed', garbage.length > 8 ? garbage : undefined);
    }
    await expectAuthError(() => authority.verify(undefined as unknown as string), 'malformed');
    const iat = Math.floor(now / 1000);
    // Correctly signed, but the claims are unusable.
    await expectAuthError(async () => authority.verify(await authority.sign({ iss: 'localhost', sub: '', aud: ['spacetimedb'], iat })), 'malformed');
    await expectAuthError(async () => authority.verify(await authority.sign({ iss: 'localhost', sub: 'x'.repeat(129), aud: ['spacetimedb'], iat })), 'malformed');
    await expectAuthError(
      async () => authority.verify(await authority.sign({ iss: 'localhost', sub: 's', aud: ['spacetimedb'], iat: 'yesterday' as unknown as number })),
      'malformed',
    );
  });

  it('persists its key in the data folder (0600) so tokens survive a restart', async () => {
    const dir = path.join(tmpDir(), 'nested', 'data');
    const first = TokenAuthority.fromDataDir(dir, { now: clock });
    const { identity, token } = await first.mint();
    const keyFile = TokenAuthority.keyPath(dir);
    expect(fs.existsSync(keyFile)).to.equal(true);
    if (process.platform !== 'win32') expect(fs.statSync(keyFile).mode & 0o777).to.equal(0o600);
    expect(fs.readFileSync(keyFile, 'utf8')).to.match(/-----BEGIN PRIVATE KEY-----/);
    expect(fs.readdirSync(dir)).to.deep.equal([path.basename(keyFile)]);

    const second = TokenAuthority.fromDataDir(dir, { now: clock });
    expect(second.publicKeyPem).to.equal(first.publicKeyPem);
    expect((await second.verify(token)).identity.isEqual(identity)).to.equal(true);
    expect((await first.verify((await second.mint()).token)).claims.iss).to.equal('localhost');

    // A different folder means a different key.
    const third = TokenAuthority.fromDataDir(tmpDir(), { now: clock });
    await expectAuthError(() => third.verify(token), 'bad-signature', token);
  });

  it('refuses a corrupt key file with a clear error', async () => {
    const dir = tmpDir();
    fs.writeFileSync(TokenAuthority.keyPath(dir), 'garbage');
    expect(() => TokenAuthority.fromDataDir(dir)).to.throw(/does not hold a PEM private key/);
  });
});
