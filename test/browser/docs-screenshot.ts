/**
 * Makes docs/demo.png, the picture in docs/demo.md: two players, a few
 * nodes, a battle with its log, chat, and one move in flight under latency.
 *
 *   npx tsx test/browser/docs-screenshot.ts
 */
import { addNode, dragNode, launchChromium, player, startArena, untilPage, boardNodes } from './harness.ts';

const arena = await startArena();
const browser = await launchChromium();
try {
  const a = await player(browser, arena);
  const b = await player(browser, arena);
  for (const [p, name] of [[a, 'ada'], [b, 'brick']] as const) {
    await p.page.fill('#name-input', name);
    await p.page.press('#name-input', 'Enter');
  }
  for (let i = 0; i < 3; i++) await addNode(a.page);
  for (let i = 0; i < 2; i++) await addNode(b.page);
  await a.page.fill('#match-name', 'friday arena');
  await a.page.press('#match-name', 'Enter');
  await b.page.locator('#matches button:has-text("Join")').click();
  await a.page.waitForSelector('#matches li:has-text("2/8")');
  await a.page.locator('#matches button:has-text("Start battle")').click();
  for (const [p, n] of [[a, 1], [b, 2], [a, 3]] as const) {
    await p.page.locator('#matches button:has-text("Attack")').click();
    await p.page.waitForSelector(`#battle-log li[data-seq="${n}"]`);
  }
  await a.page.waitForSelector('#battle-log li[data-seq="3"]');
  for (const [p, text] of [[a, 'gl hf'], [b, 'watch me blackhole this'], [a, 'the queue will catch up']] as const) {
    await p.page.fill('#chat-input', text);
    await p.page.press('#chat-input', 'Enter');
  }
  await a.page.waitForSelector('#chat li:nth-child(3)');
  arena.dev.faults.latency(450); // under the answer deadline: pending for a moment, the link still "live"
  const mine = (await boardNodes(a.page)).find((n) => n.mine)!;
  await dragNode(a.page, mine.id, 90, 40);
  await untilPage('the move drawn as pending', async () => (await boardNodes(a.page)).some((n) => n.pending));
  await a.page.setViewportSize({ width: 1080, height: 790 });
  await a.page.screenshot({ path: 'docs/demo.png' });
  console.log('wrote docs/demo.png');
} finally {
  await browser.close();
  await arena.stop();
}
