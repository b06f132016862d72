/**
 * The spectator page in real Chromium: a match watched through the relay
 * while players play, through a relay restart, checked against the server's
 * tables. Dev server, relay and page server on port 0.
 */
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { DevServer } from '../../devserver/index.ts';
import { startSpectatorPage, type SpectatorPage } from '../../demo/server/spectatorPage.ts';
import type { Relay } from '../../relay/index.ts';
import { arenaClient, createMatch, serverRows, startArena, startRelay, type ArenaClient } from '../relay/helpers.ts';
import { launchChromium, screenshot, untilPage, waitLive } from './harness.ts';

const TIMINGS = { heartbeat: { interval: 1000, timeout: 1000 }, retry: { initialInterval: 100, maxInterval: 500 }, connectTimeout: 2000 };

describe('spectator page in the browser', function () {
  this.timeout(90_000);
  let browser: Browser;
  let server: DevServer;
  let relay: Relay;
  let page: SpectatorPage;
  let host: ArenaClient;
  let rival: ArenaClient;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    server = await startArena();
    host = arenaClient(server);
    rival = arenaClient(server);
    relay = await startRelay(server, { delayMs: 1000 });
    page = await startSpectatorPage({ port: 0, relay: relay.wsUrl, timings: TIMINGS });
  });
  afterEach(async () => {
    for (const context of browser.contexts()) await context.close();
    await page?.stop();
    await relay?.close();
    await rival.close();
    await host.close();
    await server.stop();
  });

  it('shows a match live with the delay badge and the status bar, through a relay restart, matching the server', async () => {
    const matchId = await createMatch(server, host, 'showmatch');
    await rival.call('joinMatch', { matchId });
    await host.call('startMatch', { matchId });
    await host.call('createNode', { parent: 0n, x: 100, y: 80, data: '{}' });

    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const tab = await context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(`${page.url}?match=${matchId}`);
    await waitLive(tab, errors);
    expect(await tab.textContent('#match-title')).to.equal(`Match ${matchId}: showmatch`);
    expect(await tab.isVisible('#delay-badge')).to.equal(true);
    expect(await tab.textContent('#delay-badge')).to.equal('delay 1 s');
    expect(await tab.locator('#scores li').count()).to.equal(2);
    expect(await tab.locator('#spectator-board circle').count()).to.equal(1);

    const serverLog = () => serverRows(server, 'battle_log').filter((r) => r.matchId === matchId).map((r) => String(r.seq)).sort();
    const shownLog = () => tab.$$eval('#battle-log li', (lis) => lis.map((li) => li.getAttribute('data-seq')!).sort());
    const play = async (n: number, who: ArenaClient, action: string) => {
      for (let i = 0; i < n; i++) await who.call('recordBattleEvent', { matchId, action, detail: '{}', scoreDelta: 1 });
    };
    await play(3, host, 'strike');
    await play(2, rival, 'parry');
    await untilPage('the page to show the five events', async () => (await shownLog()).length === 5);
    expect(await shownLog()).to.deep.equal(serverLog());

    // Restart the relay on its port while the players keep playing.
    const port = relay.port;
    await relay.close();
    await tab.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 5000 });
    await play(2, host, 'strike');
    relay = await startRelay(server, { delayMs: 1000, port });
    await waitLive(tab, errors);
    await play(1, rival, 'heal');
    await untilPage('the page to catch up after the restart', async () => (await shownLog()).length === 8);
    expect(await shownLog()).to.deep.equal(serverLog());
    const scores = await tab.$$eval('#scores li', (lis) => lis.map((li) => Number(li.getAttribute('data-score'))).sort());
    const serverScores = serverRows(server, 'match_member').filter((r) => r.matchId === matchId).map((r) => r.score).sort();
    expect(scores).to.deep.equal(serverScores);
    expect(await tab.getAttribute('#version', 'title')).to.equal(relay.version(`match/${matchId}`));
    await screenshot(tab, 'spectator');
    expect(errors).to.deep.equal([]);
  });

  it('asks for a match when none is given, and shows a refused stream as offline', async () => {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(page.url);
    expect(await tab.isVisible('#pick')).to.equal(true);
    await tab.goto(`${page.url}?match=99999999999999999999`);
    expect(await tab.isVisible('#pick')).to.equal(true);
    await relay.close();
    relay = await startRelay(server, { port: relay.port, authorize: () => false });
    await tab.goto(`${page.url}?match=5`);
    await tab.waitForSelector('#conn[data-state="offline"]', { timeout: 5000 });
    expect(await tab.textContent('#conn-text')).to.match(/offline: relay refused stream match\/5: not allowed/);
  });
});
