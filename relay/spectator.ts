/**
 * One connected spectator on the relay side: its transport, what it has been
 * sent, and its output budget.
 *
 * The relay keeps no queue per spectator. A message goes straight to the
 * transport while the transport's unsent bytes stay under `maxBufferBytes`;
 * past that the spectator is marked lagging and sent nothing more. Once its
 * transport has drained, the stream sends it everything it missed as one
 * folded patch from the history, or a snapshot when that would be larger
 * than the budget or the history no longer reaches back. A spectator lagging
 * longer than `maxLagMs` is closed (`TooSlow`). Memory per spectator is thus
 * bounded by the budget plus one message.
 *
 * @module
 */
import type { LiveStream } from './stream.ts';

/** The transport under a spectator (a WebSocket or an SSE response). */
export interface SpectatorSink {
  readonly transport: 'websocket' | 'sse';
  /** Sends one message (a `RelayMessage` as JSON) with the version it brings the spectator to. */
  send(text: string, version: string | undefined): void;
  /** Bytes accepted but not yet written to the network. */
  buffered(): number;
  /** Ends the connection with a close code and reason. */
  close(code: number, reason: string): void;
}

export class Spectator {
  /** The version the spectator has (or will have, once its transport delivers what was sent). */
  version: string | undefined;
  stream: LiveStream | undefined;
  lagging = false;
  lagSince = 0;
  closed = false;
  bytesSent = 0;
  messagesSent = 0;

  constructor(
    readonly sink: SpectatorSink,
    private readonly maxBufferBytes: number,
    private readonly onLagging: (spectator: Spectator) => void,
  ) {}

  /**
   * Sends a message bringing the spectator to `version`, unless its buffer is
   * over budget. `force` sends regardless (snapshots and catch-ups, which the
   * stream sizes to the budget).
   */
  deliver(text: string, version: string, force = false): void {
    if (this.closed) return;
    if (!force && (this.lagging || this.sink.buffered() > this.maxBufferBytes)) {
      this.markLagging();
      return;
    }
    this.lagging = false;
    this.version = version;
    this.bytesSent += text.length;
    this.messagesSent++;
    this.sink.send(text, version);
  }

  /** Sends a message that does not change the version (`upstream`, `pong`). */
  notify(text: string): void {
    if (this.closed) return;
    this.sink.send(text, undefined);
  }

  markLagging(): void {
    if (this.lagging) return;
    this.lagging = true;
    this.lagSince = Date.now();
    this.onLagging(this);
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.leave(this);
    this.sink.close(code, reason);
  }
}
