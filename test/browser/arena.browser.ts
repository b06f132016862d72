/**
 * The arena demo in real Chromium: what a person sees while the network
 * fails under them. Each test starts its own dev server and page server
 * (port 0, temp data folder) and saves a screenshot under test-artifacts/.
 */
import { expect } from 'chai';
import { tables } from '../../demo/arena/bindings/index.ts';
import { TEST_TIMINGS, addNode, arenaSuite, boardNodes, dragNode, player, screenshot, serverRows, untilPage, waitLive } from './harness.ts';

describe('arena demo in the browser', function () {
  this.timeout(90_000);
  const suite = arenaSuite();

  it('two players in two browser contexts see each other\'s moves', async () => {
    const a = await player(suite.browser, suite.arena);
    const b = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);

    const seen = await untilPage('player B to see A\'s node', async () => (await boardNodes(b.page)).find((n) => n.id === id));
    expect(seen.mine).to.equal(false);
    const { from, to } = await dragNode(a.page, id, 120, 60);
    const moved = await untilPage('B to see the move', async () => (await boardNodes(b.page)).find((n) => n.id === id && n.x !== from.x));
    expect(moved.x).to.be.closeTo(to.x, 2);
    expect(moved.y).to.be.closeTo(to.y, 2);
    // Both players list each other as online.
    const online = await b.page.locator('#players li').count();
    expect(online).to.equal(2);

    // The anonymous token is kept: after a reload A is still the same player.
    const identity = await a.page.getAttribute('#who', 'title');
    await a.page.reload();
    await waitLive(a.page, a.errors);
    expect(await a.page.getAttribute('#who', 'title')).to.equal(identity);
    expect(await a.page.isVisible('#login')).to.equal(false);
    await screenshot(a.page, 'two-players-a');
    await screenshot(b.page, 'two-players-b');
    expect([...a.errors, ...b.errors]).to.deep.equal([]);
  });

  it('blackhole: the top bar shows reconnecting within the heartbeat deadlines; moves made offline are pending and counted', async () => {
    const a = await player(suite.browser, suite.arena);
    const first = await addNode(a.page);
    const second = await addNode(a.page);

    suite.arena.dev.faults.blackhole(60_000);
    const start = Date.now();
    await a.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])', { timeout: 10_000 });
    const detectedMs = Date.now() - start;
    // Silence of `interval` before the probe, the answer deadline (its floor `timeout` on a local link: degraded),
    // then twice that for the follow-up probe (lost); plus slack for a loaded machine.
    expect(detectedMs).to.be.lessThan(TEST_TIMINGS.heartbeat.interval + 3 * TEST_TIMINGS.heartbeat.timeout + 1500);
    await a.page.waitForSelector('#offline-banner:not([hidden])');
    await a.page.waitForSelector('#reconnect-now:not([hidden])');

    await dragNode(a.page, first, 80, 0);
    await dragNode(a.page, second, 0, 80);
    await untilPage('both moves drawn as pending', async () => (await boardNodes(a.page)).filter((n) => n.pending).length === 2);
    await untilPage('the banner to count 2 changes', async () => (await a.page.textContent('#banner-text')) === 'Connection lost — reconnecting · 2 changes queued');
    await a.page.click('#queue summary');
    expect(await a.page.locator('#queue-list li[data-status="queued"]').count()).to.equal(2);
    await screenshot(a.page, 'blackhole-offline-queued');
    expect(a.errors).to.deep.equal([]);
  });

  it('reload while offline keeps the queue (IndexedDB); restore drains it, both players converge, nothing applied twice', async () => {
    const a = await player(suite.browser, suite.arena);
    const b = await player(suite.browser, suite.arena);
    const first = await addNode(a.page);
    const second = await addNode(a.page);

    suite.arena.dev.faults.blackhole(120_000);
    await a.page.waitForSelector('#conn:is([data-state="reconnecting"], [data-state="offline"])', { timeout: 10_000 });
    const move1 = await dragNode(a.page, first, 100, 20);
    const move2 = await dragNode(a.page, second, -40, 90);
    await untilPage('the banner to count 2 changes', async () => (await a.page.textContent('#banner-text')) === 'Connection lost — reconnecting · 2 changes queued');

    await a.page.reload();
    // The page itself loads (its server is not the database); the queue comes back from IndexedDB.
    // This page load never reached the server: it says so rather than "connection lost".
    await untilPage('the reloaded banner to count 2 changes', async () => /^(Can't reach the server — retrying|Connecting) · 2 changes queued$/.test((await a.page.textContent('#banner-text')) ?? '') && (await a.page.isVisible('#offline-banner')), 15_000);
    await untilPage('the queued moves drawn as pending after the reload', async () => {
      const nodes = await boardNodes(a.page);
      const n1 = nodes.find((n) => n.id === first);
      const n2 = nodes.find((n) => n.id === second);
      const near = (n: { x: number; y: number } | undefined, to: { x: number; y: number }) => n && Math.abs(n.x - to.x) < 3 && Math.abs(n.y - to.y) < 3;
      if (n1?.pending && n2?.pending && near(n1, move1.to) && near(n2, move2.to)) return true;
      // Not yet: say what is drawn, so a timeout shows the board rather than `false`.
      throw new Error(`drawn ${JSON.stringify(nodes)}, moves to ${JSON.stringify([move1.to, move2.to])}`);
    });
    await screenshot(a.page, 'reload-offline-queue-kept');

    suite.arena.dev.faults.clear();
    await waitLive(a.page, a.errors, 20_000);
    await untilPage('the queue to drain', async () => (await a.page.textContent('#queue-count')) === 'queue 0' && !(await a.page.isVisible('#offline-banner')), 15_000);
    const settled = await untilPage('A\'s nodes confirmed at their new places', async () => {
      const nodes = await boardNodes(a.page);
      const mine = nodes.filter((n) => n.mine);
      return mine.length === 2 && mine.every((n) => !n.pending) && nodes;
    });
    const key = (ns: { id: string; x: number; y: number }[]) => ns.filter((n) => n.id).map((n) => `${n.id}@${n.x},${n.y}`).sort();
    await untilPage('B to converge on A\'s board', async () => JSON.stringify(key(await boardNodes(b.page))) === JSON.stringify(key(settled)));

    // The server's truth: each node moved exactly once (version 2), one receipt per move.
    const observer = suite.arena.observer();
    const nodes = await serverRows(observer.table$(tables.gameNode), (rows) => rows.size === 2);
    for (const row of nodes.values()) expect(row.version, `version of node ${row.id}`).to.equal(2);
    const receipts = await serverRows(observer.table$(tables.mutationReceipt), (rows) => rows.size > 0);
    expect([...receipts.values()].filter((r) => r.reducer === 'move_node')).to.have.length(2);
    await screenshot(a.page, 'restored-converged-a');
    await screenshot(b.page, 'restored-converged-b');
    expect([...a.errors, ...b.errors]).to.deep.equal([]);
  });

  it('a rejected move rolls back visibly, with a toast in the player\'s words and nothing left to discard', async () => {
    const a = await player(suite.browser, suite.arena);
    const id = await addNode(a.page);
    suite.arena.dev.faults.failNextReducers(1, 'the arena refuses this move');
    suite.arena.dev.faults.latency(500); // time to see the move before the verdict
    const { from: before, to } = await dragNode(a.page, id, 150, 0);
    // Drawn at once where it was dropped, marked pending.
    const dropped = (await boardNodes(a.page)).find((n) => n.id === id)!;
    expect(dropped).to.include({ pending: true });
    expect(dropped.x).to.be.closeTo(to.x, 2);
    const toast = a.page.locator('.toast[data-class="rejected:moveNode"]');
    await toast.waitFor({ timeout: 10_000 });
    expect(await toast.locator('.msg').textContent()).to.equal('Move: The server rejected this change: the arena refuses this move. It was undone.');
    // Already rolled back: the toast offers no action on it.
    expect(await toast.locator('button.action').count()).to.equal(0);
    const back = await untilPage('the node back at its old place', async () => (await boardNodes(a.page)).find((n) => n.id === id && !n.pending && n.x === before.x && n.y === before.y));
    expect(back.version).to.equal(1);
    expect(await a.page.getAttribute(`#board .node[data-id="${id}"]`, 'data-rolled-back')).to.equal('true');
    await screenshot(a.page, 'rejected-move-rolled-back');
    // The page dismisses the rejected entry itself: nothing rejected lingers in the queue or the banner's counts.
    await untilPage('no rejected entry left in the queue', async () => (await a.page.locator('#queue-list li[data-status="rejected"]').count()) === 0);
    expect(a.errors).to.deep.equal([]);
  });

  it('chat, rename and matches are optimistic: shown at once as pending, confirmed, or visibly undone when rejected', async () => {
    const a = await player(suite.browser, suite.arena);
    suite.arena.dev.faults.latency(600); // time to see the pending state before the verdict
    // Create a match: listed at once, marked pending, then confirmed with its id.
    await a.page.fill('#match-name', 'quick one');
    await a.page.press('#match-name', 'Enter');
    await a.page.waitForSelector('#matches li[data-pending="true"]:has-text("quick one")', { timeout: 2_000 });
    await a.page.waitForSelector('#matches li[data-pending="false"]:has-text("quick one")', { timeout: 10_000 });
    // Chat: the line shows at once, pending, then confirmed.
    await a.page.fill('#chat-input', 'hello there');
    await a.page.press('#chat-input', 'Enter');
    await a.page.waitForSelector('#chat li[data-pending="true"]:has-text("hello there")', { timeout: 2_000 });
    await a.page.waitForSelector('#chat li[data-pending="false"]:has-text("hello there")', { timeout: 10_000 });
    // A rejected rename: the new name shows at once, then is undone (struck through) and the old name is back.
    const oldName = (await a.page.textContent('#players li[data-pending="false"] span:nth-child(2)'))!;
    suite.arena.dev.faults.failNextReducers(1, 'that name is taken');
    await a.page.fill('#name-input', 'ada');
    await a.page.press('#name-input', 'Enter');
    await a.page.waitForSelector('#players li[data-pending="true"]:has-text("ada")', { timeout: 2_000 });
    await a.page.waitForSelector('#players li.rolled-back:has-text("rename to “ada” undone")', { timeout: 10_000 });
    expect(await a.page.textContent('#players li[data-pending="false"] span:nth-child(2)')).to.equal(oldName);
    const toast = a.page.locator('.toast[data-class="rejected:setName"] .msg');
    expect(await toast.textContent()).to.equal('Rename: The server rejected this change: that name is taken. It was undone.');
    // A rejected chat line: struck through for a moment, not silently gone.
    suite.arena.dev.faults.failNextReducers(1, 'too chatty');
    await a.page.fill('#chat-input', 'spam');
    await a.page.press('#chat-input', 'Enter');
    await a.page.waitForSelector('#chat li.rolled-back:has-text("spam")', { timeout: 10_000 });
    await screenshot(a.page, 'optimistic-social');
    expect(a.errors).to.deep.equal([]);
  });

  it('the dev panel drops every connection and the page heals by itself', async () => {
    const a = await player(suite.browser, suite.arena);
    // Record every state the top bar shows (the reconnect itself takes a fraction of a second).
    await a.page.evaluate(`(() => {
      const el = document.getElementById('conn');
      window.__states = [];
      new MutationObserver(() => window.__states.push(el.dataset.state)).observe(el, { attributes: true, attributeFilter: ['data-state'] });
    })()`);
    await a.page.click('button[data-dev="drop-all"]');
    await untilPage('the dev panel to report the drop', async () => (await a.page.textContent('#dev-result'))?.includes('done'));
    const states = await untilPage('the top bar to go through reconnecting back to live', async () => {
      const seen = (await a.page.evaluate('window.__states')) as string[];
      return seen.includes('reconnecting') && seen.at(-1) === 'live' && seen;
    });
    const id = await addNode(a.page);
    expect(id).to.match(/^\d+$/);
    await screenshot(a.page, 'dev-panel-healed');
    expect(a.errors).to.deep.equal([]);
  });

  it('sign out shows the login; a pasted token signs in as that identity; a refused token offers to sign in again', async () => {
    const a = await player(suite.browser, suite.arena);
    const identity = await a.page.getAttribute('#who', 'title');
    // The token as the page keeps it (a person would have it from wherever they got it).
    const token = (await a.page.evaluate('globalThis.arena.storage.tokens.get()')) as string;
    expect(token).to.be.a('string').and.not.equal('');

    await a.page.click('#sign-out');
    await a.page.waitForSelector('#login:not([hidden])');
    await a.page.waitForSelector('#conn[data-state="signed-out"]');
    expect(await a.page.evaluate('globalThis.arena.storage.tokens.get()')).to.equal(undefined);

    await a.page.fill('#token-input', token);
    await a.page.click('#token-sign-in');
    await waitLive(a.page, a.errors);
    expect(await a.page.getAttribute('#who', 'title')).to.equal(identity);

    await a.page.click('#sign-out');
    await a.page.fill('#token-input', `${token.slice(0, -4)}AAAA`); // signature no longer matches
    await a.page.click('#token-sign-in');
    const toast = a.page.locator('.toast[data-class="auth"]');
    await toast.waitFor({ timeout: 10_000 });
    await a.page.waitForSelector('#conn[data-state="signed-out"]');
    expect(await a.page.textContent('#conn-text')).to.equal('sign-in refused');
    expect(await toast.locator('.msg').textContent()).to.equal('Sign-in was refused — please sign in again');
    expect(await a.page.isVisible('#offline-banner')).to.equal(false);
    await screenshot(a.page, 'refused-token');
    await toast.locator('button.action').click();
    await a.page.waitForSelector('#login:not([hidden])');
    expect(a.errors).to.deep.equal([]);
  });
});
