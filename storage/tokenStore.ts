/**
 * Optional persistence of the session token (and the identity it maps to,
 * so an offline cold start knows whose outbox entries it may queue under).
 */
import { systemClock, type Clock } from './clock.ts';
import type { Store } from './store.ts';

export interface Session {
  token: string;
  /** Hex identity the token maps to, when known. */
  identity: string | null;
  savedAt: number;
}

export class TokenStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The stored token, if any. */
  async get(): Promise<string | undefined> {
    return (await this.session())?.token;
  }

  /** The stored token with its identity. */
  async session(): Promise<Session | undefined> {
    const value = (await this.store.metaGet('session')) as Session | undefined;
    return value && typeof value.token === 'string' ? value : undefined;
  }

  /** Keep a token (the SDK hands it over in `onConnect`). */
  async set(token: string, identity?: string | { toHexString(): string } | null): Promise<void> {
    const hex = identity == null ? null : typeof identity === 'string' ? identity.toLowerCase() : identity.toHexString();
    await this.store.metaSet('session', { token, identity: hex, savedAt: this.clock.now() } satisfies Session);
  }

  async clear(): Promise<void> {
    await this.store.metaDelete('session');
  }
}
