import { type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { SseClient } from '../support/sse-client.js';
import { api, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';
import { RawSse, retainedBytes } from './raw-sse.js';

/**
 * Streaming-session streams whose clients stop reading, behind large events: a
 * 10 MB tool result stored as 40 `chunk` events of 256 KiB. A stream reads the
 * session's stored events at its client's pace, so one whose client does not
 * read holds its connection slot, its kernel buffers and about one replay slice
 * (256 KiB) in the replica, whatever the events' sizes. The replica runs in this
 * process, so its memory is measured directly (after a full GC), with Redis and
 * without (the in-process store).
 */

const STALLED = 16;
const KB = 10_000;
/** What the stalled streams may hold together: ~2 MB each (one slice, its frames, the socket's state) — not their backlog. */
const BOUND = STALLED * 2 * 1024 * 1024;
const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

describe.each([
  ['with Redis', true],
  ['without Redis', false],
])('gateway session streams whose clients stop reading (%s)', (_name, redis) => {
  let t: TestApp;
  let host: McpFixtureHost;
  let alpha: McpFixture;
  const raws: RawSse[] = [];

  const post = (path: string, body: unknown) => api(t.baseUrl, 'POST', path, { key: t.adminKey, body });
  const send = async (sessionId: string, id: string, name: string, args: Record<string, unknown> = {}) => {
    const res = await post(`/api/v1/gateway/stream/${sessionId}/request`, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    expect([res.status, res.text.slice(0, 300)]).toEqual([202, expect.any(String)]);
  };
  const answered = (frames: { event: string; data?: string }[], id: string) =>
    frames.find((f) => f.event === 'response' && f.data !== undefined && (JSON.parse(f.data) as { id: unknown }).id === id);

  beforeAll(async () => {
    host = await McpFixtureHost.start();
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'big'];
    t = await startTestApp({ redis, env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false', GATEWAY_MAX_PENDING_EVENTS: '1000' } });
    expect(t.config.redisUrl === undefined).toBe(!redis);
    const res = await post('/api/v1/mcp-servers', { id: 'alpha', name: 'alpha', url: alpha.statefulUrl, healthCheck: noProbes });
    expect(res.status).toBe(201);
  }, 90_000);
  afterAll(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await t?.close();
    await host?.close();
  }, 60_000);

  it('many streams that stop reading hold about a slice each, not their backlog; read again, each gets every event once, in order', async () => {
    const opened = await post('/api/v1/gateway/stream', { servers: ['alpha'] });
    expect([opened.status, opened.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    const sessionId = opened.body.session_id as string;
    // The large answer, stored while nobody follows the session: 40 chunk events and the response.
    const probe = await SseClient.connect(`${t.baseUrl}/api/v1/gateway/stream/${sessionId}`, { authorization: `Bearer ${t.adminKey}` });
    await send(sessionId, 'big', 'alpha__big', { kb: KB });
    await probe.waitFor((c) => c.frames.some((f) => f.event === 'response'), 60_000, 'the big answer');
    const total = Number(probe.lastEventId);
    const chunks = probe.frames.filter((f) => f.event === 'chunk').length;
    expect(chunks).toBeGreaterThanOrEqual(39);
    probe.close();
    await sleep(500);

    const before = retainedBytes();
    for (let i = 0; i < STALLED; i++) {
      raws.push(
        await RawSse.open(t.baseUrl, 'GET', `/api/v1/gateway/stream/${sessionId}`, { Authorization: `Bearer ${t.adminKey}`, 'Last-Event-ID': '0' }, undefined),
      );
    }
    // Each reads its response head and the first events, then stops reading: what the kernel does not take waits.
    await waitFor(() => raws.every((r) => r.opened), 15_000, 'every stalled stream open');
    for (const r of raws) r.pause();
    // Every stream has had time to read and write what it can, and waits for its socket (the old code held its page meanwhile).
    let grown = 0;
    for (let i = 0; i < 3; i++) {
      await sleep(1500);
      grown = Math.max(grown, retainedBytes() - before);
    }
    console.log(`[session-slow-readers ${_name}] ${STALLED} stalled streams behind ${KB} KB: +${(grown / 1048576).toFixed(1)} MB retained`);
    expect(raws.filter((r) => r.closed)).toEqual([]);
    expect(grown).toBeLessThan(BOUND);

    // Read again: every stored event once, in order, then a live one.
    for (const r of raws) r.resume();
    await waitFor(() => raws.every((r) => answered(r.frames, 'big') !== undefined), 60_000, 'the big answer on every stalled stream');
    await send(sessionId, 'after', 'alpha__echo');
    await waitFor(() => raws.every((r) => answered(r.frames, 'after') !== undefined), 30_000, 'a live answer on every stream');
    for (const r of raws) {
      const events = r.frames.filter((f) => f.event !== 'heartbeat' && f.id !== undefined);
      expect(events.map((f) => Number(f.id))).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
      expect(events.filter((f) => f.event === 'chunk').map((f) => f.size)).toHaveLength(chunks);
      expect(events.some((f) => f.event === 'error')).toBe(false);
      expect(r.closed).toBe(false);
    }
    for (const r of raws.splice(0)) r.destroy();
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${sessionId}`, { key: t.adminKey })).status).toBe(204);
  }, 180_000);
});
