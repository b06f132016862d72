/**
 * The fault wrappers on their own, in virtual time: what each fault does to a
 * client socket (both directions), to the client reducer call and to
 * incoming requests — with a recording socket instead of a network.
 */
import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import sinon from 'sinon';
import { FaultInjector } from '../../devserver/faults/injector.ts';
import type { ReducerDesc } from '../../devserver/host/moduleDef.ts';
import type { ReducerCall, ReducerOutcome } from '../../devserver/host/instance.ts';
import type { ClientSocket, SocketEvents } from '../../devserver/ws/socket.ts';

/** A socket that records what is done to it and lets the test play the client. */
class RecordingSocket implements ClientSocket {
  readonly sent: number[][] = [];
  pings = 0;
  isPaused = false;
  terminated = false;
  bufferedAmount = 0;
  events: SocketEvents | undefined;
  send(frame: Uint8Array) {
    this.sent.push([...frame]);
  }
  ping() {
    this.pings++;
  }
  pong() {}
  pause() {
    this.isPaused = true;
  }
  resume() {
    this.isPaused = false;
  }
  close() {}
  terminate() {
    this.terminated = true;
    this.events?.close();
  }
  listen(events: SocketEvents) {
    this.events = events;
  }
}

/** What the connection inside the wrapper is told. */
function listener() {
  const got = { messages: [] as number[][], pings: 0, pongs: 0, closes: 0 };
  const events: SocketEvents = {
    message: (data) => got.messages.push([...data]),
    ping: () => got.pings++,
    pong: () => got.pongs++,
    close: () => got.closes++,
    error: () => {},
    oversized: () => {},
  };
  return { got, events };
}

describe('dev server fault wrappers', () => {
  let clock: sinon.SinonFakeTimers;
  let counters: { framesDropped: number };
  let injector: FaultInjector;
  let dropAll: sinon.SinonStub;
  const wrap = () => {
    const inner = new RecordingSocket();
    const socket = injector.socket(inner);
    const { got, events } = listener();
    socket.listen(events);
    return { inner, socket, got };
  };

  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    counters = { framesDropped: 0 };
    dropAll = sinon.stub().returns(3);
    injector = new FaultInjector({ counters, maxHeldInBytes: 10, log: { log: () => {} }, dropAll, restart: async () => {} });
  });
  afterEach(() => {
    injector.endBlackhole();
    clock.restore();
  });

  it('passes frames, pings and pongs through untouched without faults', () => {
    const { inner, socket, got } = wrap();
    socket.send(new Uint8Array([1, 2]));
    socket.ping();
    inner.events!.message(Buffer.from([3]), true);
    inner.events!.ping(Buffer.alloc(0));
    inner.events!.pong();
    expect(inner.sent).to.deep.equal([[1, 2]]);
    expect(inner.pings).to.equal(1);
    expect(got).to.deep.include({ messages: [[3]], pings: 1, pongs: 1 });
    expect(counters.framesDropped).to.equal(0);
  });

  it('delays frames both ways by the latency, in order, and counts them as unsent meanwhile', () => {
    const { inner, socket, got } = wrap();
    injector.controls.latency(100, 50);
    for (const b of [1, 2, 3]) socket.send(new Uint8Array([b]));
    inner.events!.message(Buffer.from([7, 7]), true);
    expect(inner.sent).to.deep.equal([]);
    expect(got.messages).to.deep.equal([]);
    expect(socket.bufferedAmount).to.equal(3);
    expect(injector.delayedBytes).to.equal(5);
    clock.tick(99);
    expect(inner.sent).to.deep.equal([]);
    clock.tick(51);
    expect(inner.sent).to.deep.equal([[1], [2], [3]]);
    expect(got.messages).to.deep.equal([[7, 7]]);
    expect(injector.delayedBytes).to.equal(0);
    // Switched off, frames go at once again.
    injector.controls.latency(0, 0);
    socket.send(new Uint8Array([4]));
    expect(inner.sent).to.have.length(4);
  });

  it('stops reading while latency holds more incoming bytes than the bound, and reads again at half of it', () => {
    const { inner } = wrap();
    injector.controls.latency(100);
    inner.events!.message(Buffer.alloc(6), true);
    expect(inner.isPaused).to.equal(false);
    inner.events!.message(Buffer.alloc(6), true);
    expect(inner.isPaused).to.equal(true);
    clock.tick(100);
    expect(inner.isPaused).to.equal(false);
  });

  it('drops everything both ways during a blackhole, then closes the sockets that lived through it', () => {
    const { inner, socket, got } = wrap();
    injector.controls.blackhole(1000);
    socket.send(new Uint8Array([1]));
    socket.ping();
    inner.events!.message(Buffer.from([2]), true);
    inner.events!.ping(Buffer.alloc(0));
    inner.events!.pong();
    expect(inner.sent).to.deep.equal([]);
    expect(inner.pings).to.equal(0);
    expect(got).to.deep.include({ messages: [], pings: 0, pongs: 0, closes: 0 });
    expect(counters.framesDropped).to.equal(2);
    clock.tick(1000);
    expect(inner.terminated).to.equal(true);
    expect(got.closes).to.equal(1);
    // A socket opened after the blackhole is not closed by it.
    const later = wrap();
    injector.controls.clear();
    expect(later.inner.terminated).to.equal(false);
  });

  it('keeps keep-alive ticks from running during a blackhole', () => {
    let ticks = 0;
    const tick = injector.outsideBlackhole(() => ticks++);
    tick();
    injector.controls.blackhole(500);
    tick();
    expect(ticks).to.equal(1);
    injector.controls.clear();
    tick();
    expect(ticks).to.equal(2);
  });

  it('replaces only the next frame sent by undecodable bytes', () => {
    const { inner, socket } = wrap();
    injector.controls.corruptNextFrame();
    socket.send(new Uint8Array([1]));
    socket.send(new Uint8Array([2]));
    expect(inner.sent).to.deep.equal([[0, 0xee, 0xde, 0xad, 0xbe, 0xef], [2]]);
  });

  it('forgets what latency holds when the socket closes', () => {
    const { inner, socket, got } = wrap();
    injector.controls.latency(100);
    socket.send(new Uint8Array([1]));
    inner.events!.message(Buffer.from([2]), true);
    inner.events!.close();
    expect(got.closes).to.equal(1);
    expect(injector.delayedBytes).to.equal(0);
    clock.tick(200);
    expect(inner.sent).to.deep.equal([]);
    expect(got.messages).to.deep.equal([]);
  });

  it('fails the next n client reducer calls without running them, then runs them again', () => {
    const ran: string[] = [];
    const call = injector.reducerCall((reducer: ReducerDesc, _call: ReducerCall): ReducerOutcome => {
      ran.push(reducer.name);
      return { status: 'committed', changes: new Map(), durationMicros: 1 };
    });
    const reducer = { name: 'move' } as ReducerDesc;
    const args = {} as ReducerCall;
    injector.controls.failNextReducers(2, 'nope');
    expect(call(reducer, args)).to.deep.equal({ status: 'failed', kind: 'user', message: 'nope', durationMicros: 0 });
    expect(call(reducer, args)).to.include({ status: 'failed' });
    expect(ran).to.deep.equal([]);
    expect(call(reducer, args)).to.include({ status: 'committed' });
    expect(ran).to.deep.equal(['move']);
  });

  it('holds requests and upgrades during a blackhole, except /_dev/, and drops the held ones at its end', () => {
    const handled: string[] = [];
    const onRequest = injector.requests((req) => handled.push(req.url!));
    const onUpgrade = injector.upgrades((req) => handled.push(`upgrade ${req.url}`));
    const socket = () => Object.assign(new EventEmitter(), { destroy: sinon.spy() }) as unknown as Duplex & { destroy: sinon.SinonSpy };
    const request = (url: string) => ({ url, socket: socket() }) as unknown as IncomingMessage & { socket: { destroy: sinon.SinonSpy } };
    const res = {} as ServerResponse;
    injector.controls.blackhole(1000);
    const held = request('/v1/ping');
    onRequest(held, res);
    const heldUpgrade = socket();
    onUpgrade(request('/v1/database/x/subscribe'), heldUpgrade, Buffer.alloc(0));
    onRequest(request('/_dev/clear'), res);
    expect(handled).to.deep.equal(['/_dev/clear']);
    injector.controls.clear();
    expect(held.socket.destroy.calledOnce).to.equal(true);
    expect(heldUpgrade.destroy.calledOnce).to.equal(true);
    onRequest(request('/v1/ping'), res);
    expect(handled).to.deep.equal(['/_dev/clear', '/v1/ping']);
  });

  it('drops every connection through the server for dropAll', () => {
    expect(injector.controls.dropAll()).to.equal(3);
    expect(dropAll.calledOnce).to.equal(true);
  });
});
