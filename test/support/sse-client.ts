import { createParser, type EventSourceParser } from 'eventsource-parser';
import http from 'node:http';

export interface SseFrame {
  id?: string;
  event: string;
  data: string;
  retry?: number;
  /** performance.now() when the frame arrived. */
  at?: number;
}

/**
 * A minimal SSE reader over node:http for tests: records every frame and the
 * response head, resolves `waitFor` predicates, and can stop reading to act
 * as a slow consumer. The stream is parsed by `eventsource-parser` (the parser
 * the `eventsource` package uses); besides events, `frames` holds a `retry:`
 * hint as `{ event: 'message', data: '', retry }` and a comment (`:keep-alive`)
 * as `{ event: 'comment', data: 'keep-alive' }`, each when it arrives.
 */
export class SseClient {
  readonly frames: SseFrame[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  body = '';
  private req?: http.ClientRequest;
  private res?: http.IncomingMessage;
  private readonly parser: EventSourceParser = createParser({
    onEvent: (e) => this.push({ id: e.id, event: e.event ?? 'message', data: e.data }),
    onRetry: (retry) => this.push({ event: 'message', data: '', retry }),
    onComment: (comment) => this.push({ event: 'comment', data: comment }),
  });
  private waiters: (() => void)[] = [];

  static async connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    await client.open(url, headers);
    return client;
  }

  private open(url: string, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.req = http.get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          if (this.status !== 200) this.body += text;
          else this.feed(text);
        });
        const end = () => {
          this.ended = true;
          this.notify();
        };
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
        resolve();
      });
      this.req.on('error', (e) => {
        this.ended = true;
        this.notify();
        reject(e);
      });
    });
  }

  private feed(text: string): void {
    this.parser.feed(text);
    this.notify();
  }

  private push(frame: SseFrame): void {
    frame.at = performance.now();
    this.frames.push(frame);
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private parsed: { id: number; event: string; data: any; at: number }[] = [];
  private parsedUpTo = 0;

  /** Frames that carry change events (have an id and a dotted event type), parsed once. */
  get events(): { id: number; event: string; data: any; at: number }[] {
    for (; this.parsedUpTo < this.frames.length; this.parsedUpTo++) {
      const f = this.frames[this.parsedUpTo];
      if (f.id !== undefined && f.event.includes('.')) this.parsed.push({ id: Number(f.id), event: f.event, data: JSON.parse(f.data), at: f.at! });
    }
    return this.parsed;
  }

  private describe(): string {
    return JSON.stringify(this.frames.slice(-3).map((f) => ({ ...f, data: f.data.length > 120 ? `${f.data.slice(0, 120)}...` : f.data })));
  }

  get lastEventId(): string | undefined {
    for (let i = this.frames.length - 1; i >= 0; i--) if (this.frames[i].id !== undefined) return this.frames[i].id;
    return undefined;
  }

  async waitFor(predicate: (c: SseClient) => boolean, timeoutMs = 10_000, what = 'frames'): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > until) {
        throw new Error(`timed out waiting for ${what}; got ${this.frames.length} frames, last: ${this.describe()}`);
      }
      if (this.ended && !predicate(this)) {
        await new Promise((r) => setTimeout(r, 20));
        if (!predicate(this)) throw new Error(`stream ended while waiting for ${what}; ${this.frames.length} frames, last: ${this.describe()}`);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  waitForEvents(count: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor((c) => c.events.length >= count, timeoutMs, `${count} events`);
  }

  /** Stops reading from the socket (a slow consumer). */
  pause(): void {
    this.res?.pause();
  }

  close(): void {
    this.req?.destroy();
    this.res?.destroy();
  }
}

/** Asserts ids are exactly from..to, each once, in order. */
export function expectContiguous(ids: number[], from: number, to: number): void {
  const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
    throw new Error(
      `expected ids ${from}..${to} contiguous, got [${ids.length > 40 ? `${ids.slice(0, 20).join(',')} ... ${ids.slice(-20).join(',')}` : ids.join(',')}] (${ids.length})`,
    );
  }
}
