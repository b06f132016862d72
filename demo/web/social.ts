/** Players online, the match lobby with its battle log, and chat. */
import { combineLatest, type Subscription } from 'rxjs';
import type { Identity } from 'spacetimedb';
import { byId, fill, h, hueOf, shortHex } from './dom.ts';
import { tables, type Session } from './session.ts';

interface PlayerRow { identity: Identity; name: string; online: boolean }
interface MatchRow { id: bigint; name: string; host: Identity; state: { tag: 'Lobby' | 'Battle' | 'Done' }; maxPlayers: number; winner: Identity | undefined }
interface MemberRow { id: bigint; matchId: bigint; player: Identity; score: number }
interface LogRow { id: bigint; matchId: bigint; seq: number; actor: Identity; action: string; detail: string }
interface ChatRow { id: bigint; sender: Identity; text: string; sentAt: { toDate(): Date } }

const onSubmit = (form: HTMLFormElement, act: () => void) => {
  const handler = (e: Event) => {
    e.preventDefault();
    act();
  };
  form.addEventListener('submit', handler);
  return () => form.removeEventListener('submit', handler);
};

/** `{"roll":4}` → ` (rolled 4)`; anything else as it is. */
function describeDetail(detail: string): string {
  try {
    const d = JSON.parse(detail) as { roll?: unknown };
    if (typeof d?.roll === 'number') return ` (rolled ${d.roll})`;
  } catch {
    /* shown as it is */
  }
  return detail && detail !== '{}' ? ` ${detail}` : '';
}

export function mountSocial(session: Session, myHex: () => string | undefined): Subscription {
  const { client } = session;
  const names = new Map<string, string>();
  const nameOf = (who: Identity) => names.get(who.toHexString()) ?? shortHex(who.toHexString());

  const sub = client.table$(tables.player).subscribe((rows) => {
    names.clear();
    const online: PlayerRow[] = [];
    for (const p of rows.values() as Iterable<PlayerRow>) {
      names.set(p.identity.toHexString(), p.name);
      if (p.online) online.push(p);
    }
    online.sort((a, b) => a.name.localeCompare(b.name));
    byId('players-n').textContent = `(${online.length})`;
    fill(
      byId('players'),
      ...online.map((p) => {
        const hex = p.identity.toHexString();
        const li = h('li', { 'data-identity': hex }, h('span', { class: 'swatch' }), h('span', {}, p.name), h('span', { class: 'id' }, shortHex(hex)), hex === myHex() ? h('span', { class: 'muted' }, '(you)') : null);
        li.style.setProperty('--hue', String(hueOf(hex)));
        return li;
      }),
    );
  });

  const nameInput = byId<HTMLInputElement>('name-input');
  sub.add(
    onSubmit(byId('rename'), () => {
      const name = nameInput.value.trim();
      if (name) session.mutate('setName', { name });
      nameInput.value = '';
    }),
  );

  // ---- matches -----------------------------------------------------------
  const matchName = byId<HTMLInputElement>('match-name');
  sub.add(
    onSubmit(byId('create-match'), () => {
      const name = matchName.value.trim() || `match ${Math.floor(Math.random() * 900 + 100)}`;
      session.mutate('createMatch', { name, maxPlayers: 8 });
      matchName.value = '';
    }),
  );
  let lastSignature = '';
  sub.add(
    combineLatest([client.table$(tables.arenaMatch), client.table$(tables.matchMember), client.table$(tables.battleLog)]).subscribe(([matches, members, log]) => {
      const me = myHex();
      const byMatch = new Map<bigint, MemberRow[]>();
      for (const m of members.values() as Iterable<MemberRow>) {
        const list = byMatch.get(m.matchId) ?? [];
        list.push(m);
        byMatch.set(m.matchId, list);
      }
      const list = ([...matches.values()] as MatchRow[]).sort((a, b) => (a.id < b.id ? 1 : -1));
      const shown = [...list.filter((m) => m.state.tag !== 'Done'), ...list.filter((m) => m.state.tag === 'Done').slice(0, 3)];
      const mineActive = list.find((m) => m.state.tag !== 'Lobby' && (byMatch.get(m.id) ?? []).some((x) => x.player.toHexString() === me));
      // Re-render the list only when it changed, so a button is not replaced under the pointer.
      const signature = JSON.stringify([me, shown.map((m) => [String(m.id), m.name, m.state.tag, m.host.toHexString(), m.winner?.toHexString(), (byMatch.get(m.id) ?? []).map((x) => x.player.toHexString())])]);
      if (signature !== lastSignature) {
        lastSignature = signature;
        fill(
        byId('matches'),
        ...shown.map((m) => {
          const ms = byMatch.get(m.id) ?? [];
          const isMember = ms.some((x) => x.player.toHexString() === me);
          const isHost = m.host.toHexString() === me;
          const tag = m.state.tag;
          return h(
            'li',
            { 'data-match': String(m.id), 'data-state': tag.toLowerCase() },
            h('span', { class: 'name' }, m.name),
            h('span', { class: `badge ${tag.toLowerCase()}` }, tag.toLowerCase()),
            h('span', { class: 'muted' }, `${ms.length}/${m.maxPlayers}`),
            tag === 'Done' && m.winner ? h('span', { class: 'muted' }, `winner ${nameOf(m.winner)}`) : null,
            h('span', { class: 'spacer' }),
            tag === 'Lobby' && !isMember ? h('button', { class: 'small', onclick: () => session.mutate('joinMatch', { matchId: m.id }) }, 'Join') : null,
            tag === 'Lobby' && isHost ? h('button', { class: 'small primary', onclick: () => session.mutate('startMatch', { matchId: m.id }) }, 'Start battle') : null,
            tag === 'Battle' && isMember
              ? h('button', { class: 'small primary', onclick: () => session.mutate('recordBattleEvent', { matchId: m.id, action: 'attack', detail: JSON.stringify({ roll: Math.ceil(Math.random() * 6) }), scoreDelta: Math.ceil(Math.random() * 10) }) }, 'Attack')
              : null,
            tag === 'Battle' && isHost ? h('button', { class: 'small', onclick: () => session.mutate('endMatch', { matchId: m.id, winner: undefined }) }, 'End') : null,
            tag !== 'Done' && isMember ? h('button', { class: 'small', onclick: () => session.mutate('leaveMatch', { matchId: m.id }) }, 'Leave') : null,
          );
        }),
        shown.length === 0 ? h('li', { class: 'muted' }, 'No matches yet: create one.') : null,
        );
      }
      const battle = byId('battle');
      if (!mineActive) return fill(battle);
      const entries = ([...log.values()] as LogRow[]).filter((e) => e.matchId === mineActive.id).sort((a, b) => b.seq - a.seq);
      const scores = (byMatch.get(mineActive.id) ?? []).map((x) => `${nameOf(x.player)} ${x.score}`).join(' · ');
      fill(
        battle,
        h('h3', {}, `Battle log — ${mineActive.name}`),
        h('div', { class: 'muted' }, scores),
        h('ol', { id: 'battle-log' }, ...entries.slice(0, 30).map((e) => h('li', { 'data-seq': e.seq }, `#${e.seq} ${nameOf(e.actor)} ${e.action}s${describeDetail(e.detail)}`))),
      );
    }),
  );

  // ---- chat --------------------------------------------------------------
  const chatInput = byId<HTMLInputElement>('chat-input');
  sub.add(
    onSubmit(byId('chat-form'), () => {
      const text = chatInput.value.trim();
      if (text) session.mutate('sendChat', { text });
      chatInput.value = '';
    }),
  );
  sub.add(
    client.table$(tables.chatMessage).subscribe((rows) => {
      const list = ([...rows.values()] as ChatRow[]).sort((a, b) => (a.id < b.id ? -1 : 1)).slice(-50);
      const chat = byId('chat');
      fill(chat, ...list.map((m) => h('li', {}, h('span', { class: 'from' }, nameOf(m.sender)), m.text)));
      chat.scrollTop = chat.scrollHeight;
    }),
  );
  sub.add(() => {
    for (const id of ['players', 'matches', 'battle', 'chat']) fill(byId(id));
  });
  return sub;
}
