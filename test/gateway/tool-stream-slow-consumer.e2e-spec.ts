import { SseClient } from '../support/sse-client.js';
import { api, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';
import { TestBackend } from './mcp-endpoint-backend.js';
import { RawSse, retainedBytes } from './raw-sse.js';

/**
 * Tool streams (`POST /api/v1/mcp/stream`, `GET /api/v1/stream/tools/...`) to a
 * client that does not read, on a tool that floods progress: the connection is
 * cut as a slow consumer once more than STREAM_MAX_BUFFER_BYTES wait unsent, the
 * call is aborted (the backend gets `notifications/cancelled`) and the replica's
 * memory does not grow with the flood. A client that reads gets every event.
 * The replica and the backend (an SDK-built MCP server whose `flood` records,
 * per tag, what it sent and whether it was cancelled) run in this process.
 */

const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };
/** Progress the backend may send to a non-reading client before the test calls it unbounded (100 KB each: 40 MB). */
const UNBOUNDED = 400;

describe('gateway tool streams to a client that does not read', () => {
  let t: TestApp;
  let backend: TestBackend;
  const raws: RawSse[] = [];

  beforeAll(async () => {
    backend = await TestBackend.start('flooder');
    t = await startTestApp({
      env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false', GATEWAY_REQUEST_TIMEOUT_MS: '120000', STREAM_MAX_BUFFER_BYTES: String(1024 * 1024) },
    });
    const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: t.adminKey,
      body: { id: 'flooder', name: 'flooder', url: backend.url, healthCheck: noProbes },
    });
    expect(res.status).toBe(201);
    // The server's registration (and its tool list) drops pooled backend sessions as it lands: a call that
    // starts meanwhile may fail with "the session is closed". Wait until a call goes through.
    const warm = encodeURIComponent(JSON.stringify({ tag: 'warm', count: 1, size: 10, delayMs: 0 }));
    await waitFor(
      async () => {
        const r = await fetch(`${t.baseUrl}/api/v1/stream/tools/flooder/flood?arguments=${warm}&id=w`, { headers: { authorization: `Bearer ${t.adminKey}` } });
        const text = await r.text();
        if (!text.includes('event: result')) await sleep(300);
        return text.includes('event: result');
      },
      30_000,
      'a first call through',
    );
  }, 90_000);
  afterAll(async () => {
    for (const r of raws.splice(0)) r.destroy();
    await t?.close();
    await backend?.close();
  }, 60_000);

  it('is cut as a slow consumer (POST and GET forms): the backend gets notifications/cancelled and memory does not grow with the flood', async () => {
    const before = retainedBytes();
    const flood = (tag: string) => ({ tag, count: 3000, size: 100_000, delayMs: 5 });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 'p1', method: 'tools/call', params: { name: 'flooder__flood', arguments: flood('post') } });
    const auth = { Authorization: `Bearer ${t.adminKey}` };
    raws.push(await RawSse.open(t.baseUrl, 'POST', '/api/v1/mcp/stream', auth, body));
    const query = encodeURIComponent(JSON.stringify(flood('get')));
    raws.push(await RawSse.open(t.baseUrl, 'GET', `/api/v1/stream/tools/flooder/flood?arguments=${query}&id=g1`, auth));
    await waitFor(() => raws.every((r) => r.opened), 15_000, 'both streams open');
    for (const r of raws) r.pause();

    // Either both calls are aborted (their streams cut), or the backend sent far more than any buffer holds.
    const sent = () => Math.max(backend.flooded.sent.get('post') ?? 0, backend.flooded.sent.get('get') ?? 0);
    await waitFor(() => backend.flooded.aborted.size === 2 || sent() >= UNBOUNDED, 90_000, 'both calls aborted, or the flood past any buffer');
    const grown = retainedBytes() - before;
    console.log(
      `[tool-stream-slow-consumer] progress sent: post ${backend.flooded.sent.get('post')}, get ${backend.flooded.sent.get('get')}; ` +
        `aborted [${[...backend.flooded.aborted].join(',')}]; +${(grown / 1048576).toFixed(1)} MB retained after a full GC`,
    );
    expect([...backend.flooded.aborted].sort()).toEqual(['get', 'post']);
    for (const tag of ['post', 'get']) expect([tag, backend.cancellations.has(backend.flooded.requests.get(tag)!)]).toEqual([tag, true]);
    expect(sent()).toBeLessThan(UNBOUNDED);
    // Nothing of the flood is left (while the streams lasted, STREAM_MAX_BUFFER_BYTES and a frame each at most).
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    // The backend stopped: nothing more is sent after the cancellation.
    const after = sent();
    await sleep(500);
    expect(sent()).toBe(after);
    // Reading again, each client gets what the kernel held, in order, then the end of a cut connection (no result, no [DONE]).
    for (const r of raws) r.resume();
    await waitFor(() => raws.every((r) => r.closed), 30_000, 'both connections closed');
    for (const r of raws) {
      expect(r.status).toBe(200);
      const progress = r.frames.filter((f) => f.event === 'progress');
      expect(progress.length).toBeGreaterThan(0);
      expect(r.frames.map((f) => f.event)).toEqual(['start', ...progress.map(() => 'progress')]);
    }
    raws.splice(0);
  }, 180_000);

  it('a client that reads gets every progress event, in order, then the result and [DONE]', async () => {
    const count = 300;
    const args = encodeURIComponent(JSON.stringify({ tag: 'reader', count, size: 10_000, delayMs: 2 }));
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/tools/flooder/flood?arguments=${args}&id=r1`, { authorization: `Bearer ${t.adminKey}` });
    try {
      await c.waitFor((x) => x.ended, 90_000, 'the stream to end');
      const progress = c.frames.filter((f) => f.event === 'progress').map((f) => (JSON.parse(f.data) as { progress: number }).progress);
      expect(progress).toEqual(Array.from({ length: count }, (_, i) => i + 1));
      expect(c.frames.filter((f) => f.event !== 'comment' && f.retry === undefined && f.event !== 'progress').map((f) => f.event)).toEqual([
        'start',
        'result',
        'complete',
        'message',
        'message',
      ]);
      expect(c.frames.at(-1)?.data).toBe('[DONE]');
      expect(backend.flooded.aborted.has('reader')).toBe(false);
      expect(backend.cancellations.has(backend.flooded.requests.get('reader')!)).toBe(false);
    } finally {
      c.close();
    }
  }, 120_000);
});
