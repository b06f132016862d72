/**
 * A relay stream against a scripted upstream (tables as subjects): grouping
 * of table emissions into transactions, the broadcast delay, and slow
 * spectators. The real-server behaviour is covered by the other relay tests.
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { createHash } from 'node:crypto';
import { BehaviorSubject } from 'rxjs';
import { LiveStream } from '../../relay/stream.ts';
import { Spectator, type SpectatorSink } from '../../relay/spectator.ts';
import { StreamCatalog } from '../../relay/streams.ts';
import { History } from '../../relay/history.ts';

type Rows = Map<bigint, Record<string, unknown>>;

function fakeUpstream(tables: string[]) {
  const subjects = new Map(tables.map((t) => [t, new BehaviorSubject<Rows>(new Map())]));
  const client = { table$: (ref: { name: string }) => subjects.get(ref.name)!.asObservable() } as any;
  const catalog = new StreamCatalog({ 'game/:id': { tables: () => Object.fromEntries(tables.map((t) => [t, { table: { name: t } as any }])) } });
  return { subjects, client, catalog };
}

function fakeSink() {
  const sent: { text: string; version: string | undefined }[] = [];
  let buffered = 0;
  const sink: SpectatorSink & { sent: typeof sent; setBuffered(n: number): void; messages(): any[] } = {
    transport: 'websocket',
    sent,
    send: (text, version) => void sent.push({ text, version }),
    buffered: () => buffered,
    close: () => {},
    setBuffered: (n) => (buffered = n),
    messages: () => sent.map((s) => JSON.parse(s.text)),
  };
  return sink;
}

const flush = () => new Promise<void>((r) => queueMicrotask(r));
const options = (o: Partial<ConstructorParameters<typeof LiveStream>[2]> = {}) => ({
  delayMs: 0,
  history: { maxEntries: 100, maxBytes: 1 << 20 },
  resumeWaitMs: 0,
  maxBufferBytes: 1 << 20,
  onError: (_: unknown, e: Error) => {
    throw e;
  },
  ...o,
});

describe('relay stream (scripted upstream)', () => {
  it('turns the tables emitting together into one patch per transaction', async () => {
    const { subjects, client, catalog } = fakeUpstream(['units', 'score']);
    const stream = new LiveStream(catalog.match('game/1')!, client, options());
    await flush();
    const sink = fakeSink();
    stream.join(new Spectator(sink, 1 << 20, () => {}), undefined);
    expect(sink.messages().map((m) => m.t)).to.deep.equal(['snapshot']);
    // One transaction touching both tables: emitted in the same turn.
    subjects.get('units')!.next(new Map([[1n, { hp: 10 }]]));
    subjects.get('score')!.next(new Map([[1n, { points: 1 }]]));
    await flush();
    // Two transactions delivered in one turn: the second emission of `units` starts a new patch.
    subjects.get('units')!.next(new Map([[1n, { hp: 9 }]]));
    subjects.get('units')!.next(new Map([[1n, { hp: 8 }]]));
    await flush();
    const patches = sink.messages().slice(1);
    expect(patches.map((p) => p.ops)).to.deep.equal([
      [
        { op: 'add', path: '/units/1', value: { hp: 10 } },
        { op: 'add', path: '/score/1', value: { points: 1 } },
      ],
      [{ op: 'replace', path: '/units/1/hp', value: 9 }],
      [{ op: 'replace', path: '/units/1/hp', value: 8 }],
    ]);
    expect(patches[0].keys).to.deep.equal({ units: 'bigint', score: 'bigint' });
    for (let i = 1; i < patches.length; i++) expect(patches[i].from).to.equal(patches[i - 1].version);
    // The broadcast loops were timed (relay.stats().fanOutMs).
    expect(stream.transactions).to.equal(3);
    expect(stream.fanOutMs).to.be.greaterThan(0);
    stream.close();
  });

  it('the version depends on the rows only, not on how the relay got there', async () => {
    const a = fakeUpstream(['units']);
    const b = fakeUpstream(['units']);
    a.subjects.get('units')!.next(new Map([[1n, { hp: 1 }]]));
    b.subjects.get('units')!.next(new Map([[1n, { hp: 5 }], [2n, { hp: 2 }]]));
    const sa = new LiveStream(a.catalog.match('game/1')!, a.client, options());
    const sb = new LiveStream(b.catalog.match('game/1')!, b.client, options());
    await flush();
    expect(sa.version).to.not.equal(sb.version);
    a.subjects.get('units')!.next(new Map([[1n, { hp: 5 }]]));
    await flush();
    a.subjects.get('units')!.next(new Map([[1n, { hp: 5 }], [2n, { hp: 2 }]]));
    await flush();
    expect(sa.version).to.equal(sb.version);
    // As docs/spectator.md defines it: the sum mod 2^64 of the first 8 bytes of SHA-256(table \0 key \0 row JSON).
    const rowHash = (key: string, json: string) => createHash('sha256').update(`units\0${key}\0${json}`).digest().readBigUInt64BE(0);
    const sum = (rowHash('1', '{"hp":5}') + rowHash('2', '{"hp":2}')) & ((1n << 64n) - 1n);
    expect(sb.version).to.equal(sum.toString(16).padStart(16, '0'));
    sa.close();
    sb.close();
  });

  it('holds snapshots and patches back by the broadcast delay', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { subjects, client, catalog } = fakeUpstream(['units']);
      subjects.get('units')!.next(new Map([[1n, { hp: 10 }]]));
      const stream = new LiveStream(catalog.match('game/1')!, client, options({ delayMs: 10_000 }));
      await flush();
      const sink = fakeSink();
      stream.join(new Spectator(sink, 1 << 20, () => {}), undefined);
      expect(sink.sent).to.have.length(0);
      clock.tick(3_000);
      subjects.get('units')!.next(new Map([[1n, { hp: 4 }]]));
      await flush();
      clock.tick(6_999);
      expect(sink.sent).to.have.length(0);
      clock.tick(1);
      const [snapshot] = sink.messages();
      expect(snapshot).to.deep.include({ t: 'snapshot', delayMs: 10_000, data: { units: { '1': { hp: 10 } } } });
      clock.tick(2_999);
      expect(sink.sent).to.have.length(1);
      clock.tick(1);
      expect(sink.messages()[1].ops).to.deep.equal([{ op: 'replace', path: '/units/1/hp', value: 4 }]);
      // A spectator joining now sees the delayed state, not the live one.
      subjects.get('units')!.next(new Map([[1n, { hp: 0 }]]));
      await flush();
      const late = fakeSink();
      stream.join(new Spectator(late, 1 << 20, () => {}), undefined);
      expect(late.messages()[0].data.units['1']).to.deep.equal({ hp: 4 });
      stream.close();
    } finally {
      clock.restore();
    }
  });

  it('sends a slow spectator nothing past its budget, then one folded patch — or a snapshot when that is smaller than the fold would be', async () => {
    const { subjects, client, catalog } = fakeUpstream(['units']);
    const stream = new LiveStream(catalog.match('game/1')!, client, options({ maxBufferBytes: 1000 }));
    await flush();
    const sink = fakeSink();
    const laggards: Spectator[] = [];
    const spectator = new Spectator(sink, 1000, (s) => laggards.push(s));
    stream.join(spectator, undefined);
    sink.setBuffered(10_000); // the spectator stopped reading
    for (let hp = 1; hp <= 5; hp++) {
      subjects.get('units')!.next(new Map([[1n, { hp }]]));
      await flush();
    }
    expect(sink.sent).to.have.length(1); // the snapshot only
    expect(laggards).to.deep.equal([spectator]);
    sink.setBuffered(0);
    stream.catchUp(spectator);
    const fold = sink.messages()[1];
    expect(fold).to.include({ t: 'patch', n: 5, version: stream.version });
    expect(fold.ops).to.have.length(5);
    // Far behind: the fold would exceed the budget, so a snapshot replaces it.
    sink.setBuffered(10_000);
    spectator.lagging = false;
    for (let hp = 6; hp <= 40; hp++) {
      subjects.get('units')!.next(new Map([[1n, { hp }]]));
      await flush();
    }
    expect(sink.sent).to.have.length(2);
    sink.setBuffered(0);
    stream.catchUp(spectator);
    expect(sink.messages()[2]).to.deep.include({ t: 'snapshot', version: stream.version, data: { units: { '1': { hp: 40 } } } });
    stream.close();
  });

  it('history: bounded by entries and bytes, resumes from the latest occurrence of a version', () => {
    const entry = (from: string, version: string, bytes = 10) => ({ from, version, ops: [{ op: 'remove' as const, path: `/t/${version}` }], keys: undefined, bytes });
    const h = new History('a', { maxEntries: 3, maxBytes: 25 });
    h.push(entry('a', 'b'));
    h.push(entry('b', 'c'));
    expect(h.since('a')).to.include({ from: 'a', version: 'c', n: 2 });
    h.push(entry('c', 'd')); // 30 bytes > 25: the oldest goes
    expect(h.length).to.equal(2);
    expect(h.since('a')).to.equal(undefined);
    expect(h.since('b')).to.include({ n: 2, version: 'd' });
    expect(h.since('d')).to.deep.include({ n: 0, ops: [] });
    // The document returns to an earlier content: its version repeats; resume continues after the latest.
    h.push(entry('d', 'b'));
    expect(h.since('b')).to.include({ n: 0 });
    // A fold larger than the caller's budget is refused.
    expect(h.since('c', 15)).to.equal(undefined);
    expect(h.since('c', 20)).to.include({ n: 2, bytes: 20 });
  });
});
