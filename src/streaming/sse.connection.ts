import type { Socket } from 'node:net';
import type { EventFilter } from './event-filter.js';
import type { HubEvent } from './event-window.js';
import type { Subscriber } from './stream.hub.js';

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** Wraps bytes in one HTTP/1.1 chunk (the response is chunked, written straight to the socket). */
export function chunk(payload: Buffer): Buffer {
  const head = Buffer.from(`${payload.length.toString(16)}\r\n`);
  const out = Buffer.allocUnsafe(head.length + payload.length + 2);
  head.copy(out, 0);
  payload.copy(out, head.length);
  CRLF.copy(out, head.length + payload.length);
  return out;
}

/** SSE encoder for the hub: the frames of a batch in one chunk, built once per group. */
export function encodeSse(events: HubEvent[]): Buffer {
  let size = 0;
  for (const e of events) size += e.frame.length;
  const head = `${size.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(head.length + size + 2);
  let at = out.write(head, 0, 'latin1');
  for (const e of events) at += e.frame.copy(out, at);
  CRLF.copy(out, at);
  return out;
}

export const KEEPALIVE_CHUNK = chunk(Buffer.from(':keep-alive\n\n'));

export interface SseHeaders {
  readonly requestId: string;
  readonly retryMs: number;
}

/**
 * One SSE client. The response head is written by hand and events go to the
 * socket as pre-encoded chunks shared with every client of the same filter:
 * per event, this connection costs one `socket.write` of a shared buffer.
 * A client whose unsent bytes exceed `maxBufferBytes` is disconnected; it
 * resumes from its Last-Event-ID.
 */
export class SseConnection implements Subscriber<Buffer> {
  cursor = 0;
  closed = false;
  private readonly onClose: (conn: SseConnection, reason: string) => void;

  constructor(
    private readonly socket: Socket,
    readonly filter: EventFilter,
    private readonly maxBufferBytes: number,
    onClose: (conn: SseConnection, reason: string) => void,
  ) {
    this.onClose = onClose;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('error', () => this.finish('socket error'));
    socket.on('close', () => this.finish('client closed'));
  }

  static head(headers: SseHeaders): Buffer {
    return Buffer.from(
      'HTTP/1.1 200 OK\r\n' +
        'Content-Type: text/event-stream; charset=utf-8\r\n' +
        'Cache-Control: no-cache\r\n' +
        'Connection: keep-alive\r\n' +
        'X-Accel-Buffering: no\r\n' +
        'Transfer-Encoding: chunked\r\n' +
        `X-Request-Id: ${headers.requestId}\r\n` +
        '\r\n',
      'latin1',
    );
  }

  /** Writes the response head and the `retry:` hint. */
  open(headers: SseHeaders): void {
    this.socket.write(Buffer.concat([SseConnection.head(headers), chunk(Buffer.from(`retry: ${headers.retryMs}\n\n`))]));
  }

  write(payload: Buffer): void {
    if (this.closed) return;
    // The backlog left from earlier writes is what tells a slow consumer; one
    // large batch on a healthy socket is fine. Memory stays <= bound + one batch.
    if (this.socket.writableLength > this.maxBufferBytes) {
      this.destroy('slow consumer: send buffer full');
      return;
    }
    this.socket.write(payload);
  }

  async writeReplay(events: HubEvent[]): Promise<void> {
    if (this.closed) return;
    if (!this.socket.write(encodeSse(events))) await this.drained();
  }

  writeFrame(text: string): void {
    if (!this.closed) this.socket.write(chunk(Buffer.from(text)));
  }

  reset(cursor: number, reason: string): void {
    this.writeFrame(`id: ${cursor}\nevent: reset\ndata: ${JSON.stringify({ cursor, reason })}\n\n`);
  }

  /** Ends the stream politely: a reconnect hint, then the last chunk. */
  close(reason: string, retryMs?: number): void {
    if (this.closed) return;
    if (retryMs !== undefined) this.writeFrame(`retry: ${retryMs}\n\n`);
    this.socket.end(LAST_CHUNK);
    this.finish(reason);
  }

  destroy(reason: string): void {
    if (this.closed) return;
    this.socket.destroy();
    this.finish(reason);
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(this, reason);
  }
}
