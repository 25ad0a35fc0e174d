import { Cluster, type Replica } from '../support/replicas.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { loginAs, login, query } from '../support/security.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, recordFigure, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

/** Waits for the stream to end; returns how long after `since` it ended. */
async function endedWithin(stream: SseClient, since: number, timeoutMs = 5000): Promise<number> {
  await waitFor(() => stream.ended, timeoutMs, 'the stream to end');
  return performance.now() - since;
}

describe('security: credentials are live on open streams (two replicas)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  const streams: SseClient[] = [];
  const open = async (replica: Replica, headers: Record<string, string>, query = '') => {
    const s = await SseClient.connect(`${replica.url}/api/v1/stream/changes${query}`, headers);
    streams.push(s);
    return s;
  };
  let n = 0;
  const trustRule = async () => {
    const id = `rv-${++n}`;
    expect((await api(r1.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(id) })).status).toBe(201);
    const rule = await api(r1.url, 'POST', '/api/v1/trust-rules', {
      key: cluster.adminKey,
      body: { agentId: id, mcpServerId: 'srv', toolPattern: '*', effect: 'allow' },
    });
    expect(rule.status).toBe(201);
    return rule.body.id as string;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    // One stream per principal, cluster-wide: a freed slot is visible at once.
    cluster = new Cluster(db.url, redisUrl(), { MAX_CONNECTIONS_PER_USER: '1', CONNECTION_LEASE_MS: '3000' });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    const srv = await api(r1.url, 'POST', '/api/v1/mcp-servers', {
      key: cluster.adminKey,
      body: { id: 'srv', name: 'srv', url: 'https://mcp.example.test/mcp' },
    });
    expect(srv.status).toBe(201);
  }, 90_000);
  afterEach(() => {
    for (const s of streams.splice(0)) s.close();
  });
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('a revoked editor key stops receiving trust_rule events on another replica within 1 s, and its slot is freed', async () => {
    const made = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'editor-bff', role: 'editor' } });
    const key = made.body.key as string;
    const stream = await open(r2, { authorization: `Bearer ${key}` }, '?events=trust_rule.*');
    expect(stream.status).toBe(200);
    const before = await trustRule();
    await stream.waitFor((c) => c.events.some((e) => e.data.id === before), 5000, 'the trust rule event');

    const revoked = await api(r1.url, 'DELETE', `/api/v1/api-keys/${made.body.id}`, { key: cluster.adminKey });
    expect(revoked.status).toBe(204);
    const elapsed = await endedWithin(stream, performance.now());
    recordFigure(`revoked key: stream on the other replica ended ${elapsed.toFixed(0)} ms after the revocation`);
    expect(elapsed).toBeLessThan(1000);

    const after = await trustRule();
    await sleep(300);
    expect(stream.events.some((e) => e.data.id === after)).toBe(false);
    // The key is refused everywhere, and no slot of its stays taken.
    expect((await api(r2.url, 'GET', '/api/v1/agents', { key })).status).toBe(401);
    await waitFor(
      async () => /^registry_sse_connections 0$/m.test(await fetch(`${r2.url}/metrics`).then((r) => r.text())),
      3000,
      'r2 to hold no SSE connection',
    );
  });

  it("logging out ends the session's streams everywhere and frees the slot for the next one", async () => {
    const { cookie: first } = await loginAs(r1.url, cluster.adminKey, 'carol', 'editor');
    const second = await login(r2.url, 'carol');
    const a = await open(r2, { cookie: first });
    expect(a.status).toBe(200);
    // MAX_CONNECTIONS_PER_USER=1, cluster-wide: carol's second session is refused on the other replica.
    const refused = await open(r1, { cookie: second });
    expect(refused.status).toBe(429);

    const out = await api(r1.url, 'POST', '/api/v1/auth/logout', { headers: { cookie: first } });
    expect(out.status).toBe(204);
    const elapsed = await endedWithin(a, performance.now());
    expect(elapsed).toBeLessThan(1000);
    const b = await waitFor(
      async () => {
        const s = await open(r1, { cookie: second });
        if (s.status === 200) return s;
        s.close();
        return undefined;
      },
      3000,
      'the freed slot',
    );
    expect(b.status).toBe(200);
  });

  it("a role change ends the stream; reconnecting applies the new role's filter", async () => {
    const { cookie, id } = await loginAs(r1.url, cluster.adminKey, 'dana', 'editor');
    const editorStream = await open(r2, { cookie });
    const seen = await trustRule();
    await editorStream.waitFor((c) => c.events.some((e) => e.data.id === seen), 5000, 'trust rule event as editor');

    const demoted = await api(r1.url, 'PATCH', `/api/v1/users/${id}`, { key: cluster.adminKey, body: { role: 'viewer' } });
    expect(demoted.status).toBe(200);
    expect(await endedWithin(editorStream, performance.now())).toBeLessThan(1000);

    const cursor = editorStream.lastEventId!;
    const viewerStream = await waitFor(
      async () => {
        const s = await open(r2, { cookie, 'last-event-id': cursor });
        if (s.status === 200) return s;
        s.close();
        return undefined;
      },
      3000,
      'reconnect as viewer',
    );
    const hidden = await trustRule();
    const marker = `marker-${n}`;
    expect((await api(r1.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(marker) })).status).toBe(201);
    await viewerStream.waitFor((c) => c.events.some((e) => e.data.id === marker), 5000, 'the marker agent');
    expect(viewerStream.events.some((e) => e.event.startsWith('trust_rule.') || e.data.id === hidden)).toBe(false);
  });

  it('deleting the user and expiring the session end their streams', async () => {
    const { cookie, id } = await loginAs(r1.url, cluster.adminKey, 'eve', 'viewer');
    const s1 = await open(r2, { cookie });
    expect(s1.status).toBe(200);
    expect((await api(r1.url, 'DELETE', `/api/v1/users/${id}`, { key: cluster.adminKey })).status).toBe(204);
    expect(await endedWithin(s1, performance.now())).toBeLessThan(1000);

    const { cookie: frank } = await loginAs(r1.url, cluster.adminKey, 'frank', 'viewer');
    const s2 = await open(r1, { cookie: frank });
    expect(s2.status).toBe(200);
    // The session reaches its expiry (as if SESSION_TTL_MS had passed).
    const changed = performance.now();
    await query(db.url, "UPDATE sessions s SET expires_at = now() - interval '1 second' FROM users u WHERE u.id = s.user_id AND u.username = 'frank'");
    expect(await endedWithin(s2, changed)).toBeLessThan(1000);
  });

  it('an API key ends its streams when it expires', async () => {
    const expiresAt = new Date(Date.now() + 2500).toISOString();
    const made = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'short-lived', role: 'viewer', expiresAt } });
    expect(made.status).toBe(201);
    expect(made.body.expiresAt).toBe(expiresAt);
    const stream = await open(r2, { authorization: `Bearer ${made.body.key}` });
    expect(stream.status).toBe(200);
    await sleep(1000);
    expect(stream.ended).toBe(false);
    await waitFor(() => stream.ended, 5000, "the expired key's stream to end");
    expect(Date.now() - Date.parse(expiresAt)).toBeLessThan(1000);
    expect((await api(r1.url, 'GET', '/api/v1/agents', { key: made.body.key })).status).toBe(401);
  });
});

describe('security: the credential check never closes streams while PostgreSQL is down', () => {
  let db: { url: string; drop(): Promise<void> };
  let proxy: FaultProxy;
  let cluster: Cluster;
  let replica: Replica;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await FaultProxy.start(target.hostname, Number(target.port));
    target.port = String(proxy.port);
    cluster = new Cluster(target.toString(), redisUrl(), { CREDENTIAL_CHECK_MS: '200' });
    replica = await cluster.start('pg-flaky');
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    await proxy.close();
    await db.drop();
  });

  it('keeps the stream through an outage, then still ends it on revocation', async () => {
    const made = await api(replica.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'outage', role: 'viewer' } });
    expect(made.status).toBe(201);
    const stream = await SseClient.connect(`${replica.url}/api/v1/stream/changes`, { authorization: `Bearer ${made.body.key}` });
    expect(stream.status).toBe(200);
    proxy.cut();
    await sleep(2000); // ten credential checks fail meanwhile
    expect(stream.ended).toBe(false);
    proxy.restore();
    // Revoke straight in the database (the replica's own pool is recovering): the watcher notices.
    await query(db.url, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1', [made.body.id]);
    await waitFor(() => stream.ended, 15_000, 'the stream to end once the database answers');
    stream.close();
  });
});
