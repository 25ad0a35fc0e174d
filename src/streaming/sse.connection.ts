import type { Socket } from 'node:net';
import type { EventFilter } from './event-filter.js';
import type { HubEvent } from './event-window.js';
import { releaseSoon } from './http-release.js';
import type { Codec, Subscriber } from './subscriber.js';

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

/**
 * The client's position when no event carries it: a named event with a data
 * line, because clients built on eventsource-parser (the `eventsource` npm
 * package among them) only take an `id:` from a frame that has data. Browsers
 * and those clients both update Last-Event-ID; listeners of other types never see it.
 */
export function encodeCursor(seq: number): Buffer {
  return chunk(Buffer.from(`id: ${seq}\nevent: cursor\ndata: ${seq}\n\n`));
}

/** How the hub encodes for SSE connections. */
export const SSE_CODEC: Codec<Buffer> = { transport: 'sse', events: encodeSse, cursor: encodeCursor };

/** Hex size line of one chunk (the payload follows, then CRLF). */
function chunkHead(size: number): Buffer {
  return Buffer.from(`${size.toString(16)}\r\n`, 'latin1');
}

/** A close that the client does not let finish (it stopped reading) is cut after this long. */
export const CLOSE_TIMEOUT_MS = 2000;
/** Upper bound of one replay write (the frames are shared; only this much is queued per connection at a time). */
const REPLAY_SLICE_BYTES = 256 * 1024;

export interface SseHeaders {
  readonly requestId: string;
  readonly retryMs: number;
}

/** Told once when a connection ends, whoever ended it. */
export interface SseOwner {
  connectionClosed(conn: SseConnection, reason: string): void;
}

// ---- one SSE client ------------------------------------------------------------

const CONNECTION = Symbol('sse.connection');
type OwnedSocket = Socket & { [CONNECTION]?: SseConnection };

// Shared listeners (`this` is the socket): no closures per connection.
function onSocketEnd(this: OwnedSocket): void {
  // The client closed its side: the stream is over (the socket allows half-open).
  this[CONNECTION]?.finish('client closed');
  this.destroy();
}
function onSocketClose(this: OwnedSocket): void {
  this[CONNECTION]?.finish('client closed');
}
function onSocketError(this: OwnedSocket): void {
  this[CONNECTION]?.destroy('socket error');
}
function onSocketDrain(this: OwnedSocket): void {
  this[CONNECTION]?.wake();
}
/**
 * Our listeners. Releasing the socket from the HTTP server removes every
 * listener of these events (the server keeps its state in them), so `adopt`
 * adds them again: a replay waiting for 'drain' when the socket is released
 * still hears it.
 */
function listen(socket: Socket): void {
  socket.on('error', onSocketError);
  socket.on('close', onSocketClose);
  socket.on('drain', onSocketDrain);
}
function isOpen(socket: OwnedSocket): boolean {
  return socket[CONNECTION]?.closed === false;
}
function adopt(socket: OwnedSocket): void {
  listen(socket);
  socket.on('end', onSocketEnd);
}

/**
 * One SSE client. The response head is written by hand and events go to the
 * socket as pre-encoded chunks shared with every client of the same filter:
 * per hub flush, this connection costs one `socket.write` of a shared buffer.
 * A client whose unsent bytes exceed `maxBufferBytes` is disconnected; it
 * resumes from its Last-Event-ID.
 */
export class SseConnection implements Subscriber<Buffer> {
  cursor = 0;
  closed = false;
  /** Resolves the replay waiting for the socket to drain (or to close). */
  private waiter?: () => void;
  private readonly replaySliceBytes: number;

  constructor(
    private readonly socket: Socket,
    readonly filter: EventFilter,
    private readonly maxBufferBytes: number,
    private readonly owner: SseOwner,
    /** Whose connection slot this is (released on close). */
    readonly userId: string,
  ) {
    (socket as OwnedSocket)[CONNECTION] = this;
    this.replaySliceBytes = Math.max(1024, Math.min(REPLAY_SLICE_BYTES, Math.floor(maxBufferBytes / 2)));
    socket.setNoDelay(true);
    socket.setTimeout(0);
    listen(socket);
    // Nothing of the request is kept for the hours a stream lives (http-release.ts).
    releaseSoon(socket as OwnedSocket, isOpen, adopt);
  }

  static head(headers: SseHeaders): Buffer {
    return Buffer.from(
      'HTTP/1.1 200 OK\r\n' +
        'Content-Type: text/event-stream; charset=utf-8\r\n' +
        'Cache-Control: no-cache\r\n' +
        // Not keep-alive: the socket leaves Node's HTTP server (http-release.ts)
        // and is closed when the stream ends. Announcing keep-alive let a client
        // with a shared pool (undici's fetch, an http.Agent) put the connection
        // back after the last chunk and send its next request on it, where the
        // server's close then lost it (a POST cannot be retried).
        'Connection: close\r\n' +
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

  /**
   * Writes a replay page as it is held (the window's or a shared outbox read's
   * frames, encoded once per replica): per slice one chunk head, the frames by
   * reference and a CRLF, gathered into one writev. It waits for the socket to
   * drain between slices, so at most one slice (<= half of maxBufferBytes) is
   * queued for this connection whatever the page size.
   */
  async writeReplay(events: HubEvent[]): Promise<void> {
    const socket = this.socket;
    let i = 0;
    while (i < events.length && !this.closed) {
      let size = events[i].frame.length;
      let end = i + 1;
      while (end < events.length && size + events[end].frame.length <= this.replaySliceBytes) size += events[end++].frame.length;
      socket.cork();
      socket.write(chunkHead(size));
      for (let k = i; k < end; k++) socket.write(events[k].frame);
      const more = socket.write(CRLF);
      socket.uncork();
      i = end;
      if (!more && !this.closed) await this.drained();
    }
  }

  /**
   * Whether `bytes` more would leave more than a replay slice unsent: a stream
   * whose history is stored elsewhere (gateway sessions) then stops writing
   * live and reads on at the client's pace with writeReplay, instead of
   * queueing here until the slow-consumer cut.
   */
  wouldQueue(bytes: number): boolean {
    return this.socket.writableLength + bytes > this.replaySliceBytes;
  }

  /** The bytes a replay slice may hold: what a reader of stored history should read and encode at a time. */
  get replayBytes(): number {
    return this.replaySliceBytes;
  }

  /**
   * Holds this connection's writes until `close()` (which ends the socket, writing everything held at once): the
   * last frames of a response and its end leave in one system call (one write to a loopback socket costs ~0.1 ms
   * of CPU on a small VM). Only for frames written in one go just before closing.
   */
  holdUntilClose(): void {
    if (!this.closed && !this.socket.writableCorked) this.socket.cork();
  }

  /**
   * One frame, with the slow-consumer check of `write`: a client that left more than
   * `maxBufferBytes` unsent is cut (it resumes, or its call is aborted) instead of
   * having every frame queued in this process for as long as it does not read.
   */
  writeFrame(text: string): void {
    if (!this.closed) this.write(chunk(Buffer.from(text)));
  }

  reset(cursor: number, reason: string): void {
    this.writeFrame(`id: ${cursor}\nevent: reset\ndata: ${JSON.stringify({ cursor, reason })}\n\n`);
  }

  /**
   * Ends the stream politely: a reconnect hint, then the last chunk. The socket
   * is destroyed once the kernel has the last chunk, or after CLOSE_TIMEOUT_MS
   * if the client does not read (a close never waits on the client).
   */
  close(reason: string, retryMs?: number): void {
    if (this.closed) return;
    const socket = this.socket;
    // Not writeFrame: a close is polite even to a slow client (CLOSE_TIMEOUT_MS bounds it).
    if (retryMs !== undefined) socket.write(chunk(Buffer.from(`retry: ${retryMs}\n\n`)));
    const timer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.end(LAST_CHUNK, () => socket.destroy());
    this.finish(reason);
  }

  /** Cuts the connection at once (also one that is already closing). */
  destroy(reason: string): void {
    this.socket.destroy();
    this.finish(reason);
  }

  /** The socket is gone (a closed connection may still be flushing its last chunk until then). */
  get socketClosed(): boolean {
    return this.socket.destroyed;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** @internal The socket drained or closed: a waiting replay goes on. */
  wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** @internal Called once, from the socket's listeners or from close/destroy. */
  finish(reason: string): void {
    this.wake();
    if (this.closed) return;
    this.closed = true;
    this.owner.connectionClosed(this, reason);
  }
}
