import net from 'node:net';
import pg from 'pg';
import { FaultProxy } from '../support/fault-proxy.js';
import { Cluster, type Replica, replicaMetric as metric } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

/**
 * Real service processes whose links to Redis or PostgreSQL go through a
 * fault-injecting proxy: cut (RST, refused), stalled (open, nothing flows).
 */
const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });
const redisPort = () => Number(new URL(redisUrl()).port);

/** Sends a stream request on a raw socket and closes it `afterMs` later, before any answer can come. */
function abandonedStreamRequest(replica: Replica, key: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(replica.url);
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(`GET /api/v1/stream/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${key}\r\n\r\n`);
      setTimeout(() => socket.destroy(), afterMs);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

describe('stream hardening under network faults (real processes, fault proxy)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  const proxies: FaultProxy[] = [];
  const clients: SseClient[] = [];
  const sse = async (replica: Replica, key: string, headers: Record<string, string> = {}) => {
    const c = await SseClient.connect(`${replica.url}/api/v1/stream/changes`, { authorization: `Bearer ${key}`, ...headers });
    clients.push(c);
    return c;
  };
  const redisProxy = async () => {
    const p = await FaultProxy.start('127.0.0.1', redisPort());
    proxies.push(p);
    return p;
  };
  const newKey = async (replica: Replica, role = 'viewer') => {
    const res = await api(replica.url, 'POST', '/api/v1/api-keys', {
      key: cluster.adminKey,
      body: { name: `k-${Math.random().toString(36).slice(2, 8)}`, role },
    });
    expect(res.status).toBe(201);
    return res.body.key as string;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { CONNECTION_LEASE_MS: '3000', SHUTDOWN_GRACE_MS: '5000' });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const p of proxies) p.restore();
  });
  afterAll(async () => {
    await cluster.stop();
    for (const p of proxies.splice(0)) await p.close();
    await db.drop();
  });

  it('gives back the slot of a client that left while its slot was being acquired', async () => {
    const proxy = await redisProxy();
    const r = await cluster.start('slots', { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, MAX_CONNECTIONS_PER_USER: '2' });
    const key = await newKey(r);
    proxy.stall(); // slot acquisition now waits on Redis
    const abandoned = [abandonedStreamRequest(r, key, 150), abandonedStreamRequest(r, key, 150), abandonedStreamRequest(r, key, 150)];
    await Promise.all(abandoned);
    proxy.restore(); // the acquisitions complete for clients that are gone
    await sleep(1500);
    expect(await metric(r, 'registry_sse_connections')).toBe(0);
    // Both slots are free again: at once, or by the next heartbeat (every CONNECTION_LEASE_MS / 3, it rewrites this
    // replica's share from its own counts, so a Redis-side count left by a command that ran late is repaired). A slot
    // leaked in the replica's own counts — the defect this guards — is never given back, however long one waits.
    const a = await sse(r, key);
    let b = await sse(r, key);
    for (const until = Date.now() + 5000; b.status === 429 && Date.now() < until;) {
      b.close();
      await sleep(250);
      b = await sse(r, key);
    }
    expect([a.status, b.status]).toEqual([200, 200]);
  });

  it('repairs a slot release lost in a Redis blip (the heartbeat reconciles the whole share)', async () => {
    const proxy = await redisProxy();
    const r = await cluster.start('reconcile', { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, MAX_CONNECTIONS_PER_USER: '1' });
    const key = await newKey(r);
    const first = await sse(r, key);
    expect(first.status).toBe(200);
    expect((await sse(r, key)).status).toBe(429); // the limit holds
    proxy.cut();
    first.close(); // released while Redis is away: the release is lost
    await sleep(2000);
    proxy.restore();
    await sleep(1500); // reconnect + one heartbeat (lease 3 s / 3)
    const again = await sse(r, key);
    expect(again.status).toBe(200);
  });

  it('keeps REST ready and streams delivering while Redis is unreachable (per-replica limits)', async () => {
    const proxy = await redisProxy();
    const r = await cluster.start('no-redis', { REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    proxy.cut();
    await sleep(500);
    const ready = await api(r.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', bus: 'redis', busConnected: false });
    const stream = await sse(r, cluster.adminKey);
    expect(stream.status).toBe(200);
    const created = await api(r.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('written-without-redis') });
    expect(created.status).toBe(201);
    await stream.waitFor((c) => c.events.some((e) => e.data.id === 'written-without-redis'), 5000, 'the event, from the outbox');
    expect(await metric(r, 'registry_cluster_limits_degraded')).toBe(1);
    expect(await metric(r, 'registry_redis_connected')).toBe(0);
    proxy.restore();
    await waitFor(async () => (await metric(r, 'registry_redis_connected')) === 1, 10_000, 'redis back');
  });

  it('detects a half-open Redis link and reconnects, so live delivery resumes without waiting for the head poll', async () => {
    const proxy = await redisProxy();
    const writer = await cluster.start('writer');
    const r = await cluster.start('half-open', { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, STREAM_HEAD_POLL_MS: '60000' });
    const stream = await sse(r, cluster.adminKey);
    await api(writer.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('before-stall') });
    await stream.waitFor((c) => c.events.some((e) => e.data.id === 'before-stall'), 5000, 'the first event');
    // The existing links go dead without closing; new connections get through.
    proxy.stall();
    proxy.state = 'open';
    await api(writer.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('during-stall') });
    await stream.waitFor((c) => c.events.some((e) => e.data.id === 'during-stall'), 8000, 'the event published while the link was dead');
  });

  it('re-establishes the sequencer LISTEN connection after a PostgreSQL outage longer than its retry', async () => {
    // A database of its own: no other replica may number (or LISTEN) here.
    const own = await createTestDatabase();
    const dbUrl = new URL(own.url);
    const pgProxy = await FaultProxy.start('127.0.0.1', Number(dbUrl.port));
    proxies.push(pgProxy);
    dbUrl.port = String(pgProxy.port);
    // Only NOTIFY wakes the sequencer here (its poll is a minute): without LISTEN, nothing is numbered.
    const isolated = new Cluster(dbUrl.toString(), redisUrl(), { SEQUENCER_POLL_MS: '60000' });
    try {
      const r = await isolated.start('listen');
      const stream = await SseClient.connect(`${r.url}/api/v1/stream/changes`, { authorization: `Bearer ${isolated.adminKey}` });
      clients.push(stream);
      pgProxy.cut();
      await sleep(2000);
      pgProxy.restore();
      await waitFor(async () => (await api(r.url, 'GET', '/readyz')).status === 200, 10_000, 'database back');
      // The LISTEN backend is there again (asked of PostgreSQL directly, not through the proxy).
      const direct = new pg.Client({ connectionString: own.url });
      await direct.connect();
      try {
        await waitFor(
          async () =>
            (
              await direct.query(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'registry-sequencer-listen' AND query ILIKE 'LISTEN%'",
              )
            ).rowCount === 1,
          10_000,
          'a LISTEN connection',
        ).catch((error: Error) => {
          throw new Error(`${error.message}; replica output:\n${r.output.slice(-3000)}`);
        });
      } finally {
        await direct.end();
      }
      const created = await api(r.url, 'POST', '/api/v1/agents', { key: isolated.adminKey, body: agent('after-outage') });
      expect(created.status).toBe(201);
      await stream.waitFor((c) => c.events.some((e) => e.data.id === 'after-outage'), 5000, 'the event numbered after the outage');
    } finally {
      await isolated.stop();
      await own.drop();
    }
  });
});
