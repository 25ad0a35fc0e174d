import type http from 'node:http';
import {
  callToolStream,
  isBroadcastMethod,
  JsonRpcError,
  namespaced,
  openSession,
  parseNamespaced,
  RequestTimeoutError,
  SessionClosedError,
  type ToolStreamEvent,
} from '../src/index.js';
import { frame, json, problem, ProtocolServer, sseHead, waitUntil } from './protocol-server.js';

/**
 * The gateway protocol as README's "MCP gateway" section documents it, spoken
 * by a real local HTTP server: sessions (POST, the SSE stream with ids and
 * Last-Event-ID, POST …/request → 202, DELETE) and tool streams.
 */
class FakeGateway {
  events: { id: number; event: string; data: unknown }[] = [];
  streams = new Set<http.ServerResponse>();
  requests: Record<string, unknown>[] = [];
  deleted = false;
  /** What to do with each JSON-RPC request. */
  onRequest: (req: { id: number; method: string; params?: any }) => void = () => undefined;

  push(event: string, data: unknown): void {
    const e = { id: this.events.length, event, data };
    this.events.push(e);
    for (const res of this.streams) frame(res, e.event, e.data, e.id);
  }

  handle = (req: http.IncomingMessage & { body: string }, res: http.ServerResponse): void => {
    const url = req.url!;
    if (req.method === 'POST' && url === '/api/v1/gateway/stream') {
      const body = JSON.parse(req.body) as { servers: string[] };
      if (body.servers.includes('full')) return problem(res, 429, 'too_many_requests', 'at most 5 sessions per client');
      return json(res, 201, {
        session_id: 's1',
        stream_url: '/api/v1/gateway/stream/s1',
        request_url: '/api/v1/gateway/stream/s1/request',
        servers: body.servers.map((id) => ({ id, status: 'ready' })),
      });
    }
    if (req.method === 'GET' && url === '/api/v1/gateway/stream/s1') {
      if (this.deleted) return problem(res, 404, 'not_found', 'no such session');
      sseHead(res);
      const after = req.headers['last-event-id'] === undefined ? -1 : Number(req.headers['last-event-id']);
      for (const e of this.events.filter((x) => x.id > after)) frame(res, e.event, e.data, e.id);
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    if (req.method === 'POST' && url === '/api/v1/gateway/stream/s1/request') {
      const body = JSON.parse(req.body) as { id: number; method: string; params?: unknown };
      this.requests.push(body);
      json(res, 202, { request_id: `q${body.id}` });
      if (body.id !== undefined) this.onRequest(body);
      return;
    }
    if (req.method === 'DELETE' && url === '/api/v1/gateway/stream/s1') {
      this.deleted = true;
      for (const s of this.streams) s.end();
      res.writeHead(204).end();
      return;
    }
    problem(res, 404, 'not_found', url);
  };
}

describe('gateway sessions against a local server speaking the documented protocol', () => {
  let server: ProtocolServer;
  let gw: FakeGateway;
  beforeEach(async () => {
    gw = new FakeGateway();
    server = await ProtocolServer.start(gw.handle);
  });
  afterEach(async () => server.stop());

  it('correlates responses by id (also across a dropped stream, resumed with Last-Event-ID), reassembles chunked results, types errors', async () => {
    gw.onRequest = (r) => {
      if (r.method === 'tools/list') gw.push('response', { request_id: `q${r.id}`, jsonrpc: '2.0', id: r.id, result: { tools: [{ name: 'a__x' }] } });
      if (r.method === 'big') {
        const text = JSON.stringify({ blob: 'x'.repeat(50) });
        gw.push('chunk', { request_id: `q${r.id}`, id: r.id, index: 0, count: 2, data: text.slice(0, 20) });
        gw.push('chunk', { request_id: `q${r.id}`, id: r.id, index: 1, count: 2, data: text.slice(20) });
        gw.push('response', { request_id: `q${r.id}`, jsonrpc: '2.0', id: r.id, result_chunks: 2 });
      }
      if (r.method === 'a__fail')
        gw.push('error', { request_id: `q${r.id}`, jsonrpc: '2.0', id: r.id, error: { code: -32003, message: 'denied', data: { reason: 'denied' } } });
      if (r.method === 'a__slow')
        gw.push('error', { request_id: `q${r.id}`, jsonrpc: '2.0', id: r.id, error: { code: -32001, message: 'no answer within 60000 ms' } });
      if (r.method === 'after-drop') {
        // The stream drops; the answer is produced while it is down and must come with the resume.
        server.cutAll();
        setTimeout(() => gw.push('response', { request_id: `q${r.id}`, jsonrpc: '2.0', id: r.id, result: { resumed: true } }), 20);
      }
    };
    const session = await openSession({ baseUrl: server.url, apiKey: 'k', servers: ['a', 'b'], backoff: { initialMs: 10, maxMs: 50 } });
    expect(session.id).toBe('s1');
    expect(session.servers).toEqual([
      { id: 'a', status: 'ready' },
      { id: 'b', status: 'ready' },
    ]);
    await waitUntil(() => gw.streams.size === 1, 5000, 'the stream');
    expect(await session.request('tools/list')).toEqual({ tools: [{ name: 'a__x' }] });
    expect(await session.request('big')).toEqual({ blob: 'x'.repeat(50) });
    const denied = await session.request<unknown>('a__fail').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(JsonRpcError);
    expect(denied).toMatchObject({ code: -32003, message: 'denied', data: { reason: 'denied' } });
    await expect(session.request('a__slow')).rejects.toBeInstanceOf(RequestTimeoutError);

    const before = server.requests.filter((r) => r.method === 'GET').length;
    expect(await session.request('after-drop')).toEqual({ resumed: true });
    const gets = server.requests.filter((r) => r.method === 'GET');
    expect(gets.length).toBe(before + 1);
    expect(gets.at(-1)!.headers['last-event-id']).toBe(String(gw.events.length - 2)); // the last id before the answer

    await session.close();
    expect(gw.deleted).toBe(true);
    await expect(session.request('tools/list')).rejects.toBeInstanceOf(SessionClosedError);
  });

  it('a client timeout or an abort rejects and sends notifications/cancelled; a gone session closes with its reason; 429 is an HttpError', async () => {
    const session = await openSession({ baseUrl: server.url, servers: ['a'], requestTimeoutMs: 100 });
    const timeouts: unknown[] = [];
    session.addEventListener('request-timeout', (e) => timeouts.push((e as CustomEvent).detail));
    const slow = await session.request<unknown>('never').catch((e: unknown) => e);
    expect(slow).toMatchObject({ name: 'RequestTimeoutError', timeoutMs: 100 });
    expect(timeouts).toEqual([{ id: 1, method: 'never' }]);
    const ac = new AbortController();
    const aborted = session.request<unknown>('never', undefined, { signal: ac.signal, timeoutMs: 10_000 }).catch((e: unknown) => e);
    ac.abort();
    expect(await aborted).toMatchObject({ name: 'AbortError' });
    await waitUntil(() => gw.requests.filter((r) => r.method === 'notifications/cancelled').length === 2, 5000, 'two cancellations');
    expect(gw.requests.filter((r) => r.method === 'notifications/cancelled').map((r) => r.params)).toEqual([{ requestId: 1 }, { requestId: 2 }]);

    let reason = '';
    session.addEventListener('closed', (e) => (reason = (e as CustomEvent<{ reason: string }>).detail.reason));
    gw.deleted = true; // expired at the gateway: the stream ends, the resume gets 404
    server.cutAll();
    await waitUntil(() => reason !== '', 5000, 'closed');
    expect(reason).toBe('the session is gone (expired or closed)');

    await expect(openSession({ baseUrl: server.url, servers: ['full'] })).rejects.toMatchObject({ name: 'HttpError', status: 429 });
  });

  it('namespacing helpers', () => {
    expect(namespaced('github', 'create_issue')).toBe('github__create_issue');
    expect(parseNamespaced('github__create__issue')).toEqual({ serverId: 'github', name: 'create__issue' });
    expect(parseNamespaced('Git_Hub__x')).toBeNull();
    expect(parseNamespaced('github__')).toBeNull();
    expect(parseNamespaced('tools/list')).toBeNull();
    expect(isBroadcastMethod('tools/list')).toBe(true);
    expect(isBroadcastMethod('tools/call')).toBe(false);
  });
});

describe('callToolStream against a local server', () => {
  let server: ProtocolServer;
  afterEach(async () => server.stop());

  it('yields start, progress, result, complete and returns the response; an error event is a JsonRpcError; return() disconnects', async () => {
    let closedEarly = 0;
    server = await ProtocolServer.start((req, res) => {
      const body = JSON.parse(req.body) as { id: string; params: { name: string } };
      sseHead(res);
      const send = (event: string | null, data: string) => res.write(`${event ? `event: ${event}\n` : ''}data: ${data}\n\n`);
      if (body.params.name === 'a__ok') {
        send('start', JSON.stringify({ id: body.id, server: 'a', tool: 'ok' }));
        send('progress', JSON.stringify({ progress: 1, total: 2, message: 'half' }));
        send('progress', JSON.stringify({ progress: 2, total: 2 }));
        send('result', JSON.stringify({ content: [{ type: 'text', text: 'done' }] }));
        send('complete', '{"duration_ms":12.5}');
        send(null, JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: 'done' }] } }));
        send(null, '[DONE]');
        res.end();
      } else if (body.params.name === 'a__denied') {
        send('start', '{}');
        send('error', JSON.stringify({ jsonrpc: '2.0', id: body.id, error: { code: -32003, message: 'denied by a trust rule' } }));
        send(null, '[DONE]');
        res.end();
      } else {
        send('start', '{}');
        res.on('close', () => closedEarly++);
      }
    });
    const events: ToolStreamEvent[] = [];
    const it = callToolStream({ baseUrl: server.url }, 'a', 'ok', { n: 1 });
    let step = await it.next();
    while (!step.done) {
      events.push(step.value);
      step = await it.next();
    }
    expect(events).toEqual([
      { type: 'start', data: expect.objectContaining({ tool: 'ok' }) as unknown },
      { type: 'progress', progress: 1, total: 2, message: 'half' },
      { type: 'progress', progress: 2, total: 2, message: undefined },
      { type: 'result', result: { content: [{ type: 'text', text: 'done' }] } },
      { type: 'complete', durationMs: 12.5 },
    ]);
    expect(step.value).toMatchObject({ jsonrpc: '2.0', result: { content: [{ text: 'done' }] } });
    expect(JSON.parse(server.requests[0].body)).toMatchObject({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'a__ok', arguments: { n: 1 } } });

    const denied = await (async () => {
      for await (const _ of callToolStream({ baseUrl: server.url }, 'a', 'denied')) void _;
    })().catch((e: unknown) => e);
    expect(denied).toMatchObject({ name: 'JsonRpcError', code: -32003, message: 'denied by a trust rule' });

    // return() while the next() waits on a call that says nothing more: takes effect at once and disconnects.
    const hanging = callToolStream({ baseUrl: server.url }, 'a', 'hang');
    expect((await hanging.next()).value).toMatchObject({ type: 'start' });
    const pending = hanging.next();
    await hanging.return(undefined);
    expect(await pending).toMatchObject({ done: true });
    await waitUntil(() => closedEarly === 1, 5000, 'the call disconnected');
  });
});
