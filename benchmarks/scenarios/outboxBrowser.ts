/**
 * The outbox in Chromium with its real IndexedDB: the page
 * `benchmarks/browser/outboxPage.ts`, bundled with esbuild and served on
 * 127.0.0.1, runs the Node outbox scenario's measurements in the browser —
 * enqueue (durable versus in memory) and replay (the client's pipelined
 * drain versus one round trip per call) — against the benchmark dev server.
 * Driven by playwright-core with Debian's Chromium.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser } from '../../demo/server/bundle.ts';
import { chromium } from 'playwright-core';
import type { OutboxBenchConfig, OutboxBenchFigures } from '../browser/outboxPage.ts';
import { notMeasured, now, result, type RunConfig, type ScenarioResult } from '../harness.ts';
import { seedEntities, startBenchServer, WireClient } from '../setup.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PAGE = fileURLToPath(new URL('../browser/outboxPage.ts', import.meta.url));
const TITLE = 'Outbox in Chromium (real IndexedDB): enqueue and replay';

export async function outboxBrowser(cfg: RunConfig): Promise<ScenarioResult> {
  const target = { label: 'Chromium: replay ≥ 10× the one-at-a-time baseline (calls/s)', metric: 'replayCallsPerSec', op: '>=' as const, limit: 10 };
  if (!existsSync(CHROMIUM)) return notMeasured('outboxBrowser', TITLE, `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`, [target]);
  const config: Omit<OutboxBenchConfig, 'uri' | 'database'> = cfg.quick
    ? { rows: 100, enqueueN: 1_000, replayN: 1_000, serialN: 200 }
    : { rows: 100, enqueueN: 10_000, replayN: 10_000, serialN: 1_000 };
  const started = now();
  const { js } = await bundleForBrowser(PAGE);
  const http = createServer((req, res) => {
    if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      res.end(js);
    } else if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><meta charset="utf-8"><title>stdb-rx outbox benchmark</title><body><script type="module" src="/page.js"></script></body>');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
  const server = await startBenchServer();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30_000,
  });
  let figures: OutboxBenchFigures;
  let version: string;
  try {
    version = browser.version();
    const seeder = await WireClient.open(server);
    await seedEntities(seeder, config.rows);
    await seeder.close();
    const page = await (await browser.newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.exposeFunction('benchDropAll', () => void server.faults.dropAll());
    await page.goto(pageUrl);
    await page.waitForSelector('body[data-ready="true"]', { state: 'attached', timeout: 30_000 });
    const full: OutboxBenchConfig = { ...config, uri: server.wsUrl, database: server.database };
    figures = await page.evaluate((c) => window.outboxBench(c), full);
    if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
  } finally {
    await browser.close();
    await server.stop();
    await new Promise((r) => http.close(r));
  }
  const n = config.enqueueN;
  return result({
    id: 'outboxBrowser',
    title: TITLE,
    subjectLabel: 'durable outbox (Chromium IndexedDB) / stdb-rx pipelined replay',
    baselineLabel: 'in-memory outbox / one round trip per call',
    warmup: 0,
    reps: 1,
    figures: { [`enqueueCallsPerSec_${n}`]: figures.enqueueCallsPerSec, replayCallsPerSec: figures.replayCallsPerSec, replayMs: figures.replayMs, replayedCalls: config.replayN },
    baseline: { [`enqueueCallsPerSec_${n}`]: figures.enqueueMemoryCallsPerSec, replayCallsPerSec: figures.serialCallsPerSec, replayMs: figures.serialMs },
    ratio: { [`enqueueCallsPerSec_${n}`]: figures.enqueueCallsPerSec / figures.enqueueMemoryCallsPerSec, replayCallsPerSec: figures.replayCallsPerSec / figures.serialCallsPerSec },
    targets: [target],
    notes: [
      `Chromium ${version}, headless, driven by playwright-core; the page (benchmarks/browser/outboxPage.ts, bundled with esbuild) is served from 127.0.0.1 and talks to the benchmark dev server over a real WebSocket. Storage: Dexie on the browser's own IndexedDB.`,
      `Enqueue: ${n.toLocaleString('en')} 'move' calls issued at once to storage.outbox.enqueue until all are stored; durable and in-memory in turns (durable, memory, memory, durable), mean of two each.`,
      `Pipelined replay: a stdb-rx client in the page is cut off (the dev server's dropAll, 10-minute retry), ${config.replayN.toLocaleString('en')} calls are made and stored, then reconnectNow(); the time runs until every handle is confirmed. One round trip per call: ${config.serialN.toLocaleString('en')} entries claimed from a durable outbox, each sent with the raw SDK in the page, awaited and marked confirmed before the next.`,
      'The same measurements in Node (fake-indexeddb) are in the Outbox section above; both run the same outbox code.',
    ],
    charts: [
      {
        title: 'Outbox in Chromium (calls/s)',
        unit: '/s',
        groups: {
          [`enqueue ${n.toLocaleString('en')}`]: { 'durable (IndexedDB)': figures.enqueueCallsPerSec, 'in memory': figures.enqueueMemoryCallsPerSec },
          replay: { 'stdb-rx pipelined': figures.replayCallsPerSec, 'one round trip per call': figures.serialCallsPerSec },
        },
      },
    ],
    durationMs: now() - started,
  });
}
