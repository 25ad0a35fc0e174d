import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Cluster, type Replica, replicaMetric } from '../support/replicas.js';
import { TcpBalancer } from '../support/tcp-balancer.js';
import { api, createTestDatabase, redisUrl, waitFor } from '../support/test-env.js';
import { TestBackend } from './mcp-endpoint-backend.js';

const PROTOCOL = '2025-11-25';

/** Reads an SSE response until it ends (or `stop` says so), calling `onEvent` for each event. */
async function readSse(res: Response, onEvent: (e: EventSourceMessage) => boolean | void): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let stop = false;
  const parser = createParser({ onEvent: (e) => void (stop ||= onEvent(e) === true) });
  while (!stop) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  await reader.cancel().catch(() => undefined);
}

/**
 * `/mcp` across real replicas (service processes sharing PostgreSQL and
 * Redis): a session initialized on one replica is served by another, a
 * request stream cut mid-call resumes on another replica with Last-Event-ID,
 * and the SDK client behind a load balancer resumes its stream when the
 * replica holding it is killed.
 */
describe('/mcp across replicas', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let backend: TestBackend;
  const clients: Client[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    backend = await TestBackend.start('alpha', 40);
    cluster = new Cluster(db.url, redisUrl(), { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false', SSE_RETRY_MS: '200' });
    r1 = await cluster.start('r1');
    r2 = await cluster.start('r2');
    const res = await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: cluster.adminKey, body: { id: 'alpha', name: 'Alpha', url: backend.url } });
    expect(res.status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await cluster?.stop();
    await backend?.close();
    await db?.drop();
  });

  function transportTo(url: string, options: { sessionId?: string; query?: string } = {}): StreamableHTTPClientTransport {
    return new StreamableHTTPClientTransport(new URL(`${url}/mcp${options.query ?? ''}`), {
      requestInit: { headers: { authorization: `Bearer ${cluster.adminKey}` } },
      reconnectionOptions: { initialReconnectionDelay: 300, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 10 },
      ...(options.sessionId ? { sessionId: options.sessionId } : {}),
    });
  }

  it('a session initialized on one replica is served by another; DELETE ends it on both', async () => {
    const first = new Client({ name: 'c1', version: '1' });
    clients.push(first);
    const t1 = transportTo(r1.url);
    await first.connect(t1);
    expect((await first.listTools()).tools.map((t) => t.name)).toContain('alpha__echo');

    // The same session, sent to the other replica (as a load balancer may): it is rebuilt there.
    const second = new Client({ name: 'c1', version: '1' });
    clients.push(second);
    const t2 = transportTo(r2.url, { sessionId: t1.sessionId! });
    await second.connect(t2);
    expect(await second.callTool({ name: 'alpha__echo', arguments: { text: 'on r2' } })).toMatchObject({ content: [{ text: 'alpha:on r2' }] });
    expect(await replicaMetric(r2, 'registry_mcp_sessions')).toBeGreaterThanOrEqual(1);

    await t2.terminateSession();
    const list = { jsonrpc: '2.0', id: 7, method: 'tools/list' };
    const headers = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': PROTOCOL, 'mcp-session-id': t1.sessionId! };
    expect((await api(r1.url, 'POST', '/mcp', { key: cluster.adminKey, body: list, headers })).status).toBe(404);
    expect((await api(r2.url, 'POST', '/mcp', { key: cluster.adminKey, body: list, headers })).status).toBe(404);
  });

  it('a tool call’s stream cut on one replica resumes on another with Last-Event-ID: the rest of the progress, then the result', async () => {
    const auth = { authorization: `Bearer ${cluster.adminKey}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(`${r1.url}/mcp`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await readSse(init, (e) => e.data !== '');
    const session = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL };
    expect(
      (await fetch(`${r1.url}/mcp`, { method: 'POST', headers: session, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }))
        .status,
    ).toBe(202);

    // A 1.5 s call with progress, on r1; the client reads two progress events and is cut off.
    const cut = new AbortController();
    const call = await fetch(`${r1.url}/mcp`, {
      method: 'POST',
      headers: session,
      signal: cut.signal,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 42,
        method: 'tools/call',
        params: { name: 'alpha__slow', arguments: { ms: 1500 }, _meta: { progressToken: 'p1' } },
      }),
    });
    expect(call.status).toBe(200);
    let lastId = '';
    const before: number[] = [];
    await readSse(call, (e) => {
      if (before.length === 2) return true; // (the rest of a chunk already read)
      if (e.id) lastId = e.id;
      if (e.data) before.push((JSON.parse(e.data) as { params: { progress: number } }).params.progress);
      return before.length === 2;
    });
    cut.abort();
    expect(before).toEqual([1, 2]);

    // Resumed on r2, which never saw this call: the progress r1 stored since, then the answer, and the stream ends.
    const resumed = await fetch(`${r2.url}/mcp`, { headers: { ...session, accept: 'text/event-stream', 'last-event-id': lastId } });
    expect(resumed.status).toBe(200);
    const after: { params?: { progress: number }; id?: number; result?: { content: { text: string }[] } }[] = [];
    const arrivals: number[] = [];
    await readSse(resumed, (e) => {
      if (!e.data) return;
      after.push(JSON.parse(e.data) as (typeof after)[number]);
      arrivals.push(performance.now());
    });
    const progress = after.filter((m) => m.params).map((m) => m.params!.progress);
    expect(progress).toEqual(Array.from({ length: 28 }, (_, i) => i + 3)); // 3..30: none lost, none repeated
    expect(after[after.length - 1]).toMatchObject({ id: 42, result: { content: [{ text: 'slept 1500' }] } });
    // Live, as r1 stores them (r2 watches the stream it resumed), not in bursts of r2's once-a-second poll.
    const deliveries = arrivals.filter((t, i) => i > 0 && t - arrivals[i - 1] > 20).length;
    expect(deliveries).toBeGreaterThanOrEqual(8);
  });

  it('the SDK client behind a load balancer keeps its session and resumes its stream on the other replica when the one holding it is killed', async () => {
    const r3 = await cluster.start('r3');
    const r4 = await cluster.start('r4');
    const balancer = await TcpBalancer.start([Number(new URL(r3.url).port), Number(new URL(r4.url).port)]);
    try {
      const client = new Client({ name: 'lb-client', version: '1' });
      clients.push(client);
      let changed = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++;
      });
      await client.connect(transportTo(balancer.url, { query: '?deferred=true' }));
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['search_tools', 'activate_tools']);
      // The client opened its GET stream after initializing; find the replica holding it and kill that one.
      let holder: Replica | undefined;
      await waitFor(async () => {
        for (const r of [r3, r4]) if ((await replicaMetric(r, 'registry_mcp_streams')) === 1) holder = r;
        return holder !== undefined;
      }, 15_000);
      const survivor = holder === r3 ? r4 : r3;
      holder!.process.kill('SIGKILL');
      await holder!.exited;

      // Activation lands on the survivor; its list_changed reaches the client over its resumed stream.
      const activated = await client.callTool({ name: 'activate_tools', arguments: { names: ['alpha__extra_7'] } });
      expect(activated.structuredContent).toMatchObject({ added: ['alpha__extra_7'] });
      await waitFor(() => changed >= 1, 20_000);
      await waitFor(async () => (await replicaMetric(survivor, 'registry_mcp_streams')) === 1, 15_000);
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['search_tools', 'activate_tools', 'alpha__extra_7']);
      expect(await client.callTool({ name: 'alpha__extra_7', arguments: {} })).toMatchObject({ content: [{ text: 'extra 7' }] });
    } finally {
      await balancer.close();
    }
  });
});
