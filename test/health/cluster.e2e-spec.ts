import { rendezvousOwner } from '../../src/health/probe-ownership.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { Cluster, type Replica } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, recordFigure, redisUrl, sleep, waitFor } from '../support/test-env.js';

const INTERVAL = 2000;
const TIMEOUT = 1000;
const healthCheck = { intervalMs: INTERVAL, timeoutMs: TIMEOUT, unhealthyThreshold: 1, healthyThreshold: 1, failureThreshold: 3, coolDownMs: 5000 };

interface Check {
  serverId: string;
  replica: string;
  ok: boolean;
  at: number;
}

describe('health probing spread over replicas (real processes, one Redis)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let host: McpFixtureHost;
  let r1: Replica;
  let r2: Replica;
  const clients: SseClient[] = [];
  /** Server ids chosen so that each of r1 and r2 owns three (rendezvous over the two). */
  const servers: string[] = [];

  const overview = async (replica: Replica) => (await api(replica.url, 'GET', '/api/v1/health', { key: cluster.adminKey })).body;
  const ownersOf = async (replica: Replica) => new Map<string, string | null>((await overview(replica)).items.map((i: any) => [i.id, i.owner]));
  const healthStream = async (replica: Replica, query = '') => {
    const c = await SseClient.connect(`${replica.url}/api/v1/stream/health${query}`, { authorization: `Bearer ${cluster.adminKey}` });
    clients.push(c);
    expect(c.status).toBe(200);
    return c;
  };
  const checks = (c: SseClient): Check[] =>
    c.frames.filter((f) => f.event === 'health.check').map((f) => ({ ...(JSON.parse(f.data) as Omit<Check, 'at'>), at: f.at! }));

  beforeAll(async () => {
    db = await createTestDatabase();
    host = await McpFixtureHost.start();
    cluster = new Cluster(db.url, redisUrl(), { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_OWNER_LEASE_MS: '1000', SEQUENCER_LEASE_MS: '1000' });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    const per = new Map([
      [r1.id, 0],
      [r2.id, 0],
    ]);
    for (let i = 0; servers.length < 6; i++) {
      const owner = rendezvousOwner(`srv-${i}`, [r1.id, r2.id])!;
      if (per.get(owner)! < 3) {
        per.set(owner, per.get(owner)! + 1);
        servers.push(`srv-${i}`);
      }
    }
    for (const id of servers) {
      const fixture = host.add(id);
      const res = await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: cluster.adminKey, body: { id, name: id, url: fixture.url, healthCheck } });
      expect(res.status).toBe(201);
    }
  }, 90_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await cluster?.stop();
    await host?.close();
    await db?.drop();
  });

  it('has each server probed by exactly one replica, the two sharing them', async () => {
    const owners = await waitFor(
      async () => {
        const o = await ownersOf(r2);
        return servers.every((id) => o.get(id) === rendezvousOwner(id, [r1.id, r2.id])) && o;
      },
      10_000,
      'every server owned by its rendezvous winner',
    );
    for (const id of servers) expect([id, owners.get(id)]).toEqual([id, rendezvousOwner(id, [r1.id, r2.id])]);
    const view = await overview(r1);
    expect(view.replicas).toEqual(
      [
        { id: r1.id, servers: 3 },
        { id: r2.id, servers: 3 },
      ].sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    // Over 3 intervals every check of a server comes from its owner, about once per interval (no double probing).
    const c = await healthStream(r1);
    await sleep(3 * INTERVAL + 300);
    const seen = checks(c);
    for (const id of servers) {
      const mine = seen.filter((k) => k.serverId === id);
      expect([id, new Set(mine.map((k) => k.replica))]).toEqual([id, new Set([owners.get(id)])]);
      expect([id, mine.length >= 2 && mine.length <= 4]).toEqual([id, true]);
    }
  });

  it('shows a server going down on the OTHER replica within one probe interval plus the timeout (prints the latency)', async () => {
    const target = servers.find((id) => rendezvousOwner(id, [r1.id, r2.id]) === r1.id)!;
    const c = await healthStream(r2, `?servers=${target}`);
    await c.waitFor((x) => x.frames.some((f) => f.event === 'snapshot'), 5000, 'snapshot');
    const snapshot = JSON.parse(c.frames.find((f) => f.event === 'snapshot')!.data);
    expect(snapshot.servers).toEqual([expect.objectContaining({ id: target, status: 'healthy', circuit: expect.objectContaining({ state: 'closed' }) })]);
    const down = performance.now();
    host.fixtures.get(target)!.set('hang'); // the worst case: the probe waits its whole timeout
    await c.waitFor((x) => x.events.some((e) => e.event === 'mcp_server.health_changed' && e.data.data.to === 'unhealthy'), 10_000, 'unhealthy');
    const event = c.events.find((e) => e.event === 'mcp_server.health_changed')!;
    const latency = event.at - down;
    recordFigure(
      `down → mcp_server.health_changed on the other replica's health stream: ${latency.toFixed(0)} ms (interval ${INTERVAL} ms + timeout ${TIMEOUT} ms)`,
    );
    expect(event.data).toMatchObject({ id: target, data: { from: 'healthy', to: 'unhealthy', reason: expect.stringMatching(/no answer within 1000 ms/) } });
    expect(latency).toBeLessThan(INTERVAL + TIMEOUT + 300);
    // The failed check came over the live side channel too, from the owner. That channel and the durable event take
    // separate paths (pub/sub from the owner; outbox, sequencer, bus): on a loaded machine either may come first.
    await c.waitFor((x) => checks(x).some((k) => k.serverId === target && !k.ok && k.replica === r1.id), 5000, 'the failed check on the side channel');
    host.fixtures.get(target)!.set('ok');
    await c.waitFor((x) => x.events.some((e) => e.event === 'mcp_server.health_changed' && e.data.data.to === 'healthy'), 10_000, 'healthy again');
  });

  it('rebalances when a replica joins and when it leaves (SIGTERM gives its servers back at once)', async () => {
    const r3 = await cluster.start('r3');
    const members = [r1.id, r2.id, r3.id];
    await waitFor(
      async () => {
        const o = await ownersOf(r1);
        return servers.every((id) => o.get(id) === rendezvousOwner(id, members)) && o;
      },
      10_000,
      'owners after r3 joined',
    );
    await waitFor(async () => (await overview(r2)).replicas.length === 3, 3000, 'r2 sees three probing replicas');
    expect((await overview(r2)).replicas.map((r: any) => r.id).sort()).toEqual([...members].sort());
    const stopped = performance.now();
    r3.process.kill('SIGTERM');
    await r3.exited;
    await waitFor(
      async () => {
        const o = await ownersOf(r1);
        return servers.every((id) => o.get(id) === rendezvousOwner(id, [r1.id, r2.id])) && o;
      },
      5000,
      'owners after r3 left',
    );
    recordFigure(`servers of a replica that stopped (SIGTERM) owned again after ${(performance.now() - stopped).toFixed(0)} ms`);
  });

  it('takes a killed replica’s servers over within two probe intervals (prints the takeover time)', async () => {
    const c = await healthStream(r2);
    await sleep(500);
    const orphans = servers.filter((id) => rendezvousOwner(id, [r1.id, r2.id]) === r1.id);
    const killed = performance.now();
    r1.process.kill('SIGKILL');
    await r1.exited;
    await c
      .waitFor(
        (x) => orphans.every((id) => checks(x).some((k) => k.serverId === id && k.replica === r2.id && k.at > killed)),
        4 * INTERVAL,
        'r2 probing every server r1 had',
      )
      .catch(async (error: Error) => {
        const missing = orphans.filter((id) => !checks(c).some((k) => k.serverId === id && k.replica === r2.id && k.at > killed));
        throw new Error(
          `${error.message}; missing ${missing.join(',')}; owners ${JSON.stringify([...(await ownersOf(r2))])}; r2 log:\n${r2.output.slice(-3000)}`,
        );
      });
    const firsts = orphans.map((id) => checks(c).find((k) => k.serverId === id && k.replica === r2.id && k.at > killed)!.at - killed);
    recordFigure(
      `takeover after SIGKILL: first probe by the survivor after ${firsts.map((f) => f.toFixed(0)).join(', ')} ms (interval ${INTERVAL} ms, lease 1000 ms)`,
    );
    for (const f of firsts) expect(f).toBeLessThan(2 * INTERVAL);
    const owners = await ownersOf(r2);
    for (const id of servers) expect([id, owners.get(id)]).toEqual([id, r2.id]);
  });
});
