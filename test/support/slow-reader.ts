import { createParser, type EventSourceParser } from 'eventsource-parser';
import net from 'node:net';

export interface SlowReaderFrame {
  id?: string;
  event: string;
  data: string;
  /** performance.now() when the frame was parsed (i.e. when the reader read it). */
  at: number;
}

export interface SlowReaderOptions {
  /** Where to connect; with several, each (re)connection takes the next one. */
  targets: { host: string; port: number }[];
  /** Path and query, e.g. `/api/v1/stream/changes?events=agent.*`. */
  path: string;
  /** Extra request headers (Authorization...). */
  headers?: Record<string, string>;
  /** Sent as `Last-Event-ID` on the first connection. */
  lastEventId?: string;
  /** Resume on its own after the stream ends (default true), like an EventSource. */
  reconnect?: boolean;
  /** Reconnect delay until the server sends `retry:` (ms, default 1000). */
  retryMs?: number;
  /**
   * Size of the socket's user-space read buffer (default 4096). Node has no
   * SO_RCVBUF for TCP; a socket that is not read keeps at most this much in
   * the process and the kernel's receive buffer stays at its initial size
   * (autotuning only grows it as the application reads), so the sender's
   * buffers fill.
   */
  readBufferBytes?: number;
}

type Mode = { kind: 'normal' } | { kind: 'stopped' } | { kind: 'slow'; bytes: number; everyMs: number };

/**
 * A raw-socket SSE client for tests: it writes the HTTP/1.1 GET itself, so it
 * controls reading completely. It can stop reading (`stop()`: nothing is read
 * from the socket, kernel buffers and the server's fill up), read slowly
 * (`slow(bytes, everyMs)`) or normally (`normal()`), and resumes by itself
 * with `Last-Event-ID` when the stream ends. Frames are parsed with
 * `eventsource-parser`; HTTP chunked framing is decoded here.
 */
export class SlowReader {
  readonly frames: SlowReaderFrame[] = [];
  /** Change events (an id and a dotted event type), in arrival order. */
  readonly events: { seq: number; type: string; at: number }[] = [];
  /** Response status of each connection attempt (0: the connection failed before a response). */
  readonly statuses: number[] = [];
  lastEventId?: string;
  retryMs: number;
  /** Bytes of SSE body read so far. */
  bodyBytes = 0;
  closed = false;
  private socket?: net.Socket;
  private mode: Mode = { kind: 'normal' };
  private timer?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private attempt = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly options: SlowReaderOptions) {
    this.lastEventId = options.lastEventId;
    this.retryMs = options.retryMs ?? 1000;
  }

  static start(options: SlowReaderOptions): SlowReader {
    const reader = new SlowReader(options);
    reader.connect();
    return reader;
  }

  /** Connections opened so far. */
  get connections(): number {
    return this.attempt;
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  /** Stops reading from the socket: what the server sends piles up in kernel buffers and then in the server. */
  stop(): void {
    this.setMode({ kind: 'stopped' });
  }

  /** Reads at most `bytes` every `everyMs`. */
  slow(bytes: number, everyMs: number): void {
    this.setMode({ kind: 'slow', bytes, everyMs });
  }

  /** Reads everything as it arrives. */
  normal(): void {
    this.setMode({ kind: 'normal' });
  }

  get reading(): Mode['kind'] {
    return this.mode.kind;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.timer);
    this.socket?.destroy();
    this.notify();
  }

  /** Resolves when `predicate` holds (checked on every frame), or rejects after `timeoutMs`. */
  async waitFor(predicate: (r: SlowReader) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = until - Date.now();
      if (left <= 0)
        throw new Error(`slow reader: timed out after ${timeoutMs} ms waiting for ${what} (${this.events.length} events, last id ${this.lastEventId})`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 100));
        this.waiters.add(done);
      });
    }
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private setMode(mode: Mode): void {
    this.mode = mode;
    clearInterval(this.timer);
    this.timer = undefined;
    if (mode.kind === 'slow') {
      this.timer = setInterval(() => this.pump(mode.bytes), mode.everyMs);
      this.timer.unref();
    } else if (mode.kind === 'normal') {
      this.pump(Infinity);
    }
  }

  // ---- one connection -----------------------------------------------------

  private connect(): void {
    if (this.closed) return;
    const target = this.options.targets[this.attempt % this.options.targets.length];
    this.attempt++;
    const hwm = this.options.readBufferBytes ?? 4096;
    const socket = new net.Socket({ readableHighWaterMark: hwm } as net.SocketConstructorOpts);
    this.socket = socket;
    const conn = new Connection(this, socket);
    socket.on('readable', () => {
      if (this.mode.kind === 'normal') this.pump(Infinity);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      if (!conn.gotHead) this.statuses.push(0);
      this.notify();
      if (!this.closed && this.options.reconnect !== false) {
        this.reconnectTimer = setTimeout(() => this.connect(), conn.status === 200 || conn.status === 0 ? this.retryMs : Math.max(this.retryMs, 1000));
      }
    });
    socket.connect({ host: target.host, port: target.port }, () => {
      const headers: Record<string, string> = {
        host: `${target.host}:${target.port}`,
        accept: 'text/event-stream',
        'cache-control': 'no-cache',
        ...this.options.headers,
      };
      if (this.lastEventId !== undefined && this.lastEventId !== '') headers['last-event-id'] = this.lastEventId;
      const head = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET ${this.options.path} HTTP/1.1\r\n${head}\r\n`);
    });
    this.current = conn;
  }

  private current?: Connection;

  /** Reads up to `budget` bytes from the socket's buffer into the parser. */
  private pump(budget: number): void {
    const socket = this.socket;
    const conn = this.current;
    if (!socket || !conn) return;
    let left = budget;
    while (left > 0) {
      const available = socket.readableLength;
      if (available === 0) {
        // Nothing buffered: read() with no size starts a read from the kernel (and returns null).
        socket.read(0);
        break;
      }
      const chunk: Buffer | null = socket.read(Math.min(available, left === Infinity ? available : left));
      if (!chunk) break;
      left -= chunk.length;
      conn.feed(chunk);
    }
  }

  /** @internal */
  onResponse(status: number): void {
    this.statuses.push(status);
  }

  /** @internal */
  onFrame(frame: SlowReaderFrame): void {
    if (frame.id !== undefined) this.lastEventId = frame.id;
    this.frames.push(frame);
    if (frame.id !== undefined && frame.event.includes('.')) this.events.push({ seq: Number(frame.id), type: frame.event, at: frame.at });
    this.notify();
  }

  /** @internal */
  onRetry(ms: number): void {
    this.retryMs = ms;
  }
}

/** HTTP/1.1 response decoding for one connection: head, then chunked (or identity) body into the SSE parser. */
class Connection {
  gotHead = false;
  status = 0;
  private head = Buffer.alloc(0);
  private chunked = false;
  /** Bytes left in the current chunk; -1 while reading a chunk-size line. */
  private chunkLeft = -1;
  private line = '';
  /** After a chunk's data, its CRLF is skipped. */
  private skipCrlf = 0;
  private done = false;
  private readonly decoder = new TextDecoder();
  private readonly parser: EventSourceParser;

  constructor(
    private readonly reader: SlowReader,
    private readonly socket: net.Socket,
  ) {
    this.parser = createParser({
      onEvent: (e) => reader.onFrame({ id: e.id, event: e.event ?? 'message', data: e.data, at: performance.now() }),
      onRetry: (ms) => reader.onRetry(ms),
    });
  }

  feed(bytes: Buffer): void {
    if (this.done) return;
    if (!this.gotHead) {
      this.head = Buffer.concat([this.head, bytes]);
      const end = this.head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const lines = this.head.subarray(0, end).toString('latin1').split('\r\n');
      this.status = Number(lines[0].split(' ')[1]);
      this.gotHead = true;
      this.reader.onResponse(this.status);
      this.chunked = lines.some((l) => /^transfer-encoding:\s*chunked/i.test(l));
      const rest = this.head.subarray(end + 4);
      this.head = Buffer.alloc(0);
      if (this.status !== 200) {
        // An error answer: nothing to parse; the stream is over.
        this.done = true;
        this.socket.destroy();
        return;
      }
      if (rest.length > 0) this.body(rest);
      return;
    }
    this.body(bytes);
  }

  private body(bytes: Buffer): void {
    if (!this.chunked) {
      this.sse(bytes);
      return;
    }
    let at = 0;
    while (at < bytes.length && !this.done) {
      if (this.skipCrlf > 0) {
        at++;
        this.skipCrlf--;
        continue;
      }
      if (this.chunkLeft < 0) {
        const nl = bytes.indexOf(0x0a, at);
        if (nl === -1) {
          this.line += bytes.subarray(at).toString('latin1');
          return;
        }
        this.line += bytes.subarray(at, nl).toString('latin1');
        at = nl + 1;
        const size = parseInt(this.line.trim().split(';')[0], 16);
        this.line = '';
        if (Number.isNaN(size)) {
          this.done = true;
          this.socket.destroy();
          return;
        }
        if (size === 0) {
          // The last chunk: the server ended the stream.
          this.done = true;
          this.socket.destroy();
          return;
        }
        this.chunkLeft = size;
        continue;
      }
      const take = Math.min(this.chunkLeft, bytes.length - at);
      this.sse(bytes.subarray(at, at + take));
      at += take;
      this.chunkLeft -= take;
      if (this.chunkLeft === 0) {
        this.chunkLeft = -1;
        this.skipCrlf = 2;
      }
    }
  }

  private sse(bytes: Buffer): void {
    this.reader.bodyBytes += bytes.length;
    this.parser.feed(this.decoder.decode(bytes, { stream: true }));
  }
}
