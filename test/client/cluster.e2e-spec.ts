import { type ChangeEvent, follow, followHealth, type HealthUpdate, mirror, type StreamStatus } from '../../packages/client/src/index.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica, replicaMetric } from '../support/replicas.js';
import { TcpBalancer } from '../support/tcp-balancer.js';
import { api, createTestDatabase, redisUrl, waitFor } from '../support/test-env.js';

/**
 * The client library against real service processes: three replicas on one
 * PostgreSQL and one Redis; the library's clients reach r1 and r2 through a
 * TCP load balancer (as behind nginx), writers use r2 and r3 directly.
 */
describe('@agentic-registry/client against three replicas', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let r3: Replica;
  let balancer: TcpBalancer;
  let key: string;
  const conn = () => ({ baseUrl: balancer.url, apiKey: key, heartbeatMs: 1000, backoff: { initialMs: 50, maxMs: 1000 } });

  const head = async (replica: Replica) => (await api(replica.url, 'GET', '/api/v1/events?limit=1&after=999999999', { key })).body.head as number;
  const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' }, tags: ['client'] });
  const ok = (res: { status: number; body: unknown }, status = 201) => {
    if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
    return res;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), {
      MAX_CONNECTIONS_PER_USER: '1000',
      CONNECTION_LEASE_MS: '2000',
      SSE_KEEPALIVE_MS: '500',
      MCP_ALLOW_PRIVATE_NETWORKS: 'true',
      HEALTH_OWNER_LEASE_MS: '1500',
    });
    r1 = await cluster.start('r1');
    [r2, r3] = await Promise.all([cluster.start('r2'), cluster.start('r3')]);
    key = cluster.adminKey;
    balancer = await TcpBalancer.start([Number(new URL(r1.url).port), Number(new URL(r2.url).port)], { readinessPath: '/readyz' });
  }, 120_000);

  // Whatever a test opened is closed even when it fails (a mirror left running would retry forever).
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  afterAll(async () => {
    await balancer?.close();
    await cluster?.stop();
    await db?.drop();
  });

  it('follow() keeps every event exactly once, in order, across a SIGKILL of the replica it was reading from', async () => {
    const start = await head(r3);
    const got: ChangeEvent[] = [];
    const statuses: StreamStatus[] = [];
    const ac = new AbortController();
    cleanups.push(() => ac.abort());
    const reading = (async () => {
      for await (const e of follow({ ...conn(), from: start, signal: ac.signal, onStatus: (s) => statuses.push(s) })) got.push(e);
    })();
    // The balancer sends the first connection to r1.
    await waitFor(async () => (await replicaMetric(r1, 'registry_stream_connections')) >= 1, 20_000, 'the follower on r1');

    const N = 80;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; i < N; i++) {
        ok(await api(i % 2 ? r3.url : r2.url, 'POST', '/api/v1/agents', { key, body: agent(`kill-${i}`) }));
        written++;
      }
    })();
    await waitFor(() => written >= N / 4 && got.length >= N / 8, 30_000, 'writes under way and events arriving');
    r1.process.kill('SIGKILL');
    await r1.exited;
    await writer;
    const end = await waitFor(async () => {
      const h = await head(r3);
      return h >= start + N ? h : undefined;
    }, 20_000);
    await waitFor(() => got.length >= end - start, 30_000, `all ${end - start} events (have ${got.length})`);
    ac.abort();
    await reading;

    const seqs = got.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: end - start }, (_, i) => start + 1 + i));
    expect(new Set(got.map((e) => e.id)).size).toBe(N);
    // It did reconnect (to r2, through the balancer), and resumed rather than restarting.
    expect(statuses.filter((s) => s.state === 'open').length).toBeGreaterThanOrEqual(2);
    // The abort closed the connection (the replica notices a moment later).
    await waitFor(async () => (await replicaMetric(r2, 'registry_stream_connections')) === 0, 10_000, 'the stream closed on r2');
  }, 120_000);

  it('mirror() equals the database after a burst of concurrent writes on two replicas', async () => {
    const m = mirror(conn());
    cleanups.push(() => m.close());
    await m.ready;
    const writers = [r2, r3].flatMap((replica, w) =>
      Array.from({ length: 3 }, (_, k) =>
        (async () => {
          const id = `m-${w}-${k}`;
          const url = replica.url;
          ok(await api(url, 'POST', '/api/v1/agents', { key, body: agent(id) }));
          ok(await api(url, 'POST', `/api/v1/agents/${id}/prompts`, { key, body: { template: `v1 of ${id} {{x}}`, variables: ['x'], activate: true } }));
          ok(await api(url, 'POST', `/api/v1/agents/${id}/prompts`, { key, body: { template: `v2 of ${id}` } }));
          ok(await api(url, 'POST', `/api/v1/agents/${id}/prompts/2/activate`, { key }), 200);
          ok(await api(url, 'PATCH', `/api/v1/agents/${id}`, { key, body: { description: `changed by writer ${w}.${k}` } }), 200);
          ok(await api(url, 'POST', '/api/v1/mcp-servers', { key, body: { id: `srv-${w}-${k}`, name: id, url: 'https://mcp.example.com/x', enabled: false } }));
          const rule = ok(
            await api(url, 'POST', '/api/v1/trust-rules', {
              key,
              body: { agentId: id, mcpServerId: `srv-${w}-${k}`, toolPattern: '*', effect: 'allow', priority: 1 },
            }),
          );
          ok(await api(url, 'PATCH', `/api/v1/trust-rules/${(rule.body as { id: string }).id}`, { key, body: { priority: 5 } }), 200);
          ok(await api(url, 'DELETE', `/api/v1/agents/${id}/prompts/1`, { key }), 204);
          if (k === 0) {
            // A whole agent gone: its rule first (a referenced agent cannot be deleted), then the agent with its prompts.
            ok(await api(url, 'DELETE', `/api/v1/trust-rules/${(rule.body as { id: string }).id}`, { key }), 204);
            ok(await api(url, 'DELETE', `/api/v1/agents/${id}`, { key }), 204);
          }
        })(),
      ),
    );
    await Promise.all(writers);
    // A write is numbered a moment after it commits: wait until the database's snapshot and the mirror stand at the same, final cursor.
    const end = await head(r3);
    const truth = await waitFor(
      async () => {
        const t = (await api(r3.url, 'GET', '/api/v1/discovery', { key })).body;
        return t.cursor >= end && t.cursor === m.cursor ? t : undefined;
      },
      30_000,
      `the mirror and the database at one cursor (mirror at ${m.cursor})`,
    );
    const mine = m.snapshot();
    const byKey = (items: any[], k: (x: any) => string) => [...items].sort((a, b) => (k(a) < k(b) ? -1 : 1));
    expect(mine.cursor).toBe(truth.cursor);
    expect(byKey(mine.agents, (a) => a.id)).toEqual(byKey(truth.agents, (a) => a.id));
    expect(byKey(mine.prompts, (p) => `${p.agentId}/${p.version}`)).toEqual(byKey(truth.prompts, (p) => `${p.agentId}/${p.version}`));
    expect(byKey(mine.mcp_servers, (s) => s.id)).toEqual(byKey(truth.mcp_servers, (s) => s.id));
    expect(byKey(mine.trust_rules!, (r) => r.id)).toEqual(byKey(truth.trust_rules, (r) => r.id));
    // What the burst should have left: 6 agents minus 2 deleted, each with its active v2 only.
    const burst = mine.agents.filter((a) => a.id.startsWith('m-'));
    expect(burst.map((a) => a.id).sort()).toEqual(['m-0-1', 'm-0-2', 'm-1-1', 'm-1-2']);
    expect(burst.every((a) => a.activePromptVersion === 2 && a.description.startsWith('changed by'))).toBe(true);
    expect(mine.prompts.filter((p) => p.agentId.startsWith('m-')).map((p) => `${p.agentId}/${p.version}/${p.active}`)).toHaveLength(4);
    expect(m.get('agents', 'm-0-0')).toBeUndefined();
    m.close();
    await m.done;
  }, 120_000);

  it('followHealth() gives a snapshot, then the recorded health change of a server that cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    const id = `down-${port}`;
    const updates: HealthUpdate[] = [];
    const ac = new AbortController();
    cleanups.push(() => ac.abort());
    const reading = (async () => {
      for await (const u of followHealth({ ...conn(), servers: [id], signal: ac.signal })) updates.push(u);
    })();
    await waitFor(() => updates.some((u) => u.type === 'snapshot'), 20_000, 'the snapshot');
    ok(
      await api(r2.url, 'POST', '/api/v1/mcp-servers', {
        key,
        body: {
          id,
          name: id,
          url: `http://127.0.0.1:${port}/mcp`,
          healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 1, failureThreshold: 100 },
        },
      }),
    );
    const change = await waitFor(() => updates.find((u) => u.type === 'change'), 30_000, 'a health change');
    ac.abort();
    await reading;
    expect(updates[0]).toMatchObject({ type: 'snapshot', servers: [] });
    expect(change.type === 'change' && change.event).toMatchObject({ type: 'mcp_server.health_changed', id, data: { to: 'unhealthy' } });
    expect(updates.filter((u) => u.type === 'check').every((u) => u.type === 'check' && u.check.serverId === id && !u.check.ok)).toBe(true);
  }, 60_000);
});
