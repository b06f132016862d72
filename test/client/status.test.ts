import { expect } from 'chai';
import { distinctUntilChanged, map, scan, tap, type Observable } from 'rxjs';
import { Identity } from 'spacetimedb';
import { supervise, type SessionEvent, type Trigger } from '../../streams/lifecycle.ts';
import { initialStatus, reducePhase, reduceStatus, type ConnectionStatus, type LifecycleEvent, type Phase } from '../../streams/status.ts';
import { AuthError } from '../../streams/errors.ts';
import { newScheduler } from '../operators/marbles.ts';

const ID = Identity.zero();
/** Session marble values: o opened, c connected, s synced. */
const SESSION_VALUES: Record<string, SessionEvent> = {
  o: { type: 'opened' },
  c: { type: 'connected', identity: ID, token: 't' },
  s: { type: 'synced' },
};
/** State marble values. */
const STATES = { K: 'connecting', Y: 'syncing', L: 'live', R: 'reconnecting', O: 'offline' } as const;

function states(events: Observable<LifecycleEvent>): Observable<string> {
  return events.pipe(
    scan((s, e) => reduceStatus(s, e), initialStatus(0)),
    map((s) => s.state),
    distinctUntilChanged(),
  );
}

describe('connection state machine', () => {
  describe('reduceStatus (pure)', () => {
    it('walks connecting → syncing → live, records retries and resets them once live', () => {
      const evs: LifecycleEvent[] = [
        { type: 'connecting', at: 0 },
        { type: 'opened', at: 1 },
        { type: 'connected', at: 2, identity: ID, token: 't' },
        { type: 'synced', at: 3 },
        { type: 'lost', at: 10, error: new Error('socket closed') },
        { type: 'retry-scheduled', at: 10, attempt: 1, delay: 250 },
      ];
      const s = evs.reduce(reduceStatus, initialStatus(0));
      expect(s).to.deep.include({ state: 'reconnecting', attempt: 1, nextRetryAt: 260, since: 10 });
      expect(s.lastError?.message).to.equal('socket closed');
      const back = [
        { type: 'connecting', at: 260 },
        { type: 'connected', at: 270, identity: ID, token: 't' },
        { type: 'synced', at: 280 },
      ] as LifecycleEvent[];
      const live = back.reduce(reduceStatus, s);
      expect(live).to.deep.equal({ state: 'live', attempt: 0, nextRetryAt: null, lastError: null, since: 280, quality: 'good', rttMs: undefined, rttVarianceMs: undefined } satisfies ConnectionStatus);
    });

    it('tracks quality and round trips only while live, and clears them when the connection is lost', () => {
      let s = [
        { type: 'connecting', at: 0 },
        { type: 'connected', at: 1, identity: ID, token: 't' },
      ].reduce(reduceStatus as (s: ConnectionStatus, e: any) => ConnectionStatus, initialStatus(0));
      expect(s).to.deep.include({ state: 'syncing', quality: 'lost', rttMs: undefined });
      // quality before live is ignored: the figures describe a live connection only
      expect(reduceStatus(s, { type: 'quality', at: 2, quality: 'good', rttMs: 40, rttVarianceMs: 5 })).to.equal(s);
      s = reduceStatus(s, { type: 'synced', at: 3 });
      expect(s).to.deep.include({ state: 'live', quality: 'good', rttMs: undefined, rttVarianceMs: undefined });
      s = reduceStatus(s, { type: 'quality', at: 4, quality: 'good', rttMs: 40, rttVarianceMs: 5 });
      expect(s).to.deep.include({ state: 'live', quality: 'good', rttMs: 40, rttVarianceMs: 5, since: 3 });
      const same = reduceStatus(s, { type: 'quality', at: 5, quality: 'good', rttMs: 40, rttVarianceMs: 5 });
      expect(same).to.equal(s);
      s = reduceStatus(s, { type: 'quality', at: 6, quality: 'degraded', rttMs: 40, rttVarianceMs: 5 });
      expect(s).to.deep.include({ state: 'live', quality: 'degraded', since: 3 });
      s = reduceStatus(s, { type: 'lost', at: 7, error: new Error('heartbeat') });
      expect(s).to.deep.include({ state: 'reconnecting', quality: 'lost', rttMs: undefined, rttVarianceMs: undefined });
      s = reduceStatus(s, { type: 'retry-scheduled', at: 7, attempt: 1, delay: 100 });
      expect(s).to.deep.include({ quality: 'lost', rttMs: undefined });
      expect(reducePhase('active', { type: 'quality', at: 8, quality: 'good' })).to.equal('active');
    });

    it('keeps `since` when the state does not change and treats closed as final', () => {
      let s = reduceStatus(initialStatus(0), { type: 'lost', at: 5, error: new Error('x') });
      s = reduceStatus(s, { type: 'retry-scheduled', at: 7, attempt: 1, delay: 1 });
      expect(s.since).to.equal(5);
      s = reduceStatus(s, { type: 'closed', at: 9 });
      expect(reduceStatus(s, { type: 'synced', at: 10 })).to.equal(s);
      expect(s.state).to.equal('closed');
    });

    it('maps the game flow onto phases, leaving the migration phases to the storage layer', () => {
      const types: LifecycleEvent[] = [
        { type: 'connecting', at: 0 },
        { type: 'opened', at: 0 },
        { type: 'connected', at: 0, identity: ID, token: 't' },
        { type: 'synced', at: 0 },
        { type: 'lost', at: 0, error: new Error('x') },
      ];
      const phases: Phase[] = [];
      types.reduce<Phase>((p, e) => {
        const n = reducePhase(p, e);
        phases.push(n);
        return n;
      }, 'connect');
      expect(phases).to.deep.equal(['connect', 'login', 'server-sync', 'active', 'connect']);
    });
  });

  describe('supervise (fake sessions, virtual time)', () => {
    it('replaces a lost session after the backoff delay and reaches live again', () => {
      newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
        const s1 = cold('-o-c-s--#', SESSION_VALUES);
        const s2 = cold('          -o-c-s', SESSION_VALUES);
        const sessions = [s1, s2];
        let i = 0;
        const events = supervise({ session: () => sessions[i++], retry: { initialInterval: 10 } });
        expectObservable(states(events)).toBe('K--Y-L--R------------Y-L', STATES);
        expectSubscriptions(s1.subscriptions).toBe('^-------!');
        expectSubscriptions(s2.subscriptions).toBe('------------------^');
      });
    });

    it('passes the session\'s quality reports through: live good → degraded → good, then lost clears them', () => {
      newScheduler().run(({ cold, expectObservable }) => {
        const values: Record<string, SessionEvent> = {
          ...SESSION_VALUES,
          g: { type: 'quality', quality: 'good', rttMs: 12, rttVarianceMs: 3 },
          d: { type: 'quality', quality: 'degraded', rttMs: 12, rttVarianceMs: 3 },
        };
        const session = cold('-o-c-s-g-d-g-#', values);
        const events = supervise({ session: () => session, retry: { initialInterval: 1000 } });
        const shown = events.pipe(
          scan((s, e) => reduceStatus(s, e), initialStatus(0)),
          map((s) => `${s.state}/${s.quality}/${s.rttMs ?? '-'}`),
          distinctUntilChanged(),
        );
        expectObservable(shown, '^--------------!').toBe('a--b-c-d-e-d-f', {
          a: 'connecting/lost/-',
          b: 'syncing/lost/-',
          c: 'live/good/-',
          d: 'live/good/12',
          e: 'live/degraded/12',
          f: 'reconnecting/lost/-',
        });
      });
    });

    it('grows the delay while attempts keep failing and resets it once live', () => {
      const scheduler = newScheduler();
      const retries: string[] = [];
      scheduler.run(({ cold, expectObservable }) => {
        const fail = () => cold<SessionEvent>('-#');
        const sessions = [fail(), fail(), cold('-o-c-s-#', SESSION_VALUES), fail()];
        let i = 0;
        const events = supervise({ session: () => sessions[i++] ?? cold<SessionEvent>('-'), retry: { initialInterval: 2 } }).pipe(
          tap((e) => {
            if (e.type === 'retry-scheduled') retries.push(`${e.at}:${e.attempt}:${e.delay}`);
          }),
        );
        // attempts at 0, 3 (after 2), 8 (after 4: live at 13, lost at 15), 17 (after 2 again), 22 (after 4)
        expectObservable(states(events), '^-----------------------!').toBe('KR---------Y-L-R', STATES);
      });
      expect(retries).to.deep.equal(['1:1:2', '4:2:4', '15:1:2', '18:2:4']);
    });

    it('stops on a non-retryable error with the error as lastError, until reconnectNow()', () => {
      newScheduler().run(({ cold, hot, expectObservable }) => {
        const refused = new AuthError('token refused', { status: 401, refreshed: true });
        const sessions = [cold<SessionEvent>('--#', undefined, refused), cold('-o-c-s', SESSION_VALUES)];
        let i = 0;
        const triggers = hot<Trigger>('---------n', { n: 'now' });
        const events = supervise({
          session: () => sessions[i++],
          retry: { initialInterval: 1 },
          isFatal: (e) => e instanceof AuthError,
          triggers,
        });
        const statuses = events.pipe(
          scan((s, e) => reduceStatus(s, e), initialStatus(0)),
          map((s) => `${s.state}/${s.lastError?.name ?? '-'}`),
          distinctUntilChanged(),
        );
        expectObservable(statuses).toBe('K-(RO)---k--Y-L', {
          k: 'connecting/AuthError',
          K: 'connecting/-',
          R: 'reconnecting/AuthError',
          O: 'offline/AuthError',
          Y: 'syncing/AuthError',
          L: 'live/-',
        });
      });
    });

    it('reconnectNow() skips the backoff wait and is ignored while live', () => {
      newScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const s1 = cold('-o-c-s-#', SESSION_VALUES);
        const s2 = cold('-o-c-s', SESSION_VALUES);
        const sessions = [s1, s2];
        let i = 0;
        const triggers = hot<Trigger>('-----n-----n', { n: 'now' });
        const events = supervise({ session: () => sessions[i++], retry: { initialInterval: 1000 }, triggers });
        // the first `now` (frame 5) hits a live session: ignored; the second (frame 11) cuts the 1000 ms wait.
        expectObservable(states(events)).toBe('K--Y-L-R------Y-L', STATES);
        expectSubscriptions(s2.subscriptions).toBe('-----------^');
      });
    });

    it('goes offline on the offline event, tearing the session down, and reconnects on online', () => {
      newScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const s1 = cold('-o-c-s-----', SESSION_VALUES);
        const s2 = cold('-o-c-s', SESSION_VALUES);
        const sessions = [s1, s2];
        let i = 0;
        const triggers = hot<Trigger>('-------f---n', { f: 'offline', n: 'online' });
        const events = supervise({ session: () => sessions[i++], retry: { initialInterval: 1000 }, triggers });
        expectObservable(states(events)).toBe('K--Y-L-O---K--Y-L', STATES);
        expectSubscriptions(s1.subscriptions).toBe('^------!');
        expectSubscriptions(s2.subscriptions).toBe('-----------^');
      });
    });

    it('asks a live session to check itself on page resume instead of reconnecting', () => {
      let checks = 0;
      newScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
        const s1 = cold('-o-c-s-----', SESSION_VALUES);
        const triggers = hot<Trigger>('-------r', { r: 'resume' });
        const events = supervise({ session: () => s1, retry: { initialInterval: 1 }, triggers, checkLiveness: () => checks++ });
        expectObservable(states(events)).toBe('K--Y-L', STATES);
        expectSubscriptions(s1.subscriptions).toBe('^');
      });
      expect(checks).to.equal(1);
    });
  });
});
