/**
 * One connection attempt, from the token to `synced`: builds a
 * `DbConnection` over the socket adapter, runs the heartbeat, attaches the
 * live queries, and ends (errors) when the connection is lost. What the
 * attempt means for calls, storage and the game is left to the
 * {@link SessionHooks}.
 *
 * @module
 */
import { Observable, Subject, type SchedulerLike, type Subscription } from 'rxjs';
import type { Identity } from 'spacetimedb';
import { heartbeat, HeartbeatTimeoutError } from '../../operators/index.ts';
import { AuthError, ConnectionLostError, type ProtocolError } from '../../streams/errors.ts';
import type { SessionEvent } from '../../streams/lifecycle.ts';
import type { ConnectionLike, LiveQueries } from '../../streams/liveQueries.ts';
import type { Logger } from '../../streams/logger.ts';
import type { MetricsRecorder } from '../../streams/metrics.ts';
import { createSocketAdapter, type SocketAdapter, type WebSocketCtor } from '../../streams/socketAdapter.ts';
import type { AnyConnection, SyncClientOptions } from './options.ts';
import type { Reporter } from './report.ts';

type LostReason = ConnectionLostError['info']['reason'];

/** Where a session's tokens come from. */
export interface TokenSource {
  /** The token for a new attempt (`undefined`: anonymous). */
  forConnect(): string | undefined | Promise<string | undefined>;
  /** A fresh token after the server refused one; absent when there is no provider to ask. */
  readonly refresh?: () => string | Promise<string>;
}

/** What the rest of the client does at each step of a session. */
export interface SessionHooks<C> {
  /** Logged in (called before `connected` is emitted). Resolves once whatever needs the identity is ready. */
  loggedIn(conn: C, identity: Identity, token: string): Promise<void>;
  /** Every query is applied: what must happen before the client is live (migrations). */
  beforeLive(conn: C, enter: (phase: 'migration-download' | 'migration-upload') => void): Promise<void>;
  /** The connection is usable: calls may go out (called just before `synced` is emitted). */
  live(conn: C): void;
  /** The connection is gone (lost, replaced or closed). */
  ended(reason: LostReason, cause?: unknown): void;
}

/** Heartbeat settings with the probe query resolved. */
export interface SessionHeartbeat {
  readonly interval: number;
  readonly timeout: number;
  readonly maxTimeout: number;
  readonly query: string;
}

export interface SessionOptions<C extends AnyConnection> {
  readonly connect: Pick<SyncClientOptions<C>, 'builder' | 'uri' | 'database' | 'compression' | 'maxFrameBytes'> & { readonly WebSocket?: WebSocketCtor };
  /** Time (ms) from starting a connection to `InitialConnection`. */
  readonly connectTimeout: number;
  readonly heartbeat: SessionHeartbeat | undefined;
  /** The query a liveness check sends when there is no heartbeat. */
  readonly probeQuery: string;
  /** Tables (wire names) the bindings know, for the socket adapter's frame accounting. */
  readonly knownTables: ReadonlySet<string> | undefined;
  readonly scheduler: SchedulerLike;
  readonly log: Logger;
  readonly metrics: MetricsRecorder;
  readonly queries: LiveQueries;
  readonly tokens: TokenSource;
  readonly reporter: Reporter;
  readonly hooks: SessionHooks<C>;
  /** Whether the client is closing (a session ended now ends `closed`, not `reconnect`). */
  readonly closing: () => boolean;
}

export interface Sessions<C> {
  /** A new attempt each subscription (for `supervise`). */
  session(): Observable<SessionEvent>;
  /** Probe the current connection now (a page resumed): no answer in time → degraded → lost. */
  checkLiveness(): void;
  /** The current connection, while logged in. */
  readonly connection: C | undefined;
}

function lostReason(err: unknown): LostReason {
  if (err instanceof HeartbeatTimeoutError) return 'heartbeat';
  if (err instanceof ConnectionLostError) return err.info.reason;
  return 'error';
}

export function createSessions<C extends AnyConnection>(o: SessionOptions<C>): Sessions<C> {
  const { log, metrics, queries, scheduler, hooks, reporter } = o;
  const debug = (m: () => string) => log.log('debug', m);
  const hb = o.heartbeat;
  let connection: C | undefined;
  let liveCheck: (() => void) | undefined;

  const session = (): Observable<SessionEvent> =>
    new Observable<SessionEvent>((sub) => {
      let conn: C | undefined;
      let adapter: SocketAdapter | undefined;
      let ended = false;
      let protocolError: ProtocolError | undefined;
      let closeInfo: { code?: number; reason?: string } = {};
      const subs: Subscription[] = [];
      /** The heartbeat's latest round-trip estimates for this connection. */
      let estimate: { rttMs?: number; rttVarianceMs?: number } = {};
      let isLive = false;
      /** `in` per inbound frame, `out` per frame the SDK sends (each expects an answer). */
      const activity = new Subject<'in' | 'out'>();

      const teardown = (reason: LostReason, cause?: unknown) => {
        for (const s of subs) s.unsubscribe();
        queries.detach();
        hooks.ended(reason, cause);
        liveCheck = undefined;
        if (connection === conn) connection = undefined;
        try {
          conn?.disconnect();
        } catch {
          /* not connected yet */
        }
        adapter?.close();
      };
      const fail = (err: Error) => {
        if (ended) return;
        ended = true;
        teardown(lostReason(err), err);
        log.log('info', `connection lost: ${err.message}`);
        sub.error(err);
      };

      const watchHeartbeat = (thisAdapter: SocketAdapter, hb: SessionHeartbeat) => {
        let lastRttAt = -Infinity;
        subs.push(
          activity
            .pipe(
              heartbeat({
                interval: hb.interval,
                timeout: hb.timeout,
                maxTimeout: hb.maxTimeout,
                probe: () => void thisAdapter.probe(hb.query),
                isRequest: (v) => v === 'out',
                scheduler,
              }),
            )
            .subscribe({
              next: (ev) => {
                if (ev.type === 'rtt') {
                  estimate = { rttMs: Math.round(ev.srttMs * 10) / 10, rttVarianceMs: Math.round(ev.rttVarMs * 10) / 10 };
                  // At most one round-trip update per second: a status a game can render as is.
                  const t = scheduler.now();
                  if (t - lastRttAt < 1000 || !isLive) return;
                  lastRttAt = t;
                  sub.next({ type: 'quality', quality: 'good', ...estimate });
                } else if (ev.type === 'degraded') {
                  log.log('info', `no answer within ${Math.round(ev.deadlineMs)} ms: connection degraded, probing`);
                  if (isLive) sub.next({ type: 'quality', quality: 'degraded', ...estimate });
                } else if (isLive) {
                  sub.next({ type: 'quality', quality: 'good', ...estimate });
                }
              },
              error: (e) => fail(e),
            }),
        );
      };

      const start = (token: string | undefined, refreshed: boolean) => {
        if (ended) return;
        protocolError = undefined;
        closeInfo = {};
        const thisAdapter = (adapter = createSocketAdapter({
          WebSocket: o.connect.WebSocket,
          maxFrameBytes: o.connect.maxFrameBytes,
          knownTables: o.knownTables as Set<string> | undefined,
          observer: {
            opened: (protocol) => {
              debug(() => `socket open (${protocol})`);
              sub.next({ type: 'opened' });
              if (hb) watchHeartbeat(thisAdapter, hb);
            },
            frameIn: (f) => {
              metrics.frameIn(f);
              activity.next('in');
              debug(() => `← ${f.messages.map((m) => m.kind + (m.tableBytes ? `[${[...m.tableBytes].map(([t, n]) => `${t}:${n}B`).join(',')}]` : '')).join(' ')} (${f.wireBytes} B)`);
            },
            frameOut: (f) => {
              metrics.frameOut(f);
              if (!f.probe) activity.next('out');
              debug(() => `→ ${f.messages.map((m) => (m.reducer ? `${m.kind} ${m.reducer}` : m.kind)).join(' ')}${f.probe ? ' (probe)' : ''} (${f.bytes} B)`);
            },
            probeAnswered: (ms) => metrics.probeAnswered(ms),
            beforeFrame: () => queries.frameStarted(),
            afterFrame: () => queries.frameEnded(),
            closed: (code, reason) => (closeInfo = { code, reason }),
            // Reported on errors$ once, as the reason the connection is lost.
            protocolError: (e) => {
              protocolError = e;
            },
          },
        }));
        let b = o.connect.builder();
        if (o.connect.uri) b = b.withUri(o.connect.uri);
        if (o.connect.database) b = b.withDatabaseName(o.connect.database);
        b = b.withCompression(o.connect.compression ?? 'gzip').withWSFn(thisAdapter.factory as Parameters<typeof b.withWSFn>[0]);
        if (token) b = b.withToken(token);
        let connected = false;
        b.onConnect((c, identity, tok) => {
          if (ended || c !== conn) return;
          connected = true;
          connection = c;
          const identityReady = hooks.loggedIn(c, identity, tok);
          debug(() => `logged in as ${identity.toHexString().slice(0, 16)}…`);
          sub.next({ type: 'connected', identity, token: tok });
          liveCheck = () => {
            if (thisAdapter.probe(hb?.query ?? o.probeQuery)) activity.next('out');
          };
          queries.attach(c as unknown as ConnectionLike, () => {
            if (ended) return;
            void (async () => {
              await identityReady;
              if (ended) return;
              await hooks.beforeLive(c, (phase) => sub.next({ type: 'migrating', phase }));
              if (ended) return;
              metrics.connectionLive();
              hooks.live(c);
              isLive = true;
              sub.next({ type: 'synced' });
              if (estimate.rttMs !== undefined) sub.next({ type: 'quality', quality: 'good', ...estimate });
            })().catch((e) => fail(e instanceof Error ? e : new Error(String(e))));
          });
        });
        b.onConnectError((_ctx, err) => {
          if (ended) return;
          if (err instanceof AuthError) {
            const refresh = o.tokens.refresh;
            if (refresh && !refreshed) {
              log.log('info', 'token refused; asking the token provider for a fresh one');
              conn?.disconnect();
              Promise.resolve()
                .then(() => refresh())
                .then(
                  (t) => start(t, true),
                  (e) => fail(reporter.callbackFailed('token', e)),
                );
              return;
            }
            fail(new AuthError(err.message, { status: err.info.status, refreshed }, { cause: err.cause }));
            return;
          }
          fail(new ConnectionLostError(`Could not connect: ${err?.message ?? err}`, { reason: 'connect-failed' }, { cause: err }));
        });
        b.onDisconnect((_ctx, err) => {
          if (ended) return;
          fail(
            protocolError ??
              (err
                ? new ConnectionLostError(`Socket error: ${err.message}`, { reason: 'error' }, { cause: err })
                : new ConnectionLostError(`Socket closed${closeInfo.code ? ` (code ${closeInfo.code}${closeInfo.reason ? `: ${closeInfo.reason}` : ''})` : ''}.`, { reason: 'close' })),
          );
        });
        subs.push(
          scheduler.schedule(() => {
            if (!connected) fail(new ConnectionLostError(`No InitialConnection within ${o.connectTimeout} ms.`, { reason: 'connect-failed' }));
          }, o.connectTimeout),
        );
        try {
          conn = b.build();
        } catch (e) {
          fail(e instanceof Error ? e : new Error(String(e)));
        }
      };

      Promise.resolve()
        .then(() => o.tokens.forConnect())
        .then(
          (t) => start(t, false),
          (e) => fail(reporter.callbackFailed('token', e)),
        );

      return () => {
        if (ended) return;
        ended = true;
        teardown(o.closing() ? 'closed' : 'reconnect');
      };
    });

  return {
    session,
    checkLiveness: () => liveCheck?.(),
    get connection() {
      return connection;
    },
  };
}
