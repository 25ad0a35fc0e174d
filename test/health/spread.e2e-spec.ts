import { rendezvousOwner } from '../../src/health/probe-ownership.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, recordFigure, redisUrl, waitFor } from '../support/test-env.js';

const SERVERS = 1000;
const HOSTS = 4;

describe('1,000 MCP servers spread over three replicas', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  const hosts: McpFixtureHost[] = [];
  let replicas: Replica[] = [];
  const ids = Array.from({ length: SERVERS }, (_, i) => `mcp-${String(i).padStart(4, '0')}`);

  const owners = async (replica: Replica) => {
    const body = (await api(replica.url, 'GET', '/api/v1/health', { key: cluster.adminKey })).body;
    return new Map<string, string | null>(body.items.map((i: any) => [i.id, i.owner]));
  };
  const counts = (map: Map<string, string | null>) => {
    const out = new Map<string, number>();
    for (const owner of map.values()) if (owner) out.set(owner, (out.get(owner) ?? 0) + 1);
    return out;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    for (let i = 0; i < HOSTS; i++) hosts.push(await McpFixtureHost.start());
    // Long intervals: the test is about who owns what, not about 1,000 probes a second.
    cluster = new Cluster(db.url, redisUrl(), {
      MCP_ALLOW_PRIVATE_NETWORKS: 'true',
      MAX_MCP_SERVERS: String(SERVERS),
      HEALTH_OWNER_LEASE_MS: '5000',
      HEALTH_MAX_CONCURRENT_PROBES: '4',
    });
    replicas = await Promise.all(['r1', 'r2', 'r3'].map((n) => cluster.start(n)));
    // Multiplexed: 250 fixture servers on each of 4 ports, one path each.
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < SERVERS; i = next++) {
        const fixture = hosts[i % HOSTS].add(ids[i]);
        const res = await api(replicas[i % 3].url, 'POST', '/api/v1/mcp-servers', {
          key: cluster.adminKey,
          body: { id: ids[i], name: ids[i], url: fixture.url, healthCheck: { intervalMs: 3_600_000, timeoutMs: 5000 } },
        });
        if (res.status !== 201) throw new Error(`creating ${ids[i]}: ${res.status} ${res.text}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
  }, 180_000);
  afterAll(async () => {
    await cluster?.stop();
    for (const h of hosts) await h.close();
    await db?.drop();
  });

  it('gives every server exactly one owner, evenly, and hands a killed replica’s share to the others (prints the spread)', async () => {
    const members = replicas.map((r) => r.id);
    const settled = await waitFor(
      async () => {
        const o = await owners(replicas[0]);
        return o.size === SERVERS && ids.every((id) => o.get(id) === rendezvousOwner(id, members)) && o;
      },
      30_000,
      'every server owned by its rendezvous winner',
    );
    const spread = counts(settled);
    recordFigure(`1,000 servers over 3 replicas: ${[...spread.values()].join(' / ')}`);
    for (const r of replicas) expect(Math.abs(spread.get(r.id)! - SERVERS / 3)).toBeLessThan(0.15 * (SERVERS / 3));
    // The lease keys in Redis say the same thing from another replica's point of view.
    const fromR3 = await owners(replicas[2]);
    expect(ids.filter((id) => fromR3.get(id) !== settled.get(id))).toEqual([]);

    const [victim, ...survivors] = replicas;
    const killed = performance.now();
    victim.process.kill('SIGKILL');
    await victim.exited;
    const after = await waitFor(
      async () => {
        const o = await owners(survivors[0]);
        return (
          ids.every(
            (id) =>
              o.get(id) ===
              rendezvousOwner(
                id,
                survivors.map((r) => r.id),
              ),
          ) && o
        );
      },
      20_000,
      'the victim’s servers owned by the survivors',
    );
    recordFigure(`after SIGKILL of one replica: ${[...counts(after).values()].join(' / ')} in ${(performance.now() - killed).toFixed(0)} ms`);
    // Servers that stay put did not move; the victim's went to the survivors by the same hashing.
    for (const id of ids) if (settled.get(id) !== victim.id) expect(after.get(id)).toBe(settled.get(id));
    // Probing stayed light and single: no server was initialized twice (one first probe each at most, interval one hour).
    const initializes = hosts.flatMap((h) => [...h.fixtures.values()].map((f) => f.initializes));
    expect(Math.max(...initializes)).toBeLessThanOrEqual(1);
  }, 60_000);
});
