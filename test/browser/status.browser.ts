/**
 * The status gallery: the demo page driven into every connection state a
 * player can meet, asserting what the top bar, the banner and the toasts say,
 * with a screenshot of each saved into docs/status/ (shown in docs/demo.md).
 * No text a player sees may carry a raw timestamp, a protocol message name or
 * an exception class name.
 */
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { addNode, arenaSuite, boardNodes, dragNode, openPage, player, untilPage, waitLive } from './harness.ts';

const GALLERY = join(process.cwd(), 'docs', 'status');
/** Raw timestamps, protocol message names, exception class names, millisecond figures (outside the RTT label). */
const INTERNALS = /\d{10,}|InitialConnection|OneOffQuery|ServerMessage|TransactionUpdate|SubscribeApplied|\b\w+(Error|Exception)\b|\d+ ?ms\b|tag \d+/;

interface Shown {
  state: string;
  topBar: string;
  rtt: string;
  banner: string | null;
  toasts: string[];
}

/** What a player reads: the top bar, the banner (when shown) and the toasts. */
async function shown(page: Page): Promise<Shown> {
  return (await page.evaluate(`(() => {
    const text = (id) => document.getElementById(id)?.textContent?.trim() ?? '';
    const banner = document.getElementById('offline-banner');
    return {
      state: document.getElementById('conn').dataset.state,
      topBar: text('conn-text'),
      rtt: text('rtt'),
      banner: banner.hidden ? null : text('banner-text'),
      toasts: [...document.querySelectorAll('#toasts .toast .msg')].map((e) => e.textContent.trim()),
    };
  })()`)) as Shown;
}

/** Assert nothing a player reads shows internals, then save the screenshot. */
async function gallery(page: Page, name: string): Promise<Shown> {
  const s = await shown(page);
  for (const text of [s.topBar, s.banner ?? '', ...s.toasts]) expect(text, `${name}: "${text}"`).to.not.match(INTERNALS);
  expect(s.rtt, `${name}: RTT label`).to.match(/^RTT (–|\d+ ms)$/);
  await mkdir(GALLERY, { recursive: true });
  await page.screenshot({ path: join(GALLERY, `${name}.png`) });
  return s;
}

/** Wait until the offline cache (IndexedDB) holds `n` nodes: what a reload can show without the server. */
function cachedNodes(page: Page, n: number): Promise<unknown> {
  return untilPage(`${n} nodes in the offline cache`, async () => ((await page.evaluate(`globalThis.arena.storage.snapshots.load('game_node').then((s) => s.rows.length)`)) as number) >= n);
}

describe('status gallery (the demo in Chromium, every connection state)', function () {
  this.timeout(120_000);
  const suite = arenaSuite();

  it('connecting → live (RTT shown only once measured while live), then signed out', async () => {
    const { page, errors } = await openPage(suite.browser, suite.arena);
    await page.waitForSelector('#login:not([hidden])');
    // The server holds the connection for a moment: the first attempt shows connecting.
    suite.arena.dev.faults.blackhole(1500);
    await page.click('#play-anon');
    await page.waitForSelector('#conn[data-state="connecting"]');
    const connecting = await gallery(page, 'connecting');
    expect(connecting).to.deep.include({ topBar: 'connecting…', rtt: 'RTT –', banner: null });
    expect(await page.isDisabled('#add-node'), '+ node waits for the first login').to.equal(true);

    await waitLive(page, errors, 20_000);
    await untilPage('an RTT in the top bar', async () => /^RTT \d+ ms$/.test((await page.textContent('#rtt')) ?? ''));
    await addNode(page);
    const live = await gallery(page, 'live');
    expect(live).to.deep.include({ state: 'live', topBar: 'live', banner: null });
    expect(live.rtt).to.match(/^RTT \d+ ms$/);
    expect(live.toasts, 'the failed first attempt left no toast behind once live').to.deep.equal([]);

    await page.click('#sign-out');
    await page.waitForSelector('#login:not([hidden])');
    const out = await gallery(page, 'signed-out');
    expect(out).to.deep.include({ state: 'signed-out', topBar: 'signed out', rtt: 'RTT –', banner: null });
    expect(errors).to.deep.equal([]);
  });

  it('degraded: calls unanswered past the deadline show a weak connection, still live, then recover', async () => {
    const a = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);
    // Answers slower than the deadline (floor 1 s) but within the follow-up probe's wait: degraded, not lost.
    suite.arena.dev.faults.latency(1300);
    await dragNode(a.page, id, 60, 0);
    await a.page.waitForSelector('#conn[data-state="degraded"]', { timeout: 10_000 });
    const degraded = await gallery(a.page, 'degraded');
    expect(degraded).to.deep.include({ topBar: 'weak connection', banner: null });
    suite.arena.dev.faults.latency(0);
    await waitLive(a.page, a.errors, 15_000);
    expect((await shown(a.page)).topBar).to.equal('live');
    expect(a.errors).to.deep.equal([]);
  });

  it('reconnecting: the banner counts the queue, RTT is hidden, Reconnect now shows it is trying', async () => {
    const a = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);
    suite.arena.dev.faults.blackhole(60_000);
    await a.page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 10_000 });
    await dragNode(a.page, id, 80, 40);
    await untilPage('the banner to count the move', async () => (await shown(a.page)).banner === 'Connection lost — reconnecting · 1 change queued');
    const r = await shown(a.page);
    expect(r.rtt).to.equal('RTT –');
    expect(r.topBar).to.match(/^reconnecting( in \d+ s|…)$/);
    expect(await a.page.locator('#queue-list li[data-status="queued"]').count(), 'the banner count matches the queue').to.equal(1);
    // The banner lies over the page, but over no control or heading a player needs while offline.
    const banner = (await a.page.locator('#offline-banner').boundingBox())!;
    for (const selector of ['#add-node', '.board-panel h2', '#board', '#players-panel h2']) {
      const box = (await a.page.locator(selector).boundingBox())!;
      const overlaps = banner.x < box.x + box.width && box.x < banner.x + banner.width && banner.y < box.y + box.height && box.y < banner.y + banner.height;
      expect(overlaps, `the banner covers ${selector}`).to.equal(false);
    }
    await a.page.click('#reconnect-now');
    const trying = await gallery(a.page, 'reconnecting');
    expect(trying.topBar).to.equal('trying now…');
    expect(await a.page.textContent('#reconnect-now')).to.equal('Trying…');
    expect(await a.page.isDisabled('#reconnect-now')).to.equal(true);
    // The attempt fails (the server still holds everything): the button is back.
    await untilPage('the attempt to end', async () => (await a.page.textContent('#reconnect-now')) === 'Reconnect now', 15_000);
    expect(a.errors).to.deep.equal([]);
  });

  it('a corrupt frame: a "Sync problem" toast in plain words, gone by itself once live again', async () => {
    const a = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);
    // Record every toast shown (the reconnect can be quicker than a poll).
    await a.page.evaluate(`(() => {
      window.__toasts = [];
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) if (n.classList?.contains('toast')) window.__toasts.push(n.dataset.class + '|' + n.querySelector('.msg').textContent);
      }).observe(document.getElementById('toasts'), { childList: true });
    })()`);
    suite.arena.dev.faults.corruptNextFrame();
    await dragNode(a.page, id, 40, 40);
    const toasts = await untilPage('the sync toast', async () => {
      const seen = (await a.page.evaluate('window.__toasts')) as string[];
      return seen.some((t) => t.startsWith('sync|')) && seen;
    });
    expect(toasts.filter((t) => t.startsWith('sync|'))).to.deep.equal(['sync|Sync problem — reconnecting']);
    for (const t of toasts) expect(t).to.not.match(INTERNALS);
    await waitLive(a.page, a.errors, 15_000);
    await a.page.locator('.toast[data-class="sync"]').waitFor({ state: 'detached', timeout: 5_000 });
    expect(a.errors).to.deep.equal([]);
  });

  it('offline with a queue: the browser goes offline, changes wait and are counted', async () => {
    const a = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);
    await a.context.setOffline(true);
    await a.page.waitForSelector('#conn[data-state="offline"]', { timeout: 10_000 });
    await dragNode(a.page, id, -70, 30);
    await a.page.fill('#chat-input', 'sent while offline');
    await a.page.press('#chat-input', 'Enter');
    // Chat is optimistic too: the line shows at once, pending.
    await a.page.waitForSelector('#chat li[data-pending="true"]:has-text("sent while offline")');
    await untilPage('the banner to count both changes', async () => (await shown(a.page)).banner === "You're offline · 2 changes queued");
    await a.page.click('#queue summary');
    expect(await a.page.locator('#queue-list li[data-status="queued"]').count()).to.equal(2);
    const off = await gallery(a.page, 'offline-queue');
    expect(off).to.deep.include({ state: 'offline', topBar: 'offline', rtt: 'RTT –' });
    await a.context.setOffline(false);
    await waitLive(a.page, a.errors, 20_000);
    await a.page.waitForSelector('#chat li[data-pending="false"]:has-text("sent while offline")', { timeout: 15_000 });
    await untilPage('the banner gone and the queue empty', async () => (await shown(a.page)).banner === null && (await a.page.textContent('#queue-count')) === 'queue 0', 15_000);
    expect(a.errors).to.deep.equal([]);
  });

  it('offline start from cache: a reload with the server unreachable shows the cached board, marked stale', async () => {
    const a = await player(suite.browser, suite.arena);
    await addNode(a.page);
    await addNode(a.page);
    const before = (await boardNodes(a.page)).filter((n) => n.id).map((n) => n.id).sort();
    await cachedNodes(a.page, 2);
    suite.arena.dev.faults.blackhole(60_000);
    await a.page.reload();
    await untilPage('the cached nodes on the board', async () => JSON.stringify((await boardNodes(a.page)).filter((n) => n.id).map((n) => n.id).sort()) === JSON.stringify(before), 15_000);
    await a.page.waitForSelector('#stale:not([hidden])');
    await a.page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 15_000 });
    await untilPage('the banner', async () => (await shown(a.page)).banner !== null);
    const cached = await gallery(a.page, 'offline-start-cache');
    // This page load never reached the server: "can't reach", not "connection lost".
    expect(cached.banner).to.equal("Can't reach the server — retrying · nothing queued");
    expect(cached.rtt).to.equal('RTT –');
    expect(a.errors).to.deep.equal([]);
  });

  it('token refused: the top bar and a toast say so in plain words', async () => {
    const a = await player(suite.browser, suite.arena);
    const token = (await a.page.evaluate('globalThis.arena.storage.tokens.get()')) as string;
    await a.page.click('#sign-out');
    await a.page.fill('#token-input', `${token.slice(0, -4)}AAAA`);
    await a.page.click('#token-sign-in');
    await a.page.waitForSelector('.toast[data-class="auth"]', { timeout: 10_000 });
    const refused = await gallery(a.page, 'token-refused');
    expect(refused).to.deep.include({ state: 'signed-out', topBar: 'sign-in refused', banner: null });
    expect(refused.toasts).to.deep.equal(['Sign-in was refused — please sign in again']);
    expect(await a.page.isDisabled('#add-node'), 'no identity to own a node').to.equal(true);
    expect(a.errors).to.deep.equal([]);
  });

  it('migration in progress: the bar says local data is being migrated', async () => {
    const a = await player(suite.browser, suite.arena);
    await addNode(a.page);
    await cachedNodes(a.page, 1);
    // Forget the stored schema fingerprint: with cached data, the next start must migrate.
    await a.page.evaluate(`(async () => {
      const { uri, database } = await (await fetch('/config.json')).json();
      const name = 'stdb-rx:' + uri.replace(/\\/+$/, '') + '/' + database;
      await new Promise((resolve, reject) => {
        const open = indexedDB.open(name);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction('meta', 'readwrite');
          tx.objectStore('meta').delete('schema');
          tx.oncomplete = () => { db.close(); resolve(); };
          tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
      });
    })()`);
    // Record every phase and label the progress bar shows; hold the outbox step until the test has photographed it
    // (the page's own code is unchanged: the test wraps the storage's method once the page has opened it).
    await a.page.addInitScript(`window.addEventListener('DOMContentLoaded', () => {
      window.__phases = [];
      const bar = document.getElementById('progress');
      new MutationObserver(() => { if (!bar.hidden) window.__phases.push(bar.dataset.phase + '|' + bar.querySelector('.label').textContent); })
        .observe(bar, { attributes: true, subtree: true, childList: true, characterData: true });
      const t = setInterval(() => {
        const m = globalThis.arena?.storage?.migrations;
        if (!m) return;
        clearInterval(t);
        const migrateOutbox = m.migrateOutbox.bind(m);
        let held = false;
        m.migrateOutbox = async (o) => {
          if (!held) {
            held = true;
            await new Promise((r) => { window.__releaseMigration = r; });
          }
          return migrateOutbox(o);
        };
      }, 1);
    })`);
    await a.page.reload();
    await a.page.waitForSelector('#progress[data-phase="migration-upload"]:not([hidden])', { timeout: 20_000 });
    const migrating = await gallery(a.page, 'migration');
    expect(await a.page.textContent('#progress .label')).to.equal('Migrating local data (upload)');
    expect(migrating.state).to.equal('syncing');
    const phases = (await a.page.evaluate('window.__phases')) as string[];
    expect(phases.filter((p) => p.startsWith('migration'))).to.include.members(['migration-download|Migrating local data (download)', 'migration-upload|Migrating local data (upload)']);
    await a.page.evaluate('window.__releaseMigration()');
    await waitLive(a.page, a.errors, 20_000);
    expect(await a.page.isVisible('#progress')).to.equal(false);
    expect(a.errors).to.deep.equal([]);
  });

  it('phone width (390 px): the board scales to fit, nodes stay on it and can be dragged by touch', async () => {
    const { context, page, errors } = await openPage(suite.browser, suite.arena, { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 1 });
    await page.tap('#play-anon');
    await waitLive(page, errors);
    const id = await addNode(page);
    const board = (await untilPage('the board scaled to the screen', async () => {
      const box = await page.locator('#board').boundingBox();
      return box && box.width <= 390 - 16 && box;
    })) as { x: number; y: number; width: number; height: number };
    expect(board.x).to.be.at.least(0);
    const scale = board.width / 640;
    expect(scale).to.be.lessThan(1);
    const box = (await page.locator(`#board .node[data-id="${id}"]`).boundingBox())!;
    expect(box.x).to.be.at.least(board.x - 1);
    expect(box.x + box.width).to.be.at.most(board.x + board.width + 1);
    // Drag by touch, 50 screen pixels: the node moves by 50 / scale board units.
    const cdp = await context.newCDPSession(page);
    const touch = (type: string, x: number, y: number) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x, y }] } as never);
    const before = (await boardNodes(page)).find((n) => n.id === id)!;
    const dx = before.x > 320 ? -50 : 50;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await touch('touchStart', cx, cy);
    for (let i = 1; i <= 5; i++) await touch('touchMove', cx + (dx * i) / 5, cy);
    await touch('touchEnd', cx + dx, cy);
    const moved = await untilPage('the move confirmed', async () => (await boardNodes(page)).find((n) => n.id === id && !n.pending && n.x !== before.x));
    expect(moved.x - before.x).to.be.closeTo(dx / scale, 3);
    // Dragged far past the edge, a node stops inside the board.
    const now = (await page.locator(`#board .node[data-id="${id}"]`).boundingBox())!;
    const nx = now.x + now.width / 2;
    const ny = now.y + now.height / 2;
    await touch('touchStart', nx, ny);
    for (let i = 1; i <= 5; i++) await touch('touchMove', nx + 80 * i, ny + 80 * i);
    await touch('touchEnd', nx + 400, ny + 400);
    const edge = await untilPage('the edge move confirmed', async () => (await boardNodes(page)).find((n) => n.id === id && !n.pending && n.x !== moved.x));
    expect(edge.x).to.equal(640 - 20);
    expect(edge.y).to.equal(420 - 20);
    const phone = await gallery(page, 'phone');
    expect(phone).to.deep.include({ state: 'live', topBar: 'live' });
    expect(errors).to.deep.equal([]);
  });
});
