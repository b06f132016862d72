import { expect } from 'chai';
import { MetricsRecorder } from '../../streams/metrics.ts';
import type { FrameInInfo } from '../../streams/socketAdapter.ts';

const frame = (table: string, bytes: number): FrameInInfo => ({
  wireBytes: bytes + 1,
  bytes,
  compressed: false,
  messages: [{ kind: 'TransactionUpdate', start: 0, end: bytes, tableBytes: new Map([[table, bytes]]) } as FrameInInfo['messages'][number]],
});

describe('MetricsRecorder', () => {
  it('counts while nobody watches and hands a subscriber the totals so far', () => {
    const r = new MetricsRecorder();
    r.frameIn(frame('entity', 100));
    r.frameIn(frame('player', 10));
    r.frameIn(frame('entity', 50));
    r.callRejected();
    const seen: number[] = [];
    const sub = r.metrics$.subscribe((m) => seen.push(m.framesIn));
    expect(seen).to.deep.equal([3]);
    const m = r.value;
    expect(m).to.include({ framesIn: 3, bytesIn: 163, payloadBytesIn: 160, callsRejected: 1 });
    expect(m.messagesIn).to.deep.equal({ TransactionUpdate: 3 });
    expect(m.tableBytesIn).to.deep.equal({ entity: 150, player: 10 });
    sub.unsubscribe();
  });

  it('emits one snapshot per change while watched, and never changes one it emitted', () => {
    const r = new MetricsRecorder();
    const snaps: (typeof r.value)[] = [];
    const sub = r.metrics$.subscribe((m) => snaps.push(m));
    r.frameIn(frame('entity', 100));
    r.probeAnswered(12);
    r.frameIn(frame('entity', 20));
    expect(snaps.map((m) => m.framesIn)).to.deep.equal([0, 1, 1, 2]);
    expect(snaps[1].tableBytesIn).to.deep.equal({ entity: 100 });
    expect(snaps[3].tableBytesIn).to.deep.equal({ entity: 120 });
    expect(snaps[2].rtt).to.include({ count: 1, lastMs: 12 });
    expect(snaps[0].rtt.count).to.equal(0);
    sub.unsubscribe();
  });

  it('keeps the final totals as its value after completing', () => {
    const r = new MetricsRecorder();
    r.connectionLive();
    let last: number | undefined;
    let done = false;
    r.complete();
    r.metrics$.subscribe({ next: (m) => (last = m.connections), complete: () => (done = true) });
    expect(done).to.equal(true);
    expect(last).to.equal(undefined);
    expect(r.value.connections).to.equal(1);
  });
});
