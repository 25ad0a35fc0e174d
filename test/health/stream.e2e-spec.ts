import net from 'node:net';
import { HEALTH_SSE_CODEC, SseHealthClient } from '../../src/health/health-stream.controller.js';
import { HEALTH_EVENTS } from '../../src/health/health-stream.service.js';
import { EventFilter } from '../../src/streaming/event-filter.js';
import { chunk, SseConnection } from '../../src/streaming/sse.connection.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { type SseFrame, SseClient } from '../support/sse-client.js';
import { api, createKey, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const FAST = { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 1, healthyThreshold: 1, failureThreshold: 100 };

describe('GET /api/v1/stream/health (one replica on Redis)', () => {
  let t: TestApp;
  let host: McpFixtureHost;
  let viewer: string;
  const clients: SseClient[] = [];
  const open = async (query = '', headers: Record<string, string> = {}) => {
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/health${query}`, { authorization: `Bearer ${viewer}`, ...headers });
    clients.push(c);
    return c;
  };
  const snapshotOf = (c: SseClient) => {
    const f = c.frames.find((x) => x.event === 'snapshot');
    return f ? { id: Number(f.id), data: JSON.parse(f.data) } : undefined;
  };
  const checks = (c: SseClient) => c.frames.filter((f: SseFrame) => f.event === 'health.check').map((f) => JSON.parse(f.data));
  const changed = (c: SseClient, id: string, to: string) =>
    c.events.some((e) => e.event === 'mcp_server.health_changed' && e.data.id === id && e.data.data.to === to);
  /** A server's status as this client knows it: its snapshot's, then each health event's. */
  const statusOf = (c: SseClient, id: string): string | undefined => {
    let status = snapshotOf(c)?.data.servers.find((s: any) => s.id === id)?.status as string | undefined;
    for (const e of c.events) if (e.event === 'mcp_server.health_changed' && e.data.id === id) status = e.data.data.to;
    return status;
  };

  beforeAll(async () => {
    host = await McpFixtureHost.start();
    t = await startTestApp({ redis: true, env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_OWNER_LEASE_MS: '600', HEALTH_CHECK_BUFFER_BYTES: '1024' } });
    viewer = await createKey(t, 'viewer');
    for (const id of ['alpha', 'beta']) {
      const f = host.add(id);
      expect((await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id, name: id, url: f.url, healthCheck: FAST } })).status).toBe(
        201,
      );
    }
    await waitFor(
      async () => {
        const all = (await api(t.baseUrl, 'GET', '/api/v1/health', { key: viewer })).body.items;
        return all.length === 2 && all.every((i: any) => i.status === 'healthy');
      },
      10_000,
      'both healthy',
    );
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
    await host?.close();
  });

  it('starts with a snapshot (status, circuit, last latency; its id is the cursor), then health events and live health.check frames', async () => {
    const c = await open();
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toContain('text/event-stream');
    await c.waitFor((x) => snapshotOf(x) !== undefined, 5000, 'snapshot');
    const first = c.frames.find((f) => f.event !== 'message' && f.event !== 'comment')!;
    expect(first.event).toBe('snapshot');
    const snap = snapshotOf(c)!;
    expect(snap.data.cursor).toBe(snap.id);
    expect(snap.data.servers.map((s: any) => [s.id, s.status, s.circuit.state])).toEqual([
      ['alpha', 'healthy', 'closed'],
      ['beta', 'healthy', 'closed'],
    ]);
    expect(snap.data.servers[0].latencyMs).toEqual(expect.any(Number));
    await c.waitFor((x) => checks(x).length >= 2, 5000, 'health.check frames');
    expect(checks(c)[0]).toMatchObject({ serverId: expect.any(String), ok: true, latencyMs: expect.any(Number), replica: t.config.replicaId });
    expect(c.frames.filter((f) => f.event === 'health.check').every((f) => f.id === undefined)).toBe(true); // live only: no id
    host.fixtures.get('beta')!.set('fail');
    await c.waitFor((x) => changed(x, 'beta', 'unhealthy'), 15_000, 'beta unhealthy');
    // (An earlier event of beta's may precede it: its first `unknown -> healthy`, committed before the
    // snapshot but numbered after it on a loaded machine, arrives live, correctly.)
    const event = c.events.find((e) => e.data.id === 'beta' && e.data.data.to === 'unhealthy')!;
    expect(event.id).toBeGreaterThan(snap.id);
    expect(event.data).toMatchObject({ type: 'mcp_server.health_changed', data: { from: 'healthy', to: 'unhealthy' } });
    host.fixtures.get('beta')!.set('ok');
    await c.waitFor((x) => statusOf(x, 'beta') === 'healthy', 15_000, 'beta healthy again');
  });

  it('narrows everything to ?servers= and resumes from Last-Event-ID without a snapshot, replaying only those servers', async () => {
    const c = await open('?servers=alpha');
    await c.waitFor((x) => snapshotOf(x) !== undefined && checks(x).length >= 2, 10_000, 'snapshot and checks');
    expect(snapshotOf(c)!.data.servers.map((s: any) => s.id)).toEqual(['alpha']);
    const cursor = snapshotOf(c)!.id;
    c.close();
    // While it is away: beta and alpha go down.
    host.fixtures.get('beta')!.set('fail');
    host.fixtures.get('alpha')!.set('down');
    const watcher = await open();
    // (On a loaded machine a probe may already have failed before the watcher's snapshot: its status counts.)
    await watcher.waitFor((x) => statusOf(x, 'beta') === 'unhealthy' && statusOf(x, 'alpha') === 'unhealthy', 20_000, 'both unhealthy');
    const resumed = await open('?servers=alpha', { 'last-event-id': String(cursor) });
    await resumed.waitFor((x) => changed(x, 'alpha', 'unhealthy'), 10_000, 'alpha replayed');
    await sleep(1500);
    expect(snapshotOf(resumed)).toBeUndefined();
    expect(resumed.events.length).toBeGreaterThan(0);
    expect([...new Set(resumed.events.map((e) => e.data.id))]).toEqual(['alpha']);
    expect(checks(resumed).every((k) => k.serverId === 'alpha')).toBe(true);
    expect(checks(resumed).length).toBeGreaterThan(0);
    // Its cursor moved past beta's event too (a cursor frame), so a resume does not rescan it.
    expect(Number(resumed.lastEventId)).toBeGreaterThanOrEqual(Math.max(snapshotOf(watcher)!.id, ...watcher.events.map((e) => e.id)));
    host.fixtures.get('beta')!.set('ok');
    host.fixtures.get('alpha')!.set('ok');
    await watcher.waitFor((x) => statusOf(x, 'beta') === 'healthy' && statusOf(x, 'alpha') === 'healthy', 20_000, 'both healthy again');
  });

  it('refuses a bad ?servers= (400 naming the field) and needs credentials', async () => {
    const bad = await open('?servers=alpha,NOT%20A%20SLUG');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).errors[0].field).toBe('servers');
    const anonymous = await SseClient.connect(`${t.baseUrl}/api/v1/stream/health`);
    clients.push(anonymous);
    expect(anonymous.status).toBe(401);
  });
});

describe('a health-stream client that does not read (real sockets)', () => {
  it('misses health.check frames while its unsent bytes exceed the bound, is not disconnected for them, and gets them again once it reads', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const reader = net.connect(port, '127.0.0.1');
    reader.pause(); // does not read: the kernel buffers fill, then the server's
    const socket = await accepted;
    let closed: string | undefined;
    const conn = new SseConnection(
      socket,
      EventFilter.parse(HEALTH_EVENTS, 'viewer'),
      1024 * 1024 * 64,
      { connectionClosed: (_c, reason) => (closed = reason) },
      'u',
    );
    let drops = 0;
    const client = new SseHealthClient(conn, socket, 1024, () => drops++);
    const frame = HEALTH_SSE_CODEC.check(
      JSON.stringify({ serverId: 'a', ok: true, quality: 'good', latencyMs: 3, at: new Date().toISOString(), replica: 'r' }),
    );
    try {
      // Fill the kernel's buffers with filler until the socket holds unsent bytes of its own.
      const filler = chunk(Buffer.alloc(256 * 1024, 0x3a));
      for (let i = 0; i < 400 && socket.writableLength <= 1024; i++) {
        conn.write(filler);
        await new Promise((r) => setImmediate(r));
      }
      expect(socket.writableLength).toBeGreaterThan(1024);
      const queued = socket.writableLength;
      for (let i = 0; i < 500; i++) client.check(frame);
      expect(drops).toBe(500);
      expect(socket.writableLength).toBe(queued); // nothing queued for them
      expect(conn.closed).toBe(false);
      expect(closed).toBeUndefined();
      // Reading again: the backlog drains and checks flow once more.
      let received = '';
      reader.on('data', (d: Buffer) => {
        received = (received + d.toString('latin1')).slice(-4096);
      });
      reader.resume();
      await waitFor(() => socket.writableLength === 0, 20_000, 'drained');
      client.check(frame);
      expect(drops).toBe(500);
      await waitFor(() => received.includes('event: health.check'), 5000, 'a check frame after draining');
    } finally {
      reader.destroy();
      socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});
