import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { SOCKET_PATH } from '../../src/events/socket-protocol.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { Cluster, type Replica } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

/** `# TYPE` declarations seen by `parse`: name → type (a labelled counter with no sample yet has only this). */
const types = new Map<string, string>();

/** Samples of a Prometheus text scrape: name → [{ labels, value }]. */
function parse(text: string): Map<string, { labels: string; value: number }[]> {
  const out = new Map<string, { labels: string; value: number }[]>();
  for (const line of text.split('\n')) {
    const declared = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (declared) types.set(declared[1], declared[2]);
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const list = out.get(m[1]) ?? [];
    list.push({ labels: m[2] ?? '', value: Number(m[3]) });
    out.set(m[1], list);
  }
  return out;
}

/** The metrics docs/metrics.md promises (its table's first column). */
const documented = [...readFileSync('docs/metrics.md', 'utf8').matchAll(/^\| `(registry_[a-z_]+)` \| (\w+) \|/gm)].map((m) => ({ name: m[1], type: m[2] }));

describe('metrics after real traffic (two real replicas)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let host: McpFixtureHost;
  let samples: Map<string, { labels: string; value: number }[]>;
  const value = (name: string, labels = '') => samples.get(name)?.find((s) => s.labels.includes(labels))?.value;
  const scrape = async (r: Replica) =>
    parse((await api(r.url, 'GET', '/metrics', { headers: { authorization: 'Bearer metrics-token-for-the-test-0123' } })).text);

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { METRICS_TOKEN: 'metrics-token-for-the-test-0123', MCP_ALLOW_PRIVATE_NETWORKS: 'true' });
    r1 = await cluster.start('m1');
    r2 = await cluster.start('m2');
    // One real MCP server, probed every second.
    host = await McpFixtureHost.start();
    const fixture = host.add('probed');
    const healthCheck = { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 1, healthyThreshold: 1 };
    expect(
      (await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: cluster.adminKey, body: { id: 'probed', name: 'probed', url: fixture.url, healthCheck } }))
        .status,
    ).toBe(201);
    // Traffic: an SSE subscriber and a Socket.IO subscriber on r2, writes through r1, a resume from the window, a reset.
    const sse = await SseClient.connect(`${r2.url}/api/v1/stream/changes`, { authorization: `Bearer ${cluster.adminKey}` });
    const socket = io(r2.url, { path: SOCKET_PATH, auth: { token: cluster.adminKey }, transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await socket.emitWithAck('subscribe', { channels: ['changes'] });
    for (let i = 0; i < 20; i++) expect((await api(r1.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(`m-${i}`) })).status).toBe(201);
    await sse.waitForEvents(20);
    const resumed = await SseClient.connect(`${r2.url}/api/v1/stream/changes?lastEventId=${sse.events[5].id}`, {
      authorization: `Bearer ${cluster.adminKey}`,
    });
    await resumed.waitForEvents(14);
    const ahead = await SseClient.connect(`${r2.url}/api/v1/stream/changes?lastEventId=99999999`, { authorization: `Bearer ${cluster.adminKey}` });
    await ahead.waitFor((c) => c.frames.some((f) => f.event === 'reset'), 5000, 'a reset');
    resumed.close();
    ahead.close();
    await sleep(500);
    await waitFor(
      async () => (await api(r2.url, 'GET', '/api/v1/health', { key: cluster.adminKey })).body.items?.[0]?.status === 'healthy',
      10_000,
      'the MCP server healthy',
    );
    // Numbering and delivery are asynchronous (a health change may be committed a moment ago): scrape once r2's hub
    // has caught up with what the sequencer numbered, as a monitoring system would on a quiet cluster.
    samples = await waitFor(
      async () => {
        const s = await scrape(r2);
        const head = s.get('registry_stream_head_seq')?.[0]?.value;
        const last = s.get('registry_outbox_last_seq')?.[0]?.value;
        return head !== undefined && head === last && s.get('registry_outbox_unnumbered')?.[0]?.value === 0 ? s : undefined;
      },
      10_000,
      "r2's stream head at the outbox's last numbered event",
    );
    sse.close();
    socket.disconnect();
  }, 90_000);
  afterAll(async () => {
    await host?.close();
    await cluster.stop();
    await db.drop();
  });

  it('exposes every documented metric with its documented type', () => {
    expect(documented.length).toBeGreaterThan(20);
    for (const { name, type } of documented) {
      const exposed = types.get(name);
      if (exposed === undefined) throw new Error(`${name} is documented in docs/metrics.md but not exposed by /metrics`);
      expect(`${name} ${exposed}`).toBe(`${name} ${type}`);
    }
  });

  it('counts connections, events, deliveries, replays and resets as they happened', () => {
    expect(value('registry_stream_connections', 'transport="sse"')).toBeGreaterThanOrEqual(1);
    expect(value('registry_stream_connections', 'transport="socketio"')).toBe(1);
    expect(value('registry_socketio_connections')).toBe(1);
    expect(value('registry_stream_events_total')).toBeGreaterThanOrEqual(20);
    // 20 events to the SSE client and the socket, 14 replayed live-or-not to the resumed client...
    expect(value('registry_stream_deliveries_total')).toBeGreaterThanOrEqual(40);
    expect(value('registry_stream_replays_total', 'source="window"')).toBeGreaterThanOrEqual(1);
    expect(value('registry_stream_resets_total')).toBeGreaterThanOrEqual(1);
    expect(value('registry_stream_flushes_total')).toBeGreaterThanOrEqual(1);
  });

  it('measures commit → delivery latency plausibly (every event observed, milliseconds to seconds)', () => {
    const count = value('registry_stream_delivery_latency_seconds_count')!;
    const sum = value('registry_stream_delivery_latency_seconds_sum')!;
    expect(count).toBeGreaterThanOrEqual(20);
    expect(sum / count).toBeGreaterThan(0);
    expect(sum / count).toBeLessThan(2);
  });

  it('reports the outbox and sequencer state consistently across replicas', async () => {
    const last = value('registry_outbox_last_seq')!;
    expect(last).toBeGreaterThanOrEqual(20);
    expect(value('registry_stream_head_seq')).toBe(last);
    expect(value('registry_outbox_unnumbered')).toBe(0);
    expect(value('registry_outbox_oldest_unnumbered_seconds')).toBe(0);
    const other = await scrape(r1);
    const leaders = (value('registry_sequencer_leader') ?? 0) + (other.get('registry_sequencer_leader')?.[0]?.value ?? 0);
    expect(leaders).toBe(1);
    const published = Math.max(value('registry_sequencer_published_seq') ?? 0, other.get('registry_sequencer_published_seq')?.[0]?.value ?? 0);
    expect(published).toBe(last);
    expect(value('registry_redis_connected')).toBe(1);
    expect(value('registry_cluster_limits_degraded')).toBe(0);
  });

  it('reports probe results and server health', () => {
    expect(value('registry_health_probes_total', 'quality="good"')).toBeGreaterThanOrEqual(1);
    expect(value('registry_health_probe_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value('registry_mcp_servers', 'status="healthy"')).toBe(1);
    expect(value('registry_mcp_servers', 'status="unhealthy"')).toBe(0);
    expect(value('registry_mcp_circuits', 'state="closed"')).toBe(1);
  });

  it('refuses the scrape without the token', async () => {
    expect((await api(r2.url, 'GET', '/metrics')).status).toBe(401);
  });
});
