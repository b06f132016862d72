/**
 * Identities and tokens for the dev server, compatible with SpacetimeDB's.
 *
 * Identity: `Identity::from_claims` in SpacetimeDB's `crates/lib/src/identity.rs`:
 *   hash26   = blake3(utf8(`${iss}|${sub}`))[0..26]
 *   checksum = blake3([0xc2, 0x00, ...hash26])[0..4]
 *   bytes    = [0xc2, 0x00, ...checksum, ...hash26]   (32 bytes, BIG-endian)
 * The u256 is read big-endian from those bytes, so its hex string (which the
 * SDK, like the server, prints most significant byte first) starts with
 * `c200`; on the BSATN wire the u256 is little-endian, i.e. reversed.
 *
 * Tokens: ES256 JWTs with `hex_identity`, `sub`, `iss`, `aud`, `iat` and an
 * optional `exp`, signed with a P-256 key that either lives in memory
 * (ephemeral) or is persisted in the data folder so saved tokens survive a
 * restart. Token strings are never put into error messages.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { Identity } from 'spacetimedb';

// ---------------------------------------------------------------------------
// Identity

const utf8 = new TextEncoder();

/** The 32 identity bytes, most significant first (so `[0] = 0xc2, [1] = 0x00`). */
export function identityBytesFromClaims(iss: string, sub: string): Uint8Array {
  const hash26 = blake3(utf8.encode(`${iss}|${sub}`)).subarray(0, 26);
  const checksumInput = new Uint8Array(28);
  checksumInput[0] = 0xc2;
  checksumInput[1] = 0x00;
  checksumInput.set(hash26, 2);
  const checksum = blake3(checksumInput).subarray(0, 4);
  const out = new Uint8Array(32);
  out[0] = 0xc2;
  out[1] = 0x00;
  out.set(checksum, 2);
  out.set(hash26, 6);
  return out;
}

/** The identity SpacetimeDB derives for a token with this issuer and subject. */
export function identityFromClaims(iss: string, sub: string): Identity {
  return new Identity(BigInt('0x' + Buffer.from(identityBytesFromClaims(iss, sub)).toString('hex')));
}

/** Normalised (lower-case, 64 digits, no `0x`) hex of an identity. */
export function identityHex(identity: Identity): string {
  return identity.toHexString().toLowerCase();
}

// ---------------------------------------------------------------------------
// Errors and claims

export type AuthErrorCode =
  | 'malformed'
  | 'bad-signature'
  | 'expired'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'identity-mismatch';

/** A token was rejected. The message describes why, never the token itself. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code: AuthErrorCode;
  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The claims a token is signed with (`hex_identity` is always derived from `iss`/`sub`). */
export interface ClaimsToSign {
  sub: string;
  iss: string;
  aud: string[];
  /** Issued at, seconds since the Unix epoch. */
  iat: number;
  /** Expiry, seconds since the Unix epoch; absent = never. */
  exp?: number;
  /** Any other claims are carried along (and kept when re-signing). */
  [extra: string]: unknown;
}

export interface TokenClaims extends ClaimsToSign {
  /** The identity's hex (what SpacetimeDB calls `hex_identity`), lower case. */
  hex_identity: string;
}

export interface VerifiedToken {
  identity: Identity;
  claims: TokenClaims;
}

export interface MintedToken extends VerifiedToken {
  token: string;
}

export interface TokenAuthorityOptions {
  /** `iss` of minted tokens, and the only issuer accepted. Default `localhost`, like a local SpacetimeDB. */
  issuer?: string;
  /** Clock skew tolerated on `exp`, in seconds. Default 60 (the real server's JWT library default). */
  leewaySeconds?: number;
  /** Clock, in milliseconds since the epoch (for tests). */
  now?: () => number;
}

export const TOKEN_AUDIENCE = 'spacetimedb';
export const DEFAULT_ISSUER = 'localhost';
/** Lifetime of the tokens from `POST /v1/identity/websocket-token`. */
export const SHORT_LIVED_SECONDS = 60;
/** Name of the key file inside the data folder. */
export const KEY_FILE_NAME = 'jwt-signing-key.pem';
/** SpacetimeDB refuses issuers and subjects longer than this many bytes. */
const MAX_CLAIM_BYTES = 128;

const HEADER = { typ: 'JWT', alg: 'ES256' };
const B64URL = /^[A-Za-z0-9_-]*$/;

function b64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString('base64url');
}

// ---------------------------------------------------------------------------
// Authority

/**
 * Mints and verifies the dev server's tokens.
 *
 * - `TokenAuthority.fromDataDir(dir)` keeps its signing key in
 *   `dir/jwt-signing-key.pem` (PKCS#8, mode 0600), created on first use.
 * - `TokenAuthority.ephemeral()` keeps it in memory: its tokens die with it.
 */
export class TokenAuthority {
  readonly issuer: string;
  readonly leewaySeconds: number;
  readonly #privateKey: crypto.KeyObject;
  readonly #publicKey: crypto.KeyObject;
  readonly #now: () => number;

  private constructor(privateKey: crypto.KeyObject, options: TokenAuthorityOptions) {
    if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error('the JWT signing key must be an EC P-256 private key');
    }
    this.#privateKey = privateKey;
    this.#publicKey = crypto.createPublicKey(privateKey);
    this.issuer = options.issuer ?? DEFAULT_ISSUER;
    this.leewaySeconds = options.leewaySeconds ?? 60;
    this.#now = options.now ?? Date.now;
  }

  /** An authority whose key lives only in memory. */
  static ephemeral(options: TokenAuthorityOptions = {}): TokenAuthority {
    return new TokenAuthority(generateKey(), options);
  }

  /** An authority whose key is kept in `dir` (created with 0700 if missing; key file 0600). */
  static fromDataDir(dir: string, options: TokenAuthorityOptions = {}): TokenAuthority {
    return new TokenAuthority(loadOrCreateKey(dir), options);
  }

  /** The path of the key file an authority on `dir` uses. */
  static keyPath(dir: string): string {
    return path.join(dir, KEY_FILE_NAME);
  }

  /** The verification key, PEM (SPKI), as `GET /v1/identity/public-key` serves it. */
  get publicKeyPem(): string {
    return this.#publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  #nowSeconds(): number {
    return Math.floor(this.#now() / 1000);
  }

  /** Sign claims as they are (`hex_identity` is recomputed from `iss`/`sub`). */
  sign(claims: ClaimsToSign): string {
    const full: Record<string, unknown> = {
      ...claims,
      hex_identity: identityHex(identityFromClaims(claims.iss, claims.sub)),
    };
    if (full.exp === undefined) delete full.exp;
    const signingInput = `${b64url(JSON.stringify(HEADER))}.${b64url(JSON.stringify(full))}`;
    const signature = crypto.sign('sha256', Buffer.from(signingInput), {
      key: this.#privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${signingInput}.${b64url(signature)}`;
  }

  /** A brand-new identity (random subject) and its token, which does not expire. */
  mint(): MintedToken {
    const sub = crypto.randomUUID();
    const identity = identityFromClaims(this.issuer, sub);
    const claims: TokenClaims = {
      hex_identity: identityHex(identity),
      sub,
      iss: this.issuer,
      aud: [TOKEN_AUDIENCE],
      iat: this.#nowSeconds(),
    };
    return { identity, claims, token: this.sign(claims) };
  }

  /** Check a token; returns its identity and claims or throws {@link AuthError}. */
  verify(token: string): VerifiedToken {
    if (typeof token !== 'string') throw new AuthError('malformed', 'token is not a string');
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every(p => p.length > 0 && B64URL.test(p))) {
      throw new AuthError('malformed', 'token is not a compact JWS (three base64url parts)');
    }
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

    const header = parseJsonObject(headerPart, 'header');
    if (header.alg !== 'ES256') {
      throw new AuthError('bad-signature', `token algorithm ${JSON.stringify(String(header.alg)).slice(0, 40)} is not ES256`);
    }
    const signature = Buffer.from(signaturePart, 'base64url');
    const valid =
      signature.length === 64 &&
      crypto.verify('sha256', Buffer.from(`${headerPart}.${payloadPart}`), { key: this.#publicKey, dsaEncoding: 'ieee-p1363' }, signature);
    if (!valid) throw new AuthError('bad-signature', 'token signature does not verify with this server key');

    const raw = parseJsonObject(payloadPart, 'payload');
    const claims = checkClaimShapes(raw);
    if (claims.exp !== undefined && this.#nowSeconds() > claims.exp + this.leewaySeconds) {
      throw new AuthError('expired', `token expired at ${new Date(claims.exp * 1000).toISOString()}`);
    }
    if (claims.iss !== this.issuer) {
      throw new AuthError('wrong-issuer', `token issuer is not ${JSON.stringify(this.issuer)}`);
    }
    if (!claims.aud.includes(TOKEN_AUDIENCE)) {
      throw new AuthError('wrong-audience', `token audience does not include ${JSON.stringify(TOKEN_AUDIENCE)}`);
    }
    const identity = identityFromClaims(claims.iss, claims.sub);
    const computed = identityHex(identity);
    const stated = typeof raw.hex_identity === 'string' ? normaliseHex(raw.hex_identity) : undefined;
    if (stated !== undefined && stated !== computed) {
      throw new AuthError('identity-mismatch', `token hex_identity does not match its iss/sub (expected ${computed})`);
    }
    return { identity, claims: { ...claims, hex_identity: computed } };
  }

  /**
   * Verify `token`, then sign the same claims again with a fresh `iat` and an
   * expiry `seconds` from now (`POST /v1/identity/websocket-token`), but never
   * later than `token`'s own expiry: exchanging a token must not extend it.
   */
  shortLived(token: string, seconds: number = SHORT_LIVED_SECONDS): string {
    const { claims } = this.verify(token);
    const iat = this.#nowSeconds();
    const exp = claims.exp === undefined ? iat + seconds : Math.min(iat + seconds, claims.exp);
    return this.sign({ ...claims, iat, exp });
  }
}

function parseJsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('malformed', `token ${what} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AuthError('malformed', `token ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function checkClaimShapes(raw: Record<string, unknown>): TokenClaims {
  const { iss, sub, iat, exp, aud } = raw;
  for (const [name, v] of [['iss', iss], ['sub', sub]] as const) {
    if (typeof v !== 'string' || v.length === 0) throw new AuthError('malformed', `token claim ${name} must be a non-empty string`);
    if (Buffer.byteLength(v) > MAX_CLAIM_BYTES) throw new AuthError('malformed', `token claim ${name} is longer than ${MAX_CLAIM_BYTES} bytes`);
  }
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw new AuthError('malformed', 'token claim iat must be a number');
  if (exp !== undefined && exp !== null && (typeof exp !== 'number' || !Number.isFinite(exp))) {
    throw new AuthError('malformed', 'token claim exp must be a number');
  }
  let audience: string[];
  if (aud === undefined || aud === null) audience = [];
  else if (typeof aud === 'string') audience = [aud];
  else if (Array.isArray(aud) && aud.every(a => typeof a === 'string')) audience = aud as string[];
  else throw new AuthError('malformed', 'token claim aud must be a string or a list of strings');
  if (raw.hex_identity !== undefined && typeof raw.hex_identity !== 'string') {
    throw new AuthError('malformed', 'token claim hex_identity must be a string');
  }
  const claims: TokenClaims = { ...raw, iss: iss as string, sub: sub as string, aud: audience, iat, hex_identity: '' };
  if (typeof exp === 'number') claims.exp = exp;
  else delete claims.exp;
  return claims;
}

function normaliseHex(hex: string): string {
  return (hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex).toLowerCase().padStart(64, '0');
}

// ---------------------------------------------------------------------------
// Key storage

function generateKey(): crypto.KeyObject {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
}

function loadOrCreateKey(dir: string): crypto.KeyObject {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = TokenAuthority.keyPath(dir);
  const existing = readKey(keyPath);
  if (existing) return existing;

  // Write to a private temp file, then link it into place: the link fails if
  // another process got there first, and nobody ever sees a half-written key.
  const key = generateKey();
  const pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = path.join(dir, `.${KEY_FILE_NAME}.${process.pid}.${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, keyPath);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const winner = readKey(keyPath);
    if (!winner) throw new Error(`JWT key file ${keyPath} vanished while it was being created`);
    return winner;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function readKey(keyPath: string): crypto.KeyObject | undefined {
  let pem: string;
  try {
    pem = fs.readFileSync(keyPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return crypto.createPrivateKey(pem);
  } catch {
    throw new Error(`JWT key file ${keyPath} does not hold a PEM private key; delete it to start over (saved tokens will stop working)`);
  }
}
