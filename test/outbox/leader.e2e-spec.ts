import { Cluster, type Replica, replicaMetric as metric } from '../support/replicas.js';
import { expectContiguous, SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

describe('one sequencing replica (real processes)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let replicas: Replica[];

  beforeAll(async () => {
    db = await createTestDatabase();
    // A minute-long safety poll: everything below is driven by the leader's LISTEN.
    cluster = new Cluster(db.url, redisUrl(), { SEQUENCER_LEASE_MS: '1000', SEQUENCER_POLL_MS: '60000', STREAM_HEAD_POLL_MS: '250' });
    replicas = [await cluster.start('s1'), await cluster.start('s2'), await cluster.start('s3')];
  }, 90_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  const leaders = async (among: Replica[]) => {
    const flags = await Promise.all(among.map((r) => metric(r, 'registry_sequencer_leader')));
    return among.filter((_, i) => flags[i] === 1);
  };

  it('elects exactly one leader, and only it does per-commit work', async () => {
    const elected = await waitFor(
      async () => {
        const found = await leaders(replicas);
        return found.length === 1 ? found : false;
      },
      5000,
      'one leader',
    );
    const before = await Promise.all(replicas.map((r) => metric(r, 'registry_sequencer_runs_total')));
    for (let i = 0; i < 20; i++) {
      const res = await api(replicas[i % 3].url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(`one-${i}`) });
      expect(res.status).toBe(201);
    }
    await sleep(300);
    const after = await Promise.all(replicas.map((r) => metric(r, 'registry_sequencer_runs_total')));
    replicas.forEach((r, i) => {
      if (r === elected[0]) expect(after[i] - before[i]).toBeGreaterThan(0);
      else expect(after[i] - before[i]).toBe(0);
    });
  });

  it('fails over within about a second when the leader is killed mid-stream, losing nothing', async () => {
    const [leader] = await leaders(replicas);
    const survivors = replicas.filter((r) => r !== leader);
    const stream = await SseClient.connect(`${survivors[0].url}/api/v1/stream/changes?events=agent.created`, { authorization: `Bearer ${cluster.adminKey}` });
    try {
      await stream.waitFor((c) => c.lastEventId !== undefined, 5000, 'joined');
      const created: string[] = [];
      let writing = true;
      let killedAt = 0;
      const writers = [0, 1].map(async (w) => {
        for (let i = 0; writing; i++) {
          const id = `failover-${w}-${i}`;
          const res = await api(survivors[w].url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(id) }).catch(() => undefined);
          if (res?.status === 201) created.push(id);
          await sleep(20);
        }
      });
      await sleep(1000);
      leader.process.kill('SIGKILL');
      killedAt = Date.now();
      await leader.exited;
      const next = await waitFor(
        async () => {
          const found = await leaders(survivors);
          return found.length === 1 ? found[0] : false;
        },
        5000,
        'a new leader',
      );
      const failoverMs = Date.now() - killedAt;
      expect(failoverMs).toBeLessThan(3000);
      await sleep(1500);
      writing = false;
      await Promise.all(writers);
      await stream.waitFor((c) => created.every((id) => c.events.some((e) => e.data.id === id)), 10_000, 'every created agent');
      const ids = stream.events.map((e) => e.id);
      // Filtered: strictly increasing, no repeats; and nothing missing against the created list.
      expect(new Set(ids).size).toBe(ids.length);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      expect(stream.events.map((e) => e.data.id).sort()).toEqual([...created].sort());
      expect(next).not.toBe(leader);
      expect(await metric(next, 'registry_sequencer_runs_total')).toBeGreaterThan(0);
    } finally {
      stream.close();
    }
  });

  it('keeps numbering contiguous across the failover', async () => {
    const res = await api(replicas[1].url, 'GET', '/api/v1/events?after=0&limit=1000', { key: cluster.adminKey });
    const seqs = (res.body.items as { seq: number }[]).map((e) => e.seq);
    expectContiguous(seqs, 1, seqs.length);
  });
});
