import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { LIST_CHANGED_WINDOW_MS } from '../../src/gateway/core/list-changed.js';
import { SseClient } from '../support/sse-client.js';
import { McpSessionHost } from '../support/mcp-session-host.js';
import { api, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

/**
 * A backend that floods `notifications/tools/list_changed`: its tool list is
 * `churn` and `gen_<version>`; `churn({count, burst?, pauseMs?})` changes the
 * version `count` times as fast as it can (or `burst` at a time, `pauseMs`
 * apart), announcing each change on the session's standalone
 * stream (outside any request, as a server whose tools change does). SDK-built
 * (a low-level Server per MCP session, stateful Streamable HTTP).
 */
class FloodingBackend {
  version = 0;
  /** tools/list requests that reached the backend. */
  lists = 0;
  /** When (performance.now()) the last list_changed of the last `churn` was sent. */
  lastSentAt = 0;
  /** Sessions whose standalone GET stream is open. */
  private readonly listening = new Set<string>();
  private host!: McpSessionHost;

  static async start(): Promise<FloodingBackend> {
    const b = new FloodingBackend();
    b.host = await McpSessionHost.start(
      (t) => b.build(() => t.sessionId).connect(t),
      (req, res, sid) => {
        if (req.method !== 'GET') return;
        b.listening.add(sid);
        res.on('close', () => b.listening.delete(sid));
      },
    );
    return b;
  }

  get url(): string {
    return this.host.url;
  }

  private build(sessionId: () => string | undefined): Server {
    const server = new Server({ name: 'flooder', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
    server.setRequestHandler(ListToolsRequestSchema, () => {
      this.lists++;
      return {
        tools: [
          { name: 'churn', description: 'Changes the tool list count times', inputSchema: { type: 'object', properties: { count: { type: 'number' } } } },
          { name: `gen_${this.version}`, description: `Generation ${this.version}`, inputSchema: { type: 'object' } },
        ],
      };
    });
    server.setRequestHandler(CallToolRequestSchema, async (request) => {
      const count = Number(request.params.arguments?.count ?? 0);
      // Flat out, or `burst` at a time with `pauseMs` between (a flood spread over a while).
      const burst = Number(request.params.arguments?.burst ?? count);
      const pauseMs = Number(request.params.arguments?.pauseMs ?? 0);
      // The standalone stream the gateway opened after initializing (a notification outside it would be dropped).
      await waitFor(() => this.listening.has(sessionId() ?? ''), 10_000, 'the gateway’s standalone stream to the backend');
      await sleep(50);
      for (let i = 0; i < count; i++) {
        this.version++;
        await server.sendToolListChanged();
        if (pauseMs > 0 && (i + 1) % burst === 0) await sleep(pauseMs);
      }
      this.lastSentAt = performance.now();
      return { content: [{ type: 'text', text: `version ${this.version}` }] };
    });
    return server;
  }

  async close(): Promise<void> {
    await this.host.close();
  }
}

/** Resolves once `count()` has not grown for `quietMs` (or after `timeoutMs`). */
async function settled(count: () => number, quietMs = 1500, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  while (Date.now() < until) {
    const now = count();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(50);
  }
}

const FLOOD = 2000;

/**
 * A backend flooding `notifications/tools/list_changed` (2,000 as fast as it
 * can) reaches clients coalesced: at most one announcement per
 * LIST_CHANGED_WINDOW_MS per session (plus the leading one), at least one
 * after the last change, and a list read after it shows the final tools —
 * on /mcp (the SDK client re-lists on each, as the spec has it: an
 * announcement costs /mcp a tools/list, and the backend one when a change
 * came since the last) and on a streaming session.
 */
describe('a backend flooding tools/list_changed', () => {
  let t: TestApp;
  let flooder: FloodingBackend;
  const clients: Client[] = [];
  const streams: SseClient[] = [];

  beforeAll(async () => {
    flooder = await FloodingBackend.start();
    t = await startTestApp({ redis: true, env: { HEALTH_PROBES: 'false', MCP_ALLOW_PRIVATE_NETWORKS: 'true', GATEWAY_MCP_EVENTS_PER_STREAM: '5000' } });
    const healthCheck = { failureThreshold: 1, coolDownMs: 60_000, maxCoolDownMs: 60_000 };
    const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: t.adminKey,
      body: { id: 'flooder', name: 'flooder', url: flooder.url, healthCheck },
    });
    expect([res.status, res.text]).toEqual([201, expect.any(String)]);
  }, 90_000);

  afterAll(async () => {
    for (const s of streams) s.close();
    for (const c of clients) await c.close().catch(() => undefined);
    await t?.close();
    await flooder?.close();
  }, 120_000);

  it('/mcp: the client is told at most once per window, at least once after the last change, and re-lists the final tools', async () => {
    const client = new Client({ name: 'flood-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${t.adminKey}` } } });
    await client.connect(transport);
    clients.push(client);
    const told: number[] = [];
    let relisted: string[] = [];
    // A client that follows the spec: each list_changed makes it list the tools again.
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      told.push(performance.now());
      void client
        .listTools()
        .then((r) => (relisted = r.tools.map((tool) => tool.name)))
        .catch(() => undefined);
    });
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain(`flooder__gen_${flooder.version}`);
    const listsBefore = flooder.lists;
    const startedAt = performance.now();
    // ~2,000 a second for about a second: the client's re-lists land between changes, so each one misses the cache.
    await client.callTool({ name: 'flooder__churn', arguments: { count: FLOOD, burst: 10, pauseMs: 5 } }, undefined, { timeout: 60_000 });
    await settled(() => told.length + flooder.lists);
    const spanMs = Math.max(...told) - startedAt;
    const lists = flooder.lists - listsBefore;
    const bound = Math.ceil(spanMs / LIST_CHANGED_WINDOW_MS) + 2;
    process.stdout.write(
      `/mcp: ${FLOOD} list_changed from the backend -> ${told.length} to the client over ${spanMs} ms (bound ${bound}), ${lists} tools/list to the backend\n`,
    );
    expect(told.length).toBeGreaterThanOrEqual(1);
    expect(told.length).toBeLessThanOrEqual(bound);
    expect(lists).toBeLessThanOrEqual(told.length + 1);
    // The last change is never swallowed: an announcement came after it.
    expect(Math.max(...told)).toBeGreaterThanOrEqual(flooder.lastSentAt);
    const final = `flooder__gen_${flooder.version}`;
    await waitFor(() => relisted.includes(final), 10_000, 'the re-listed tools to show the last generation');
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['flooder__churn', final]);
  }, 120_000);

  it('streaming session: list_changed notification events are coalesced the same way; tools/list shows the final tools', async () => {
    const created = await api(t.baseUrl, 'POST', '/api/v1/gateway/stream', { key: t.adminKey, body: { servers: ['flooder'] } });
    expect([created.status, created.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    const sessionId = created.body.session_id as string;
    const stream = await SseClient.connect(`${t.baseUrl}/api/v1/gateway/stream/${sessionId}`, { authorization: `Bearer ${t.adminKey}` });
    streams.push(stream);
    const send = async (id: string, method: string, params: Record<string, unknown>) => {
      const res = await api(t.baseUrl, 'POST', `/api/v1/gateway/stream/${sessionId}/request`, {
        key: t.adminKey,
        body: { jsonrpc: '2.0', id, method, params },
      });
      expect([res.status, res.text.slice(0, 300)]).toEqual([202, expect.any(String)]);
    };
    const answerOf = async (id: string) => {
      const find = () => stream.frames.find((f) => (f.event === 'response' || f.event === 'error') && (JSON.parse(f.data) as { id: unknown }).id === id);
      await stream.waitFor(() => find() !== undefined, 60_000, `the answer to ${id}`);
      return JSON.parse(find()!.data) as { result?: { tools?: { name: string }[] }; error?: unknown };
    };
    const changes = () =>
      stream.frames.filter((f) => f.event === 'notification' && (JSON.parse(f.data) as { method?: string }).method === 'notifications/tools/list_changed');
    const startedAt = performance.now();
    await send('churn', 'tools/call', { name: 'flooder__churn', arguments: { count: FLOOD } });
    expect((await answerOf('churn')).error).toBeUndefined();
    await settled(() => changes().length);
    const told = changes();
    const at = told.map((f) => f.at!);
    const spanMs = Math.max(...at) - startedAt;
    const bound = Math.ceil(spanMs / LIST_CHANGED_WINDOW_MS) + 2;
    process.stdout.write(
      `streaming session: ${FLOOD} list_changed from the backend -> ${told.length} notification events over ${spanMs} ms (bound ${bound})\n`,
    );
    expect(told.length).toBeGreaterThanOrEqual(1);
    expect(told.length).toBeLessThanOrEqual(bound);
    expect(JSON.parse(told[0].data)).toMatchObject({ server: 'flooder', jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    expect(Math.max(...at)).toBeGreaterThanOrEqual(flooder.lastSentAt);
    expect(stream.frames.filter((f) => f.event === 'error')).toEqual([]);
    await send('list', 'tools/list', {});
    expect((await answerOf('list')).result?.tools?.map((tool) => tool.name)).toEqual(['flooder__churn', `flooder__gen_${flooder.version}`]);
    await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${sessionId}`, { key: t.adminKey });
  }, 120_000);
});
