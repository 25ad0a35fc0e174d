import { connect, type Socket } from 'node:net';
import { type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { SseClient } from '../support/sse-client.js';
import { api, startTestApp, type TestApp } from '../support/test-env.js';

/**
 * Streaming sessions on one replica without Redis (the default `npm start`):
 * sessions, their events and pending requests in process, with the same
 * numbering, resume, bounds and access rules as with Redis. Real SDK-built
 * MCP backends; the stream read by real HTTP clients and a raw socket.
 */

const MAX_EVENTS = 40;
const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

describe('gateway streaming sessions without Redis (one replica, in process)', () => {
  let t: TestApp;
  let host: McpFixtureHost;
  let alpha: McpFixture;
  const clients: SseClient[] = [];

  const post = (key: string, path: string, body: unknown) => api(t.baseUrl, 'POST', path, { key, body });
  const open = async (key = t.adminKey) => {
    const res = await post(key, '/api/v1/gateway/stream', { servers: ['alpha'] });
    expect([res.status, res.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    expect(res.body.servers).toEqual([{ id: 'alpha', status: 'ready' }]);
    return res.body.session_id as string;
  };
  const follow = async (sessionId: string, lastEventId?: string, key = t.adminKey) => {
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/gateway/stream/${sessionId}`, {
      authorization: `Bearer ${key}`,
      ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}),
    });
    clients.push(c);
    return c;
  };
  const send = async (sessionId: string, id: string, name: string, args: Record<string, unknown> = {}, key = t.adminKey) => {
    const res = await post(key, `/api/v1/gateway/stream/${sessionId}/request`, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
    expect([res.status, res.text.slice(0, 300)]).toEqual([202, expect.any(String)]);
  };
  const named = (c: SseClient, event: string) => c.frames.filter((f) => f.event === event);
  const answerOf = async (c: SseClient, id: string) => {
    const find = () => c.frames.find((f) => (f.event === 'response' || f.event === 'error') && (JSON.parse(f.data) as { id: unknown }).id === id);
    await c.waitFor(() => find() !== undefined, 15_000, `the answer to ${id}`);
    return find()!;
  };
  const ids = (c: SseClient) => c.frames.filter((f) => f.event !== 'heartbeat' && f.id !== undefined).map((f) => Number(f.id));

  beforeAll(async () => {
    host = await McpFixtureHost.start();
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'progress', 'wait', 'big'];
    t = await startTestApp({
      env: {
        MCP_ALLOW_PRIVATE_NETWORKS: 'true',
        HEALTH_PROBES: 'false',
        GATEWAY_MAX_PENDING_EVENTS: String(MAX_EVENTS),
        GATEWAY_MAX_SESSIONS_PER_CLIENT: '3',
        GATEWAY_REQUEST_TIMEOUT_MS: '1500',
        CREDENTIAL_CHECK_MS: '100',
        MCP_MAX_MESSAGE_BYTES: String(2 * 1024 * 1024),
      },
    });
    expect(t.config.redisUrl).toBeUndefined();
    const res = await post(t.adminKey, '/api/v1/mcp-servers', { id: 'alpha', name: 'alpha', url: alpha.statefulUrl, healthCheck: noProbes });
    expect(res.status).toBe(201);
  }, 90_000);
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
    await host?.close();
  }, 60_000);

  it('answers on the stream, progress first; a stream resumed with Last-Event-ID gets what it missed, once, in order', async () => {
    const id = await open();
    const stream = await follow(id);
    await send(id, 'e1', 'alpha__echo');
    expect(JSON.parse((await answerOf(stream, 'e1')).data)).toMatchObject({ jsonrpc: '2.0', id: 'e1', result: { content: [{ text: 'echo' }] } });
    await send(id, 'p1', 'alpha__progress', { steps: 5 });
    await answerOf(stream, 'p1');
    expect(named(stream, 'notification').map((f) => JSON.parse(f.data).params.progress)).toEqual([1, 2, 3, 4, 5]);
    const last = stream.lastEventId!;
    stream.close();
    // Answered while nobody follows the session.
    await send(id, 'e2', 'alpha__echo');
    await send(id, 'p2', 'alpha__progress', { steps: 3 });
    const resumed = await follow(id, last);
    await answerOf(resumed, 'e2');
    await answerOf(resumed, 'p2');
    const seen = ids(resumed);
    expect(seen[0]).toBe(Number(last) + 1);
    expect(seen).toEqual(seen.map((_, i) => seen[0] + i));
    expect(named(resumed, 'error')).toEqual([]);
    await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${id}`, { key: t.adminKey });
  });

  it('keeps the latest events only and says so; bounds sessions per client; answers an overdue call with an error', async () => {
    const id = await open();
    // 60 progress events and the answer while nobody reads: the oldest are evicted.
    await send(id, 'flood', 'alpha__progress', { steps: 60, delayMs: 0 });
    const probe = await follow(id);
    await answerOf(probe, 'flood');
    probe.close();
    const replay = await follow(id, '0');
    await answerOf(replay, 'flood');
    const evicted = named(replay, 'error').map((f) => JSON.parse(f.data).error);
    expect(evicted).toEqual([expect.objectContaining({ code: -32007, data: { reason: 'evicted', first: 1, last: 61 - MAX_EVENTS } })]);
    expect(named(replay, 'notification')).toHaveLength(MAX_EVENTS - 1);
    // The call that does not end in time gets its error event.
    await send(id, 'late', 'alpha__wait');
    const late = JSON.parse((await answerOf(replay, 'late')).data);
    expect(late.error.code).toEqual(expect.any(Number));
    // Three sessions per client (this one included), then 429.
    const more = [await open(), await open()];
    const over = await post(t.adminKey, '/api/v1/gateway/stream', { servers: ['alpha'] });
    expect([over.status, over.headers.get('content-type')]).toEqual([429, expect.stringContaining('application/problem+json')]);
    for (const s of [id, ...more]) expect((await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${s}`, { key: t.adminKey })).status).toBe(204);
    await open().then((s) => api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${s}`, { key: t.adminKey }));
  });

  it('a session is its owner’s: another key gets 404; DELETE ends its stream; a revoked key’s stream ends', async () => {
    const created = await post(t.adminKey, '/api/v1/api-keys', { name: 'short-lived', role: 'admin' });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    const id = await open(key);
    expect((await api(t.baseUrl, 'GET', `/api/v1/gateway/stream/${id}`, { key: t.adminKey })).status).toBe(404);
    expect((await post(t.adminKey, `/api/v1/gateway/stream/${id}/request`, { jsonrpc: '2.0', id: 1, method: 'ping' })).status).toBe(404);
    const stream = await follow(id, undefined, key);
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: t.adminKey })).status).toBe(204);
    await stream.waitFor((c) => c.ended, 10_000, 'the stream ended by the revocation');

    const other = await open();
    const followed = await follow(other);
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${other}`, { key: t.adminKey })).status).toBe(204);
    await followed.waitFor((c) => c.ended, 10_000, 'the stream ended by DELETE');
    expect((await post(t.adminKey, `/api/v1/gateway/stream/${other}/request`, { jsonrpc: '2.0', id: 1, method: 'ping' })).status).toBe(404);
  });

  it('a reader that stops reading is not cut: once it reads again it gets every 1 MB answer, in order', async () => {
    const id = await open();
    const url = new URL(t.baseUrl);
    let raw = '';
    let closed = false;
    const stalled = await new Promise<Socket>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`GET /api/v1/gateway/stream/${id} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer ${t.adminKey}\r\n\r\n`);
        resolve(socket);
      });
      socket.on('error', reject);
      socket.on('close', () => (closed = true));
      socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    });
    const reading = await follow(id);
    await reading.waitFor(() => raw.includes('\r\n\r\n'), 5000, 'the stalled stream open');
    stalled.pause();
    // 4 answers of ~1 MB (4 chunk events of 256 KiB and the response each): more than loopback's buffers and
    // STREAM_MAX_BUFFER_BYTES (1 MB); 20 events, fewer than the session keeps.
    const calls = 4;
    for (let i = 0; i < calls; i++) await send(id, `big-${i}`, 'alpha__big', { kb: 1000 });
    for (let i = 0; i < calls; i++) expect((await answerOf(reading, `big-${i}`)).event).toBe('response');
    await new Promise((r) => setTimeout(r, 500));
    expect(closed).toBe(false);
    stalled.resume();
    const answered = () => [...raw.matchAll(/event: response\ndata: \{[^\n]*"id":"big-(\d+)"/g)].map((m) => Number(m[1]));
    await reading.waitFor(() => answered().length === calls, 30_000, 'every answer on the stalled stream');
    expect(answered().sort()).toEqual([0, 1, 2, 3]);
    const seen = [...raw.matchAll(/^id: (\d+)\nevent: (?!heartbeat)/gm)].map((m) => Number(m[1]));
    expect(seen).toEqual(seen.map((_, i) => seen[0] + i));
    expect(raw).not.toContain('event: error');
    stalled.destroy();
    await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${id}`, { key: t.adminKey });
  }, 60_000);

  it('an answer larger than MCP_MAX_MESSAGE_BYTES fails its call at once with a backend error naming it; the session goes on', async () => {
    const id = await open();
    const stream = await follow(id);
    await send(id, 'huge', 'alpha__big', { kb: 3000 }); // 3 MB, over the suite's 2 MiB
    const answer = await answerOf(stream, 'huge');
    // The bound's error, not the request timeout's (1.5 s here).
    expect([answer.event, JSON.parse(answer.data)]).toEqual([
      'error',
      expect.objectContaining({ id: 'huge', error: expect.objectContaining({ code: -32002, message: expect.stringContaining('(MCP_MAX_MESSAGE_BYTES)') }) }),
    ]);
    await send(id, 'after', 'alpha__big', { kb: 1000 });
    expect((await answerOf(stream, 'after')).event).toBe('response');
    await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${id}`, { key: t.adminKey });
  }, 30_000);
});
