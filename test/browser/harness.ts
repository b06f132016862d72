/**
 * Browser test harness: Debian's Chromium through playwright-core, and per
 * test a dev server (port 0, temp data folder, admin on) with the demo page
 * server in front of it. Everything on 127.0.0.1; everything stopped after.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { firstValueFrom, filter, timeout } from 'rxjs';
import { startDevServer, type DevServer } from '../../devserver/index.ts';
import { buildPage, type PageBundle } from '../../demo/server/bundle.ts';
import { startPageServer, type PageServer } from '../../demo/server/pageServer.ts';
import { DbConnection } from '../../demo/arena/bindings/index.ts';
import { BOARD_HEIGHT, BOARD_WIDTH, NODE_MARGIN } from '../../demo/web/board.ts';
import { createSyncClient, type SyncClient } from '../../src/index.ts';
import { until } from '../helpers/until.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(process.cwd(), 'test-artifacts');

/** Short timings so the scenarios run in seconds; the page shows the same states a person would see. */
export const TEST_TIMINGS = {
  heartbeat: { interval: 1000, timeout: 1000 },
  retry: { initialInterval: 200, maxInterval: 1000 },
  connectTimeout: 2000,
};

export function launchChromium(): Promise<Browser> {
  // playwright gives every launch a fresh, empty profile (user data dir) of its own.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}

let bundle: Promise<PageBundle> | undefined;

export interface Arena {
  dev: DevServer;
  page: PageServer;
  /** A Node client of the same database: the server's truth. */
  observer(): SyncClient<DbConnection>;
  stop(): Promise<void>;
}

export async function startArena(): Promise<Arena> {
  const dataDir = await mkdtemp(join(tmpdir(), 'stdb-rx-browser-'));
  const dev = await startDevServer({ module: 'demo/arena/module.ts', port: 0, host: '127.0.0.1', dataDir, admin: true });
  const page = await startPageServer({ port: 0, host: '127.0.0.1', uri: dev.wsUrl, database: dev.database, adminBase: dev.url, timings: TEST_TIMINGS, bundle: await (bundle ??= buildPage()) });
  const clients: SyncClient<DbConnection>[] = [];
  return {
    dev,
    page,
    observer() {
      const c = createSyncClient<DbConnection>({ builder: DbConnection.builder, uri: dev.wsUrl, database: dev.database, events: null, sdkLogLevel: 'error', heartbeat: false });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close()));
      await page.stop();
      await dev.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The hooks of a demo test suite: one Chromium for the suite, a fresh arena
 * (dev server and page server) per test, and every browser context closed
 * after it. Read `suite.browser` and `suite.arena` inside the tests.
 */
export function arenaSuite(): { readonly browser: Browser; readonly arena: Arena } {
  const suite = {} as { browser: Browser; arena: Arena };
  before(async () => {
    suite.browser = await launchChromium();
  });
  after(async () => {
    await suite.browser?.close();
  });
  beforeEach(async () => {
    suite.arena = await startArena();
  });
  afterEach(async () => {
    for (const context of suite.browser.contexts()) await context.close();
    await suite.arena?.stop();
  });
  return suite;
}

/** The page opened in a new browser context (desktop size unless told), its errors collected. */
export async function openPage(browser: Browser, arena: Arena, options: Parameters<Browser['newContext']>[0] = { viewport: { width: 1100, height: 720 } }): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(arena.page.url);
  return { context, page, errors };
}

/** A player: a browser context of its own (own IndexedDB), the page opened, signed in anonymously, live. */
export async function player(browser: Browser, arena: Arena): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const { context, page, errors } = await openPage(browser, arena);
  await page.click('#play-anon');
  await waitLive(page, errors);
  return { context, page, errors };
}

/** Wait for the top bar to say live; a timeout names what the page showed and threw instead. */
export async function waitLive(page: Page, errors: string[], ms = 10_000): Promise<void> {
  try {
    await page.waitForSelector('#conn[data-state="live"]', { timeout: ms });
  } catch (e) {
    const shown = await page.textContent('#conn-text').catch(() => '?');
    throw new Error(`the page did not get live within ${ms} ms (top bar: ${shown}; page errors: ${JSON.stringify(errors)})`, { cause: e });
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

export interface DrawnNode {
  id: string;
  x: number;
  y: number;
  mine: boolean;
  pending: boolean;
  version: number;
}

/** The nodes the board shows, as the DOM has them. */
export function boardNodes(page: Page): Promise<DrawnNode[]> {
  return page.$$eval('#board .node', (els) =>
    (els as HTMLElement[]).map((el) => ({
      id: el.dataset.id ?? '',
      x: Number(el.dataset.x),
      y: Number(el.dataset.y),
      mine: el.dataset.mine === 'true',
      pending: el.dataset.pending === 'true',
      version: Number(el.dataset.version),
    })),
  );
}

/**
 * The shared {@link until} for checks that talk to a page: a check that
 * throws (the page navigating, an element not there yet) counts as "not yet",
 * and the timeout message says what the last check saw.
 */
export function untilPage<T>(what: string, check: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  let last: unknown;
  const attempt = async (): Promise<T | undefined | false> => {
    try {
      return (last = await check());
    } catch (e) {
      last = e;
      return undefined;
    }
  };
  return until(attempt, () => `${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`, ms) as Promise<T>;
}

/** Create a node with the "+ node" button and wait until the server confirmed it; returns its id. */
export async function addNode(page: Page): Promise<string> {
  const before = new Set((await boardNodes(page)).filter((n) => n.id).map((n) => n.id));
  await page.click('#add-node');
  const node = await untilPage('the new node to be confirmed', async () => (await boardNodes(page)).find((n) => n.id && !before.has(n.id) && n.mine && !n.pending));
  return node.id;
}

/**
 * Drag node `id` by about (dx, dy) with the mouse, as a person would; a
 * direction that would leave the board is reversed. Returns where the node
 * was and where it should end up.
 */
export async function dragNode(page: Page, id: string, dx: number, dy: number): Promise<{ from: DrawnNode; to: { x: number; y: number } }> {
  const from = (await boardNodes(page)).find((n) => n.id === id);
  if (!from) throw new Error(`node ${id} is not on the board`);
  // The board keeps a node NODE_MARGIN from its edges (a drop past that is clamped): turn back before it.
  if (from.x + dx < NODE_MARGIN || from.x + dx > BOARD_WIDTH - NODE_MARGIN) dx = -dx;
  if (from.y + dy < NODE_MARGIN || from.y + dy > BOARD_HEIGHT - NODE_MARGIN) dy = -dy;
  const box = await page.locator(`#board .node[data-id="${id}"]`).boundingBox();
  if (!box) throw new Error(`node ${id} has no box`);
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  await page.mouse.move(cx + dx / 2, cy + dy / 2, { steps: 4 });
  await page.mouse.move(cx + dx, cy + dy, { steps: 4 });
  await page.mouse.up();
  return { from, to: { x: from.x + dx, y: from.y + dy } };
}

/** The first value of the observer's table that satisfies `predicate`. */
export function serverRows<T>(source: import('rxjs').Observable<T>, predicate: (v: T) => boolean, ms = 10_000): Promise<T> {
  return firstValueFrom(source.pipe(filter(predicate), timeout(ms)));
}
