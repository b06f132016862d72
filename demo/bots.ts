/**
 * `npm start -- --headless`: bot players in Node, for servers without a
 * screen. Each bot is a stdb-rx sync client: it creates a node, moves it
 * every half second (optimistic, superseding its own queued move), chats now
 * and then. One status line per second: state, RTT, calls queued, calls
 * applied.
 */
import { ConnectionLostError, createSyncClient, type SyncClient } from '../src/index.ts';
import { DbConnection, tables } from './arena/bindings/index.ts';

export interface BotsOptions {
  uri: string;
  database: string;
  bots: number;
  /** Where status lines go. */
  out: (line: string) => void;
  /** Move period (ms). @default 500 */
  movePeriodMs?: number;
}

interface Bot {
  name: string;
  client: SyncClient<DbConnection>;
  myNode: bigint | undefined;
  creating: boolean;
  queued: number;
  applied: number;
  rejected: number;
  /** Sent, then the connection died before an answer: outcome unknown (maybe applied), so not "rejected". */
  lost: number;
  rtt: number | null;
}

const stateLetter: Record<string, string> = { live: 'L', degraded: 'D', syncing: 'S', connecting: 'C', reconnecting: 'R', offline: 'O', closed: 'X' };

export function runBots(options: BotsOptions): { stop(): Promise<void> } {
  const bots: Bot[] = [];
  const timers: ReturnType<typeof setInterval>[] = [];
  for (let i = 0; i < options.bots; i++) {
    const client = createSyncClient<DbConnection>({
      builder: DbConnection.builder,
      uri: options.uri,
      database: options.database,
      retry: { initialInterval: 300, maxInterval: 5000 },
      connectTimeout: 5000,
      reconcile: { conflict: 'client-wins' },
      sdkLogLevel: 'error',
      events: null,
    });
    const bot: Bot = { name: `bot-${i + 1}`, client, myNode: undefined, creating: false, queued: 0, applied: 0, rejected: 0, lost: 0, rtt: null };
    bots.push(bot);
    // The smoothed round trip, only while live (undefined otherwise).
    client.status$.subscribe((s) => (bot.rtt = s.state === 'live' ? (s.rttMs ?? null) : null));
    let me: string | undefined;
    client.identity$.subscribe((id) => {
      me = id.toHexString();
      track(bot, client.call('setName', { mutationId: crypto.randomUUID(), name: bot.name }));
    });
    client.table$(tables.gameNode).subscribe((rows) => {
      if (!me) return;
      for (const [key, row] of rows) if (typeof key === 'bigint' && row.owner.toHexString() === me) bot.myNode = key;
    });
  }

  const track = (bot: Bot, handle: ReturnType<SyncClient<DbConnection>['call']>) => {
    bot.queued++;
    handle.done.then(
      () => {
        bot.queued--;
        bot.applied++;
      },
      (e: unknown) => {
        bot.queued--;
        if (e instanceof ConnectionLostError && e.info.reducer !== undefined) bot.lost++;
        else bot.rejected++;
      },
    );
  };

  timers.push(
    setInterval(() => {
      for (const bot of bots) {
        if (bot.client.status.state !== 'live') continue;
        if (bot.myNode === undefined) {
          if (bot.creating) continue;
          bot.creating = true;
          const h = bot.client.call('createNode', { mutationId: crypto.randomUUID(), parent: 0n, x: 320, y: 210, data: JSON.stringify({ bot: bot.name }) });
          track(bot, h);
          h.done.finally(() => (bot.creating = false)).catch(() => undefined);
          continue;
        }
        const id = bot.myNode;
        const x = 20 + Math.round(Math.random() * 600);
        const y = 20 + Math.round(Math.random() * 380);
        track(
          bot,
          bot.client.call(
            'moveNode',
            { mutationId: crypto.randomUUID(), id, x, y },
            { supersedeKey: `move:${id}`, optimistic: { table: tables.gameNode, predict: (rows) => new Map(rows.get(id) ? [[id, { ...rows.get(id)!, x, y }]] : []) } },
          ),
        );
        if (Math.random() < 0.05) track(bot, bot.client.call('sendChat', { mutationId: crypto.randomUUID(), text: `${bot.name} is at (${x}, ${y})` }));
      }
    }, options.movePeriodMs ?? 500),
  );

  const started = Date.now();
  timers.push(
    setInterval(() => {
      // A live bot whose calls or probes go unanswered shows as `D`egraded: live, but not for long if it lasts.
      const states = bots.map((b) => (b.client.status.quality === 'degraded' ? 'degraded' : b.client.status.state));
      const live = states.filter((s) => s === 'live').length;
      const state = live === bots.length ? 'live' : states.map((s) => stateLetter[s] ?? '?').join('');
      const rtts = bots.map((b) => b.rtt).filter((r): r is number => r !== null);
      const rtt = rtts.length ? `${(rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(1)} ms` : '–';
      const sum = (f: (b: Bot) => number) => bots.reduce((a, b) => a + f(b), 0);
      const t = Math.round((Date.now() - started) / 1000);
      options.out(`t=${t}s state=${state} (${live}/${bots.length} live) rtt=${rtt} queued=${sum((b) => b.queued)} applied=${sum((b) => b.applied)} rejected=${sum((b) => b.rejected)} lost=${sum((b) => b.lost)}`);
    }, 1000),
  );

  return {
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(bots.map((b) => b.client.close()));
    },
  };
}
