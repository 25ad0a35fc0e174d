import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type Progress, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connect as connectTcp, type Socket } from 'node:net';
import { EverythingServer } from '../support/mcp-fixtures.js';
import { freePort } from '../support/ports.mjs';
import { SseClient } from '../support/sse-client.js';
import { api, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';
import { TestBackend } from './mcp-endpoint-backend.js';

/**
 * `/mcp` with real parts on one replica (Redis-backed sessions): the SDK's own
 * Client and StreamableHTTPClientTransport against the service, an SDK-built
 * backend and @modelcontextprotocol/server-everything behind it.
 */
describe('/mcp: the aggregated Streamable HTTP MCP endpoint', () => {
  let t: TestApp;
  let alpha: TestBackend;
  let big: TestBackend;
  let everything: EverythingServer;
  const clients: Client[] = [];
  const METRICS_TOKEN = 'metrics-token-for-the-mcp-test-01';
  const ACCEPT = { accept: 'application/json, text/event-stream' };
  const INIT = {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  };

  /** A gauge or counter of this replica's /metrics (without labels). */
  async function metric(name: string): Promise<number> {
    const text = (await api(t.baseUrl, 'GET', '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text;
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`${name} not in /metrics`);
    return Number(m[1]);
  }

  /** A session opened with plain requests: unlike the SDK client's, it has no standalone stream of its own. */
  async function plainSession(k: string): Promise<string> {
    const init = await api(t.baseUrl, 'POST', '/mcp', { key: k, body: INIT, headers: ACCEPT });
    expect(init.status).toBe(200);
    const id = init.headers.get('mcp-session-id')!;
    const headers = { ...ACCEPT, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: k, body: { jsonrpc: '2.0', method: 'notifications/initialized' }, headers })).status).toBe(202);
    return id;
  }

  /** A raw HTTP exchange on its own socket: what arrived, and whether the server closed it. */
  function raw(head: string): { text: string; closed: boolean; socket: Socket } {
    const url = new URL(t.baseUrl);
    const s = { text: '', closed: false, socket: connectTcp(Number(url.port), url.hostname, () => s.socket.write(head)) };
    s.socket.on('data', (d: Buffer) => (s.text += d.toString('latin1')));
    s.socket.on('close', () => (s.closed = true));
    s.socket.on('error', () => undefined);
    return s;
  }

  /** A raw POST of one JSON-RPC message; `session` is the Authorization, Mcp-Session-Id and protocol header lines. */
  function rawPost(session: string, message: Record<string, unknown>): { text: string; closed: boolean; socket: Socket } {
    const body = JSON.stringify(message);
    return raw(
      `POST /mcp HTTP/1.1\r\nHost: x\r\n${session}Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }

  async function connect(key: string, query = ''): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
    const client = new Client({ name: 'test-client', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/mcp${query}`), { requestInit: { headers: { authorization: `Bearer ${key}` } } });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  }

  async function key(body: Record<string, unknown>): Promise<string> {
    const res = await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: t.adminKey, body });
    expect(res.status).toBe(201);
    return res.body.key as string;
  }

  async function rpcCode(promise: Promise<unknown>): Promise<number> {
    try {
      await promise;
    } catch (error) {
      if (error instanceof McpError) return error.code;
      throw error;
    }
    throw new Error('expected an MCP error');
  }

  beforeAll(async () => {
    alpha = await TestBackend.start('alpha');
    big = await TestBackend.start('big', 300);
    everything = await EverythingServer.start(await freePort());
    t = await startTestApp({
      redis: true,
      env: {
        HEALTH_PROBES: 'false',
        MCP_ALLOW_PRIVATE_NETWORKS: 'true',
        GATEWAY_MCP_EVENTS_PER_STREAM: '5000',
        GATEWAY_MCP_MAX_SESSIONS_PER_CLIENT: '30',
        GATEWAY_MCP_MAX_CALLS_PER_CLIENT: '10',
        METRICS_TOKEN,
      },
    });
    const healthCheck = { failureThreshold: 1, coolDownMs: 60_000, maxCoolDownMs: 60_000 };
    for (const [id, url] of [
      ['alpha', alpha.url],
      ['big', big.url],
      ['everything', everything.url],
      ['broken', `http://127.0.0.1:${await freePort()}/mcp`],
    ]) {
      const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id, name: id, url, healthCheck } });
      expect([res.status, res.text]).toEqual([201, expect.any(String)]);
    }
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: { id: 'bot', name: 'Bot', model: { provider: 'openai', name: 'gpt-5' } } }))
        .status,
    ).toBe(201);
    for (const rule of [
      { agentId: 'bot', mcpServerId: 'alpha', toolPattern: '*', effect: 'allow', priority: 0 },
      { agentId: 'bot', mcpServerId: 'alpha', toolPattern: 'add', effect: 'deny', priority: 10 },
    ]) {
      expect((await api(t.baseUrl, 'POST', '/api/v1/trust-rules', { key: t.adminKey, body: rule })).status).toBe(201);
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await everything?.stop();
    await alpha?.close();
    await big?.close();
    await t?.close();
  }, 120_000);

  it('an admin lists every backend’s tools under namespaced names and calls them', async () => {
    const { client } = await connect(t.adminKey);
    expect(client.getServerVersion()?.name).toBe('agentic-registry-gateway');
    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name);
    expect(names).toEqual(
      expect.arrayContaining(['alpha__echo', 'alpha__add', 'alpha__slow', 'everything__echo', 'everything__trigger-long-running-operation', 'big__extra_0']),
    );
    expect(names.filter((n) => n.startsWith('big__'))).toHaveLength(304);
    expect(names.some((n) => n.startsWith('broken__'))).toBe(false); // unreachable: left out of the list
    expect(await client.callTool({ name: 'alpha__echo', arguments: { text: 'hi' } })).toMatchObject({ content: [{ type: 'text', text: 'alpha:hi' }] });
    const echoed = await client.callTool({ name: 'everything__echo', arguments: { message: 'through the gateway' } });
    expect(JSON.stringify(echoed.content)).toContain('through the gateway');
    expect(alpha.calls).toContainEqual({ tool: 'echo', args: { text: 'hi' } });
  });

  it('forwards resources and prompts under namespaced names', async () => {
    const { client } = await connect(t.adminKey);
    const { resources } = await client.listResources();
    const readme = resources.find((r) => r.name === 'alpha__readme')!;
    expect(readme.uri).toBe('mcp+alpha:file:///alpha/readme.txt');
    expect((await client.readResource({ uri: readme.uri })).contents[0]).toMatchObject({ uri: readme.uri, text: 'readme of alpha' });
    const { prompts } = await client.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('alpha__greet');
    const prompt = await client.getPrompt({ name: 'alpha__greet', arguments: { who: 'Ada' } });
    expect(prompt.messages[0].content).toMatchObject({ text: 'Hello Ada from alpha' });
  });

  it('forwards a backend’s progress as MCP progress', async () => {
    const { client } = await connect(t.adminKey);
    const progress: Progress[] = [];
    const result = await client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    expect(progress.map((p) => p.progress)).toEqual([1, 2, 3, 4]);
    expect(progress.every((p) => p.total === 4)).toBe(true);
  });

  it('a key bound to an agent reaches only what its trust rules allow; an unbound key reaches nothing', async () => {
    const bot = await key({ name: 'bot-key', role: 'viewer', agentId: 'bot' });
    const { client } = await connect(bot);
    const names = (await client.listTools()).tools.map((tool) => tool.name).sort();
    expect(names).toEqual(['alpha__echo', 'alpha__flood', 'alpha__slow']);
    expect(await client.callTool({ name: 'alpha__echo', arguments: { text: 'ok' } })).toMatchObject({ content: [{ text: 'alpha:ok' }] });
    const before = alpha.calls.length;
    expect(await rpcCode(client.callTool({ name: 'alpha__add', arguments: { a: 1, b: 2 } }))).toBe(-32003); // denied by the rule
    expect(await rpcCode(client.callTool({ name: 'everything__echo', arguments: { message: 'x' } }))).toBe(-32003); // no rule: denied
    expect(await rpcCode(client.callTool({ name: 'no-separator', arguments: {} }))).toBe(-32602);
    expect(alpha.calls.length).toBe(before); // nothing refused reached the backend

    const unbound = await key({ name: 'plain-viewer', role: 'viewer' });
    const { client: nobody } = await connect(unbound);
    expect((await nobody.listTools()).tools).toEqual([]);
    expect(await rpcCode(nobody.callTool({ name: 'alpha__echo', arguments: { text: 'x' } }))).toBe(-32003);
  });

  it('a tools/call whose arguments are not an object is -32602 naming params.arguments, on /mcp as on sessions and tool streams', async () => {
    const mcpSession = await plainSession(t.adminKey);
    const headers = { ...ACCEPT, 'mcp-session-id': mcpSession, 'mcp-protocol-version': '2025-11-25' };
    const opened = await api(t.baseUrl, 'POST', '/api/v1/gateway/stream', { key: t.adminKey, body: { servers: ['alpha'] } });
    expect([opened.status, opened.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    const session = opened.body.session_id as string;
    const stream = await SseClient.connect(`${t.baseUrl}/api/v1/gateway/stream/${session}`, { authorization: `Bearer ${t.adminKey}` });
    const invalid = {
      code: -32602,
      message: expect.stringContaining('params.arguments must be an object'),
      data: expect.objectContaining({ field: 'params.arguments' }),
    };
    const before = alpha.calls.length;
    try {
      for (const [i, bad] of ([5, [1, 2], 'text', null] as unknown[]).entries()) {
        const params = { name: 'alpha__echo', arguments: bad };
        // /mcp: the answer on the POST's own stream. Before, the SDK's schema refused it: -32603 and a dump of zod issues.
        const mcp = await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: { jsonrpc: '2.0', id: `m${i}`, method: 'tools/call', params }, headers });
        const answer = /^data: (\{.*\})$/m.exec(mcp.text)?.[1];
        expect([mcp.status, answer && JSON.parse(answer)]).toEqual([200, { jsonrpc: '2.0', id: `m${i}`, error: invalid }]);
        // A streaming session: the error event of the request (before, the backend's own -32603 zod dump).
        const sent = await api(t.baseUrl, 'POST', `/api/v1/gateway/stream/${session}/request`, {
          key: t.adminKey,
          body: { jsonrpc: '2.0', id: `s${i}`, method: 'tools/call', params },
        });
        expect(sent.status).toBe(202);
        const isAnswer = (f: { event: string; data: string }) => f.event !== 'heartbeat' && f.data.includes(`"id":"s${i}"`);
        await stream.waitFor((c) => c.frames.some(isAnswer), 10_000, `the answer to s${i}`);
        const event = stream.frames.find(isAnswer)!;
        expect([event.event, JSON.parse(event.data).error]).toEqual(['error', invalid]);
        // A tool stream: its error event (before, a 400 problem+json with zod's wording).
        const streamed = await api(t.baseUrl, 'POST', '/api/v1/mcp/stream', {
          key: t.adminKey,
          body: { jsonrpc: '2.0', id: `t${i}`, method: 'tools/call', params },
        });
        const error = /^event: error\ndata: (.*)$/m.exec(streamed.text)?.[1];
        expect([streamed.status, error && JSON.parse(error)]).toEqual([200, { jsonrpc: '2.0', id: `t${i}`, error: invalid }]);
      }
      expect(alpha.calls.length).toBe(before); // none reached the backend
    } finally {
      stream.close();
      await api(t.baseUrl, 'DELETE', `/api/v1/gateway/stream/${session}`, { key: t.adminKey });
    }
  });

  it('any request whose params the SDK’s schema refuses is -32602 naming the field; errors reach the SDK client with one "MCP error" prefix', async () => {
    const mcpSession = await plainSession(t.adminKey);
    const headers = { ...ACCEPT, 'mcp-session-id': mcpSession, 'mcp-protocol-version': '2025-11-25' };
    const answer = async (id: string, method: string, params: unknown) => {
      const res = await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: { jsonrpc: '2.0', id, method, params }, headers });
      const data = /^data: (\{.*\})$/m.exec(res.text)?.[1];
      return [res.status, data && (JSON.parse(data) as { error?: unknown }).error];
    };
    // Before: -32603 with a JSON dump of zod issues as the message.
    expect(await answer('r', 'resources/read', { uri: 5 })).toEqual([
      200,
      { code: -32602, message: expect.stringMatching(/^Invalid params: params\.uri: /), data: expect.objectContaining({ field: 'params.uri' }) },
    ]);
    expect(await answer('p', 'prompts/get', { name: 'alpha__x', arguments: 5 })).toEqual([
      200,
      { code: -32602, message: expect.stringMatching(/^Invalid params: params\.arguments: /), data: expect.objectContaining({ field: 'params.arguments' }) },
    ]);
    expect(await answer('n', 'prompts/get', {})).toEqual([
      200,
      expect.objectContaining({ code: -32602, data: expect.objectContaining({ field: 'params.name' }) }),
    ]);
    // The wire message has no prefix of its own (before: "MCP error -32602: MCP error -32602: unknown tool …" on the client).
    const { client } = await connect(t.adminKey);
    const error = await client.callTool({ name: 'nowhere', arguments: {} }).catch((e: unknown) => e);
    expect((error as McpError).message).toMatch(/^MCP error -32602: unknown tool nowhere: /);
  });

  it('an open circuit fails fast', async () => {
    const port = await freePort();
    const body = {
      id: 'down',
      name: 'down',
      url: `http://127.0.0.1:${port}/mcp`,
      healthCheck: { failureThreshold: 1, coolDownMs: 60_000, maxCoolDownMs: 60_000 },
    };
    expect((await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body })).status).toBe(201);
    const { client } = await connect(t.adminKey);
    // The first call finds nothing listening (failureThreshold 1 opens the circuit) ...
    expect(await rpcCode(client.callTool({ name: 'down__anything', arguments: {} }))).toBe(-32002);
    // ... the next is refused without trying.
    expect(await rpcCode(client.callTool({ name: 'down__anything', arguments: {} }))).toBe(-32006);
    const health = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/down/health', { key: t.adminKey });
    expect(health.body.circuit).toMatchObject({ state: 'open' });
  });

  it('a client’s cancellation reaches the backend', async () => {
    const { client } = await connect(t.adminKey);
    const controller = new AbortController();
    let progressed = 0;
    const cancelledBefore = alpha.cancelled;
    const call = client.callTool({ name: 'alpha__slow', arguments: { ms: 20_000 } }, undefined, {
      signal: controller.signal,
      onprogress: () => {
        if (++progressed === 2) controller.abort('changed my mind');
      },
    });
    await expect(call).rejects.toThrow();
    await waitFor(() => alpha.cancelled > cancelledBefore, 10_000);
  });

  it('a client has at most GATEWAY_MCP_MAX_CALLS_PER_CLIENT calls in flight on a replica: one more is -32008 at once, others go on', async () => {
    const k = await key({ name: 'flood', role: 'admin' });
    const { client } = await connect(k);
    // Before, one key held 5,000 calls in flight (50 POSTs of 100) and the replica ~30 KB of memory for each.
    const slow = Array.from({ length: 10 }, () => client.callTool({ name: 'alpha__slow', arguments: { ms: 1500 } }));
    await waitFor(async () => (await metric('registry_mcp_calls_in_flight')) >= 10, 5000, 'ten calls in flight');
    const started = performance.now();
    const refused = await client.callTool({ name: 'alpha__echo', arguments: { text: 'one more' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(McpError);
    expect((refused as McpError).code).toBe(-32008);
    expect((refused as McpError).message).toContain('GATEWAY_MCP_MAX_CALLS_PER_CLIENT');
    expect(await rpcCode(client.listPrompts())).toBe(-32008);
    expect(performance.now() - started).toBeLessThan(1000);
    // Another client is not held up by this one.
    const { client: other } = await connect(t.adminKey);
    expect((await other.callTool({ name: 'alpha__echo', arguments: { text: 'meanwhile' } })).content).toEqual([{ type: 'text', text: 'alpha:meanwhile' }]);
    for (const result of await Promise.all(slow)) expect(result.content).toEqual([{ type: 'text', text: 'slept 1500' }]);
    // Every slot was given back (answered and refused calls alike): the client calls again.
    expect(await metric('registry_mcp_calls_in_flight')).toBe(0);
    expect((await client.callTool({ name: 'alpha__echo', arguments: { text: 'again' } })).content).toEqual([{ type: 'text', text: 'alpha:again' }]);
    const text = (await api(t.baseUrl, 'GET', '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text;
    expect(text).toMatch(/registry_gateway_calls_total\{[^}]*server="alpha"[^}]*method="tools\/call"[^}]*outcome="overloaded"[^}]*\} 1\b/);
  });

  it('deferred loading: only search_tools and activate_tools, then the activated tools with tools/list_changed', async () => {
    const { client } = await connect(t.adminKey, '?deferred=true');
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['search_tools', 'activate_tools']);
    const found = await client.callTool({ name: 'search_tools', arguments: { query: 'signing keys' } });
    expect(found.structuredContent).toMatchObject({ tools: [{ name: 'big__extra_137', active: false }] });
    // Not callable before it is activated (it is not listed either).
    expect(await rpcCode(client.callTool({ name: 'big__extra_137', arguments: {} }))).toBe(-32602);
    const activated = await client.callTool({ name: 'activate_tools', arguments: { names: ['big__extra_137', 'alpha__echo', 'nope__nothing'] } });
    expect(activated.structuredContent).toEqual({ added: ['big__extra_137', 'alpha__echo'], alreadyActive: [], unknown: ['nope__nothing'] });
    await waitFor(() => changed >= 1, 10_000);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['search_tools', 'activate_tools', 'big__extra_137', 'alpha__echo']);
    expect(await client.callTool({ name: 'big__extra_137', arguments: {} })).toMatchObject({ content: [{ text: 'extra 137' }] });
  });

  it('a session belongs to its principal: another key, an unknown id, a deleted session get 404', async () => {
    const { transport } = await connect(t.adminKey);
    const sessionId = transport.sessionId!;
    const other = await key({ name: 'other-admin', role: 'admin' });
    const list = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    const headers = { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const asOther = await api(t.baseUrl, 'POST', '/mcp', { key: other, body: list, headers: { ...headers, 'mcp-session-id': sessionId } });
    expect(asOther.status).toBe(404);
    expect((await api(t.baseUrl, 'GET', '/mcp', { key: other, headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId } })).status).toBe(404);
    expect((await api(t.baseUrl, 'DELETE', '/mcp', { key: other, headers: { 'mcp-session-id': sessionId } })).status).toBe(404);
    const unknown = await api(t.baseUrl, 'POST', '/mcp', {
      key: t.adminKey,
      body: list,
      headers: { ...headers, 'mcp-session-id': '00000000-0000-4000-8000-000000000000' },
    });
    expect(unknown.status).toBe(404);
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: list, headers: { ...headers, 'mcp-session-id': 'x'.repeat(5000) } })).status).toBe(
      404,
    );
    // The owner still has it; after DELETE nobody does.
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: list, headers: { ...headers, 'mcp-session-id': sessionId } })).status).toBe(200);
    await transport.terminateSession();
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: list, headers: { ...headers, 'mcp-session-id': sessionId } })).status).toBe(404);
  });

  it('a resumed stream whose reader stops reading is paced, not cut: once it reads again it gets every event, in order', async () => {
    const { transport } = await connect(t.adminKey);
    const url = new URL(t.baseUrl);
    const session = `Authorization: Bearer ${t.adminKey}\r\nMcp-Session-Id: ${transport.sessionId}\r\nMcp-Protocol-Version: 2025-11-25\r\n`;
    // 3,000 progress notifications of 2 KB: 6 MB, more than loopback's buffers and the replica's STREAM_MAX_BUFFER_BYTES (1 MB),
    // read back from the store in 30 pages.
    const count = 3000;
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 'flood',
      method: 'tools/call',
      params: { name: 'alpha__flood', arguments: { count, size: 2000 }, _meta: { progressToken: 'p' } },
    });
    // The call's own stream, read up to its priming event (an id to resume from), then cut; the call goes on.
    const primed = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = connectTcp(Number(url.port), url.hostname, () =>
        socket.write(
          `POST /mcp HTTP/1.1\r\nHost: x\r\n${session}Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        ),
      );
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const id = /^id: (\S+)$/m.exec(text)?.[1];
        if (id) {
          socket.destroy();
          resolve(id);
        }
      });
      socket.on('error', reject);
    });
    // Resumed on a raw socket that stops reading once the response head is in.
    let raw = '';
    let closed = false;
    const stalled = await new Promise<Socket>((resolve, reject) => {
      const socket = connectTcp(Number(url.port), url.hostname, () => {
        socket.write(`GET /mcp HTTP/1.1\r\nHost: x\r\n${session}Accept: text/event-stream\r\nLast-Event-ID: ${primed}\r\n\r\n`);
        resolve(socket);
      });
      socket.on('error', reject);
      socket.on('close', () => (closed = true));
      socket.on('data', (d: Buffer) => (raw += d.toString('latin1')));
    });
    await waitFor(() => raw.includes('\r\n\r\n'), 5000, 'the resumed stream open');
    expect(raw).toMatch(/^HTTP\/1\.1 200/);
    stalled.pause();
    await waitFor(() => alpha.calls.some((c) => c.tool === 'flood done'), 30_000, 'the backend done flooding');
    // Time for the replica to push everything it would (the old writer cut the stream here as a slow consumer).
    await new Promise((r) => setTimeout(r, 1500));
    expect(closed).toBe(false);
    stalled.resume();
    await waitFor(() => raw.includes(`flooded ${count}`), 30_000, 'the answer on the resumed stream');
    const messages = [...raw.matchAll(/^data: (\{.*\})$/gm)].map((m) => JSON.parse(m[1]) as { method?: string; id?: string; params?: { progress: number } });
    expect(messages.filter((m) => m.method === 'notifications/progress').map((m) => m.params!.progress)).toEqual([...Array(count).keys()].map((i) => i + 1));
    expect(messages.at(-1)).toMatchObject({ id: 'flood', result: { content: [{ text: `flooded ${count}` }] } });
    await waitFor(() => raw.endsWith('\r\n0\r\n\r\n'), 10_000, 'the request stream ended (its last chunk) after its answer');
    stalled.destroy();
  }, 60_000);

  it('a revoked key’s streams end at once: its running call is cancelled at the backend, its GET stream ended', async () => {
    const created = await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: t.adminKey, body: { name: 'revoked-mcp', role: 'admin' } });
    expect(created.status).toBe(201);
    const revoked = created.body.key as string;
    const sessionId = await plainSession(revoked);
    const session = `Authorization: Bearer ${revoked}\r\nMcp-Session-Id: ${sessionId}\r\nMcp-Protocol-Version: 2025-11-25\r\n`;
    const get = raw(`GET /mcp HTTP/1.1\r\nHost: x\r\n${session}Accept: text/event-stream\r\n\r\n`);
    const post = rawPost(session, {
      jsonrpc: '2.0',
      id: 'slow',
      method: 'tools/call',
      params: { name: 'alpha__slow', arguments: { ms: 20_000 }, _meta: { progressToken: 's' } },
    });
    await waitFor(() => get.text.includes('\r\n\r\n') && post.text.includes('notifications/progress'), 10_000, 'both streams open, the call running');
    expect(get.text).toMatch(/^HTTP\/1\.1 200/);
    const cancelledBefore = alpha.cancelled;
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: t.adminKey })).status).toBe(204);
    await waitFor(() => post.closed, 10_000, 'the call’s stream cut');
    await waitFor(() => get.closed || get.text.endsWith('\r\n0\r\n\r\n'), 10_000, 'the GET stream ended');
    await waitFor(() => alpha.cancelled > cancelledBefore, 10_000, 'the call cancelled at the backend');
    expect(post.text).not.toContain('slept 20000');
    const again = await api(t.baseUrl, 'POST', '/mcp', {
      key: revoked,
      body: { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      headers: { accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
    });
    expect(again.status).toBe(401);
    get.socket.destroy();
  }, 60_000);

  it('refuses no credentials, a foreign Origin, bad JSON, a request without a session and a bad Last-Event-ID', async () => {
    const init = INIT;
    const accept = ACCEPT;
    expect((await api(t.baseUrl, 'POST', '/mcp', { body: init, headers: accept })).status).toBe(401);
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: 'ar_not_a_real_key_000000000000', body: init, headers: accept })).status).toBe(401);
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: init, headers: { ...accept, origin: 'https://evil.example' } })).status).toBe(403);
    expect(
      (await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, rawBody: '{"jsonrpc":', headers: { ...accept, 'content-type': 'application/json' } })).status,
    ).toBe(400);
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' }, headers: accept })).status).toBe(
      400,
    );
    expect((await api(t.baseUrl, 'POST', '/mcp?deferred=maybe', { key: t.adminKey, body: init, headers: accept })).status).toBe(400);
    const huge = { ...init, params: { ...init.params, clientInfo: { name: 'x'.repeat(300_000), version: '1' } } };
    expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: huge, headers: accept })).status).toBe(413);

    const { transport } = await connect(t.adminKey);
    const get = (lastEventId: string) =>
      api(t.baseUrl, 'GET', '/mcp', {
        key: t.adminKey,
        headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId!, 'last-event-id': lastEventId },
      });
    expect((await get('garbage')).status).toBe(400);
    expect((await get('../../etc@1-1')).status).toBe(400);
    // Entries are 64-bit: a larger one was never issued (Redis would refuse to read after it, once a second, forever).
    expect((await get('_GET_stream@18446744073709551616-0')).status).toBe(400);
    const sessionHeaders = { ...accept, 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' };
    const empty = await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, rawBody: '[]', headers: { ...sessionHeaders, 'content-type': 'application/json' } });
    expect([empty.status, empty.body.error?.code]).toEqual([400, -32600]);
  });

  it('a POST’s answer is held a few ms at most: a slow call’s head and priming event come at once, its progress as it goes', async () => {
    const { transport } = await connect(t.adminKey);
    const session = `Authorization: Bearer ${t.adminKey}\r\nMcp-Session-Id: ${transport.sessionId}\r\nMcp-Protocol-Version: 2025-11-25\r\n`;
    const started = performance.now();
    const post = rawPost(session, {
      jsonrpc: '2.0',
      id: 'held',
      method: 'tools/call',
      params: { name: 'alpha__slow', arguments: { ms: 1500 }, _meta: { progressToken: 'h' } },
    });
    // The quick answer is held (one write for head, priming event, answer and end); this one is not waited for.
    await waitFor(() => /^id: \S+$/m.test(post.text), 5000, 'the priming event');
    expect(post.text).toMatch(/^HTTP\/1\.1 200/);
    expect(performance.now() - started).toBeLessThan(1000);
    await waitFor(() => post.text.includes('notifications/progress'), 5000, 'the first progress');
    expect(post.text).not.toContain('slept 1500');
    await waitFor(() => post.text.endsWith('\r\n0\r\n\r\n'), 10_000, 'the answer and the end');
    expect(post.text).toContain('slept 1500');
    expect(post.text.match(/notifications\/progress/g)).toHaveLength(30);
    post.socket.destroy();
  });

  it('a call the client cancelled ends its own stream (answered "cancelled"); an id already in progress is refused', async () => {
    const { transport } = await connect(t.adminKey);
    const session = `Authorization: Bearer ${t.adminKey}\r\nMcp-Session-Id: ${transport.sessionId}\r\nMcp-Protocol-Version: 2025-11-25\r\n`;
    const post = rawPost(session, {
      jsonrpc: '2.0',
      id: 'to-cancel',
      method: 'tools/call',
      params: { name: 'alpha__slow', arguments: { ms: 20_000 }, _meta: { progressToken: 'c' } },
    });
    await waitFor(() => post.text.includes('notifications/progress'), 10_000, 'the call running');
    const headers = { accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-11-25' };
    // The SDK maps an answer to its stream by id: a second request with the running one's id would take its stream.
    const twin = await api(t.baseUrl, 'POST', '/mcp', {
      key: t.adminKey,
      body: { jsonrpc: '2.0', id: 'to-cancel', method: 'tools/call', params: { name: 'alpha__echo', arguments: { text: 'twin' } } },
      headers,
    });
    expect([twin.status, twin.body.error?.code]).toEqual([400, -32600]);
    const cancelledBefore = alpha.cancelled;
    const cancel = await api(t.baseUrl, 'POST', '/mcp', {
      key: t.adminKey,
      body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'to-cancel', reason: 'no longer needed' } },
      headers,
    });
    expect(cancel.status).toBe(202);
    // The SDK drops a cancelled call's result: without an answer its stream (and connection) stayed open for the session's life.
    await waitFor(() => post.text.endsWith('\r\n0\r\n\r\n'), 10_000, 'the cancelled call’s stream ended');
    expect(post.text).toContain('"id":"to-cancel","error":{"code":-32800');
    expect(post.text).not.toContain('slept 20000');
    await waitFor(() => alpha.cancelled > cancelledBefore, 10_000, 'the call cancelled at the backend');
    post.socket.destroy();
  }, 30_000);

  it('GET streams whose clients left while the session and slot were looked up are ended, their slots given back', async () => {
    const k = await key({ name: 'leaver', role: 'admin' });
    const { transport } = await connect(k);
    await sleep(500); // the SDK client's own standalone stream is open by now
    const before = await metric('registry_mcp_streams');
    const head = `GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${k}\r\nMcp-Session-Id: ${transport.sessionId}\r\nAccept: text/event-stream\r\n\r\n`;
    const url = new URL(t.baseUrl);
    // Each client hangs up a few ms after asking: while the replica waits on Redis for the stream's position and the slot.
    for (let i = 0; i < 60; i++) {
      const socket = connectTcp(Number(url.port), url.hostname, () => {
        socket.write(head);
        setTimeout(() => socket.destroy(), i % 6);
      });
      socket.on('error', () => undefined);
      if (i % 10 === 9) await sleep(20);
    }
    await sleep(1500);
    // Before, some were never ended: no socket, a slot held, keep-alives written to nothing, until the session was deleted.
    expect(await metric('registry_mcp_streams')).toBeLessThanOrEqual(before);
  }, 30_000);

  it('an initialize the SDK refuses keeps no session; a Host that makes no URL is not a 500', async () => {
    const init = INIT;
    const before = await metric('registry_mcp_sessions');
    for (let i = 0; i < 10; i++) {
      // 406: a POST must accept both JSON and SSE.
      expect((await api(t.baseUrl, 'POST', '/mcp', { key: t.adminKey, body: init, headers: { accept: 'application/json' } })).status).toBe(406);
    }
    expect(await metric('registry_mcp_sessions')).toBeLessThanOrEqual(before);
    const body = JSON.stringify(init);
    const bad = raw(
      `POST /mcp HTTP/1.1\r\nHost: [bad\r\nAuthorization: Bearer ${t.adminKey}\r\nAccept: application/json, text/event-stream\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await waitFor(() => bad.text.includes('\r\n\r\n'), 5000, 'an answer');
    expect(bad.text).toMatch(/^HTTP\/1\.1 200/);
    bad.socket.destroy();
  });

  it('one standalone stream per session: a newer one ends the older (a message goes out on one stream, never on several)', async () => {
    const sessionId = await plainSession(t.adminKey);
    const head = `GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminKey}\r\nMcp-Session-Id: ${sessionId}\r\nAccept: text/event-stream\r\n\r\n`;
    const older = raw(head);
    await waitFor(() => older.text.includes('\r\n\r\n'), 5000, 'the first stream open');
    const newer = raw(head);
    await waitFor(() => newer.text.includes('\r\n\r\n'), 5000, 'the second stream open');
    // Before, both stayed open and both got every message (tools/list_changed twice).
    await waitFor(() => older.closed || older.text.endsWith('\r\n0\r\n\r\n'), 5000, 'the older stream ended');
    await sleep(500);
    expect(newer.closed || newer.text.endsWith('\r\n0\r\n\r\n')).toBe(false);
    older.socket.destroy();
    newer.socket.destroy();
  });

  it('a client holds at most GATEWAY_MCP_MAX_SESSIONS_PER_CLIENT sessions: a new one ends the least recently used', async () => {
    const k = await key({ name: 'many-sessions', role: 'admin' });
    const list = (id: string) =>
      api(t.baseUrl, 'POST', '/mcp', {
        key: k,
        body: { jsonrpc: '2.0', id: 1, method: 'prompts/list' },
        headers: { ...ACCEPT, 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' },
      }).then((r) => r.status);
    // Sessions that answered only their initialize: the first request after it marks a session used (later ones
    // only every 5 s, so "least recently used" is to within 5 s).
    const open = async () => {
      const res = await api(t.baseUrl, 'POST', '/mcp', { key: k, body: INIT, headers: ACCEPT });
      expect(res.status).toBe(200);
      return res.headers.get('mcp-session-id')!;
    };
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await open());
    expect(await list(ids[0])).toBe(200); // the first, used again: now the most recently used
    for (let i = 0; i < 3; i++) ids.push(await open());
    // Before, one key opened 4,000 sessions in 4 s, all kept for the TTL (an hour).
    await waitFor(async () => (await list(ids[1])) === 404, 5000, 'the least recently used ended');
    expect([await list(ids[2]), await list(ids[3])]).toEqual([404, 404]);
    for (const id of [ids[0], ...ids.slice(4)]) expect(await list(id)).toBe(200);
  }, 60_000);

  it('a resumed standalone stream gets its head at once; an id ahead of the stream goes on from its end', async () => {
    const sessionId = await plainSession(t.adminKey);
    const stream = raw(
      `GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.adminKey}\r\nMcp-Session-Id: ${sessionId}\r\n` +
        `Accept: text/event-stream\r\nLast-Event-ID: _GET_stream@99999999999999-0\r\n\r\n`,
    );
    // Before, the head waited for the first event or keep-alive (30 s).
    await waitFor(() => stream.text.includes('\r\n\r\n'), 5000, 'the response head');
    expect(stream.text).toMatch(/^HTTP\/1\.1 200/);
    // What the client can reach changes: every session is told on its standalone stream (before, this one waited for an
    // entry that never comes, and lost it).
    const added = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id: 'gamma', name: 'gamma', url: alpha.url } });
    expect(added.status).toBe(201);
    try {
      await waitFor(() => stream.text.includes('notifications/tools/list_changed'), 15_000, 'tools/list_changed on the resumed stream');
    } finally {
      expect((await api(t.baseUrl, 'DELETE', '/api/v1/mcp-servers/gamma', { key: t.adminKey })).status).toBe(204);
      stream.socket.destroy();
    }
  }, 30_000);
});
