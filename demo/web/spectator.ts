/**
 * The spectator page: one match watched through the relay with
 * `createSpectator` — the board, the scores and the battle log live, the
 * broadcast delay as a badge, and the demo's status bar.
 *
 * `/?match=7` watches match 7; without it the page asks for an id.
 */
import { Identity } from 'spacetimedb';
import { createSpectator, type SpectatorStatus } from '../../src/index.ts';
import { byId, fill, h, hueOf, shortHex } from './dom.ts';
import { BOARD_HEIGHT, BOARD_WIDTH } from './board.ts';

interface SpectatorConfig {
  /** The relay's WebSocket URL. */
  relay: string;
  heartbeat: { interval: number; timeout: number };
  retry: { initialInterval: number; maxInterval: number };
  connectTimeout: number;
}

const hex = (id: unknown) => (id instanceof Identity ? id.toHexString() : String(id));

function renderStatus(s: SpectatorStatus): void {
  let state: string = s.state;
  let text: string = s.state;
  if (s.state === 'reconnecting') {
    const secs = s.nextRetryAt === null ? 0 : Math.max(0, Math.ceil((s.nextRetryAt - Date.now()) / 1000));
    text = secs === 0 ? 'reconnecting…' : `reconnecting in ${secs} s`;
  } else if (s.state === 'offline' && s.lastError) {
    text = `offline: ${s.lastError.message}`;
  }
  const conn = byId('conn');
  if (conn.dataset.state !== state) conn.dataset.state = state;
  byId('conn-text').textContent = text;
  byId('reconnect-now').hidden = !(state === 'reconnecting' || state === 'offline');
  byId('stale').hidden = !s.stale;
  const badge = byId('delay-badge');
  badge.hidden = s.delayMs === 0;
  badge.textContent = `delay ${Math.round(s.delayMs / 1000)} s`;
  byId('upstream').hidden = s.upstream === 'live';
  byId('version').textContent = s.version ? `v ${s.version.slice(0, 8)}` : '';
  byId('version').title = s.version ?? '';
}

async function main(): Promise<void> {
  const config = (await (await fetch('/config.json')).json()) as SpectatorConfig;
  const matchParam = new URLSearchParams(location.search).get('match');
  if (!matchParam || !/^[1-9][0-9]{0,18}$/.test(matchParam)) {
    byId('pick').hidden = false;
    byId('conn-text').textContent = 'pick a match';
    byId('pick-form').addEventListener('submit', (e) => {
      e.preventDefault();
      location.search = `?match=${encodeURIComponent((byId('pick-id') as HTMLInputElement).value.trim())}`;
    });
    return;
  }
  byId('watch').hidden = false;
  const spectator = createSpectator({
    url: config.relay,
    stream: `match/${matchParam}`,
    heartbeat: config.heartbeat,
    retry: config.retry,
    connectTimeout: config.connectTimeout,
  });
  (window as unknown as { spectator: typeof spectator }).spectator = spectator;
  byId('reconnect-now').addEventListener('click', () => spectator.reconnectNow());
  spectator.status$.subscribe(renderStatus);
  setInterval(() => renderStatus(spectator.status), 1000);

  spectator.table$<any>('match').subscribe((rows) => {
    const match = [...rows.values()][0];
    byId('match-title').textContent = match ? `Match ${match.id}: ${match.name}` : `Match ${matchParam}`;
    byId('match-state').textContent = match ? `${match.state.tag.toLowerCase()} · up to ${match.maxPlayers} players` : 'no such match (yet)';
    document.body.dataset.matchState = match ? match.state.tag : 'none';
  });
  spectator.table$<any>('members').subscribe((rows) => {
    const members = [...rows.values()].sort((a, b) => b.score - a.score);
    fill(byId('scores'), ...members.map((m) => h('li', { 'data-player': hex(m.player), 'data-score': String(m.score) }, `${shortHex(hex(m.player))} — ${m.score}`)));
  });
  spectator.table$<any>('log').subscribe((rows) => {
    const entries = [...rows.values()].sort((a, b) => b.seq - a.seq).slice(0, 50);
    fill(byId('battle-log'), ...entries.map((e) => h('li', { 'data-seq': String(e.seq) }, `#${e.seq} ${shortHex(hex(e.actor))} ${e.action}`)));
    byId('battle-log').dataset.count = String(rows.size);
  });
  spectator.table$<any>('nodes').subscribe((rows) => {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${BOARD_WIDTH} ${BOARD_HEIGHT}`);
    for (const n of rows.values()) {
      const c = document.createElementNS(ns, 'circle');
      c.setAttribute('cx', String(n.x));
      c.setAttribute('cy', String(n.y));
      c.setAttribute('r', '10');
      c.setAttribute('fill', `hsl(${hueOf(hex(n.owner))} 70% 55%)`);
      c.dataset.node = String(n.id);
      svg.append(c);
    }
    fill(byId('spectator-board'), svg as unknown as HTMLElement);
  });
}

main().catch((e) => {
  byId('conn-text').textContent = `failed: ${e instanceof Error ? e.message : String(e)}`;
});
