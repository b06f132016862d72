/**
 * The board: every player's nodes, yours draggable. A move is an optimistic
 * call: the node is drawn at its new place at once, dashed until the server
 * confirms; a rejected move snaps back (and shakes). Moves still queued in
 * the durable outbox from an earlier page load (reloaded while offline) are
 * drawn the same way, from the outbox itself.
 */
import { combineLatest, startWith, type Subscription } from 'rxjs';
import { Identity, Timestamp } from 'spacetimedb';
import type { OutboxState, Storage } from '../../storage/index.ts';
import { h, hueOf } from './dom.ts';
import { tables, type Session } from './session.ts';

export const BOARD_WIDTH = 640;
export const BOARD_HEIGHT = 420;
/** Node centres stay this far inside the edges, so no node is ever drawn or dropped half off the board. */
export const NODE_MARGIN = 20;

interface NodeRow {
  id: bigint;
  owner: Identity;
  parent: bigint;
  x: number;
  y: number;
  data: string;
  version: number;
  updatedAt: Timestamp;
}

interface Drawn {
  key: string;
  id: bigint | undefined;
  x: number;
  y: number;
  mine: boolean;
  pending: boolean;
  ownerHex: string;
  version: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const clampX = (x: number) => clamp(x, NODE_MARGIN, BOARD_WIDTH - NODE_MARGIN);
const clampY = (y: number) => clamp(y, NODE_MARGIN, BOARD_HEIGHT - NODE_MARGIN);

/**
 * The board keeps its own 640×420 coordinates and is scaled down to fit a
 * narrower column (a 390 px phone): the frame takes the scaled height.
 */
function fitToFrame(el: HTMLElement): () => void {
  const frame = el.parentElement;
  if (!frame) return () => {};
  const fit = () => {
    const scale = Math.min(1, frame.clientWidth / BOARD_WIDTH) || 1;
    el.style.transform = scale === 1 ? '' : `scale(${scale})`;
    frame.style.height = `${Math.round(BOARD_HEIGHT * scale)}px`;
  };
  fit();
  const observer = new ResizeObserver(fit);
  observer.observe(frame);
  return () => observer.disconnect();
}

/** Pointer position in board coordinates, whatever the board's scale. */
function boardPoint(el: HTMLElement, e: PointerEvent): { x: number; y: number } {
  const box = el.getBoundingClientRect();
  const scale = box.width / BOARD_WIDTH || 1;
  return { x: (e.clientX - box.left) / scale, y: (e.clientY - box.top) / scale };
}

/** Mount the board into `el`; `myHex()` is the current identity (hex) or undefined before the first login. */
export function mountBoard(el: HTMLElement, addButton: HTMLButtonElement, session: Session, storage: Storage, myHex: () => string | undefined): Subscription {
  const elements = new Map<string, HTMLElement>();
  let dragging: { key: string; el: HTMLElement; dx: number; dy: number; moved: boolean } | undefined;
  let lastDrawn = new Map<string, Drawn>();
  const unfit = fitToFrame(el);
  addButton.disabled = myHex() === undefined;

  const emptyOutbox: OutboxState = { pending: [], queued: 0, sent: 0, rejected: [], quarantined: [] };
  const sub = combineLatest([session.client.optimistic$(tables.gameNode), storage.outbox.outbox$.pipe(startWith(emptyOutbox))]).subscribe(([view, outbox]) => {
    const me = myHex();
    const drawn = new Map<string, Drawn>();
    for (const [key, row] of view.rows as ReadonlyMap<unknown, NodeRow>) {
      const ownerHex = row.owner.toHexString();
      drawn.set(String(key), {
        key: String(key),
        id: typeof key === 'bigint' ? key : undefined,
        x: row.x,
        y: row.y,
        mine: ownerHex === me,
        pending: view.pending.has(key as never),
        ownerHex,
        version: row.version,
      });
    }
    // Calls queued by an earlier page load: the client holds no prediction for them.
    for (const entry of outbox.pending) {
      if (session.issued.has(entry.id)) continue;
      if (entry.reducer !== 'move_node' && entry.reducer !== 'create_node') continue;
      let args: Record<string, unknown>;
      try {
        args = storage.outbox.decodeArgs(entry);
      } catch {
        continue;
      }
      if (entry.reducer === 'move_node') {
        const id = args.id as bigint;
        const d = drawn.get(String(id));
        if (d && !view.pending.has(id as never)) Object.assign(d, { x: args.x as number, y: args.y as number, pending: true });
        // No row to move (an offline start without cached rows): still show where it is going.
        else if (!d) drawn.set(String(id), { key: String(id), id, x: args.x as number, y: args.y as number, mine: true, pending: true, ownerHex: me ?? '', version: 0 });
      } else {
        drawn.set(`queued:${entry.id}`, { key: `queued:${entry.id}`, id: undefined, x: args.x as number, y: args.y as number, mine: true, pending: true, ownerHex: me ?? '', version: 0 });
      }
    }
    draw(drawn);
    for (const event of view.events) {
      if (event.type !== 'rollback') continue;
      for (const key of event.mutation.predict(view.rows as never).keys()) {
        const node = elements.get(String(key));
        if (!node) continue;
        node.classList.remove('rolled-back');
        void node.offsetWidth; // restart the animation
        node.classList.add('rolled-back');
        node.dataset.rolledBack = 'true';
      }
    }
  });

  function draw(drawn: Map<string, Drawn>) {
    lastDrawn = drawn;
    // Before the first login there is no identity to own a node: say so instead of doing nothing.
    const ready = myHex() !== undefined;
    addButton.disabled = !ready;
    addButton.title = ready ? 'add a node of yours' : 'available once connected for the first time';
    for (const [key, node] of elements) {
      if (!drawn.has(key) && dragging?.key !== key) {
        node.remove();
        elements.delete(key);
      }
    }
    for (const d of drawn.values()) {
      let node = elements.get(d.key);
      if (!node) {
        node = h('div', { class: 'node', 'data-key': d.key });
        node.addEventListener('pointerdown', (e) => startDrag(e, d.key));
        elements.set(d.key, node);
        el.append(node);
      }
      node.classList.toggle('mine', d.mine);
      node.style.setProperty('--hue', String(hueOf(d.ownerHex)));
      node.dataset.id = d.id === undefined ? '' : String(d.id);
      node.dataset.mine = String(d.mine);
      node.dataset.pending = String(d.pending);
      node.dataset.version = String(d.version);
      node.textContent = d.id === undefined ? '…' : String(d.id);
      node.title = `${d.id === undefined ? 'new node' : `node ${d.id}`} at (${Math.round(d.x)}, ${Math.round(d.y)})${d.pending ? ' — waiting for the server' : ''}`;
      if (dragging?.key === d.key) continue;
      node.dataset.x = String(d.x);
      node.dataset.y = String(d.y);
      node.style.left = `${clampX(d.x)}px`;
      node.style.top = `${clampY(d.y)}px`;
    }
  }

  function startDrag(e: PointerEvent, key: string) {
    const d = lastDrawn.get(key);
    const node = elements.get(key);
    if (!d || !node || !d.mine || d.id === undefined) return;
    e.preventDefault();
    node.setPointerCapture(e.pointerId);
    node.classList.add('dragging');
    const p = boardPoint(el, e);
    dragging = { key, el: node, dx: p.x - clampX(d.x), dy: p.y - clampY(d.y), moved: false };
  }

  const onMove = (e: PointerEvent) => {
    if (!dragging) return;
    const p = boardPoint(el, e);
    const x = clampX(Math.round(p.x - dragging.dx));
    const y = clampY(Math.round(p.y - dragging.dy));
    dragging.moved = true;
    dragging.el.style.left = `${x}px`;
    dragging.el.style.top = `${y}px`;
  };
  const onUp = (e: PointerEvent) => {
    if (!dragging) return;
    const { key, el: node, moved } = dragging;
    onMove(e);
    dragging = undefined;
    node.classList.remove('dragging');
    const d = lastDrawn.get(key);
    if (!moved || !d || d.id === undefined) return draw(lastDrawn);
    moveNode(d.id, parseFloat(node.style.left), parseFloat(node.style.top));
  };
  el.addEventListener('pointermove', onMove);
  el.addEventListener('pointerup', onUp);
  el.addEventListener('pointercancel', onUp);

  function moveNode(id: bigint, x: number, y: number) {
    session.mutate(
      'moveNode',
      { id, x, y },
      {
        supersedeKey: `move:${id}`,
        optimistic: {
          table: tables.gameNode,
          predict: (rows) => {
            const row = rows.get(id) as NodeRow | undefined;
            return new Map(row ? [[id, { ...row, x, y, version: row.version + 1 }]] : []);
          },
        },
      },
    );
  }

  const addNode = () => {
    const me = myHex();
    if (!me) return;
    const x = 2 * NODE_MARGIN + Math.round(Math.random() * (BOARD_WIDTH - 4 * NODE_MARGIN));
    const y = 2 * NODE_MARGIN + Math.round(Math.random() * (BOARD_HEIGHT - 4 * NODE_MARGIN));
    const owner = Identity.fromString(me);
    const mutationId = crypto.randomUUID();
    const key = `new:${mutationId}`;
    session.mutate(
      'createNode',
      { parent: 0n, x, y, data: '{}' },
      {
        optimistic: {
          table: tables.gameNode,
          predict: () => new Map([[key, { id: 0n, owner, parent: 0n, x, y, data: '{}', version: 1, updatedAt: Timestamp.now() }]]),
        },
      },
      mutationId,
    );
  };
  addButton.addEventListener('click', addNode);

  sub.add(() => {
    unfit();
    addButton.removeEventListener('click', addNode);
    el.removeEventListener('pointermove', onMove);
    el.removeEventListener('pointerup', onUp);
    el.removeEventListener('pointercancel', onUp);
    el.replaceChildren();
  });
  return sub;
}
