import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { api, createTestDatabase, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

describe('health probes go through the egress policy', () => {
  let db: { url: string; drop(): Promise<void> };
  let registrar: TestApp;
  let prober: TestApp;
  let host: McpFixtureHost;

  beforeAll(async () => {
    db = await createTestDatabase();
    host = await McpFixtureHost.start();
    // One replica that may register loopback URLs but does not probe, and one
    // that probes with private networks forbidden (the default with DATABASE_URL).
    registrar = await startTestApp({ databaseUrl: db.url, env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false' } });
    prober = await startTestApp({ databaseUrl: db.url, adminKey: registrar.adminKey });
  });
  afterAll(async () => {
    await prober?.close();
    await registrar?.close();
    await host?.close();
    await db?.drop();
  });

  it('never contacts a server whose URL the policy forbids: unhealthy with the refusal as reason, zero connections', async () => {
    const forbidden = host.add('forbidden');
    const res = await api(registrar.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: registrar.adminKey,
      body: { id: 'forbidden', name: 'Forbidden', url: forbidden.url, healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2 } },
    });
    expect(res.status).toBe(201);
    const health = await waitFor(
      async () => {
        const b = (await api(prober.baseUrl, 'GET', '/api/v1/mcp-servers/forbidden/health', { key: registrar.adminKey })).body;
        return b.status === 'unhealthy' && b.samples.length >= 2 && b;
      },
      10_000,
      'forbidden server unhealthy',
    );
    expect(health.reason).toMatch(/egress to 127\.0\.0\.1 refused: private and loopback addresses need MCP_ALLOW_PRIVATE_NETWORKS=true/);
    expect(health.samples[0]).toMatchObject({ ok: false, step: 'egress', replica: prober.config.replicaId });
    expect(health.owner).toBe(prober.config.replicaId);
    expect(host.connections).toBe(0);
    expect(forbidden.requests).toBe(0);
  });
});
