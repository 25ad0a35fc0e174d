import { createParser } from 'eventsource-parser';
import { EverythingServer, type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { PollingBackend } from '../support/polling-backend.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

/**
 * Tool calls streamed with progress (`POST /api/v1/mcp/stream`, and the GET
 * form for EventSource clients) through real replicas to real MCP servers.
 */

interface Frame {
  event: string;
  data: string;
}

function parse(text: string): Frame[] {
  const frames: Frame[] = [];
  const parser = createParser({ onEvent: (e) => frames.push({ event: e.event ?? 'message', data: e.data }) });
  parser.feed(text);
  return frames;
}

const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

describe('gateway tool streams (real processes, real MCP servers)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let host: McpFixtureHost;
  let everything: EverythingServer;
  let polling: PollingBackend;
  let r1: Replica;
  let r2: Replica;
  let alpha: McpFixture;
  let agentKey: string;
  const clients: SseClient[] = [];

  const admin = () => cluster.adminKey;
  const call = async (r: Replica, key: string, name: string, args: Record<string, unknown> = {}, id: string | number = 'c1') => {
    const res = await fetch(`${r.url}/api/v1/mcp/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, frames: res.status === 200 ? parse(text) : [] };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    [host, everything, polling] = await Promise.all([
      McpFixtureHost.start(),
      freePort().then((port) => EverythingServer.start(port)),
      PollingBackend.start({ retryMs: 50 }),
    ]);
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'progress', 'wait'];
    const beta = host.add('beta');
    beta.tools = ['echo', 'secret'];
    cluster = new Cluster(db.url, redisUrl(), { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false' });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    for (const [id, url] of [
      ['alpha', alpha.statefulUrl],
      ['beta', beta.url],
      ['everything', everything.url],
      ['polling', polling.url],
    ] as const) {
      expect((await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: admin(), body: { id, name: id, url, healthCheck: noProbes } })).status).toBe(201);
    }
    const agent = await api(r1.url, 'POST', '/api/v1/agents', { key: admin(), body: { id: 'bot', name: 'Bot', model: { provider: 'test', name: 'm' } } });
    expect(agent.status).toBe(201);
    for (const [mcpServerId, toolPattern, effect] of [
      ['alpha', '*', 'allow'],
      ['beta', 'echo', 'allow'],
    ]) {
      expect((await api(r1.url, 'POST', '/api/v1/trust-rules', { key: admin(), body: { agentId: 'bot', mcpServerId, toolPattern, effect } })).status).toBe(201);
    }
    agentKey = (await api(r1.url, 'POST', '/api/v1/api-keys', { key: admin(), body: { name: 'bot', role: 'viewer', agentId: 'bot' } })).body.key;
  }, 120_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await cluster?.stop();
    await everything?.stop();
    await polling?.close();
    await host?.close();
    await db?.drop();
  });

  it('streams start, progress, result, complete, the JSON-RPC response and [DONE], in that order', async () => {
    const res = await call(r2, agentKey, 'alpha__progress', { steps: 3, delayMs: 20 }, 42);
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/event-stream');
    expect(res.frames.map((f) => f.event)).toEqual(['start', 'progress', 'progress', 'progress', 'result', 'complete', 'message', 'message']);
    expect(JSON.parse(res.frames[0].data)).toEqual(expect.objectContaining({ id: 42, server: 'alpha', tool: 'progress' }));
    expect(res.frames.slice(1, 4).map((f) => JSON.parse(f.data))).toEqual([
      { progress: 1, total: 3, message: 'step 1 of 3' },
      { progress: 2, total: 3, message: 'step 2 of 3' },
      { progress: 3, total: 3, message: 'step 3 of 3' },
    ]);
    expect(JSON.parse(res.frames[4].data).content[0].text).toBe('done 3');
    expect(JSON.parse(res.frames[5].data).duration_ms).toBeGreaterThan(0);
    expect(JSON.parse(res.frames[6].data)).toEqual({
      jsonrpc: '2.0',
      id: 42,
      result: expect.objectContaining({ content: [{ type: 'text', text: 'done 3' }] }),
    });
    expect(res.frames[7].data).toBe('[DONE]');
  });

  it('gives EventSource clients the same stream over GET, arguments as URL-encoded JSON', async () => {
    const args = encodeURIComponent(JSON.stringify({ steps: 2, delayMs: 5 }));
    const c = await SseClient.connect(`${r1.url}/api/v1/stream/tools/alpha/progress?arguments=${args}&id=g1`, { authorization: `Bearer ${agentKey}` });
    clients.push(c);
    expect(c.status).toBe(200);
    await c.waitFor((x) => x.frames.some((f) => f.data === '[DONE]'), 15_000, '[DONE]');
    const events = c.frames.filter((f) => f.event !== 'comment' && f.data !== '').map((f) => f.event);
    expect(events).toEqual(['start', 'progress', 'progress', 'result', 'complete', 'message', 'message']);
    const bad = await api(r1.url, 'GET', `/api/v1/stream/tools/alpha/progress?arguments=${encodeURIComponent('[1,')}`, { key: agentKey });
    expect([bad.status, bad.body.errors[0].field]).toEqual([400, 'query.arguments']);
  });

  it('reports failures as an error event with a JSON-RPC code before [DONE]; bad requests are problem+json', async () => {
    const denied = await call(r1, agentKey, 'beta__secret', {}, 'd');
    expect(denied.frames.map((f) => f.event)).toEqual(['start', 'error', 'message']);
    expect(JSON.parse(denied.frames[1].data)).toEqual({ jsonrpc: '2.0', id: 'd', error: expect.objectContaining({ code: -32003 }) });
    expect(denied.frames[2].data).toBe('[DONE]');
    const unknown = await call(r2, admin(), 'nowhere__echo', {}, 'u');
    expect(JSON.parse(unknown.frames[1].data).error.code).toBe(-32004);
    const badName = await call(r1, admin(), 'echo');
    expect([badName.status, badName.type]).toEqual([400, expect.stringContaining('application/problem+json')]);
    expect(JSON.parse(badName.text).errors[0].field).toBe('params.name');
    const notACall = await api(r1.url, 'POST', '/api/v1/mcp/stream', { key: admin(), body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
    expect(notACall.status).toBe(400);
  });

  it('cancels the backend call (notifications/cancelled) when the client disconnects', async () => {
    const before = alpha.cancelled;
    const waiting = alpha.waiting;
    const controller = new AbortController();
    const res = await fetch(`${r2.url}/api/v1/mcp/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'w', method: 'tools/call', params: { name: 'alpha__wait', arguments: {} } }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running at the backend');
    controller.abort();
    await waitFor(() => alpha.cancelled > before, 10_000, 'the backend call cancelled');
  });

  it('ends the stream and cancels the backend call when the key is revoked', async () => {
    const created = await api(r1.url, 'POST', '/api/v1/api-keys', { key: admin(), body: { name: 'revoked-tool-stream', role: 'admin' } });
    expect(created.status).toBe(201);
    const before = alpha.cancelled;
    const waiting = alpha.waiting;
    const res = await fetch(`${r2.url}/api/v1/mcp/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'r', method: 'tools/call', params: { name: 'alpha__wait', arguments: {} } }),
    });
    expect(res.status).toBe(200);
    const body = res.text().catch(() => 'cut');
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running at the backend');
    expect((await api(r1.url, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: admin() })).status).toBe(204);
    const ended = await Promise.race([body, new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
    expect(ended).not.toBe('still open');
    await waitFor(() => alpha.cancelled > before, 10_000, 'the backend call cancelled');
  });

  it('a call running when its server’s access changes (a new trust rule) finishes on its backend session', async () => {
    const running = call(r2, admin(), 'alpha__progress', { steps: 10, delayMs: 150 }, 'while-changed');
    await sleep(400);
    // The rule changes what the bot reaches on alpha: every replica drops its pooled alpha session.
    const rule = await api(r1.url, 'POST', '/api/v1/trust-rules', {
      key: admin(),
      body: { agentId: 'bot', mcpServerId: 'alpha', toolPattern: 'never_*', effect: 'deny' },
    });
    expect(rule.status).toBe(201);
    const res = await running;
    // Before, the dropped session was closed under the call: an error event ("the session with alpha is closed").
    expect(res.frames.map((f) => f.event)).not.toContain('error');
    expect(res.frames.filter((f) => f.event === 'progress')).toHaveLength(10);
    expect(res.frames.map((f) => f.data).at(-1)).toBe('[DONE]');
    // And the next call opens a new session and works.
    expect((await call(r2, admin(), 'alpha__echo', { text: 'after' }, 'after')).frames.map((f) => f.event)).toContain('result');
    expect((await api(r1.url, 'DELETE', `/api/v1/trust-rules/${rule.body.id}`, { key: admin() })).status).toBe(204);
  });

  it('forwards the progress of server-everything’s long-running operation', async () => {
    const res = await call(r1, admin(), 'everything__trigger-long-running-operation', { duration: 0.3, steps: 3 }, 'lr');
    const events = res.frames.map((f) => f.event);
    expect(events.filter((e) => e === 'progress')).toHaveLength(3);
    expect(events.slice(-4)).toEqual(['result', 'complete', 'message', 'message']);
  });

  it('ends a call that reports progress forever at MCP_CALL_MAX_TOTAL_MS: an error event, and the backend call cancelled', async () => {
    const capped = await cluster.start('capped', { GATEWAY_REQUEST_TIMEOUT_MS: '500', GATEWAY_MCP_CALL_TIMEOUT_MS: '500', MCP_CALL_MAX_TOTAL_MS: '1500' });
    const before = alpha.progressCancelled;
    const started = performance.now();
    // Progress every 50 ms for 50 s: each resets the call's own timeout (500 ms); the total cap ends it.
    const res = await call(capped, admin(), 'alpha__progress', { steps: 1000, delayMs: 50 }, 'capped');
    const ms = performance.now() - started;
    const events = res.frames.map((f) => f.event);
    expect(events.filter((e) => e === 'progress').length).toBeGreaterThan(10);
    expect(events.slice(-2)).toEqual(['error', 'message']);
    expect(JSON.parse(res.frames.at(-2)!.data)).toEqual({
      jsonrpc: '2.0',
      id: 'capped',
      error: { code: -32001, message: expect.stringContaining('(MCP_CALL_MAX_TOTAL_MS)'), data: { reason: 'timeout', server: 'alpha' } },
    });
    expect(res.frames.at(-1)!.data).toBe('[DONE]');
    expect(ms).toBeGreaterThanOrEqual(1400);
    expect(ms).toBeLessThan(5000);
    await waitFor(() => alpha.progressCancelled > before, 5000, 'the backend call cancelled');
  });

  it('resumes a call’s stream the backend ends early (SEP-1699 polling): its progress and its result arrive', async () => {
    const before = polling.resumes.length;
    const res = await call(r2, admin(), 'polling__poll', { ends: 2 }, 'poll');
    expect(res.frames.map((f) => f.event)).toEqual(['start', 'progress', 'progress', 'result', 'complete', 'message', 'message']);
    expect(res.frames.slice(1, 3).map((f) => JSON.parse(f.data))).toEqual([
      { progress: 1, total: 2 },
      { progress: 2, total: 2 },
    ]);
    expect(JSON.parse(res.frames[3].data).content[0].text).toBe('polled 2');
    expect(polling.resumes.length - before).toBe(2);
  });

  it('can be switched off by configuration (sessions and tool streams)', async () => {
    const r3 = await cluster.start('r3', { GATEWAY_TOOL_STREAMS_ENABLED: 'false', GATEWAY_SESSIONS_ENABLED: 'false' });
    const off = await call(r3, admin(), 'alpha__echo');
    expect([off.status, JSON.parse(off.text).detail]).toEqual([404, expect.stringContaining('GATEWAY_TOOL_STREAMS_ENABLED')]);
    const get = await api(r3.url, 'GET', '/api/v1/stream/tools/alpha/echo', { key: admin() });
    expect(get.status).toBe(404);
    const sessions = await api(r3.url, 'POST', '/api/v1/gateway/stream', { key: admin(), body: { servers: ['alpha'] } });
    expect([sessions.status, sessions.body.detail]).toEqual([404, expect.stringContaining('GATEWAY_SESSIONS_ENABLED')]);
  });
});
