/**
 * The client's status and game phase, derived from streams: the lifecycle
 * events (through the pure reducers of `streams/status.ts`), whether rows
 * were shown, and where calls are kept. Each emits only when it changed.
 *
 * @module
 */
import { combineLatest, distinctUntilChanged, map, scan, startWith, type Observable } from 'rxjs';
import type { PlayerFacingError } from '../../streams/errors.ts';
import { initialStatus, reducePhase, reduceStatus, type LifecycleEvent, type Phase, type SyncStatus } from '../../streams/status.ts';

/** Same keys, same values (`Object.is`). */
function shallowEqual<T extends object>(a: T, b: T): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.is((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

export interface StatusSources {
  /** The lifecycle events, errors already given their player-facing text. */
  readonly events: Observable<LifecycleEvent>;
  /** Rows were shown (cached or from the server): when not live, they are stale. */
  readonly shown: Observable<boolean>;
  /** Where calls and cached rows are kept. */
  readonly storage: Observable<SyncStatus['storage']>;
}

/** The status as the game sees it, starting with the initial one (taken at `now`). */
export function deriveStatus(sources: StatusSources, now: number): Observable<SyncStatus> {
  const initial = initialStatus(now);
  const connection$ = sources.events.pipe(scan(reduceStatus, initial), startWith(initial), distinctUntilChanged());
  return combineLatest([connection$, sources.shown.pipe(distinctUntilChanged()), sources.storage.pipe(distinctUntilChanged())]).pipe(
    map(([s, shown, storage]): SyncStatus => ({ ...s, lastError: s.lastError as PlayerFacingError | null, stale: shown && s.state !== 'live', storage })),
    distinctUntilChanged(shallowEqual),
  );
}

/** The game phase, starting with `connect`. */
export function derivePhase(events: Observable<LifecycleEvent>): Observable<Phase> {
  return events.pipe(scan(reducePhase, 'connect' as Phase), startWith('connect' as Phase), distinctUntilChanged());
}
