import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { Cluster, type Replica } from '../support/replicas.js';
import { expectContiguous, SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, recordFigure, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

describe('three replicas behind one Redis and one PostgreSQL', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let r3: Replica;
  let redis: Redis;
  const clients: SseClient[] = [];
  const sse = async (replica: Replica, query = '', headers: Record<string, string> = {}) => {
    const c = await SseClient.connect(`${replica.url}/api/v1/stream/changes${query}`, { authorization: `Bearer ${cluster.adminKey}`, ...headers });
    clients.push(c);
    expect(c.status).toBe(200);
    return c;
  };
  const create = async (replica: Replica, id: string) => {
    const res = await api(replica.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(id) });
    expect(res.status).toBe(201);
    return res;
  };
  const head = async (replica: Replica) =>
    (await api(replica.url, 'GET', '/api/v1/events?limit=1&after=999999999', { key: cluster.adminKey })).body.head as number;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { MAX_CONNECTIONS_PER_USER: '1000', CONNECTION_LEASE_MS: '2000', SHUTDOWN_GRACE_MS: '10000' });
    r1 = await cluster.start('r1');
    [r2, r3] = await Promise.all([cluster.start('r2'), cluster.start('r3')]);
    redis = new Redis(redisUrl());
  }, 90_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    redis.disconnect();
    await cluster.stop();
    await db.drop();
  });

  it('delivers a write on one replica to subscribers on the others, in order, once (prints latency)', async () => {
    const on2 = await sse(r2);
    const on3 = await sse(r3);
    await sleep(100);
    const start = await head(r1);
    const committedAt = new Map<number, number>();
    const N = 60;
    for (let i = 0; i < N; i++) {
      const res = await create(r1, `lat-${i}`);
      committedAt.set(i, performance.now());
      expect(res.status).toBe(201);
      await sleep(5);
    }
    await on2.waitForEvents(N);
    await on3.waitForEvents(N);
    expectContiguous(
      on2.events.map((e) => e.id),
      start + 1,
      start + N,
    );
    expectContiguous(
      on3.events.map((e) => e.id),
      start + 1,
      start + N,
    );
    // Latency from the writer seeing its 201 (committed) to arrival on another replica.
    const latencies = [...on2.events, ...on3.events].map((e) => Math.max(0, e.at - committedAt.get(Number(e.data.id.slice(4)))!));
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    recordFigure(`cross-replica delivery after commit: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${latencies.length} deliveries)`);
    expect(p99).toBeLessThan(1000);
  });

  it('resumes on a different replica with exactly the continuation', async () => {
    const first = await sse(r2);
    await sleep(100);
    const start = await head(r1);
    for (let i = 0; i < 5; i++) await create(r1, `resume-a${i}`);
    await first.waitForEvents(5);
    const seen = first.events[2].id;
    first.close();
    for (let i = 0; i < 5; i++) await create(r2, `resume-b${i}`);
    const second = await sse(r3, '', { 'last-event-id': String(seen) });
    for (let i = 0; i < 3; i++) await create(r3, `resume-c${i}`);
    await second.waitForEvents(start + 13 - seen);
    await sleep(200);
    expectContiguous(
      second.events.map((e) => e.id),
      seen + 1,
      start + 13,
    );
  });

  it('loses nothing when a replica loses its Redis connection', async () => {
    const on2 = await sse(r2);
    const on3 = await sse(r3);
    await sleep(100);
    const start = await head(r1);
    const N = 80;
    const writes = (async () => {
      for (let i = 0; i < N; i++) {
        await create(i % 2 ? r1 : r3, `redis-loss-${i}`);
        await sleep(3);
      }
    })();
    // Kill r2's subscriber connection twice while events flow: pub/sub drops
    // what was published meanwhile; r2 must back-fill from the outbox.
    const connectionOf = async (name: string) => {
      const list = (await redis.client('LIST')) as string;
      const line = list.split('\n').find((l) => l.includes(`name=${name} `));
      return line ? /id=(\d+)/.exec(line)![1] : undefined;
    };
    for (let k = 0; k < 2; k++) {
      await sleep(60);
      // (after the first kill, wait for ioredis to reconnect before killing again)
      const id = await waitFor(() => connectionOf(`registry-sub-${r2.id}`), 5000, 'r2 subscriber connection');
      await redis.client('KILL', 'ID', id);
    }
    // Also kill r1's publisher once: a publish may be lost for every replica (the lost tail).
    await redis.client('KILL', 'ID', await waitFor(() => connectionOf(`registry-pub-${r1.id}`), 5000, 'r1 publisher connection'));
    await writes;
    await on2.waitForEvents(N, 20_000);
    await on3.waitForEvents(N, 20_000);
    await sleep(300);
    expectContiguous(
      on2.events.map((e) => e.id),
      start + 1,
      start + N,
    );
    expectContiguous(
      on3.events.map((e) => e.id),
      start + 1,
      start + N,
    );
  });

  it('works with the WHATWG eventsource client, unmodified', async () => {
    const start = await head(r1);
    const received: { id: string; type: string; data: any }[] = [];
    const es = new EventSource(`${r3.url}/api/v1/stream/changes?events=agent.*&lastEventId=${start}`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${cluster.adminKey}` } }),
    });
    const opened = new Promise<void>((resolve, reject) => {
      es.onopen = () => resolve();
      es.onerror = (e) => reject(new Error(`eventsource error: ${String((e as { message?: string }).message)}`));
    });
    for (const type of ['agent.created', 'agent.updated']) {
      es.addEventListener(type, (e: MessageEvent) => received.push({ id: e.lastEventId, type, data: JSON.parse(e.data) }));
    }
    try {
      await opened;
      await create(r1, 'es-1');
      await api(r2.url, 'PATCH', '/api/v1/agents/es-1', { key: cluster.adminKey, body: { description: 'changed' } });
      await waitFor(() => received.length >= 2, 10_000, 'eventsource events');
      expect(received.map((r) => [r.id, r.type, r.data.id])).toEqual([
        [String(start + 1), 'agent.created', 'es-1'],
        [String(start + 2), 'agent.updated', 'es-1'],
      ]);
    } finally {
      es.close();
    }
  });

  it('enforces per-user connection limits across replicas, and heals when a replica dies', async () => {
    const limited = new Cluster(db.url, redisUrl(), { MAX_CONNECTIONS_PER_USER: '3', CONNECTION_LEASE_MS: '2000' });
    try {
      const [a, b, c] = await Promise.all([limited.start('l1'), limited.start('l2'), limited.start('l3')]);
      const open = async (replica: Replica) => {
        const client = await SseClient.connect(`${replica.url}/api/v1/stream/changes`, { authorization: `Bearer ${limited.adminKey}` });
        clients.push(client);
        return client;
      };
      expect((await open(a)).status).toBe(200);
      expect((await open(b)).status).toBe(200);
      expect((await open(c)).status).toBe(200);
      const fourth = await open(a);
      expect(fourth.status).toBe(429);
      expect(JSON.parse(fourth.body).code).toBe('too_many_requests');
      // Kill b outright (no shutdown hook runs): its share expires with its lease.
      b.process.kill('SIGKILL');
      await b.exited;
      await waitFor(async () => (await open(c)).status === 200, 15_000, 'the dead replica share to expire');
    } finally {
      await limited.stop();
    }
  });

  it('drains on SIGTERM: clients are told to reconnect, readiness fails, the process exits', async () => {
    const extra = await cluster.start('r4');
    const c = await sse(extra);
    await sleep(100);
    extra.process.kill('SIGTERM');
    await c.waitFor((x) => x.ended, 10_000, 'stream end');
    expect(c.frames.some((f) => f.retry !== undefined && f.retry <= 1250)).toBe(true);
    expect(await extra.exited).toBe(0);
    // The others keep serving.
    const res = await create(r1, 'after-drain');
    expect(res.status).toBe(201);
  });
});
