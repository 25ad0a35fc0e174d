import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { egressFetch } from '../../egress/egress.dispatcher.js';
import { LeanStreamableHttpTransport, MAX_EVENT_ID_CHARS, SseParser } from './lean-streamable-http.js';

describe('SseParser', () => {
  const text = '\uFEFF: a comment\r\nevent: message\r\ndata: {"a":\r\ndata: "é🙂"}\r\n\r\nid: 7\rretry: 100\rdata: second\r\rdata\n\nevent: other\ndata: x\n\n';
  const expected = [
    ['message', '{"a":\n"é🙂"}'],
    ['message', 'second'],
    ['message', ''],
    ['other', 'x'],
  ];
  const parse = (chunks: string[]) => {
    const events: string[][] = [];
    const parser = new SseParser((event, data) => events.push([event, data]));
    for (const c of chunks) parser.push(c);
    return events;
  };

  it('reads CRLF, CR and LF line ends, multi-line data, comments and a BOM, however the text is split', () => {
    expect(parse([text])).toEqual(expected);
    // Every split in two (a CR at the end of one chunk and an LF at the start of the next among them), and one character at a time.
    for (let i = 0; i <= text.length; i++) expect([i, parse([text.slice(0, i), '', text.slice(i)])]).toEqual([i, expected]);
    expect(parse([...text])).toEqual(expected);
  });

  it('reports the last event id when an event that set it is dispatched (one without data too), and each valid retry', () => {
    const seen: string[] = [];
    const parser = new SseParser((event, data) => seen.push(`${event}:${data}`), {
      onId: (id) => seen.push(`id:${id}`),
      onRetry: (ms) => seen.push(`retry:${ms}`),
    });
    parser.push(`id: 1\nretry: 50\ndata: \n\ndata: a\n\nid: 2\n\nretry: x\nid: 3\0\nid\ndata: b\n\nid: ${'x'.repeat(MAX_EVENT_ID_CHARS + 1)}\n\nid: 4\n`);
    // An id with a NUL or longer than MAX_EVENT_ID_CHARS is ignored, an empty one is taken for none; the last event's
    // id waits for its blank line.
    expect(seen).toEqual(['retry:50', 'id:1', 'message:', 'message:a', 'id:2', 'message:b']);
    parser.push('\n');
    expect(seen.at(-1)).toBe('id:4');
  });

  it('keeps an event that has no blank line after it yet', () => {
    expect(parse(['data: not yet\n'])).toEqual([]);
    expect(parse(['data: now\n', '\n'])).toEqual([['message', 'now']]);
  });
});

/** The transports' bound on one message here (MCP_MAX_MESSAGE_BYTES at its lowest). */
const MAX_MESSAGE = 64 * 1024;

/**
 * A hand-written Streamable HTTP server, to answer the way real servers may: SSE one byte at a time with CRLF and
 * multi-byte characters, JSON, an unexpected type, 404, a stream cut before its answer.
 */
class OddServer {
  readonly posted: string[] = [];
  lastHeaders: http.IncomingHttpHeaders = {};
  /** The Last-Event-ID of each GET. */
  readonly resumedFrom: (string | undefined)[] = [];
  /** Calls of `hang` whose connection is still open. */
  hanging = 0;
  /** Bytes the `endless` answers got out before their client dropped them, and whether each was dropped. */
  readonly endless: { sent: number; dropped: boolean }[] = [];
  readonly server = http.createServer((req, res) => void this.handle(req, res));

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'GET') this.resumedFrom.push(req.headers['last-event-id'] as string | undefined);
    if (req.method !== 'POST') {
      res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
      return;
    }
    const m = JSON.parse(Buffer.concat(chunks).toString()) as { id?: number; method: string; params?: { name?: string } };
    this.posted.push(m.method);
    this.lastHeaders = req.headers;
    if (m.method === 'initialize') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'odd-1' });
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: m.id,
          result: { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'odd', version: '1' } },
        }),
      );
      return;
    }
    if (req.headers['mcp-session-id'] !== 'odd-1') {
      res.writeHead(400).end('no session');
      return;
    }
    if (m.id === undefined) {
      res.writeHead(202).end();
      return;
    }
    const result = (text: string) => JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text }] } });
    switch (m.params?.name) {
      case 'bytes': {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        const progress = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'é🙂' } });
        const body = Buffer.from(
          `id: 1\r\ndata: \r\n\r\n: keep-alive\r\nevent: message\r\ndata: ${progress}\r\n\r\nid: 2\r\ndata: ${result('héllo 🙂')}\r\n\r\n`,
        );
        for (const b of body) {
          res.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
        res.end();
        return;
      }
      case 'progress': {
        // Two progress notifications and the answer in one write, as a fast backend's last step often arrives.
        const token = (m.params as { _meta?: { progressToken?: number } })._meta?.progressToken;
        const note = (n: number) =>
          JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: n, total: 2 } });
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: ${note(1)}\n\ndata: ${note(2)}\n\ndata: ${result('done')}\n\n`);
        return;
      }
      case 'json':
        res.writeHead(200, { 'content-type': 'application/json' }).end(result('as json'));
        return;
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<p>hi</p>');
        return;
      case 'gone':
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
        return;
      case 'hang':
        // Never answers: only the client's close ends it.
        this.hanging++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('id: 1\ndata: \n\n');
        res.on('close', () => this.hanging--);
        return;
      case 'linger':
        // Answers, then keeps the stream open (a comment now and then) instead of ending it.
        this.hanging++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${result('lingering')}\n\n`);
        {
          const timer = setInterval(() => res.write(': still here\n\n'), 50);
          res.on('close', () => {
            clearInterval(timer);
            this.hanging--;
          });
        }
        return;
      case 'endless':
      case 'huge-json':
      case 'huge-error': {
        // An answer without end: an SSE event that never ends, a JSON body, an error page. The client must stop reading.
        const kind = m.params?.name;
        const track = { sent: 0, dropped: false };
        this.endless.push(track);
        res.on('close', () => (track.dropped = !res.writableFinished));
        if (kind === 'huge-error') res.writeHead(500, { 'content-type': 'text/html' });
        else res.writeHead(200, { 'content-type': kind === 'endless' ? 'text/event-stream' : 'application/json' });
        res.write(kind === 'endless' ? 'id: 1\ndata: \n\ndata: {"jsonrpc":"2.0","id":' + String(m.id) + ',"result":{"text":"' : '{"x":"');
        const piece = Buffer.alloc(16 * 1024, 'a');
        const pump = () => {
          while (!res.destroyed && track.sent < 32 * 1024 * 1024) {
            track.sent += piece.length;
            if (!res.write(piece)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end();
        };
        pump();
        return;
      }
      case 'cut':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('id: 1\ndata: \n\n');
        setTimeout(() => res.destroy(), 20);
        return;
      default:
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'unknown tool' } }));
    }
  }
}

describe('LeanStreamableHttpTransport (calls in an established session)', () => {
  const odd = new OddServer();
  const dispatcher = new Agent();
  let url: URL;
  let client: Client;
  let transport: LeanStreamableHttpTransport;
  const errors: Error[] = [];
  /** What went through the SDK's own fetch (its paths), as `METHOD json-rpc-method`. */
  const fetched: string[] = [];
  const messages: unknown[] = [];

  beforeAll(async () => {
    await new Promise<void>((resolve) => odd.server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(odd.server.address() as AddressInfo).port}/mcp`);
    const sdkFetch = egressFetch(dispatcher);
    const counting = ((input: string | URL, init?: { method?: string; body?: unknown }) => {
      fetched.push(`${init?.method ?? 'GET'} ${typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }).method : ''}`.trim());
      return sdkFetch(input, init as never);
    }) as never;
    transport = new LeanStreamableHttpTransport(
      url,
      dispatcher,
      // Stored headers as a user may type them: a Content-Type of their own is replaced, not sent twice.
      { 'X-Stored': 'yes', 'Content-Type': 'text/plain' },
      MAX_MESSAGE,
      {
        fetch: counting,
        reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
      },
    );
    client = new Client({ name: 'lean-test', version: '1' });
    client.onerror = (e) => errors.push(e);
    client.fallbackNotificationHandler = (n) => {
      messages.push(n);
      return Promise.resolve();
    };
    await client.connect(transport);
  });
  afterAll(async () => {
    await client.close();
    odd.server.closeAllConnections();
    await new Promise((resolve) => odd.server.close(resolve));
    await dispatcher.close();
  });

  it('reads an SSE answer that arrives a byte at a time (CRLF, multi-byte characters), with a notification before it', async () => {
    const errorsBefore = errors.length;
    const result = await client.callTool({ name: 'bytes', arguments: {} });
    expect(result.content).toEqual([{ type: 'text', text: 'héllo 🙂' }]);
    expect(messages).toContainEqual(expect.objectContaining({ method: 'notifications/message', params: { level: 'info', data: 'é🙂' } }));
    // The priming event (an id, no data) is no message and no error: an error would make the session ping its backend.
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it('hands over progress read in the same chunk as the answer before the answer (the SDK settles an answer at once)', async () => {
    const seen: number[] = [];
    const result = await client.callTool({ name: 'progress', arguments: {} }, undefined, { onprogress: (p) => seen.push(p.progress) });
    expect(result.content).toEqual([{ type: 'text', text: 'done' }]);
    expect(seen).toEqual([1, 2]);
  });

  it('reads a JSON answer, and a JSON-RPC error as the call’s error', async () => {
    expect((await client.callTool({ name: 'json', arguments: {} })).content).toEqual([{ type: 'text', text: 'as json' }]);
    await expect(client.callTool({ name: 'nope', arguments: {} })).rejects.toThrow('unknown tool');
  });

  it('reports a 404 as StreamableHTTPError 404 (the backend no longer knows the session), and an unexpected type', async () => {
    const gone = await client.callTool({ name: 'gone', arguments: {} }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(StreamableHTTPError);
    expect((gone as StreamableHTTPError).code).toBe(404);
    const html = await client.callTool({ name: 'html', arguments: {} }).catch((e: unknown) => e);
    expect((html as StreamableHTTPError).message).toContain('Unexpected content type: text/html');
  });

  it('reports a stream cut before its answer to onerror, and resumes it from its last event id: a GET this server refuses (405) fails the call at once', async () => {
    const before = errors.length;
    const started = performance.now();
    await expect(client.callTool({ name: 'cut', arguments: {} }, undefined, { timeout: 5000 })).rejects.toThrow(
      'refused to resume it: a GET with Last-Event-ID was answered HTTP 405 (the server does not offer GET streams)',
    );
    expect(performance.now() - started).toBeLessThan(2500);
    expect(errors.slice(before).map((e) => e.message)).toContainEqual(expect.stringContaining('SSE stream disconnected'));
    expect(odd.resumedFrom.at(-1)).toBe('1');
  });

  it('sends notifications (202) and the session’s headers; initialize went through the SDK’s own path', async () => {
    await client.notification({ method: 'notifications/cancelled', params: { requestId: 99, reason: 'test' } });
    expect(odd.posted).toEqual(expect.arrayContaining(['initialize', 'notifications/initialized', 'notifications/cancelled']));
    expect(odd.lastHeaders).toMatchObject({
      'x-stored': 'yes',
      'content-type': 'application/json',
      'mcp-session-id': 'odd-1',
      'mcp-protocol-version': '2025-06-18',
    });
    expect(transport.sessionId).toBe('odd-1');
    // Only the session's start took the SDK's fetch (the GET of its standalone stream refused with 405); every call above went the lean way.
    expect(fetched).toEqual(['POST initialize', 'POST notifications/initialized', 'GET']);
  });
  it('refuses an answer larger than its bound (an SSE event without end, a JSON body, an error page): the call fails at once, the rest unread', async () => {
    for (const name of ['endless', 'huge-json', 'huge-error']) {
      const started = performance.now();
      const failure = (await client.callTool({ name, arguments: {} }).catch((e: unknown) => e)) as Error;
      expect([name, failure]).toEqual([name, expect.any(Error)]);
      if (name === 'huge-error') expect(failure.message.length).toBeLessThan(4096 + 200);
      else expect([name, failure.message]).toEqual([name, expect.stringContaining(`larger than ${MAX_MESSAGE} bytes (MCP_MAX_MESSAGE_BYTES)`)]);
      expect(performance.now() - started).toBeLessThan(5000);
      const track = odd.endless.at(-1)!;
      for (let i = 0; i < 200 && !track.dropped; i++) await new Promise((r) => setTimeout(r, 10));
      // Dropped well before the server's 32 MiB were read (more than the kernel's buffers on both sides hold).
      expect([name, track.dropped, track.sent < 16 * 1024 * 1024]).toEqual([name, true, true]);
    }
    // The session still works.
    expect(await client.callTool({ name: 'json', arguments: {} })).toMatchObject({ content: [{ text: 'as json' }] });
  });

  it('lets go of a stream whose call timed out or was cancelled, and of one kept open after its answer', async () => {
    const before = odd.hanging;
    const errorsBefore = errors.length;
    const settle = async (n: number) => {
      for (let i = 0; i < 300 && odd.hanging !== n; i++) await new Promise((r) => setTimeout(r, 10));
      expect(odd.hanging).toBe(n);
    };
    // Timed out: the SDK sends notifications/cancelled, and the stream's connection is closed.
    await expect(client.callTool({ name: 'hang', arguments: {} }, undefined, { timeout: 200 })).rejects.toThrow(/timed out/i);
    await settle(before);
    // Cancelled by the caller while its stream is read.
    const aborted = new AbortController();
    const call = client.callTool({ name: 'hang', arguments: {} }, undefined, { signal: aborted.signal }).catch((e: unknown) => e);
    await settle(before + 1);
    aborted.abort('no longer wanted');
    expect(await call).toBeInstanceOf(Error);
    await settle(before);
    // Answered, but the server keeps the stream open: let go of ANSWERED_LINGER_MS after the answer.
    expect(await client.callTool({ name: 'linger', arguments: {} })).toMatchObject({ content: [{ text: 'lingering' }] });
    await settle(before);
    // Letting go on purpose is no transport error (those make the session probe its backend).
    expect(errors.slice(errorsBefore)).toEqual([]);
  });

  it('close() aborts a call in flight on the lean path (its connection is closed)', async () => {
    const own = new LeanStreamableHttpTransport(url, dispatcher, {}, MAX_MESSAGE, { fetch: egressFetch(dispatcher) as never });
    const c = new Client({ name: 'lean-close', version: '1' });
    await c.connect(own);
    const call = c.callTool({ name: 'hang', arguments: {} }).catch((e: unknown) => e);
    for (let i = 0; i < 200 && odd.hanging === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(odd.hanging).toBe(1);
    await c.close();
    expect(await call).toBeInstanceOf(Error);
    for (let i = 0; i < 200 && odd.hanging > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(odd.hanging).toBe(0);
  });
});
