/** Players online, the match lobby with its battle log, and chat. */
import { combineLatest, type Subscription } from 'rxjs';
import { Identity, Timestamp } from 'spacetimedb';
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

/**
 * Chat, rename and the match actions are optimistic, as the board's moves:
 * shown at once with a pending style (the client's `optimistic$` view), then
 * confirmed, or undone visibly (struck through for a moment) when rejected.
 */
export function mountSocial(session: Session, myHex: () => string | undefined): Subscription {
  const { client } = session;
  const names = new Map<string, string>();
  const nameOf = (who: Identity) => (who.toHexString() === myHex() ? (names.get(who.toHexString()) ?? 'you') : (names.get(who.toHexString()) ?? shortHex(who.toHexString())));
  const me = () => {
    const hex = myHex();
    return hex ? Identity.fromString(hex) : Identity.zero();
  };
  /** Things undone by the server, shown struck through for a few seconds. */
  const undone: { what: 'chat' | 'rename' | 'match'; text: string; until: number }[] = [];
  const noteUndone = (what: 'chat' | 'rename' | 'match', text: string) => {
    undone.push({ what, text, until: Date.now() + 5_000 });
    setTimeout(() => rerender(what), 5_100);
  };
  const undoneOf = (what: 'chat' | 'rename' | 'match') => undone.filter((u) => u.what === what && u.until > Date.now());
  const renders: Partial<Record<'chat' | 'rename' | 'match', () => void>> = {};
  const rerender = (what: 'chat' | 'rename' | 'match') => renders[what]?.();

  let players: { rows: ReadonlyMap<unknown, PlayerRow>; pending: ReadonlySet<unknown> } = { rows: new Map(), pending: new Set() };
  renders.rename = () => {
    names.clear();
    const online: { p: PlayerRow; pending: boolean }[] = [];
    for (const [key, p] of players.rows) {
      names.set(p.identity.toHexString(), p.name);
      if (p.online || players.pending.has(key)) online.push({ p, pending: players.pending.has(key) });
    }
    online.sort((a, b) => a.p.name.localeCompare(b.p.name));
    byId('players-n').textContent = `(${online.length})`;
    fill(
      byId('players'),
      ...online.map(({ p, pending }) => {
        const hex = p.identity.toHexString();
        const li = h(
          'li',
          { 'data-identity': hex, 'data-pending': String(pending), class: pending ? 'pending' : null },
          h('span', { class: 'swatch' }),
          h('span', {}, p.name),
          h('span', { class: 'id' }, shortHex(hex)),
          hex === myHex() ? h('span', { class: 'muted' }, pending ? '(you · saving…)' : '(you)') : null,
        );
        li.style.setProperty('--hue', String(hueOf(hex)));
        return li;
      }),
      ...undoneOf('rename').map((u) => h('li', { class: 'rolled-back', 'data-rolled-back': 'true' }, `rename to “${u.text}” undone`)),
    );
  };
  const sub = client.optimistic$(tables.player).subscribe((view) => {
    players = { rows: view.rows as ReadonlyMap<unknown, PlayerRow>, pending: view.pending as ReadonlySet<unknown> };
    for (const e of view.events) if (e.type === 'rollback') for (const row of e.mutation.predict(view.rows as never).values()) if (row) noteUndone('rename', (row as PlayerRow).name);
    renders.rename!();
  });

  const nameInput = byId<HTMLInputElement>('name-input');
  sub.add(
    onSubmit(byId('rename'), () => {
      const name = nameInput.value.trim();
      nameInput.value = '';
      if (!name) return;
      const mine = myHex();
      session.mutate('setName', { name }, {
        optimistic: {
          table: tables.player,
          predict: (rows) => {
            for (const [key, row] of rows as ReadonlyMap<unknown, PlayerRow>) if (row.identity.toHexString() === mine) return new Map([[key, { ...row, name }]]) as never;
            return new Map([[`pending-player:${mine}`, { identity: me(), name, online: true, lastSeen: Timestamp.now() }]]) as never;
          },
        },
      });
    }),
  );

  // ---- matches -----------------------------------------------------------
  const matchName = byId<HTMLInputElement>('match-name');
  sub.add(
    onSubmit(byId('create-match'), () => {
      const name = matchName.value.trim() || `match ${Math.floor(Math.random() * 900 + 100)}`;
      matchName.value = '';
      const key = `pending-match:${crypto.randomUUID()}`;
      session.mutate('createMatch', { name, maxPlayers: 8 }, {
        optimistic: { table: tables.arenaMatch, predict: () => new Map([[key, { id: 0n, name, host: me(), state: { tag: 'Lobby' }, maxPlayers: 8, createdAt: Timestamp.now(), startedAt: undefined, endedAt: undefined, winner: undefined }]]) as never },
      });
    }),
  );
  let lastSignature = '';
  const join = (matchId: bigint) => {
    const key = `pending-join:${crypto.randomUUID()}`;
    session.mutate('joinMatch', { matchId }, { optimistic: { table: tables.matchMember, predict: () => new Map([[key, { id: 0n, matchId, player: me(), joinedAt: Timestamp.now(), score: 0 }]]) as never } });
  };
  const leave = (matchId: bigint) => {
    const mine = myHex();
    session.mutate('leaveMatch', { matchId }, {
      optimistic: {
        table: tables.matchMember,
        predict: (rows) => new Map([...(rows as ReadonlyMap<unknown, MemberRow>)].filter(([, r]) => r.matchId === matchId && r.player.toHexString() === mine).map(([k]) => [k, null])) as never,
      },
    });
  };
  sub.add(
    combineLatest([client.optimistic$(tables.arenaMatch), client.optimistic$(tables.matchMember), client.table$(tables.battleLog)]).subscribe(([matchView, memberView, log]) => {
      const matches = matchView.rows;
      const members = memberView.rows;
      for (const e of matchView.events) if (e.type === 'rollback') for (const row of e.mutation.predict(matchView.rows as never).values()) if (row) noteUndone('match', `create “${(row as MatchRow).name}”`);
      for (const e of memberView.events) if (e.type === 'rollback') noteUndone('match', 'join/leave');
      const pendingRows = new Set<unknown>();
      for (const [k, m] of matches) if (matchView.pending.has(k as never)) pendingRows.add(m);
      const pendingMatch = (m: MatchRow) => pendingRows.has(m);
      const pendingMembers = new Set<bigint>();
      for (const [k, m] of members) if (memberView.pending.has(k as never)) pendingMembers.add((m as MemberRow).matchId);
      // Leaving deletes a row: the pending key is gone from `rows`, so ask the mutation for the match.
      const leaving = memberView.pending.size > [...memberView.pending].filter((k) => members.has(k as never)).length;
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
      const undoneMatches = undoneOf('match');
      const signature = JSON.stringify([me, leaving, undoneMatches.map((u) => u.text), shown.map((m) => [String(m.id), m.name, m.state.tag, m.host.toHexString(), m.winner?.toHexString(), pendingMatch(m), pendingMembers.has(m.id), (byMatch.get(m.id) ?? []).map((x) => x.player.toHexString())])]);
      if (signature !== lastSignature) {
        lastSignature = signature;
        fill(
        byId('matches'),
        ...shown.map((m) => {
          const ms = byMatch.get(m.id) ?? [];
          const isMember = ms.some((x) => x.player.toHexString() === me);
          const isHost = m.host.toHexString() === me;
          const tag = m.state.tag;
          const pending = pendingMatch(m) || pendingMembers.has(m.id);
          return h(
            'li',
            { 'data-match': pendingMatch(m) ? 'pending' : String(m.id), 'data-state': tag.toLowerCase(), 'data-pending': String(pending), class: pending ? 'pending' : null },
            h('span', { class: 'name' }, m.name),
            h('span', { class: `badge ${tag.toLowerCase()}` }, pending ? 'saving…' : tag.toLowerCase()),
            h('span', { class: 'muted' }, `${ms.length}/${m.maxPlayers}`),
            tag === 'Done' && m.winner ? h('span', { class: 'muted' }, `winner ${nameOf(m.winner)}`) : null,
            h('span', { class: 'spacer' }),
            tag === 'Lobby' && !isMember && !pendingMatch(m) ? h('button', { class: 'small', onclick: () => join(m.id) }, 'Join') : null,
            tag === 'Lobby' && isHost ? h('button', { class: 'small primary', onclick: () => session.mutate('startMatch', { matchId: m.id }) }, 'Start battle') : null,
            tag === 'Battle' && isMember
              ? h('button', { class: 'small primary', onclick: () => session.mutate('recordBattleEvent', { matchId: m.id, action: 'attack', detail: JSON.stringify({ roll: Math.ceil(Math.random() * 6) }), scoreDelta: Math.ceil(Math.random() * 10) }) }, 'Attack')
              : null,
            tag === 'Battle' && isHost ? h('button', { class: 'small', onclick: () => session.mutate('endMatch', { matchId: m.id, winner: undefined }) }, 'End') : null,
            tag !== 'Done' && isMember && !pendingMatch(m) ? h('button', { class: 'small', onclick: () => leave(m.id) }, 'Leave') : null,
          );
        }),
        ...undoneMatches.map((u) => h('li', { class: 'rolled-back', 'data-rolled-back': 'true' }, `${u.text} undone`)),
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
  let chatSeq = 0;
  sub.add(
    onSubmit(byId('chat-form'), () => {
      const text = chatInput.value.trim();
      chatInput.value = '';
      if (!text) return;
      const key = `pending-chat:${crypto.randomUUID()}`;
      // Sorted after every confirmed line, in the order typed.
      const id = 2n ** 62n + BigInt(chatSeq++);
      session.mutate('sendChat', { text }, { optimistic: { table: tables.chatMessage, predict: () => new Map([[key, { id, sender: me(), text, sentAt: Timestamp.now() }]]) as never } });
    }),
  );
  let chatView: { rows: ReadonlyMap<unknown, ChatRow>; pending: ReadonlySet<unknown> } = { rows: new Map(), pending: new Set() };
  renders.chat = () => {
    const list = [...chatView.rows].sort(([, a], [, b]) => (a.id < b.id ? -1 : 1)).slice(-50);
    const chat = byId('chat');
    fill(
      chat,
      ...list.map(([key, m]) => {
        const pending = chatView.pending.has(key);
        return h('li', { 'data-pending': String(pending), class: pending ? 'pending' : null, title: pending ? 'sending…' : null }, h('span', { class: 'from' }, nameOf(m.sender)), m.text);
      }),
      ...undoneOf('chat').map((u) => h('li', { class: 'rolled-back', 'data-rolled-back': 'true', title: 'not sent: the server refused it' }, h('span', { class: 'from' }, 'you'), u.text)),
    );
    chat.scrollTop = chat.scrollHeight;
  };
  sub.add(
    client.optimistic$(tables.chatMessage).subscribe((view) => {
      chatView = { rows: view.rows as ReadonlyMap<unknown, ChatRow>, pending: view.pending as ReadonlySet<unknown> };
      for (const e of view.events) if (e.type === 'rollback') for (const row of e.mutation.predict(view.rows as never).values()) if (row) noteUndone('chat', (row as ChatRow).text);
      renders.chat!();
    }),
  );
  renders.match = () => {
    lastSignature = '';
  };
  sub.add(() => {
    for (const id of ['players', 'matches', 'battle', 'chat']) fill(byId(id));
  });
  return sub;
}
