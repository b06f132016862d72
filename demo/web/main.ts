/**
 * The arena demo page: stdb-rx in the browser (real WebSocket, real
 * IndexedDB). Boot: read `/config.json`, open the storage of that database,
 * resume the stored session or show the login.
 */
import { Subscription, interval } from 'rxjs';
import { AuthError, ConnectionLostError, HeartbeatTimeoutError, ProtocolError, ReducerRejectedError, SubscriptionError, withUserMessage, type SyncStatus, type Phase } from '../../src/index.ts';
import type { OutboxEntry, OutboxState, Storage } from '../../storage/index.ts';
import { mountBoard } from './board.ts';
import type { PageConfig } from './config.ts';
import { byId, fill, h, shortHex } from './dom.ts';
import { Session, openArenaStorage } from './session.ts';
import { mountSocial } from './social.ts';

// ---- toasts ----------------------------------------------------------------

interface ToastSpec {
  /** One toast per failure class: a newer one replaces it. */
  cls: string;
  kind: 'error' | 'warn';
  text: string;
  action?: { label: string; run: () => unknown };
  /** Auto-dismiss after this many ms. @default never */
  ttl?: number;
}

const toasts = new Map<string, HTMLElement>();

function toast(spec: ToastSpec): void {
  dismissToast(spec.cls);
  const el = h(
    'div',
    { class: `toast ${spec.kind}`, 'data-class': spec.cls, role: 'alert' },
    h('span', { class: 'msg' }, spec.text),
    spec.action
      ? h('button', {
          class: 'action',
          onclick: () => {
            dismissToast(spec.cls);
            void spec.action!.run();
          },
        }, spec.action.label)
      : null,
    h('button', { class: 'close', title: 'dismiss', onclick: () => dismissToast(spec.cls) }, '✕'),
  );
  toasts.set(spec.cls, el);
  byId('toasts').append(el);
  if (spec.ttl) setTimeout(() => toasts.get(spec.cls) === el && dismissToast(spec.cls), spec.ttl);
}

function dismissToast(cls: string): void {
  toasts.get(cls)?.remove();
  toasts.delete(cls);
}

const REDUCER_LABEL: Record<string, string> = {
  moveNode: 'Move',
  createNode: 'New node',
  createMatch: 'New match',
  joinMatch: 'Join',
  startMatch: 'Start battle',
  recordBattleEvent: 'Attack',
  endMatch: 'End match',
  leaveMatch: 'Leave',
  sendChat: 'Chat message',
  setName: 'Rename',
};
const label = (reducer: string) => REDUCER_LABEL[reducer] ?? reducer;

// ---- the page --------------------------------------------------------------

class Page {
  session: Session | undefined;
  #bag = new Subscription();
  #status: SyncStatus | undefined;
  #outbox: OutboxState = { pending: [], queued: 0, sent: 0, rejected: [], quarantined: [] };
  #identityHex: string | undefined;
  /** Whether this session's client was ever live: before that, a failure means "can't reach", not "lost". */
  #sawLive = false;
  /** `Reconnect now` was pressed: show that it is trying until the attempt ends one way or the other. */
  #trying: { attempt: number } | undefined;

  constructor(
    readonly config: PageConfig,
    readonly storage: Storage,
  ) {
    storage.outbox.outbox$.subscribe((state) => {
      this.#outbox = state;
      this.renderQueue();
      this.renderConnection();
    });
    storage.errors$.subscribe((e) => toast({ cls: 'storage', kind: 'warn', text: withUserMessage(e).userMessage }));
    interval(250).subscribe(() => this.renderConnection());
    byId('reconnect-now').addEventListener('click', () => {
      const client = this.session?.client;
      if (!client) return;
      this.#trying = { attempt: client.status.attempt };
      client.reconnectNow();
      this.renderConnection();
    });
    byId('sign-out').addEventListener('click', () => void this.signOut());
    byId('play-anon').addEventListener('click', () => this.signIn());
    byId('token-sign-in').addEventListener('click', async () => {
      const token = byId<HTMLTextAreaElement>('token-input').value.trim();
      if (!token) return;
      await this.storage.tokens.set(token);
      this.signIn();
    });
    if (config.admin) this.mountDevPanel();
  }

  /** Start a session: with the stored token, else anonymous (a pasted token is stored first). */
  signIn(identityHex?: string): void {
    this.#identityHex = identityHex;
    const session = (this.session = new Session({ config: this.config, storage: this.storage }));
    const { client } = session;
    const bag = (this.#bag = new Subscription());
    byId('login').hidden = true;
    byId('game').hidden = false;
    byId('sign-out').hidden = false;

    bag.add(
      client.identity$.subscribe((identity) => {
        this.#identityHex = identity.toHexString();
        this.renderConnection();
      }),
    );
    bag.add(
      client.status$.subscribe((s) => {
        const before = this.#status;
        this.#status = s;
        if (s.state === 'live') this.#sawLive = true;
        // A toast about a condition goes when the condition ends.
        if (s.state === 'live') for (const cls of ['connection', 'sync', 'auth', 'quality']) dismissToast(cls);
        if (s.quality !== 'degraded') dismissToast('quality');
        // `Reconnect now` is answered once the attempt it started ends (live, or failed and rescheduled).
        if (this.#trying && s !== before && (s.state !== 'reconnecting' || s.attempt !== this.#trying.attempt)) this.#trying = undefined;
        this.renderConnection();
      }),
    );
    bag.add(this.mountProgress(client.phase$, client.syncProgress$));
    bag.add(client.errors$.subscribe((e) => this.onError(e)));
    bag.add(mountBoard(byId('board'), byId<HTMLButtonElement>('add-node'), session, this.storage, () => this.#identityHex));
    bag.add(mountSocial(session, () => this.#identityHex));
  }

  async signOut(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.#bag.unsubscribe();
    this.#status = undefined;
    this.#identityHex = undefined;
    this.#trying = undefined;
    this.#sawLive = false;
    await session?.close();
    await this.storage.signOut();
    this.showLogin();
  }

  showLogin(): void {
    byId('login').hidden = false;
    byId('game').hidden = true;
    byId('sign-out').hidden = true;
    byId('progress').hidden = true;
    this.renderConnection();
  }

  /** Every toast shows the error's `userMessage` (the player's language); the technical message goes to the console. */
  onError(error: Error): void {
    const e = withUserMessage(error);
    console.debug(`[stdb-rx] ${e.name}: ${e.message}`);
    if (e instanceof AuthError) {
      toast({ cls: 'auth', kind: 'error', text: e.userMessage, action: { label: 'Sign in again', run: () => this.signOut() } });
    } else if (e instanceof ReducerRejectedError) {
      if (e.info.kind === 'superseded') return; // a newer move of the same node replaced it: expected
      // The change is already rolled back on screen: the toast says so, and offers nothing to undo;
      // its outbox entry is dismissed, so the queue and the banner count only what is still to be sent.
      const mutationId = (e.info.args as { mutationId?: string } | undefined)?.mutationId;
      if (mutationId) void this.storage.outbox.dismiss([mutationId]).catch(() => undefined);
      toast({ cls: `rejected:${e.info.reducer}`, kind: 'error', text: `${label(e.info.reducer)}: ${e.userMessage}. It was undone.`, ttl: 8_000 });
    } else if (e instanceof ConnectionLostError && e.info.reducer) {
      toast({ cls: `lost:${e.info.reducer}`, kind: 'warn', text: `${label(e.info.reducer)}: ${e.userMessage}`, ttl: 8_000 });
    } else if (e instanceof ConnectionLostError || e instanceof HeartbeatTimeoutError) {
      // The top bar and the banner already say it; a toast would only repeat them.
      return;
    } else if (e instanceof SubscriptionError || e instanceof ProtocolError) {
      toast({ cls: 'sync', kind: 'error', text: e.userMessage });
    } else {
      toast({ cls: 'other', kind: 'error', text: e.userMessage, ttl: 8_000 });
    }
  }

  renderConnection(): void {
    const conn = byId('conn');
    const s = this.#status;
    let state: string;
    let text: string;
    if (!this.session) [state, text] = ['signed-out', 'signed out'];
    else if (!s || s.state === 'connecting') [state, text] = ['connecting', 'connecting…'];
    else if (s.state === 'syncing') [state, text] = ['syncing', 'syncing…'];
    else if (s.state === 'live') [state, text] = s.quality === 'degraded' ? ['degraded', 'weak connection'] : ['live', 'live'];
    else if (s.state === 'reconnecting') {
      state = 'reconnecting';
      const secs = s.nextRetryAt === null ? 0 : Math.max(0, Math.ceil((s.nextRetryAt - Date.now()) / 1000));
      text = this.#trying ? 'trying now…' : s.nextRetryAt === null || secs === 0 ? 'reconnecting…' : `reconnecting in ${secs} s`;
    } else if (s.state === 'offline' && s.lastError instanceof AuthError) [state, text] = ['signed-out', 'sign-in refused'];
    else if (s.state === 'offline') [state, text] = ['offline', this.#trying ? 'trying now…' : 'offline'];
    else [state, text] = [s.state, s.state];
    if (conn.dataset.state !== state) conn.dataset.state = state;
    byId('conn-text').textContent = text;
    // The round trip is shown only while it is measured on a live connection.
    byId('rtt').textContent = s && s.state === 'live' && s.rttMs !== undefined ? `RTT ${Math.round(s.rttMs)} ms` : 'RTT –';
    const reconnect = byId<HTMLButtonElement>('reconnect-now');
    reconnect.hidden = !(state === 'reconnecting' || state === 'offline');
    reconnect.disabled = !!this.#trying;
    reconnect.textContent = this.#trying ? 'Trying…' : 'Reconnect now';
    byId('stale').hidden = !(this.session && s?.stale);
    byId('who').textContent = this.#identityHex ? shortHex(this.#identityHex) : '';
    byId('who').title = this.#identityHex ?? '';
    const n = this.#outbox.pending.length;
    const rejected = this.#outbox.rejected.length;
    byId('queue-count').textContent = `queue ${n}`;
    const showBanner = state === 'reconnecting' || state === 'offline' || (state === 'connecting' && n > 0);
    byId('offline-banner').hidden = !showBanner;
    byId('offline-banner').dataset.state = state;
    const headline =
      state === 'reconnecting' ? (this.#sawLive ? 'Connection lost — reconnecting' : "Can't reach the server — retrying") : state === 'connecting' ? 'Connecting' : state === 'signed-out' ? 'Signed out' : "You're offline";
    const counted = n === 0 ? 'nothing queued' : `${n} change${n === 1 ? '' : 's'} queued`;
    byId('banner-text').textContent = `${headline} · ${counted}${rejected ? ` · ${rejected} rejected` : ''}`;
  }


  renderQueue(): void {
    const describe = (e: OutboxEntry) => {
      let args = '';
      try {
        const a = this.storage.outbox.decodeArgs(e);
        args = Object.entries(a)
          .filter(([k]) => k !== 'mutationId')
          .map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v) : String(v)}`)
          .join(' ');
      } catch {
        args = '(arguments of an older version)';
      }
      return `${e.reducer} ${args}`;
    };
    fill(
      byId('queue-list'),
      ...this.#outbox.pending.map((e) => h('li', { 'data-entry': e.id, 'data-status': e.status }, h('span', { class: 'status' }, e.status), describe(e), e.attempts ? ` (${e.attempts} tries)` : '')),
      ...this.#outbox.rejected.map((e) =>
        h(
          'li',
          { class: 'rejected', 'data-entry': e.id, 'data-status': 'rejected' },
          h('span', { class: 'status' }, 'rejected'),
          `${describe(e)} — ${e.error?.message ?? ''} `,
          h('button', { class: 'small', onclick: () => this.storage.outbox.dismiss([e.id]) }, 'discard'),
          h('button', { class: 'small', onclick: () => this.storage.outbox.retry([e.id]) }, 'retry'),
        ),
      ),
      this.#outbox.pending.length + this.#outbox.rejected.length === 0 ? h('li', { class: 'muted' }, 'nothing queued') : null,
    );
  }

  mountProgress(phase$: Session['client']['phase$'], progress$: Session['client']['syncProgress$']): Subscription {
    let phase: Phase = 'connect';
    let last = { applied: 0, total: 0, rows: 0 };
    const render = () => {
      const bar = byId('progress');
      const syncing = phase === 'server-sync' || phase === 'migration-download' || phase === 'migration-upload';
      bar.hidden = !syncing;
      bar.dataset.phase = phase;
      const pct = last.total ? Math.round((100 * last.applied) / last.total) : 0;
      (bar.querySelector('.fill') as HTMLElement).style.width = `${pct}%`;
      bar.querySelector('.label')!.textContent =
        phase === 'server-sync' ? `Syncing ${last.applied}/${last.total} queries · ${last.rows} rows` : phase.startsWith('migration') ? `Migrating local data (${phase.slice(10)})` : '';
    };
    const sub = phase$.subscribe((p) => ((phase = p), render()));
    sub.add(progress$.subscribe((p) => ((last = p), render())));
    sub.add(() => (byId('progress').hidden = true));
    return sub;
  }

  mountDevPanel(): void {
    const panel = byId('dev-panel');
    panel.hidden = false;
    const result = byId('dev-result');
    for (const button of panel.querySelectorAll<HTMLButtonElement>('button[data-dev]')) {
      button.addEventListener('click', async () => {
        const op = button.dataset.dev!;
        result.textContent = `${button.textContent}…`;
        try {
          const answer = await fetch(`/_dev/${op}`, { method: 'POST', headers: { 'x-stdb-rx-admin': '1' } });
          result.textContent = `${button.textContent}: ${answer.ok ? 'done' : `${answer.status} ${await answer.text()}`}`;
        } catch (e) {
          result.textContent = `${button.textContent}: ${(e as Error).message}`;
        }
      });
    }
  }
}

async function boot(): Promise<void> {
  const config = (await (await fetch('/config.json')).json()) as PageConfig;
  const storage = await openArenaStorage(config);
  const page = new Page(config, storage);
  (globalThis as { arena?: Page }).arena = page; // for the console
  const saved = await storage.tokens.session();
  if (saved) {
    // The client resumes with the stored token (and identity: the outbox may send what an earlier load queued).
    page.signIn(saved.identity ?? undefined);
  } else {
    page.showLogin();
  }
}

boot().catch((e) => {
  fill(byId('toasts'), h('div', { class: 'toast error' }, `The page failed to start: ${(e as Error).message}`));
  throw e;
});
