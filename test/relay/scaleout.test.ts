/**
 * Scale-out: three relays, each subscribed to the dev server on its own,
 * behind a TCP balancer. A spectator is moved between them (and through a
 * relay restart) while a match is played, and must see every change exactly
 * once, checked against the server's tables.
 */
import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import type { Relay } from '../../relay/index.ts';
import type { RowChange } from '../../src/index.ts';
import { arenaClient, createMatch, next, rawSpectator, serverRows, spectate, startArena, startBalancer, startRelay, type ArenaClient, type RawSpectator } from './helpers.ts';

describe('relay scale-out: three relays, one spectator moved between them mid-match', function () {
  this.timeout(60_000);
  let server: DevServer;
  let host: ArenaClient;
  let relays: Relay[] = [];

  beforeEach(async () => {
    server = await startArena();
    host = arenaClient(server);
  });

  afterEach(async () => {
    for (const r of relays) await r.close();
    relays = [];
    await host.close();
    await server.stop();
  });

  it('every relay computes the same versions for the same rows', async () => {
    const matchId = await createMatch(server, host);
    relays = [await startRelay(server), await startRelay(server), await startRelay(server)];
    const stream = `match/${matchId}`;
    const spies = await Promise.all(relays.map((r) => rawSpectator(r, { stream })));
    const snaps = await Promise.all(spies.map((s) => s.message((m) => m.t === 'snapshot')));
    expect(new Set(snaps.map((s) => s.version)).size).to.equal(1);
    await host.call('startMatch', { matchId });
    await host.call('recordBattleEvent', { matchId, action: 'a', detail: '{}', scoreDelta: 2 });
    const patches = await Promise.all(spies.map((s) => s.message((m) => m.t === 'patch' && JSON.stringify(m.ops).includes('"action":"a"'))));
    expect(new Set(patches.map((p) => p.version)).size).to.equal(1);
    expect(new Set(patches.map((p) => p.from)).size).to.equal(1);
    for (const s of spies) s.ws.close();
  });

  it('moves a spectator across relays and through a relay restart without a gap or a duplicate', async () => {
    const matchId = await createMatch(server, host);
    await host.call('startMatch', { matchId });
    const stream = `match/${matchId}`;
    relays = [await startRelay(server), await startRelay(server), await startRelay(server)];
    // Other spectators keep the stream open on every relay (so each has a history).
    const keepers: RawSpectator[] = await Promise.all(relays.map((r) => rawSpectator(r, { stream })));
    const balancer = await startBalancer(relays.map((r) => r.port));
    const spectator = spectate(balancer.url, stream);
    const logChanges: RowChange<any>[] = [];
    const scores: number[] = [];
    spectator.changes$<any>('log').subscribe((b) => logChanges.push(...b));
    spectator.table$<any>('members').subscribe((m) => scores.push([...m.values()][0].score));
    await next(spectator.status$, (s) => s.state === 'live');

    const TOTAL = 60;
    let played = 0;
    const play = (async () => {
      for (; played < TOTAL; played++) await host.call('recordBattleEvent', { matchId, action: `hit${played + 1}`, detail: '{}', scoreDelta: 1 });
    })();
    const at = (n: number) => next(spectator.table$<any>('log'), (m) => m.size >= n, 10_000, `${n} log rows`);
    const moveTo = async (i: number) => {
      balancer.route = i;
      balancer.drop();
      await next(spectator.status$, (s) => s.state === 'reconnecting', 5000, 'reconnecting');
      await next(spectator.status$, (s) => s.state === 'live', 5000, 'live again');
    };

    await at(10);
    await moveTo(1);
    await at(25);
    await moveTo(2);
    await at(40);
    // Restart relay 0 on its port and send the spectator there.
    const port = relays[0].port;
    await relays[0].close();
    relays[0] = await startRelay(server, { port });
    await moveTo(0);
    await play;
    const final = await at(TOTAL);

    // Against the server's tables: the same log, each insert seen exactly once, in order.
    const serverLog = serverRows(server, 'battle_log').filter((r) => r.matchId === matchId).sort((a, b) => a.seq - b.seq);
    expect([...final.values()].map((r) => r.seq).sort((a, b) => a - b)).to.deep.equal(serverLog.map((r) => r.seq));
    expect(logChanges.every((c) => c.op === 'insert')).to.equal(true);
    expect(logChanges.map((c) => c.newRow.seq)).to.deep.equal(serverLog.map((r) => r.seq));
    // Scores only ever rise (no change replayed or undone), ending at the server's.
    const serverScore = serverRows(server, 'match_member').find((r) => r.matchId === matchId)!.score;
    const finalScore = await next(spectator.table$<any>('members'), (m) => [...m.values()][0].score === serverScore);
    expect([...finalScore.values()][0].score).to.equal(TOTAL);
    for (let i = 1; i < scores.length; i++) expect(scores[i]).to.be.greaterThanOrEqual(scores[i - 1]);
    // The moves between running relays resumed from their histories, not from snapshots.
    expect(balancer.counts[1]).to.be.greaterThan(0);
    expect(balancer.counts[2]).to.be.greaterThan(0);
    expect(relays[1].stats().resumes + relays[2].stats().resumes).to.be.greaterThanOrEqual(2);
    expect(spectator.status.version).to.equal(relays[0].version(stream));

    await spectator.close();
    for (const k of keepers) k.ws.close();
    await balancer.close();
  });
});
