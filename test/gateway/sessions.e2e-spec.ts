import { connect, type Socket } from 'node:net';
import { EverythingServer, type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, waitFor } from '../support/test-env.js';

/**
 * Streaming sessions of the MCP gateway across real replicas (separate
 * processes, one PostgreSQL, one Redis) with real MCP backends: SDK-built
 * fixtures and @modelcontextprotocol/server-everything.
 */

const TIMEOUT_MS = 4000;
const MAX_EVENTS = 60;
const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

interface Frame {
  id?: string;
  event: string;
  data: string;
}

describe('gateway streaming sessions across replicas (real processes, real MCP servers)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let host: McpFixtureHost;
  let everything: EverythingServer;
  let r1: Replica;
  let r2: Replica;
  let alpha: McpFixture;
  let beta: McpFixture;
  let agentKey: string;
  let agentKeyId: string;
  const clients: SseClient[] = [];
  /** Sessions opened by a test, closed after it (each client may hold 5). */
  const opened: { r: Replica; key: string; id: string }[] = [];

  const admin = () => cluster.adminKey;
  const post = (r: Replica, path: string, key: string, body: unknown) => api(r.url, 'POST', path, { key, body });

  const open = async (r: Replica, key: string, body: Record<string, unknown>) => {
    const res = await post(r, '/api/v1/gateway/stream', key, body);
    expect([res.status, res.text.slice(0, 400)]).toEqual([201, expect.any(String)]);
    opened.push({ r, key, id: res.body.session_id });
    return res.body as { session_id: string; stream_url: string; request_url: string; servers: { id: string; status: string; error?: { code: number } }[] };
  };
  const follow = async (r: Replica, key: string, sessionId: string, lastEventId?: string) => {
    const c = await SseClient.connect(`${r.url}/api/v1/gateway/stream/${sessionId}`, {
      authorization: `Bearer ${key}`,
      ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}),
    });
    clients.push(c);
    return c;
  };
  let nextId = 1;
  const send = async (r: Replica, key: string, sessionId: string, method: string, params?: Record<string, unknown>, id: string | number = nextId++) => {
    const res = await post(r, `/api/v1/gateway/stream/${sessionId}/request`, key, { jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
    expect([res.status, res.text.slice(0, 300)]).toEqual([202, expect.any(String)]);
    return { id, requestId: res.body.request_id as string };
  };
  const named = (c: SseClient, event: string) => c.frames.filter((f) => f.event === event);
  /** The response or error event answering the client's JSON-RPC id. */
  const answerOf = async (c: SseClient, id: string | number, timeoutMs = 15_000) => {
    const find = () =>
      c.frames.find<Frame>((f): f is Frame => (f.event === 'response' || f.event === 'error') && (JSON.parse(f.data) as { id: unknown }).id === id);
    await c.waitFor(() => find() !== undefined, timeoutMs, `the answer to ${String(id)}`);
    const f = find()!;
    return { event: f.event, id: f.id, body: JSON.parse(f.data) };
  };
  const rule = async (agentId: string, mcpServerId: string, toolPattern: string, effect: string, priority = 0) => {
    const res = await post(r1, '/api/v1/trust-rules', admin(), { agentId, mcpServerId, toolPattern, effect, priority });
    expect(res.status).toBe(201);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    [host, everything] = await Promise.all([McpFixtureHost.start(), freePort().then((port) => EverythingServer.start(port))]);
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'progress', 'wait', 'big'];
    beta = host.add('beta');
    beta.tools = ['echo', 'secret'];
    host.add('gamma');
    cluster = new Cluster(db.url, redisUrl(), {
      MCP_ALLOW_PRIVATE_NETWORKS: 'true',
      HEALTH_PROBES: 'false',
      GATEWAY_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
      GATEWAY_MAX_PENDING_EVENTS: String(MAX_EVENTS),
      GATEWAY_HEARTBEAT_MS: '500',
      LOG_LEVEL: 'info',
    });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    const servers: [string, string][] = [
      ['alpha', alpha.statefulUrl],
      ['beta', beta.url],
      ['gamma', host.fixtures.get('gamma')!.url],
      ['everything', everything.url],
    ];
    for (const [id, url] of servers) {
      const res = await post(r1, '/api/v1/mcp-servers', admin(), { id, name: id, url, healthCheck: noProbes });
      expect([id, res.status]).toEqual([id, 201]);
    }
    expect((await post(r1, '/api/v1/agents', admin(), { id: 'bot', name: 'Bot', model: { provider: 'test', name: 'm' } })).status).toBe(201);
    await rule('bot', 'alpha', '*', 'allow');
    await rule('bot', 'alpha', 'wait', 'require_approval', 10);
    await rule('bot', 'beta', '*', 'allow');
    await rule('bot', 'beta', 'sec*', 'deny', 5);
    await rule('bot', 'everything', 'echo', 'allow');
    const key = await post(r1, '/api/v1/api-keys', admin(), { name: 'bot-key', role: 'viewer', agentId: 'bot' });
    expect(key.status).toBe(201);
    agentKey = key.body.key;
    agentKeyId = key.body.id;
  }, 120_000);
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const o of opened.splice(0)) await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${o.id}`, { key: o.key }).catch(() => undefined);
  });
  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.stop();
    await everything?.stop();
    await host?.close();
    await db?.drop();
  });

  it('binds API keys to agents: the binding is checked and shown in key listings', async () => {
    const bad = await post(r1, '/api/v1/api-keys', admin(), { name: 'nobody', role: 'viewer', agentId: 'no-such-agent' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'agentId' })]);
    const notSlug = await post(r1, '/api/v1/api-keys', admin(), { name: 'nobody', role: 'viewer', agentId: 'Bad Id' });
    expect(notSlug.status).toBe(400);
    expect(notSlug.body.errors[0].field).toBe('agentId');
    const list = await api(r2.url, 'GET', '/api/v1/api-keys', { key: admin() });
    expect(list.body.items.find((k: { id: string }) => k.id === agentKeyId)).toEqual(expect.objectContaining({ name: 'bot-key', agentId: 'bot' }));
    expect(list.body.items.find((k: { name: string }) => k.name === 'bootstrap-admin').agentId).toBeNull();
  });

  it('opens a session on the allowed servers, reporting the refused one, and answers on replica A a request sent to replica B', async () => {
    const s = await open(r1, agentKey, { servers: ['alpha', 'beta', 'gamma'] });
    expect(s.stream_url).toBe(`/api/v1/gateway/stream/${s.session_id}`);
    expect(s.request_url).toBe(`/api/v1/gateway/stream/${s.session_id}/request`);
    const byId = new Map(s.servers.map((x) => [x.id, x]));
    expect(byId.get('alpha')!.status).toBe('ready');
    expect(byId.get('beta')!.status).toBe('ready');
    expect(byId.get('gamma')).toEqual(expect.objectContaining({ status: 'denied', error: expect.objectContaining({ code: -32004 }) }));

    const stream = await follow(r1, agentKey, s.session_id);
    expect(stream.status).toBe(200);
    const list = await send(r2, agentKey, s.session_id, 'tools/list', undefined, 'list-1');
    const answer = await answerOf(stream, 'list-1');
    expect(answer.event).toBe('response');
    expect(answer.body.request_id).toBe(list.requestId);
    const names = (answer.body.result.tools as { name: string }[]).map((t) => t.name).sort();
    // require_approval and deny rules hide their tools; gamma is not in the session.
    expect(names).toEqual(['alpha__big', 'alpha__echo', 'alpha__progress', 'beta__echo']);

    const call = await send(r2, agentKey, s.session_id, 'tools/call', { name: 'beta__echo', arguments: {} }, 7);
    const echoed = await answerOf(stream, 7);
    expect(echoed.event).toBe('response');
    expect(echoed.body.result.content[0].text).toBe('echo');
    expect(echoed.body.request_id).toBe(call.requestId);
    // Every event has an increasing id.
    const ids = stream.frames.filter((f) => f.event === 'response').map((f) => Number(f.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids.every((n) => n > 0)).toBe(true);
  });

  it('forwards backend progress as notification events, then the response', async () => {
    const s = await open(r2, agentKey, { servers: ['alpha'] });
    const stream = await follow(r2, agentKey, s.session_id);
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'alpha__progress', arguments: { steps: 4, delayMs: 20 } }, 'p1');
    const answer = await answerOf(stream, 'p1');
    expect(answer.body.result.content[0].text).toBe('done 4');
    const progress = named(stream, 'notification')
      .map((f) => JSON.parse(f.data))
      .filter((n) => n.method === 'notifications/progress');
    expect(progress.map((n) => n.params.progress)).toEqual([1, 2, 3, 4]);
    expect(progress[0]).toEqual(expect.objectContaining({ server: 'alpha', params: expect.objectContaining({ total: 4, message: 'step 1 of 4' }) }));
    // One-server session: an unprefixed method goes to that server.
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'echo' }, 'p2');
    expect((await answerOf(stream, 'p2')).body.result.content[0].text).toBe('echo');
  });

  it('refuses with JSON-RPC errors carrying the client id: trust-rule denial, approval required, unknown server, ambiguity', async () => {
    const s = await open(r1, agentKey, { servers: ['alpha', 'beta'] });
    const stream = await follow(r2, agentKey, s.session_id);
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'beta__secret' }, 'denied');
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'alpha__wait' }, 'approval');
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'zeta__echo' }, 'unknown');
    await send(r1, agentKey, s.session_id, 'gamma__tools/list', undefined, 'not-in-session');
    await send(r1, agentKey, s.session_id, 'resources/read', { uri: 'file:///x' }, 'ambiguous');
    const denied = await answerOf(stream, 'denied');
    expect([denied.event, denied.body.error.code, denied.body.error.data.reason]).toEqual(['error', -32003, 'denied']);
    expect(denied.body.error.message).toContain('trust rules');
    const approval = await answerOf(stream, 'approval');
    expect([approval.body.error.code, approval.body.error.message]).toEqual([-32005, expect.stringContaining('approval')]);
    expect((await answerOf(stream, 'unknown')).body.error).toEqual(expect.objectContaining({ code: -32004, message: expect.stringContaining('zeta') }));
    expect((await answerOf(stream, 'not-in-session')).body.error.code).toBe(-32004);
    expect((await answerOf(stream, 'ambiguous')).body.error).toEqual(expect.objectContaining({ code: -32600, message: expect.stringContaining('ambiguous') }));
    // The denied backend never saw the call: attributed as denied in the metrics of the replica that handled it.
    const metrics = await (await fetch(`${r1.url}/metrics`)).text();
    expect(metrics).toMatch(/registry_gateway_calls_total\{agent="bot",server="beta",method="tools\/call",outcome="denied"\} [1-9]/);
    await waitFor(
      () => r1.output.includes('"msg":"gateway call"') && /"agent":"bot".*"tool":"secret".*"outcome":"denied"/.test(r1.output),
      5000,
      'the attribution log line',
    );
  });

  it('applies a trust-rule change made through another replica to the next calls, without reopening the session', async () => {
    const s = await open(r2, agentKey, { servers: ['beta'] });
    const stream = await follow(r2, agentKey, s.session_id);
    await send(r2, agentKey, s.session_id, 'tools/call', { name: 'beta__echo' }, 'live-0');
    expect((await answerOf(stream, 'live-0')).event).toBe('response');
    const denyRule = await post(r1, '/api/v1/trust-rules', admin(), { agentId: 'bot', mcpServerId: 'beta', toolPattern: 'echo', effect: 'deny', priority: 50 });
    expect(denyRule.status).toBe(201);
    let attempt = 0;
    await waitFor(
      async () => {
        const id = `live-${++attempt}`;
        await send(r2, agentKey, s.session_id, 'tools/call', { name: 'beta__echo' }, id);
        const answer = await answerOf(stream, id);
        return answer.event === 'error' && answer.body.error.code === -32003;
      },
      10_000,
      'the new deny rule applied on the other replica',
    );
    expect((await api(r1.url, 'DELETE', `/api/v1/trust-rules/${denyRule.body.id}`, { key: admin() })).status).toBe(204);
    await waitFor(
      async () => {
        const id = `live-${++attempt}`;
        await send(r2, agentKey, s.session_id, 'tools/call', { name: 'beta__echo' }, id);
        return (await answerOf(stream, id)).event === 'response';
      },
      10_000,
      'the rule removed',
    );
  });

  it('serves only the owner: another client gets 404 everywhere; bad input is problem+json', async () => {
    const s = await open(r1, agentKey, { servers: ['beta'] });
    const other = await follow(r2, admin(), s.session_id);
    expect(other.status).toBe(404);
    expect((await post(r2, `/api/v1/gateway/stream/${s.session_id}/request`, admin(), { jsonrpc: '2.0', id: 1, method: 'ping' })).status).toBe(404);
    expect((await api(r2.url, 'DELETE', `/api/v1/gateway/stream/${s.session_id}`, { key: admin() })).status).toBe(404);
    const unknown = await post(r1, '/api/v1/gateway/stream/AAAAAAAAAAAAAAAAAAAAAAAA/request', agentKey, { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(unknown.status).toBe(404);
    const badJson = await api(r1.url, 'POST', `/api/v1/gateway/stream/${s.session_id}/request`, {
      key: agentKey,
      rawBody: '{"jsonrpc":',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.status).toBe(400);
    const badRpc = await post(r1, `/api/v1/gateway/stream/${s.session_id}/request`, agentKey, { jsonrpc: '1.0', id: {}, method: '' });
    expect(badRpc.status).toBe(400);
    expect(badRpc.headers.get('content-type')).toContain('application/problem+json');
    expect(badRpc.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['id', 'jsonrpc', 'method']);
    const badServers = await post(r1, '/api/v1/gateway/stream', agentKey, { servers: 'alpha' });
    expect([badServers.status, badServers.body.errors[0].field]).toEqual([400, 'servers']);
    // A key bound to no agent (not admin) reaches nothing.
    const viewer = await post(r1, '/api/v1/api-keys', admin(), { name: 'plain', role: 'viewer' });
    const refused = await post(r1, '/api/v1/gateway/stream', viewer.body.key, { servers: ['alpha'] });
    expect(refused.status).toBe(403);
    expect(refused.body.servers[0]).toEqual(expect.objectContaining({ id: 'alpha', status: 'denied' }));
  });

  it('resumes a dropped stream on the other replica with Last-Event-ID: nothing lost, nothing repeated', async () => {
    const s = await open(r1, agentKey, { servers: ['beta'] });
    const first = await follow(r1, agentKey, s.session_id);
    for (let i = 0; i < 5; i++) await send(r2, agentKey, s.session_id, 'ping', undefined, `a${i}`);
    // Requests are answered concurrently: wait for every answer, whatever their order.
    for (let i = 0; i < 5; i++) await answerOf(first, `a${i}`);
    const seen = first.frames.filter((f) => f.event === 'response').map((f) => Number(f.id));
    const last = first.lastEventId!;
    first.close();
    for (let i = 0; i < 5; i++) await send(r1, agentKey, s.session_id, 'ping', undefined, `b${i}`);
    const resumed = await follow(r2, agentKey, s.session_id, last);
    for (let i = 0; i < 5; i++) await answerOf(resumed, `b${i}`);
    const after = resumed.frames.filter((f) => f.event === 'response');
    expect(after.map((f) => JSON.parse(f.data).id).sort()).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    const all = [...seen, ...after.map((f) => Number(f.id))];
    expect(all).toEqual(Array.from({ length: 10 }, (_, i) => all[0] + i));
    // Heartbeats keep coming, with the stream's position as their id.
    await resumed.waitFor(() => named(resumed, 'heartbeat').length > 0, 5000, 'a heartbeat');
    expect(Number(named(resumed, 'heartbeat')[0].id)).toBeGreaterThanOrEqual(Number(last));
  });

  it('reports evicted events as an error event instead of dropping them silently', async () => {
    const s = await open(r2, agentKey, { servers: ['beta'] });
    const total = MAX_EVENTS + 15;
    // An observer following live sees every answer (numbered 1..total); the reader that comes later from 0 cannot.
    const observer = await follow(r2, agentKey, s.session_id);
    for (let i = 0; i < total; i++) await send(r1, agentKey, s.session_id, 'ping', undefined, `e${i}`);
    for (let i = 0; i < total; i++) await answerOf(observer, `e${i}`);
    const numbered = new Map(named(observer, 'response').map((f) => [Number(f.id), JSON.parse(f.data).id as string]));
    expect([...numbered.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const stream = await follow(r1, agentKey, s.session_id, '0');
    await stream.waitFor(() => named(stream, 'response').length >= MAX_EVENTS, 15_000, `${MAX_EVENTS} responses`);
    const errors = named(stream, 'error').map((f) => ({ id: Number(f.id), body: JSON.parse(f.data) }));
    expect(errors).toHaveLength(1);
    expect(errors[0].id).toBe(total - MAX_EVENTS);
    expect(errors[0].body.error).toEqual(expect.objectContaining({ code: -32007, data: { reason: 'evicted', first: 1, last: total - MAX_EVENTS } }));
    const responses = named(stream, 'response').map((f) => [Number(f.id), JSON.parse(f.data).id as string]);
    expect(responses).toEqual(Array.from({ length: MAX_EVENTS }, (_, i) => [total - MAX_EVENTS + 1 + i, numbered.get(total - MAX_EVENTS + 1 + i)]));
  });

  it('gives a request unanswered within the timeout an error event, and the backend hears the cancellation', async () => {
    const s = await open(r1, admin(), { servers: ['alpha'] });
    const stream = await follow(r1, admin(), s.session_id);
    const before = alpha.cancelled;
    const started = Date.now();
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'alpha__wait' }, 'slow');
    const answer = await answerOf(stream, 'slow', TIMEOUT_MS + 15_000);
    expect([answer.event, answer.body.error.code]).toEqual(['error', -32001]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    await waitFor(() => alpha.cancelled > before, 10_000, 'the backend call cancelled');
    await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${s.session_id}`, { key: admin() });
  });

  it('the request timeout is a deadline progress does not extend: the client gets its error then, and the backend the cancellation', async () => {
    const s = await open(r1, admin(), { servers: ['alpha'] });
    const stream = await follow(r1, admin(), s.session_id);
    const before = alpha.progressCancelled;
    const started = Date.now();
    // Progress every 100 ms for 10 s, the request timeout being TIMEOUT_MS. Before, each progress restarted the call's
    // own timeout while the session's deadline stood: the sweep told the client "timeout" some seconds after the
    // deadline, and the backend call ran on (its answer dropped) with nobody cancelling it.
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'alpha__progress', arguments: { steps: 100, delayMs: 100 } }, 'long');
    const answer = await answerOf(stream, 'long', TIMEOUT_MS + 15_000);
    const elapsed = Date.now() - started;
    expect([answer.event, answer.body.error.code]).toEqual(['error', -32001]);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1500);
    await waitFor(() => alpha.progressCancelled > before, 5000, 'the backend call cancelled');
    await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${s.session_id}`, { key: admin() });
  });

  it('cancels a running backend call when the client sends notifications/cancelled, or closes the session', async () => {
    const s = await open(r1, admin(), { servers: ['alpha'] });
    const stream = await follow(r2, admin(), s.session_id);
    let waiting = alpha.waiting;
    const before = alpha.cancelled;
    await send(r1, admin(), s.session_id, 'tools/call', { name: 'alpha__wait' }, 'c1');
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running at the backend');
    // The notification goes to the other replica: the bus carries it to the one running the call.
    const note = await post(r2, `/api/v1/gateway/stream/${s.session_id}/request`, admin(), {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 'c1' },
    });
    expect([note.status, note.body.request_id]).toEqual([202, null]);
    await waitFor(() => alpha.cancelled > before, 10_000, 'the backend call cancelled');
    const cancelled = await answerOf(stream, 'c1');
    expect([cancelled.event, cancelled.body.error.code]).toEqual(['error', -32800]);

    waiting = alpha.waiting;
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'alpha__wait' }, 'c2');
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the second call running');
    const closed = await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${s.session_id}`, { key: admin() });
    expect(closed.status).toBe(204);
    await waitFor(() => alpha.cancelled > before + 1, 10_000, 'the second call cancelled by the close');
    await stream.waitFor((c) => c.ended, 10_000, 'the stream ended by the close');
    expect((await follow(r1, admin(), s.session_id)).status).toBe(404);
  });

  it('limits sessions per client (429) and frees the slot on DELETE', async () => {
    const key = (await post(r1, '/api/v1/api-keys', admin(), { name: 'limited', role: 'viewer', agentId: 'bot' })).body.key as string;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await open(i % 2 ? r1 : r2, key, { servers: ['beta'] })).session_id);
    const over = await post(r2, '/api/v1/gateway/stream', key, { servers: ['beta'] });
    expect(over.status).toBe(429);
    expect(over.headers.get('content-type')).toContain('application/problem+json');
    expect((await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${ids[0]}`, { key })).status).toBe(204);
    await open(r2, key, { servers: ['beta'] });
  });

  it('ends the session stream when its key is revoked', async () => {
    const created = await post(r1, '/api/v1/api-keys', admin(), { name: 'short-lived', role: 'viewer', agentId: 'bot' });
    const s = await open(r1, created.body.key, { servers: ['beta'] });
    const stream = await follow(r2, created.body.key, s.session_id);
    expect(stream.status).toBe(200);
    expect((await api(r1.url, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: admin() })).status).toBe(204);
    await stream.waitFor((c) => c.ended, 10_000, 'the stream ended by the revocation');
  });

  it('a revoked key’s calls in flight are cancelled at the backend (on the replica running them) and its requests refused', async () => {
    const created = await post(r1, '/api/v1/api-keys', admin(), { name: 'revoked-with-calls', role: 'admin' });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    const s = await open(r1, key, { servers: ['alpha'] });
    const stream = await follow(r1, key, s.session_id);
    const waiting = alpha.waiting;
    const before = alpha.cancelled;
    await send(r2, key, s.session_id, 'tools/call', { name: 'alpha__wait' }, 'running');
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running at the backend');
    const revoked = performance.now();
    expect((await api(r1.url, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: admin() })).status).toBe(204);
    // Well before the call's own timeout (TIMEOUT_MS from its start) would cancel it: before, it ran on until then.
    await waitFor(() => alpha.cancelled > before, TIMEOUT_MS / 2, 'the call cancelled at the backend by the revocation');
    expect(performance.now() - revoked).toBeLessThan(TIMEOUT_MS / 2);
    await stream.waitFor((c) => c.ended, 10_000, 'the stream ended by the revocation');
    const again = await post(r2, `/api/v1/gateway/stream/${s.session_id}/request`, key, { jsonrpc: '2.0', id: 'after', method: 'ping' });
    expect(again.status).toBe(401);
    expect((await api(r2.url, 'GET', `/api/v1/gateway/stream/${s.session_id}`, { key })).status).toBe(401);
  });

  it('speaks to @modelcontextprotocol/server-everything: merged, namespaced lists and a call', async () => {
    const s = await open(r2, admin(), { servers: ['everything', 'beta'] });
    expect(s.servers.find((x) => x.id === 'everything')!.status).toBe('ready');
    const stream = await follow(r1, admin(), s.session_id);
    await send(r2, admin(), s.session_id, 'tools/list', undefined, 'tl');
    await send(r1, admin(), s.session_id, 'prompts/list', undefined, 'pl');
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'everything__echo', arguments: { message: 'hi there' } }, 'call');
    const tools = (await answerOf(stream, 'tl')).body.result.tools.map((t: { name: string }) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', 'beta__echo', 'beta__secret']));
    const prompts = (await answerOf(stream, 'pl')).body.result.prompts.map((p: { name: string }) => p.name);
    expect(prompts.length).toBeGreaterThan(0);
    expect(prompts.every((n: string) => n.startsWith('everything__'))).toBe(true);
    expect(JSON.stringify((await answerOf(stream, 'call')).body.result.content)).toContain('hi there');
    // The agent's key sees only the tool its rule allows.
    const a = await open(r1, agentKey, { servers: ['everything'] });
    const agentStream = await follow(r1, agentKey, a.session_id);
    await send(r2, agentKey, a.session_id, 'tools/list', undefined, 'atl');
    expect((await answerOf(agentStream, 'atl')).body.result.tools.map((t: { name: string }) => t.name)).toEqual(['everything__echo']);
    await api(r1.url, 'DELETE', `/api/v1/gateway/stream/${a.session_id}`, { key: agentKey });
  });

  it('deferred tool loading: only search_tools and activate_tools at first; activation adds tools and announces list_changed', async () => {
    const s = await open(r1, admin(), { servers: ['alpha', 'beta'], deferred: true });
    const stream = await follow(r2, admin(), s.session_id);
    await send(r1, admin(), s.session_id, 'tools/list', undefined, 'd1');
    expect((await answerOf(stream, 'd1')).body.result.tools.map((t: { name: string }) => t.name)).toEqual(['search_tools', 'activate_tools']);
    await send(r1, admin(), s.session_id, 'tools/call', { name: 'beta__echo' }, 'd2');
    expect((await answerOf(stream, 'd2')).body.error.message).toContain('not activated');
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'search_tools', arguments: { query: 'echo' } }, 'd3');
    const found = (await answerOf(stream, 'd3')).body.result.structuredContent.tools.map((t: { name: string }) => t.name);
    expect(found).toEqual(expect.arrayContaining(['alpha__echo', 'beta__echo']));
    await send(r1, admin(), s.session_id, 'tools/call', { name: 'activate_tools', arguments: { names: ['beta__echo', 'nope__x'] } }, 'd4');
    const activated = (await answerOf(stream, 'd4')).body.result.structuredContent;
    expect(activated).toEqual(expect.objectContaining({ added: ['beta__echo'], unknown: ['nope__x'] }));
    await stream.waitFor(
      () => named(stream, 'notification').some((f) => JSON.parse(f.data).method === 'notifications/tools/list_changed'),
      10_000,
      'list_changed',
    );
    await send(r2, admin(), s.session_id, 'tools/list', undefined, 'd5');
    expect((await answerOf(stream, 'd5')).body.result.tools.map((t: { name: string }) => t.name)).toEqual(['search_tools', 'activate_tools', 'beta__echo']);
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'beta__echo' }, 'd6');
    expect((await answerOf(stream, 'd6')).body.result.content[0].text).toBe('echo');
  });

  it('fails fast with circuit_open once a failing backend opened its circuit', async () => {
    const broken = host.add('broken', 'fail');
    const res = await post(r1, '/api/v1/mcp-servers', admin(), {
      id: 'broken',
      name: 'broken',
      url: broken.url,
      healthCheck: { ...noProbes, failureThreshold: 1, coolDownMs: 600_000, maxCoolDownMs: 600_000 },
    });
    expect(res.status).toBe(201);
    const s = await open(r1, admin(), { servers: ['broken', 'beta'] });
    expect(s.servers.find((x) => x.id === 'broken')).toEqual(expect.objectContaining({ status: 'failed' }));
    const stream = await follow(r2, admin(), s.session_id);
    const requestsBefore = broken.requests;
    await send(r2, admin(), s.session_id, 'tools/call', { name: 'broken__echo' }, 'open');
    const answer = await answerOf(stream, 'open');
    expect([answer.event, answer.body.error.code, answer.body.error.data.reason]).toEqual(['error', -32006, 'circuit_open']);
    expect(broken.requests).toBe(requestsBefore);
    // A broadcast still answers from the healthy server, naming the failed one.
    await send(r1, admin(), s.session_id, 'tools/list', undefined, 'partial');
    const partial = (await answerOf(stream, 'partial')).body.result;
    expect(partial.tools.map((t: { name: string }) => t.name).sort()).toEqual(['beta__echo', 'beta__secret']);
    expect(partial._meta['io.agentic-registry/errors']).toEqual([expect.objectContaining({ server: 'broken', code: -32006 })]);
  });

  it('sends a result larger than 256 KiB as chunk events, then a response that counts them', async () => {
    const s = await open(r1, agentKey, { servers: ['alpha'] });
    const stream = await follow(r2, agentKey, s.session_id);
    await send(r1, agentKey, s.session_id, 'tools/call', { name: 'alpha__big', arguments: { kb: 600 } }, 'big');
    const answer = await answerOf(stream, 'big', 30_000);
    expect(answer.event).toBe('response');
    const chunks = named(stream, 'chunk').map((f) => JSON.parse(f.data) as { id: string; index: number; count: number; data: string });
    expect(answer.body.result_chunks).toBe(chunks.length);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
    expect(chunks.every((c) => c.id === 'big' && c.count === chunks.length)).toBe(true);
    const result = JSON.parse(chunks.map((c) => c.data).join(''));
    expect(result.content[0].text).toBe('abcdefghijklmnop'.repeat(64 * 600));
  });

  it('a reader that stops reading holds up nothing: the other stream gets 1 MB answers at once, the stalled one everything once it reads', async () => {
    const s = await open(r1, agentKey, { servers: ['alpha'] });
    // A raw socket that asks for the stream, then stops reading: the kernel's buffers fill, then the replica's.
    const url = new URL(r2.url);
    let raw = '';
    const stalled = await new Promise<Socket>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(
          `GET /api/v1/gateway/stream/${s.session_id} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${agentKey}\r\n\r\n`,
        );
        resolve(socket);
      });
      socket.on('error', reject);
      socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    });
    await waitFor(() => raw.includes('\r\n\r\n'), 5000, 'the stalled stream open');
    stalled.pause();
    // A reader that reads, on the other replica.
    const reading = await follow(r1, agentKey, s.session_id);
    // About 1 MB per answer (4 chunk events of 256 KiB and the response): more than loopback buffers and the
    // replica's STREAM_MAX_BUFFER_BYTES (1 MB) over all of them; fewer events than the session keeps (MAX_EVENTS).
    const calls = 6;
    for (let i = 0; i < calls; i++) await send(r1, agentKey, s.session_id, 'tools/call', { name: 'alpha__big', arguments: { kb: 1000 } }, `stalled-${i}`);
    for (let i = 0; i < calls; i++) expect((await answerOf(reading, `stalled-${i}`, 30_000)).event).toBe('response');
    expect(reading.ended).toBe(false);
    expect(named(reading, 'error')).toEqual([]);
    // The stalled stream was not cut (the replica reads the session's events on at its pace, nothing queued for it):
    // once it reads again it gets every answer, in order, with no gap, and the stream goes on.
    stalled.resume();
    const answered = () => [...raw.matchAll(/event: response\ndata: \{[^\n]*"id":"stalled-(\d+)"/g)].map((m) => Number(m[1]));
    await waitFor(() => answered().length === calls, 30_000, 'every answer on the stalled stream');
    // Every answer once (concurrent calls finish in any order), in the session's order: event ids increasing, no gap.
    expect(answered().sort((a, b) => a - b)).toEqual([...Array(calls).keys()]);
    const ids = [...raw.matchAll(/^id: (\d+)\nevent: (?!heartbeat)/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual(ids.map((_, i) => ids[0] + i));
    expect(raw).not.toContain('event: error');
    expect(raw).not.toContain('\r\n0\r\n\r\n'); // no last chunk: not ended
    stalled.destroy();
  }, 90_000);

  it('ends session streams when their replica drains (SIGTERM), and they resume elsewhere', async () => {
    const r4 = await cluster.start('r4', { SHUTDOWN_DELAY_MS: '200' });
    const s = await open(r4, admin(), { servers: ['beta'] });
    const stream = await follow(r4, admin(), s.session_id);
    await send(r4, admin(), s.session_id, 'ping', undefined, 'before');
    await answerOf(stream, 'before');
    const last = stream.lastEventId!;
    r4.process.kill('SIGTERM');
    await stream.waitFor((c) => c.ended, 20_000, 'the stream ended by the drain');
    expect(stream.frames.some((f) => f.retry !== undefined && f.retry < 2000)).toBe(true);
    expect(await r4.exited).toBe(0);
    await send(r2, admin(), s.session_id, 'ping', undefined, 'after');
    const resumed = await follow(r1, admin(), s.session_id, last);
    expect((await answerOf(resumed, 'after')).event).toBe('response');
  });

  it('continues a stream on the surviving replica after its replica died, nothing lost', async () => {
    const r3 = await cluster.start('r3');
    const s = await open(r3, admin(), { servers: ['beta'] });
    const stream = await follow(r3, admin(), s.session_id);
    for (let i = 0; i < 3; i++) await send(r2, admin(), s.session_id, 'tools/call', { name: 'beta__echo' }, `k${i}`);
    for (let i = 0; i < 3; i++) await answerOf(stream, `k${i}`);
    const last = stream.lastEventId!;
    const seen = named(stream, 'response').length;
    r3.process.kill('SIGKILL');
    await r3.exited;
    await stream.waitFor((c) => c.ended, 10_000, 'the stream cut by the dead replica');
    for (let i = 3; i < 6; i++) await send(r2, admin(), s.session_id, 'tools/call', { name: 'beta__echo' }, `k${i}`);
    const resumed = await follow(r1, admin(), s.session_id, last);
    for (let i = 3; i < 6; i++) await answerOf(resumed, `k${i}`);
    expect(seen).toBe(3);
    expect(
      named(resumed, 'response')
        .map((f) => JSON.parse(f.data).id)
        .sort(),
    ).toEqual(['k3', 'k4', 'k5']);
    expect(named(resumed, 'error')).toHaveLength(0);
  });
});
