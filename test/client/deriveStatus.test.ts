/**
 * The client's status and phase, derived from the lifecycle events, "rows
 * shown" and the storage mode: marble tests in virtual time.
 */
import { expect } from 'chai';
import { map } from 'rxjs';
import { derivePhase, deriveStatus } from '../../src/client/status.ts';
import { ConnectionLostError } from '../../streams/errors.ts';
import type { LifecycleEvent, SyncStatus } from '../../streams/status.ts';
import { newScheduler } from '../operators/marbles.ts';

const brief = (s: SyncStatus) => `${s.state}${s.stale ? '/stale' : ''}/${s.storage}`;

describe('client status derivation (src/client/status.ts)', () => {
  const lost = new ConnectionLostError('gone', { reason: 'close' });
  const ev: Record<string, LifecycleEvent> = {
    k: { type: 'connecting', at: 1 },
    o: { type: 'opened', at: 2 },
    c: { type: 'connected', at: 3, identity: {} as never, token: 't' },
    s: { type: 'synced', at: 4 },
    l: { type: 'lost', at: 5, error: lost },
  };

  it('emits once per real change: repeated and no-op events, and "shown" flipping while live, emit nothing', () => {
    newScheduler().run(({ hot, expectObservable }) => {
      const events = hot<LifecycleEvent>('-k-k-o-c-s----l', ev);
      const shown = hot<boolean>('     f--------t-t--', { f: false, t: true });
      const storage = hot<SyncStatus['storage']>('d-------------m', { d: 'durable', m: 'memory' });
      const status = deriveStatus({ events, shown, storage }, 0).pipe(map(brief));
      // 'connecting' twice, 'opened' (no state change) and shown=true while live: no emission.
      // At frame 14 the loss and the storage change arrive together: two emissions.
      expectObservable(status).toBe('a------b-c----(de)', {
        a: 'connecting/durable',
        b: 'syncing/durable',
        c: 'live/durable',
        d: 'reconnecting/stale/durable',
        e: 'reconnecting/stale/memory',
      });
    });
  });

  it('keeps the lost error as lastError until live again', () => {
    newScheduler().run(({ hot, expectObservable }) => {
      const events = hot<LifecycleEvent>('-l-k-c-s', ev);
      const status = deriveStatus({ events, shown: hot('t', { t: false }), storage: hot('n', { n: 'none' as const }) }, 0).pipe(map((s) => s.lastError?.message ?? null));
      expectObservable(status).toBe('al---l-a', { a: null, l: 'gone' });
    });
  });

  it('phase: connect → login → server-sync → active, back to connect on a loss', () => {
    newScheduler().run(({ hot, expectObservable }) => {
      const events = hot<LifecycleEvent>('-k-o-c-s-l', ev);
      expectObservable(derivePhase(events)).toBe('a--b-c-d-a', { a: 'connect', b: 'login', c: 'server-sync', d: 'active' });
    });
  });

  it('starts with the initial status at once (a BehaviorSubject can be filled synchronously)', () => {
    const seen: SyncStatus[] = [];
    newScheduler().run(({ hot }) => {
      deriveStatus({ events: hot<LifecycleEvent>(''), shown: hot('f', { f: false }), storage: hot('n', { n: 'none' as const }) }, 42).subscribe((s) => seen.push(s));
    });
    expect(seen[0]).to.include({ state: 'connecting', since: 42, stale: false, storage: 'none', quality: 'lost' });
  });
});
