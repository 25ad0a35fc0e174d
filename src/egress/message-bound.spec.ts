import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { egressFetch } from './egress.dispatcher.js';
import { MessageTooLargeError, SseEventBound } from './message-bound.js';

describe('SseEventBound', () => {
  const max = 10;
  /** Whether every push was within the bound, the text split at `at`. */
  const within = (text: string, at?: number) => {
    const bound = new SseEventBound(max);
    const bytes = Buffer.from(text);
    const parts = at === undefined ? [bytes] : [bytes.subarray(0, at), bytes.subarray(at)];
    return parts.every((p) => bound.push(p));
  };
  const everySplit = (text: string) => Array.from({ length: Buffer.byteLength(text) + 1 }, (_, i) => within(text, i));

  it('counts the bytes since the last blank line (CRLF, LF or CR), line ends left out, however the stream is split', () => {
    // Events of 10 bytes each (data lines of one event add up), many of them: always within the bound.
    for (const end of ['\n', '\r\n', '\r']) {
      const events = `data: 1234${end}${end}id: 9${end}data${end}${end}`.repeat(5);
      expect([JSON.stringify(end), everySplit(events).every(Boolean)]).toEqual([JSON.stringify(end), true]);
    }
    // One event of 11 bytes: over, wherever it is split; CRLF is one line end, so "\r\n\r" alone does not end the event.
    expect(everySplit('data: 12345\n\n').some(Boolean)).toBe(false);
    expect(everySplit('data: 12\r\n\r\r\ndata: 1').some(Boolean)).toBe(true); // "\r\n\r" ends a line, then a blank line (CR) ends the event
    expect(within('data: 12\r\nx: 12345\r\n')).toBe(false); // two lines of one event: 8 + 8 bytes
  });
});

describe('egressFetch with a message bound', () => {
  let port: number;
  let dropped = 0;
  const server = http.createServer((req, res) => {
    res.on('close', () => !res.writableFinished && dropped++);
    const piece = (n: number) => 'a'.repeat(n);
    switch (req.url) {
      case '/events': // 200 events of 1 KiB: 200 KiB in all, each event under the bound
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < 200; i++) res.write(`data: ${piece(1000)}\n\n`);
        res.end();
        return;
      case '/endless-event':
      case '/huge-json': {
        // Written as the reader takes it: 32 MiB are more than the kernel's buffers on both sides hold.
        const json = req.url === '/huge-json';
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/event-stream; charset=utf-8' });
        res.write(json ? '{"a":"' : 'data: ok\n\ndata: ');
        let sent = 0;
        const pump = () => {
          while (!res.destroyed && sent < 32 * 1024 * 1024) {
            sent += 16 * 1024;
            if (!res.write(piece(16 * 1024))) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end(json ? '"}' : '\n\n');
        };
        pump();
        return;
      }
      case '/json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ a: piece(60 * 1024) }));
        return;
      default:
        res.writeHead(204).end();
    }
  });
  const dispatcher = new Agent();
  const fetch = egressFetch(dispatcher, 64 * 1024);
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await dispatcher.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`);

  it('reads streams of events under the bound whatever their total, and bodies under it', async () => {
    expect((await (await get('/events')).text()).length).toBe(200 * 1008);
    expect(((await (await get('/json')).json()) as { a: string }).a.length).toBe(60 * 1024);
    expect((await get('/empty')).status).toBe(204);
  });

  it('fails reading an event or a body over the bound (MessageTooLargeError), and drops the connection', async () => {
    const before = dropped;
    const stream = await get('/endless-event');
    const reader = stream.body!.getReader();
    let read = 0;
    const failure = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        read += value.length;
      }
    })().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(MessageTooLargeError);
    expect(read).toBeLessThan(64 * 1024 + 16 * 1024 * 4);
    await expect((await get('/huge-json')).json()).rejects.toBeInstanceOf(MessageTooLargeError);
    for (let i = 0; i < 200 && dropped < before + 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(dropped).toBe(before + 2);
  });
});
