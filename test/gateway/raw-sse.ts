import { createParser } from 'eventsource-parser';
import { connect, type Socket } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

/** One event as a raw reader saw it; `data` only when it is short (large events are counted, not kept). */
export interface RawFrame {
  id?: string;
  event: string;
  size: number;
  data?: string;
}

/**
 * An SSE client on a raw socket, for slow-reader tests: it can stop reading at
 * the TCP level (`pause`, so the replica's socket fills up and stays full) and
 * read on later (`resume`). The chunked body is de-chunked and parsed as it
 * arrives; events larger than `keepBytes` are recorded by size only, so many
 * readers of large events cost the test process little.
 */
export class RawSse {
  status = 0;
  closed = false;
  readonly frames: RawFrame[] = [];
  private head = '';
  private headDone = false;
  private pending: Buffer = Buffer.alloc(0);
  private readonly parser = createParser({
    onEvent: (e) =>
      this.frames.push({ id: e.id, event: e.event ?? 'message', size: e.data.length, ...(e.data.length <= this.keepBytes ? { data: e.data } : {}) }),
  });

  private constructor(
    readonly socket: Socket,
    private readonly keepBytes: number,
  ) {}

  /** Opens `GET path` with `headers`; resolves once the request is sent. */
  static open(baseUrl: string, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string, keepBytes = 4096): Promise<RawSse> {
    const url = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname);
      const raw = new RawSse(socket, keepBytes);
      socket.on('error', reject);
      socket.on('close', () => (raw.closed = true));
      socket.on('data', (d: Buffer) => raw.feed(d));
      socket.once('connect', () => {
        const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Accept: text/event-stream'];
        for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
        if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
        resolve(raw);
      });
    });
  }

  get opened(): boolean {
    return this.headDone;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private feed(d: Buffer): void {
    if (!this.headDone) {
      this.head += d.toString('latin1');
      const at = this.head.indexOf('\r\n\r\n');
      if (at < 0) return;
      this.headDone = true;
      this.status = Number(this.head.slice(9, 12));
      d = Buffer.from(this.head.slice(at + 4), 'latin1');
    }
    this.pending = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
    // De-chunk: `<hex>\r\n<payload>\r\n`, as many whole chunks as arrived.
    for (;;) {
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) return;
      const size = parseInt(this.pending.subarray(0, eol).toString('latin1'), 16);
      if (this.pending.length < eol + 2 + size + 2) return;
      if (size > 0) this.parser.feed(this.pending.subarray(eol + 2, eol + 2 + size).toString('utf8'));
      this.pending = this.pending.subarray(eol + 2 + size + 2);
    }
  }
}

let gcFn: (() => void) | undefined;
/** A full GC in this process (V8's `gc`, exposed at run time). */
export function fullGc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

/** Heap used plus memory outside the heap (Buffers), in bytes, after a full GC. */
export function retainedBytes(): number {
  fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
