import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { z } from 'zod';
import { SseClient } from '../support/sse-client.js';
import { api, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';
import { RawSse, retainedBytes } from './raw-sse.js';

/**
 * Tool streams (`POST /api/v1/mcp/stream`, `GET /api/v1/stream/tools/...`) to a
 * client that does not read, on a tool that floods progress: the connection is
 * cut as a slow consumer once more than STREAM_MAX_BUFFER_BYTES wait unsent, the
 * call is aborted (the backend gets `notifications/cancelled`) and the replica's
 * memory does not grow with the flood. A client that reads gets every event.
 * The replica and the backend run in this process.
 */

/** A stateful SDK-built MCP server with one tool, `flood`, that records what it sent and the cancellations it got. */
class FloodBackend {
  /** Progress notifications sent, per `tag`. */
  readonly sent = new Map<string, number>();
  /** The requests that `notifications/cancelled` named, as `<MCP session id>/<request id>`. */
  readonly cancellations = new Set<string>();
  /** Each call's request, as `<MCP session id>/<request id>`, per `tag`. */
  readonly requests = new Map<string, string>();
  /** Tags of calls whose handler saw its signal aborted. */
  readonly aborted = new Set<string>();
  private readonly transports = new Map<string, StreamableHTTPServerTransport>();
  private readonly sockets = new Set<Socket>();
  private server!: http.Server;

  static async start(): Promise<FloodBackend> {
    const b = new FloodBackend();
    b.server = http.createServer((req, res) => void b.handle(req, res));
    b.server.on('connection', (s: Socket) => {
      b.sockets.add(s);
      s.on('close', () => b.sockets.delete(s));
    });
    await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
    return b;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/mcp`;
  }

  private build(): McpServer {
    const server = new McpServer({ name: 'flood-backend', version: '1.0.0' });
    server.registerTool(
      'flood',
      {
        description: 'Sends count progress notifications of size characters, one every delayMs, until done or cancelled',
        inputSchema: { tag: z.string(), count: z.number(), size: z.number(), delayMs: z.number() },
      },
      async ({ tag, count, size, delayMs }, extra) => {
        const token = extra._meta?.progressToken;
        this.sent.set(tag, 0);
        this.requests.set(tag, `${extra.sessionId}/${extra.requestId}`);
        for (let i = 1; i <= count; i++) {
          if (extra.signal.aborted) {
            this.aborted.add(tag);
            throw new Error('cancelled');
          }
          if (token !== undefined) {
            const message = `${i}:`.padEnd(size, 'x');
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: count, message } });
            this.sent.set(tag, i);
          }
          if (delayMs > 0) await sleep(delayMs);
        }
        return { content: [{ type: 'text' as const, text: `flooded ${count}` }] };
      },
    );
    return server;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: unknown;
    if (req.method === 'POST') {
      const parts: Buffer[] = [];
      for await (const p of req) parts.push(p as Buffer);
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    }
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? this.transports.get(sid) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(typeof sid === 'string' ? 404 : 400).end();
        return;
      }
      const t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void this.transports.set(id, t) });
      t.onclose = () => t.sessionId && this.transports.delete(t.sessionId);
      await this.build().connect(t);
      // Seen before the SDK's own handling, which aborts the call's signal.
      const inner = t.onmessage;
      t.onmessage = (message, extra) => {
        if ('method' in message && message.method === 'notifications/cancelled') this.cancellations.add(`${t.sessionId}/${String(message.params?.requestId)}`);
        inner?.(message, extra);
      };
      transport = t;
    }
    await transport.handleRequest(req, res, body);
  }

  async close(): Promise<void> {
    for (const t of this.transports.values()) await t.close().catch(() => undefined);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };
/** Progress the backend may send to a non-reading client before the test calls it unbounded (100 KB each: 40 MB). */
const UNBOUNDED = 400;

describe('gateway tool streams to a client that does not read', () => {
  let t: TestApp;
  let backend: FloodBackend;
  const raws: RawSse[] = [];

  beforeAll(async () => {
    backend = await FloodBackend.start();
    t = await startTestApp({
      env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false', GATEWAY_REQUEST_TIMEOUT_MS: '120000', STREAM_MAX_BUFFER_BYTES: String(1024 * 1024) },
    });
    const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: t.adminKey,
      body: { id: 'flooder', name: 'flooder', url: backend.url, healthCheck: noProbes },
    });
    expect(res.status).toBe(201);
    // The server's registration (and its tool list) drops pooled backend sessions as it lands: a call that
    // starts meanwhile may fail with "the session is closed". Wait until a call goes through.
    const warm = encodeURIComponent(JSON.stringify({ tag: 'warm', count: 1, size: 10, delayMs: 0 }));
    await waitFor(
      async () => {
        const r = await fetch(`${t.baseUrl}/api/v1/stream/tools/flooder/flood?arguments=${warm}&id=w`, { headers: { authorization: `Bearer ${t.adminKey}` } });
        const text = await r.text();
        if (!text.includes('event: result')) await sleep(300);
        return text.includes('event: result');
      },
      30_000,
      'a first call through',
    );
  }, 90_000);
  afterAll(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await t?.close();
    await backend?.close();
  }, 60_000);

  it('is cut as a slow consumer (POST and GET forms): the backend gets notifications/cancelled and memory does not grow with the flood', async () => {
    const before = retainedBytes();
    const flood = (tag: string) => ({ tag, count: 3000, size: 100_000, delayMs: 5 });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'p1', method: 'tools/call', params: { name: 'flooder__flood', arguments: flood('post') } });
    const auth = { Authorization: `Bearer ${t.adminKey}` };
    raws.push(await RawSse.open(t.baseUrl, 'POST', '/api/v1/mcp/stream', auth, body));
    const query = encodeURIComponent(JSON.stringify(flood('get')));
    raws.push(await RawSse.open(t.baseUrl, 'GET', `/api/v1/stream/tools/flooder/flood?arguments=${query}&id=g1`, auth));
    await waitFor(() => raws.every((r) => r.opened), 15_000, 'both streams open');
    for (const r of raws) r.pause();

    // Either both calls are aborted (their streams cut), or the backend sent far more than any buffer holds.
    const sent = () => Math.max(backend.sent.get('post') ?? 0, backend.sent.get('get') ?? 0);
    await waitFor(() => backend.aborted.size === 2 || sent() >= UNBOUNDED, 90_000, 'both calls aborted, or the flood past any buffer');
    const grown = retainedBytes() - before;
    console.log(
      `[tool-stream-slow-consumer] progress sent: post ${backend.sent.get('post')}, get ${backend.sent.get('get')}; ` +
        `aborted [${[...backend.aborted].join(',')}]; +${(grown / 1048576).toFixed(1)} MB retained after a full GC`,
    );
    expect([...backend.aborted].sort()).toEqual(['get', 'post']);
    for (const tag of ['post', 'get']) expect([tag, backend.cancellations.has(backend.requests.get(tag)!)]).toEqual([tag, true]);
    expect(sent()).toBeLessThan(UNBOUNDED);
    // Nothing of the flood is left (while the streams lasted, STREAM_MAX_BUFFER_BYTES and a frame each at most).
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    // The backend stopped: nothing more is sent after the cancellation.
    const after = sent();
    await sleep(500);
    expect(sent()).toBe(after);
    // Reading again, each client gets what the kernel held, in order, then the end of a cut connection (no result, no [DONE]).
    for (const r of raws) r.resume();
    await waitFor(() => raws.every((r) => r.closed), 30_000, 'both connections closed');
    for (const r of raws) {
      expect(r.status).toBe(200);
      const progress = r.frames.filter((f) => f.event === 'progress');
      expect(progress.length).toBeGreaterThan(0);
      expect(r.frames.map((f) => f.event)).toEqual(['start', ...progress.map(() => 'progress')]);
    }
    raws.splice(0);
  }, 180_000);

  it('a client that reads gets every progress event, in order, then the result and [DONE]', async () => {
    const count = 300;
    const args = encodeURIComponent(JSON.stringify({ tag: 'reader', count, size: 10_000, delayMs: 2 }));
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/tools/flooder/flood?arguments=${args}&id=r1`, { authorization: `Bearer ${t.adminKey}` });
    try {
      await c.waitFor((x) => x.ended, 90_000, 'the stream to end');
      const progress = c.frames.filter((f) => f.event === 'progress').map((f) => (JSON.parse(f.data) as { progress: number }).progress);
      expect(progress).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      expect(c.frames.filter((f) => f.event !== 'comment' && f.retry === undefined && f.event !== 'progress').map((f) => f.event)).toEqual([
        'start',
        'result',
        'complete',
        'message',
        'message',
      ]);
      expect(c.frames.at(-1)?.data).toBe('[DONE]');
      expect(backend.aborted.has('reader')).toBe(false);
      expect(backend.cancellations.has(backend.requests.get('reader')!)).toBe(false);
    } finally {
      c.close();
    }
  }, 120_000);
});
