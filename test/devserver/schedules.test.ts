/**
 * Scheduled tables on the dev server, driven by a ManualClock (no sleeping):
 * interval and one-shot rows, re-arming by update, cancelling by delete, a
 * scheduled procedure, the module's own identity as sender, and schedules
 * surviving a restart (overdue ones firing on start).
 */
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../devserver/index.ts';
import { ManualClock } from '../../devserver/host/scheduler.ts';
import type { DbConnection } from '../fixtures/timers_bindings/index.ts';
import { until } from '../helpers/until.ts';
import { connectTimers, TIMERS_MODULE } from '../helpers/timers.ts';

/** Rows of `table` on the server (committed state, read synchronously). */
function serverRows(server: DevServer, table: string) {
  return [...server.module.datastore.scan(table)].map((r) => r.value as Record<string, any>);
}
const firedLabels = (server: DevServer) => serverRows(server, 'fired').map((r) => r.label as string);

describe('dev server: scheduled tables', () => {
  let clock: ManualClock;
  let server: DevServer;
  let conn: DbConnection;

  beforeEach(async () => {
    clock = new ManualClock(1_700_000_000_000_000n);
    server = await startDevServer({ module: TIMERS_MODULE, port: 0, clock });
    conn = await connectTimers(server);
  });

  afterEach(async () => {
    conn.disconnect();
    await server.stop();
  });

  it('runs an interval row every interval, as the database identity, until its row is deleted', async () => {
    const start = clock.now();
    await conn.reducers.startTick({ label: 'loop', everyMs: 1000n });
    clock.advance(999);
    expect(firedLabels(server)).to.deep.equal([]);
    clock.advance(1);
    expect(firedLabels(server)).to.deep.equal(['loop']);
    clock.advance(3000);
    expect(firedLabels(server)).to.deep.equal(['loop', 'loop', 'loop', 'loop']);
    const rows = serverRows(server, 'fired');
    expect(rows.map((r) => r.at.microsSinceUnixEpoch - start)).to.deep.equal([1_000_000n, 2_000_000n, 3_000_000n, 4_000_000n]);
    for (const r of rows) expect(r.sender.isEqual(server.module.databaseIdentity)).to.equal(true);
    // The client sees the scheduled reducers' rows arrive.
    await until(() => [...conn.db.fired.iter()].length === 4, 'four fired rows on the client', 5000);
    expect([...conn.db.fired.iter()].every((r) => r.sender.isEqual(server.module.databaseIdentity))).to.equal(true);

    await conn.reducers.stopTick({ label: 'loop' });
    clock.advance(5000);
    expect(firedLabels(server)).to.have.length(4);
  });

  it('runs a one-shot row once at its time and deletes it; a failing reducer still consumes it', async () => {
    await conn.reducers.setAlarm({ label: 'once', inMs: 500n });
    await conn.reducers.setAlarm({ label: 'fail', inMs: 700n });
    await until(() => [...conn.db.alarm.iter()].length === 2, 'two alarm rows on the client', 5000);
    clock.advance(499);
    expect(firedLabels(server)).to.deep.equal([]);
    clock.advance(1);
    expect(firedLabels(server)).to.deep.equal(['once']);
    expect(serverRows(server, 'alarm').map((r) => r.label)).to.deep.equal(['fail']);
    clock.advance(200);
    // The failing reducer's insert was rolled back; its row was deleted anyway.
    expect(firedLabels(server)).to.deep.equal(['once']);
    expect(serverRows(server, 'alarm')).to.deep.equal([]);
    await until(() => [...conn.db.alarm.iter()].length === 0, 'alarm rows gone on the client', 5000);
    clock.advance(10_000);
    expect(firedLabels(server)).to.deep.equal(['once']);
  });

  it('re-arms a row that is updated and cancels one that is deleted', async () => {
    await conn.reducers.setAlarm({ label: 'moved', inMs: 500n });
    await conn.reducers.setAlarm({ label: 'cancelled', inMs: 500n });
    await conn.reducers.moveAlarm({ label: 'moved', inMs: 2000n });
    await conn.reducers.cancelAlarm({ label: 'cancelled' });
    clock.advance(1999);
    expect(firedLabels(server)).to.deep.equal([]);
    clock.advance(1);
    expect(firedLabels(server)).to.deep.equal(['moved']);
    clock.advance(10_000);
    expect(firedLabels(server)).to.deep.equal(['moved']);
  });

  it('runs a scheduled procedure, deleting its one-shot row first', async () => {
    await conn.reducers.scheduleJob({ label: 'nightly', inMs: 100n });
    expect(serverRows(server, 'job')).to.have.length(1);
    clock.advance(100);
    expect(firedLabels(server)).to.deep.equal(['job:nightly']);
    expect(serverRows(server, 'job')).to.deep.equal([]);
    expect(serverRows(server, 'fired')[0].sender.isEqual(server.module.databaseIdentity)).to.equal(true);
    await until(() => [...conn.db.fired.iter()].some((r) => r.label === 'job:nightly'), 'the procedure row on the client', 5000);
  });

  it('keeps running after a module reload (--watch), armed on the new version', async () => {
    await conn.reducers.startTick({ label: 'loop', everyMs: 1000n });
    await conn.reducers.setAlarm({ label: 'once', inMs: 1500n });
    clock.advance(1000);
    expect(firedLabels(server)).to.deep.equal(['loop']);
    const event = await server.reload();
    expect(event.status).to.equal('reloaded');
    clock.advance(1000);
    expect(firedLabels(server).sort()).to.deep.equal(['loop', 'loop', 'once']);
    expect(serverRows(server, 'alarm')).to.deep.equal([]);
  });

  it('keeps schedules through faults.restart() without a data folder', async () => {
    await conn.reducers.setAlarm({ label: 'kept', inMs: 1000n });
    await server.faults.restart();
    clock.advance(1000);
    expect(firedLabels(server)).to.deep.equal(['kept']);
  });
});

describe('dev server: schedules with a data folder', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stdb-rx-sched-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('survive a stop and start; overdue one-shots fire on start, intervals re-arm from the start', async () => {
    const clock = new ManualClock(1_700_000_000_000_000n);
    const first = await startDevServer({ module: TIMERS_MODULE, port: 0, clock, dataDir: dir });
    const conn = await connectTimers(first);
    await conn.reducers.setAlarm({ label: 'overdue', inMs: 5000n });
    await conn.reducers.setAlarm({ label: 'later', inMs: 60_000n });
    await conn.reducers.startTick({ label: 'beat', everyMs: 1000n });
    conn.disconnect();
    await first.stop();

    clock.advance(10_000); // the server is down: nothing runs
    const second = await startDevServer({ module: TIMERS_MODULE, port: 0, clock, dataDir: dir });
    try {
      expect(firedLabels(second)).to.deep.equal([]);
      clock.advance(0);
      expect(firedLabels(second)).to.deep.equal(['overdue']);
      clock.advance(1000);
      expect(firedLabels(second).sort()).to.deep.equal(['beat', 'overdue']);
      clock.advance(49_000);
      expect(firedLabels(second).filter((l) => l === 'later')).to.deep.equal(['later']);
    } finally {
      await second.stop();
    }
  });

  it('keep running through faults.restart(), which reloads the module from the data folder', async () => {
    const clock = new ManualClock(1_700_000_000_000_000n);
    const server = await startDevServer({ module: TIMERS_MODULE, port: 0, clock, dataDir: dir });
    try {
      const conn = await connectTimers(server);
      await conn.reducers.startTick({ label: 'steady', everyMs: 1000n });
      await conn.reducers.setAlarm({ label: 'after-restart', inMs: 1500n });
      conn.disconnect();
      clock.advance(1000);
      await server.faults.restart();
      clock.advance(500);
      expect(firedLabels(server).sort()).to.deep.equal(['after-restart', 'steady']);
      clock.advance(1000);
      expect(firedLabels(server).filter((l) => l === 'steady')).to.have.length(2);
    } finally {
      await server.stop();
    }
  });
});
