/**
 * Identities and tokens for the dev server, compatible with SpacetimeDB's.
 *
 * Identity: derived from the claims as SpacetimeDB does (docs/protocol.md,
 * "Identities and tokens"):
 *   hash26   = blake3(utf8(`${iss}|${sub}`))[0..26]
 *   checksum = blake3([0xc2, 0x00, ...hash26])[0..4]
 *   bytes    = [0xc2, 0x00, ...checksum, ...hash26]   (32 bytes, BIG-endian)
 * The u256 is read big-endian from those bytes, so its hex string (which the
 * SDK, like the server, prints most significant byte first) starts with
 * `c200`; on the BSATN wire the u256 is little-endian, i.e. reversed.
 *
 * Tokens: ES256 JWTs, signed and verified with `jose`, with `hex_identity`,
 * `sub`, `iss`, `aud`, `iat` and an
 * optional `exp`, signed with a P-256 key that either lives in memory
 * (ephemeral) or is persisted in the data folder so saved tokens survive a
 * restart. Token strings are never put into error messages.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
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

const HEADER = { typ: 'JWT', alg: 'ES256' } as const;
const B64URL = /^[A-Za-z0-9_-]*$/;


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
  async sign(claims: ClaimsToSign): Promise<string> {
    const full: Record<string, unknown> = {
      ...claims,
      hex_identity: identityHex(identityFromClaims(claims.iss, claims.sub)),
    };
    if (full.exp === undefined) delete full.exp;
    return new SignJWT(full).setProtectedHeader(HEADER).sign(this.#privateKey);
  }

  /** A brand-new identity (random subject) and its token, which does not expire. */
  async mint(): Promise<MintedToken> {
    const sub = crypto.randomUUID();
    const identity = identityFromClaims(this.issuer, sub);
    const claims: TokenClaims = {
      hex_identity: identityHex(identity),
      sub,
      iss: this.issuer,
      aud: [TOKEN_AUDIENCE],
      iat: this.#nowSeconds(),
    };
    return { identity, claims, token: await this.sign(claims) };
  }

  /** Check a token; returns its identity and claims or rejects with {@link AuthError}. */
  async verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string') throw new AuthError('malformed', 'token is not a string');
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every(p => p.length > 0 && B64URL.test(p))) {
      throw new AuthError('malformed', 'token is not a compact JWS (three base64url parts)');
    }
    let raw: Record<string, unknown>;
    try {
      ({ payload: raw } = await jwtVerify(token, this.#publicKey, {
        algorithms: ['ES256'],
        issuer: this.issuer,
        audience: TOKEN_AUDIENCE,
        clockTolerance: this.leewaySeconds,
        currentDate: new Date(this.#now()),
      }));
    } catch (e) {
      throw authErrorFrom(e, this.issuer, token);
    }
    const claims = checkClaimShapes(raw);
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
  async shortLived(token: string, seconds: number = SHORT_LIVED_SECONDS): Promise<string> {
    const { claims } = await this.verify(token);
    const iat = this.#nowSeconds();
    const exp = claims.exp === undefined ? iat + seconds : Math.min(iat + seconds, claims.exp);
    return this.sign({ ...claims, iat, exp });
  }
}

/**
 * Translate what jose throws into our codes. Messages name the failed check,
 * never the token (jose's own messages do not quote it either, but its error
 * objects carry the payload, which we drop).
 */
function authErrorFrom(e: unknown, issuer: string, token: string): AuthError {
  if (e instanceof joseErrors.JWTExpired) {
    const exp = typeof e.payload.exp === 'number' ? new Date(e.payload.exp * 1000).toISOString() : 'an unknown time';
    return new AuthError('expired', `token expired at ${exp}`);
  }
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'iss' && e.reason !== 'missing') return new AuthError('wrong-issuer', `token issuer is not ${JSON.stringify(issuer)}`);
    if (e.claim === 'aud') return new AuthError('wrong-audience', `token audience does not include ${JSON.stringify(TOKEN_AUDIENCE)}`);
    return new AuthError('malformed', `token claim ${e.claim} is invalid (${e.reason})`);
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) {
    let alg = 'unknown';
    try {
      alg = String(decodeProtectedHeader(token).alg);
    } catch {
      // jose read the header to refuse it; keep the generic name if it cannot now.
    }
    return new AuthError('bad-signature', `token algorithm ${JSON.stringify(alg).slice(0, 40)} is not ES256`);
  }
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new AuthError('bad-signature', 'token signature does not verify with this server key');
  }
  if (e instanceof joseErrors.JOSEError) return new AuthError('malformed', `token is malformed (${e.code})`);
  return new AuthError('malformed', 'token could not be read');
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
