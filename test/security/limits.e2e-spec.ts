import http from 'node:http';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { query } from '../support/security.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'p', name: 'm' } });
const METRICS_TOKEN = 'metrics-token-0123456789';

/** A HEAD request (fetch would not let us look at a hijacked HEAD response's end). */
function head(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'HEAD', headers, agent: false }, (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('security: smaller leaks (metrics, key usage and expiry, bounded registry, stream slots)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  let metricsPort: number;
  let ported: Replica;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), {
      MAX_CONNECTIONS_PER_USER: '1',
      MAX_AGENTS: '3',
      MAX_PROMPT_VERSIONS_PER_AGENT: '2',
      MAX_MCP_SERVERS: '1',
      MAX_TRUST_RULES: '1',
    });
    r = await cluster.start('limits', { METRICS_TOKEN });
    metricsPort = await freePort();
    ported = await cluster.start('metrics-port', { METRICS_PORT: String(metricsPort) });
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('protects /metrics with METRICS_TOKEN, or moves it to METRICS_PORT', async () => {
    const denied = await api(r.url, 'GET', '/metrics');
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toContain('application/problem+json');
    expect((await api(r.url, 'GET', '/metrics', { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    const allowed = await api(r.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain('registry_sse_connections');

    expect((await api(ported.url, 'GET', '/metrics')).status).toBe(404);
    const internal = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(internal.status).toBe(200);
    expect(await internal.text()).toContain('registry_tracked_credentials');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/api/v1/agents`)).status).toBe(404);
  });

  it('records last_used_at at most once a minute, and API keys may expire', async () => {
    const made = await api(r.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'usage', role: 'viewer' } });
    expect(made.body.lastUsedAt).toBeNull();
    expect((await api(r.url, 'GET', '/api/v1/agents', { key: made.body.key })).status).toBe(200);
    const first = (await waitFor(
      async () => (await query(db.url, 'SELECT last_used_at FROM api_keys WHERE id = $1', [made.body.id]))[0].last_used_at as Date | null,
      3000,
      'last_used_at',
    )) as Date;
    for (let i = 0; i < 3; i++) expect((await api(ported.url, 'GET', '/api/v1/agents', { key: made.body.key })).status).toBe(200);
    await sleep(200);
    const [again] = await query(db.url, 'SELECT last_used_at FROM api_keys WHERE id = $1', [made.body.id]);
    expect(again.last_used_at.getTime()).toBe(first.getTime());
    const listed = await api(r.url, 'GET', '/api/v1/api-keys', { key: cluster.adminKey });
    expect(listed.body.items.find((k: { id: string }) => k.id === made.body.id).lastUsedAt).toBe(first.toISOString());

    const past = await api(r.url, 'POST', '/api/v1/api-keys', {
      key: cluster.adminKey,
      body: { name: 'x', role: 'viewer', expiresAt: '2020-01-01T00:00:00Z' },
    });
    expect(past.status).toBe(400);
    expect(past.body.errors[0]).toEqual({ field: 'expiresAt', message: 'must be in the future' });
    expect(
      (await api(r.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'x', role: 'viewer', expiresAt: 'tomorrow' } })).body.errors[0]
        .field,
    ).toBe('expiresAt');
    const short = await api(r.url, 'POST', '/api/v1/api-keys', {
      key: cluster.adminKey,
      body: { name: 'short', role: 'viewer', expiresAt: new Date(Date.now() + 1000).toISOString() },
    });
    expect((await api(r.url, 'GET', '/api/v1/agents', { key: short.body.key })).status).toBe(200);
    await sleep(1100);
    const expired = await api(r.url, 'GET', '/api/v1/agents', { key: short.body.key });
    expect(expired.status).toBe(401);
    expect(expired.body.detail).toContain('expired');
  });

  it('caps registry sizes at create (409 quota_exceeded naming the setting), so discovery stays bounded', async () => {
    const key = cluster.adminKey;
    const results = await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => api(r.url, 'POST', '/api/v1/agents', { key, body: agent(id) })));
    expect(results.map((x) => x.status).sort()).toEqual([201, 201, 201, 409, 409]);
    const refused = results.find((x) => x.status === 409)!;
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 3, setting: 'MAX_AGENTS' });
    const made = results.filter((x) => x.status === 201).map((x) => x.body.id as string);
    const id = made[0];
    for (const status of [201, 201, 409]) {
      expect((await api(r.url, 'POST', `/api/v1/agents/${id}/prompts`, { key, body: { template: 't' } })).status).toBe(status);
    }
    expect((await api(r.url, 'POST', '/api/v1/mcp-servers', { key, body: { id: 's1', name: 's1', url: 'https://mcp.example.test/1' } })).status).toBe(201);
    const server = await api(r.url, 'POST', '/api/v1/mcp-servers', { key, body: { id: 's2', name: 's2', url: 'https://mcp.example.test/2' } });
    expect(server.body).toMatchObject({ status: 409, setting: 'MAX_MCP_SERVERS' });
    const rule = { agentId: id, mcpServerId: 's1', toolPattern: '*', effect: 'allow' };
    expect((await api(r.url, 'POST', '/api/v1/trust-rules', { key, body: rule })).status).toBe(201);
    expect((await api(r.url, 'POST', '/api/v1/trust-rules', { key, body: { ...rule, toolPattern: 'x' } })).body.setting).toBe('MAX_TRUST_RULES');
    // Deleting frees room again.
    expect((await api(r.url, 'DELETE', `/api/v1/agents/${made[2]}`, { key })).status).toBe(204);
    expect((await api(r.url, 'POST', '/api/v1/agents', { key, body: agent('c6') })).status).toBe(201);
  });

  it('HEAD on the change stream and the progressive discovery stream take a connection slot like GET', async () => {
    const viewer = (await api(r.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'slots', role: 'viewer' } })).body.key;
    const auth = { authorization: `Bearer ${viewer}` };
    const held = await SseClient.connect(`${r.url}/api/v1/stream/changes`, auth);
    expect(held.status).toBe(200);
    // MAX_CONNECTIONS_PER_USER=1, held by the stream above.
    expect(await head(`${r.url}/api/v1/stream/changes`, auth)).toBe(429);
    expect(await head(`${ported.url}/api/v1/discovery?stream=true`, auth)).toBe(429);
    const discovery = await api(ported.url, 'GET', '/api/v1/discovery?stream=true', { key: viewer });
    expect(discovery.status).toBe(429);
    expect(discovery.headers.get('retry-after')).toBe('5');
    held.close();
    const streamed = await waitFor(
      async () => {
        const res = await api(ported.url, 'GET', '/api/v1/discovery?stream=true', { key: viewer });
        return res.status === 200 ? res : undefined;
      },
      5000,
      'a free slot',
    );
    expect(streamed.text).toContain('event: complete');
    // The finished discovery stream gave its slot back.
    const again = await waitFor(
      async () => {
        const s = await SseClient.connect(`${r.url}/api/v1/stream/changes`, auth);
        if (s.status === 200) return s;
        s.close();
        return undefined;
      },
      3000,
      'the slot after discovery',
    );
    again.close();
    // With a free slot, HEAD answers the stream's headers only and gives the slot back at once.
    await waitFor(async () => (await head(`${r.url}/api/v1/stream/changes`, auth)) === 200, 3000, 'HEAD 200');
    const afterHead = await SseClient.connect(`${r.url}/api/v1/stream/changes`, auth);
    expect(afterHead.status).toBe(200);
    afterHead.close();
  });
});
