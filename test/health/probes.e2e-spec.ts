import { freePort } from '../support/ports.mjs';
import { EverythingServer, McpFixtureHost } from '../support/mcp-fixtures.js';
import { SseClient } from '../support/sse-client.js';
import { api, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

/** Fast settings for tests: probe every second, answer within 700 ms. */
const FAST = { intervalMs: 1000, timeoutMs: 700, unhealthyThreshold: 1, healthyThreshold: 1 };

describe('health probes speak MCP (one replica, no Redis)', () => {
  let t: TestApp;
  let host: McpFixtureHost;
  let everything: EverythingServer;
  const clients: SseClient[] = [];

  const register = async (id: string, url: string, extra: Record<string, unknown> = {}) => {
    const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id, name: id, url, ...extra } });
    expect([id, res.status, res.text.slice(0, 300)]).toEqual([id, 201, expect.any(String)]);
  };
  const health = async (id: string) => {
    const res = await api(t.baseUrl, 'GET', `/api/v1/mcp-servers/${id}/health`, { key: t.adminKey });
    expect(res.status).toBe(200);
    return res.body;
  };
  /** Health events of one server on a change stream. */
  const eventsOf = (c: SseClient, id: string) => c.events.filter((e) => e.data.id === id);
  const waitEvents = (c: SseClient, id: string, n: number, timeoutMs = 15_000) =>
    c.waitFor(() => eventsOf(c, id).length >= n, timeoutMs, `${n} events of ${id}`);
  const changes = async () => {
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes?events=mcp_server.health_changed,mcp_server.circuit_changed`, {
      authorization: `Bearer ${t.adminKey}`,
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    [host, everything] = await Promise.all([McpFixtureHost.start(), freePort().then((port) => EverythingServer.start(port))]);
    t = await startTestApp({ env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_OWNER_LEASE_MS: '600' } });
  }, 60_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
    await everything?.stop();
    await host?.close();
  });

  it('finds server-everything (Streamable HTTP) healthy: latency, tool count and hash, samples, one health_changed event', async () => {
    const stream = await changes();
    // server-everything's first answers (a cold process) can take a while: a roomier timeout than the fixtures'.
    await register('everything', everything.url, { healthCheck: { ...FAST, intervalMs: 1500, timeoutMs: 1400, latencyThresholdMs: 1400, listTools: true } });
    const h = await waitFor(
      async () => {
        const b = await health('everything');
        return b.status === 'healthy' && b.samples.length >= 2 && b;
      },
      15_000,
      'server-everything healthy with 2 samples',
    );
    expect(h).toMatchObject({ id: 'everything', enabled: true, status: 'healthy', circuit: { state: 'closed', failures: 0 } });
    expect(h.latencyMs).toBeGreaterThan(0);
    expect(h.tools.count).toBeGreaterThan(3);
    expect(h.tools.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(h.samples[0]).toMatchObject({
      serverId: 'everything',
      ok: true,
      quality: 'good',
      toolCount: h.tools.count,
      toolsHash: h.tools.hash,
      status: 'healthy',
    });
    expect(h.owner).toBe(t.config.replicaId);
    await waitEvents(stream, 'everything', 1);
    expect(eventsOf(stream, 'everything')[0]).toMatchObject({
      event: 'mcp_server.health_changed',
      data: { id: 'everything', data: { from: 'unknown', to: 'healthy', latencyMs: expect.any(Number), tools: { count: h.tools.count, hash: h.tools.hash } } },
    });
    // Checks that change nothing are samples, not events.
    await waitFor(async () => (await health('everything')).samples.length >= 4, 10_000, 'more samples');
    expect(eventsOf(stream, 'everything')).toHaveLength(1);
  });

  it('probes a legacy HTTP+SSE server, and notices a changed tool list', async () => {
    const legacy = host.add('legacy');
    const stream = await changes();
    await register('legacy', legacy.sseUrl, { transport: 'sse', healthCheck: { ...FAST, listTools: true } });
    await waitEvents(stream, 'legacy', 1);
    const [first] = eventsOf(stream, 'legacy');
    expect(first.data.data).toMatchObject({ from: 'unknown', to: 'healthy', tools: { count: 1 } });
    expect(legacy.initializes).toBeGreaterThan(0);
    legacy.tools = ['echo', 'search'];
    await waitEvents(stream, 'legacy', 2);
    const second = eventsOf(stream, 'legacy')[1];
    expect(second.data.data).toMatchObject({ from: 'healthy', to: 'healthy', reason: 'tool list changed', tools: { count: 2, changed: true } });
    expect(second.data.data.tools.previousHash).toBe(first.data.data.tools.hash);
  });

  it('marks a slow server degraded and a failing, hanging or garbage-answering one unhealthy, with the reason', async () => {
    // Each request of a probe (initialize, initialized, ping) waits 100 ms.
    const slow = host.add('slow').set('slow', 100);
    const failing = host.add('failing').set('fail');
    const hanging = host.add('hanging').set('hang');
    const garbage = host.add('garbage').set('garbage');
    await register('slow', slow.url, { healthCheck: { ...FAST, latencyThresholdMs: 250 } });
    await register('failing', failing.url, { healthCheck: FAST });
    await register('hanging', hanging.url, { healthCheck: FAST });
    await register('garbage', garbage.url, { healthCheck: FAST });
    let by: Record<string, any> = {};
    const settled = await waitFor(
      async () => {
        const all = await api(t.baseUrl, 'GET', '/api/v1/health?servers=slow,failing,hanging,garbage', { key: t.adminKey });
        by = Object.fromEntries(all.body.items.map((i: any) => [i.id, i]));
        return (
          by.slow?.status === 'degraded' && by.failing?.status === 'unhealthy' && by.hanging?.status === 'unhealthy' && by.garbage?.status === 'unhealthy' && by
        );
      },
      15_000,
      'statuses',
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify(Object.values(by).map((v) => [v.id, v.status, v.reason]))}`);
    });
    expect(settled.slow.reason).toMatch(/over its 250 ms latency threshold/);
    expect(settled.slow.latencyMs).toBeGreaterThan(250);
    expect(settled.failing.reason).toMatch(/failed check.*initialize/);
    expect(settled.hanging.reason).toMatch(/no answer within 700 ms/);
    expect(settled.hanging.latencyMs).toBeGreaterThanOrEqual(690);
    expect(settled.garbage.reason).toMatch(/initialize/);
    // The slow one recovers when it answers fast again.
    slow.set('ok');
    await waitFor(async () => (await health('slow')).status === 'healthy', 10_000, 'slow server healthy again');
  });

  it('reads the whole registry with GET /health and 404s an unknown server', async () => {
    const all = await api(t.baseUrl, 'GET', '/api/v1/health?samples=true', { key: t.adminKey });
    expect(all.status).toBe(200);
    expect(all.body.items.map((i: any) => i.id)).toEqual(expect.arrayContaining(['everything', 'legacy', 'slow']));
    expect(all.body.items.find((i: any) => i.id === 'everything').samples.length).toBeGreaterThan(0);
    expect(all.body.replicas).toEqual([{ id: t.config.replicaId, servers: all.body.items.filter((i: any) => i.enabled).length }]);
    const missing = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/nope/health', { key: t.adminKey });
    expect(missing.status).toBe(404);
    const bad = await api(t.baseUrl, 'GET', '/api/v1/health?servers=Not_A_Slug', { key: t.adminKey });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('servers');
  });

  it('stops probing a disabled server and resumes when it is enabled again', async () => {
    const toggled = host.add('toggled');
    await register('toggled', toggled.url, { healthCheck: FAST });
    await waitFor(async () => (await health('toggled')).status === 'healthy', 10_000, 'toggled healthy');
    const patch = await api(t.baseUrl, 'PATCH', '/api/v1/mcp-servers/toggled', { key: t.adminKey, body: { enabled: false } });
    expect(patch.status).toBe(200);
    await waitFor(async () => (await health('toggled')).owner === null, 5000, 'no owner once disabled');
    const before = toggled.requests;
    await new Promise((r) => setTimeout(r, 2500));
    expect(toggled.requests).toBe(before);
    await api(t.baseUrl, 'PATCH', '/api/v1/mcp-servers/toggled', { key: t.adminKey, body: { enabled: true } });
    await waitFor(() => toggled.requests > before, 5000, 'probing again');
  });
});
