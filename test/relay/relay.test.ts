import { expect } from 'chai';
import type { DevServer } from '../../devserver/index.ts';
import type { Relay } from '../../relay/index.ts';
import type { Spectator } from '../../src/index.ts';
import { arenaClient, createMatch, keysOf, next, serverRows, serverStream, spectate, startArena, startRelay, type ArenaClient } from './helpers.ts';

describe('relay: a spectator watches a match (dev server, relay and spectator over real sockets)', () => {
  let server: DevServer;
  let host: ArenaClient;
  let relay: Relay;
  const spectators: Spectator[] = [];

  beforeEach(async () => {
    server = await startArena();
    host = arenaClient(server);
    relay = await startRelay(server);
  });

  afterEach(async () => {
    for (const s of spectators.splice(0)) await s.close();
    await relay.close();
    await host.close();
    await server.stop();
  });

  it('sends a snapshot, then one patch per transaction; the rows match the server', async () => {
    const matchId = await createMatch(server, host);
    const s = spectate(relay, `match/${matchId}`);
    spectators.push(s);
    await next(s.status$, (st) => st.state === 'live', 5000, 'spectator live');
    const match = await next(s.table$<any>('match'), (m) => m.size === 1);
    expect(match.get(matchId).name).to.equal('final');
    expect(keysOf(await next(s.table$('members')))).to.deep.equal(serverStream(server, matchId).members);

    const batches: string[][] = [];
    s.changes$<any>('log').subscribe((b) => batches.push(b.map((c) => `${c.op}:${c.newRow?.action ?? c.oldRow?.action}`)));
    await host.call('startMatch', { matchId });
    await next(s.table$<any>('match'), (m) => m.get(matchId)?.state.tag === 'Battle');
    for (const action of ['strike', 'parry', 'heal']) await host.call('recordBattleEvent', { matchId, action, detail: '{}', scoreDelta: 1 });
    const members = await next(s.table$<any>('members'), (m) => [...m.values()][0]?.score === 3);
    expect([...members.values()][0].score).to.equal(3);
    const log = await next(s.table$<any>('log'), (m) => m.size === 3);
    expect([...log.values()].map((r) => r.action)).to.deep.equal(['strike', 'parry', 'heal']);
    // The first batch is the (empty) current log, then one batch per transaction.
    expect(batches).to.deep.equal([[], ['insert:strike'], ['insert:parry'], ['insert:heal']]);
    expect(keysOf(log)).to.deep.equal(serverStream(server, matchId).log);
    const serverLog = serverRows(server, 'battle_log');
    expect(typeof [...log.keys()][0]).to.equal('bigint');
    expect([...log.values()][0].at.microsSinceUnixEpoch).to.equal(serverLog[0].at.microsSinceUnixEpoch);
    expect(s.status.version).to.equal(relay.version(`match/${matchId}`));
  });
});
