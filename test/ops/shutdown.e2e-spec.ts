import net from 'node:net';
import pg from 'pg';
import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

/** Opens a stream on a raw socket and never reads from it: kernel buffers fill, then the server's. */
function stalledReader(replica: Replica, key: string, lastEventId: number): Promise<net.Socket> {
  const url = new URL(replica.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.pause();
      socket.write(
        `GET /api/v1/stream/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${key}\r\nLast-Event-ID: ${lastEventId}\r\n\r\n`,
      );
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

async function exitWithin(replica: Replica, ms: number): Promise<{ code: number | null; elapsed: number }> {
  const started = Date.now();
  const code = await Promise.race([replica.exited, sleep(ms).then(() => 'timeout' as const)]);
  if (code === 'timeout') throw new Error(`${replica.name} did not exit within ${ms} ms:\n${replica.output.slice(-2000)}`);
  return { code, elapsed: Date.now() - started };
}

describe('graceful shutdown (real processes)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let direct: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A grace period far longer than the test allows: exiting in time must come from the drain itself.
    cluster = new Cluster(db.url, redisUrl(), { SHUTDOWN_GRACE_MS: '30000' });
    direct = new pg.Client({ connectionString: db.url });
  });
  afterAll(async () => {
    await direct.end().catch(() => undefined);
    await cluster.stop();
    await db.drop();
  });

  it('is not held up by a stream client that stopped reading', async () => {
    const r = await cluster.start('stalled-drain');
    await direct.connect();
    // 15,000 events of ~1 KB: a resume from 0 is far more than the kernel buffers take.
    await direct.query(
      `INSERT INTO outbox (type, resource_id, data) SELECT 'agent.updated', 'bulk-' || g, jsonb_build_object('pad', repeat('x', 1000)) FROM generate_series(1, 15000) g`,
    );
    await waitFor(
      async () => (await api(r.url, 'GET', '/api/v1/events?after=14999&limit=1', { key: cluster.adminKey })).body.head >= 15000,
      20_000,
      'sequenced',
    );
    const socket = await stalledReader(r, cluster.adminKey, 0);
    await sleep(1000);
    r.process.kill('SIGTERM');
    const { code, elapsed } = await exitWithin(r, 10_000);
    socket.destroy();
    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(8000);
  });

  it('is not held up by a connection that never sent a request, nor by one that went idle during the drain', async () => {
    const r = await cluster.start('silent-drain');
    const url = new URL(r.url);
    const open = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname, () => resolve(socket));
        socket.on('error', reject);
      });
    // Connected, not a byte sent: Node counts it busy until its headers timeout (60 s).
    const silent = await open();
    // A stream the drain ends: its connection is kept alive afterwards (HTTP/1.1, no Connection: close asked).
    const kept = await open();
    kept.write(`GET /api/v1/stream/changes HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${cluster.adminKey}\r\n\r\n`);
    const keptClosed = new Promise<void>((resolve) => kept.on('close', () => resolve()));
    const silentClosed = new Promise<void>((resolve) => silent.on('close', () => resolve()));
    kept.resume();
    await sleep(500);
    r.process.kill('SIGTERM');
    const { code, elapsed } = await exitWithin(r, 10_000);
    await Promise.all([keptClosed, silentClosed]);
    expect(code).toBe(0);
    expect(elapsed).toBeLessThan(5000);
  });

  it('finishes a write that is in flight when SIGTERM arrives, then exits', async () => {
    const r = await cluster.start('inflight');
    expect((await api(r.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('held') })).status).toBe(201);
    // Hold the agent's row: the PATCH below waits on it inside its transaction.
    const lock = new pg.Client({ connectionString: db.url });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      await lock.query(`SELECT 1 FROM agents WHERE id = 'held' FOR UPDATE`);
      const patch = api(r.url, 'PATCH', '/api/v1/agents/held', { key: cluster.adminKey, body: { name: 'renamed during shutdown' } });
      await sleep(300);
      r.process.kill('SIGTERM');
      await sleep(700);
      await lock.query('COMMIT');
      const res = await patch;
      expect(res.status).toBe(200);
      expect(res.body.name).toBe('renamed during shutdown');
    } finally {
      await lock.end();
    }
    const { code } = await exitWithin(r, 10_000);
    expect(code).toBe(0);
    const stored = await direct.query(`SELECT name FROM agents WHERE id = 'held'`);
    expect(stored.rows[0].name).toBe('renamed during shutdown');
  });

  it('turns unready first and keeps serving writes during SHUTDOWN_DELAY_MS, each answer closing its connection', async () => {
    const r = await cluster.start('delayed', { SHUTDOWN_DELAY_MS: '1500' });
    expect((await api(r.url, 'GET', '/readyz')).status).toBe(200);
    r.process.kill('SIGTERM');
    await sleep(300);
    const ready = await api(r.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.headers.get('content-type')).toContain('application/problem+json');
    const created = await api(r.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('during-delay') });
    expect(created.status).toBe(201);
    expect(created.headers.get('connection')).toBe('close');
    const { code, elapsed } = await exitWithin(r, 10_000);
    expect(code).toBe(0);
    expect(elapsed).toBeGreaterThan(800); // it waited out the delay
    expect((await direct.query(`SELECT 1 FROM agents WHERE id = 'during-delay'`)).rowCount).toBe(1);
  });
});
