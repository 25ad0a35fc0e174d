import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { createParser } from 'eventsource-parser';
import { HostileBackend } from '../support/hostile-backend.js';
import { SseClient } from '../support/sse-client.js';
import { api, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

/**
 * A backend answering like a buggy or hostile MCP server (test/support/hostile-backend.ts), through each way in:
 * `/mcp`, streaming sessions and tool streams. An unusable answer is a clear JSON-RPC error at once (not the
 * timeout), the session goes on serving, and what the backend sends about one call reaches no other.
 */
describe('gateway: a misbehaving backend, through each way in', () => {
  let t: TestApp;
  let b: HostileBackend;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    b = await HostileBackend.start();
    t = await startTestApp({ redis: true, env: { HEALTH_PROBES: 'false', MCP_ALLOW_PRIVATE_NETWORKS: 'true' } });
    // The failures these tests provoke count against the circuit: a threshold they do not reach.
    const healthCheck = { failureThreshold: 100, coolDownMs: 1000, maxCoolDownMs: 1000 };
    const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id: 'hostile', name: 'hostile', url: b.url, healthCheck } });
    expect([res.status, res.text]).toEqual([201, expect.any(String)]);
  }, 60_000);
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  afterAll(async () => {
    await t?.close();
    await b?.stop();
  });

  it('/mcp: each unusable answer is a JSON-RPC error at once, a backend’s own error passes with its code, cut; the session goes on', async () => {
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${t.adminKey}` } } }),
    );
    clients.push(client);
    for (const [name, code, said] of [
      ['other-id-json', -32002, "answered with another request's id"],
      ['bad-sse-then-end', -32002, "ended the request's stream without its answer"],
      ['end-every-stream', -32002, 'resumptions in a row brought no new event'],
      ['content-not-array', -32002, 'a result that is not valid MCP (content: '],
      ['huge-error', -32000, 'characters, cut'],
    ] as const) {
      const started = performance.now();
      const error = await client.callTool({ name: `hostile__${name}`, arguments: {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect([name, error instanceof McpError && error.code, (error as Error).message]).toEqual([name, code, expect.stringContaining(said)]);
      expect((error as Error).message.length).toBeLessThan(1200);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(await client.callTool({ name: 'hostile__ok', arguments: {} })).toMatchObject({ content: [{ text: 'fine' }] });
    }
    const asked = await client.callTool({ name: 'hostile__sampling', arguments: {} });
    expect(JSON.parse((asked.content as { text: string }[])[0].text)).toMatchObject({ answer: { error: { code: -32601 } } });
    const progress: Progress[] = [];
    await client.callTool({ name: 'hostile__progress-odd-values', arguments: {} }, undefined, { onprogress: (p) => progress.push(p) });
    expect(progress.map((p) => p.progress)).toEqual([1e308, -5, 2]);
  }, 60_000);

  it('streaming sessions: an answer with another request’s id is an error event at once; the session goes on', async () => {
    const open = await api(t.baseUrl, 'POST', '/api/v1/gateway/stream', { key: t.adminKey, body: { servers: ['hostile'] } });
    expect(open.status).toBe(201);
    const sessionId = open.body.session_id as string;
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/gateway/stream/${sessionId}`, { authorization: `Bearer ${t.adminKey}` });
    clients.push(c);
    const answerOf = async (id: string) => {
      const find = () => c.frames.find((f) => (f.event === 'response' || f.event === 'error') && (JSON.parse(f.data) as { id: unknown }).id === id);
      await c.waitFor(() => find() !== undefined, 5000, `the answer to ${id}`);
      return JSON.parse(find()!.data) as Record<string, unknown>;
    };
    const send = async (id: string, name: string) => {
      const body = { jsonrpc: '2.0', id, method: 'tools/call', params: { name: `hostile__${name}`, arguments: {} } };
      expect((await api(t.baseUrl, 'POST', `/api/v1/gateway/stream/${sessionId}/request`, { key: t.adminKey, body })).status).toBe(202);
    };
    await send('wrong', 'other-id-sse');
    expect(await answerOf('wrong')).toMatchObject({ error: { code: -32002, message: expect.stringContaining("another request's id") } });
    await send('after', 'ok');
    expect(await answerOf('after')).toMatchObject({ result: { content: [{ text: 'fine' }] } });
    await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${sessionId}`, { key: t.adminKey });
  }, 60_000);

  it('tool streams: progress a backend sends on one client’s call with another’s token does not reach that other client', async () => {
    const stream = (name: string, id: string) =>
      fetch(`${t.baseUrl}/api/v1/mcp/stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: `hostile__${name}`, arguments: {} } }),
      }).then(async (res) => {
        const frames: { event: string; data: string }[] = [];
        const parser = createParser({ onEvent: (e) => frames.push({ event: e.event ?? 'message', data: e.data }) });
        parser.feed(await res.text());
        return frames;
      });
    // Both calls on this replica's one pooled session with the backend: the held call's token is the other's to misuse.
    const held = stream('wait', 'held');
    await waitFor(() => b.held === 1, 10_000, 'the held call');
    const other = await stream('progress-other-token', 'other');
    expect(other.map((f) => f.event)).toEqual(expect.arrayContaining(['result', 'complete']));
    expect(other.filter((f) => f.event === 'progress')).toEqual([]);
    b.release();
    const frames = await held;
    expect(frames.map((f) => f.event)).toEqual(expect.arrayContaining(['result', 'complete']));
    expect(frames.filter((f) => f.event === 'progress')).toEqual([]);
  }, 60_000);
});
