import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent } from 'undici';
import { z } from 'zod';
import { retryOnStaleSession, StaleBackendSession } from './backend-connector.js';
import { BackendPool } from './backend-pool.js';
import type { GatewayError } from './gateway-errors.js';
import { connectorFor } from '../../../test/support/backend-connector.js';

/**
 * A backend session judged dead closes itself (calls in flight fail at once,
 * pools open a new one); one that survives a transient transport error is
 * kept. Against a real SDK server in this process (stateful Streamable HTTP).
 */

class Backend {
  readonly transports = new Map<string, StreamableHTTPServerTransport>();
  readonly sockets = new Set<Socket>();
  waiting = 0;
  /** The methods of every JSON-RPC message POSTed to it, in order. */
  readonly posted: string[] = [];
  readonly server = http.createServer((req, res) => void this.handle(req, res));

  /** With `resumable`, its streams are resumable (an event store): each POST's stream opens with a priming event. */
  constructor(private readonly resumable = false) {}

  private build(): McpServer {
    const server = new McpServer({ name: 'unit', version: '1.0.0' });
    server.registerTool('echo', { inputSchema: { text: z.string() } }, ({ text }) => ({ content: [{ type: 'text', text }] }));
    server.registerTool('wait', {}, async (extra) => {
      this.waiting++;
      await new Promise((resolve) => extra.signal.addEventListener('abort', resolve, { once: true }));
      return { content: [] };
    });
    return server;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body: unknown = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    for (const m of Array.isArray(body) ? body : [body]) if (m && typeof m === 'object' && 'method' in m) this.posted.push(String(m.method));
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') {
      const transport = this.transports.get(id);
      if (!transport) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
        return;
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      res.writeHead(400).end();
      return;
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void this.transports.set(sid, transport),
      ...(this.resumable ? { eventStore: new InMemoryEventStore() } : {}),
    });
    await this.build().connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async start(port = 0): Promise<string> {
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/mcp`;
  }

  /** Dies: every connection reset, nothing listening any more. */
  async kill(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.resetAndDestroy();
    await closed;
  }
}

describe('BackendConnector: dead backend sessions', () => {
  const backends: Backend[] = [];
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.kill().catch(() => undefined);
  });
  const backend = async (resumable = false) => {
    const b = new Backend(resumable);
    backends.push(b);
    return { b, url: await b.start() };
  };

  it.each([
    ['', false],
    [' (a resumable stream: the ping finds the backend dead while the resume waits)', true],
  ])(
    'fails a call in flight at once when the backend dies mid-call, and closes the session%s',
    async (_, resumable) => {
      const { b, url } = await backend(resumable);
      const { connector } = connectorFor(url);
      const session = await connector.open('b', { timeoutMs: 30_000 });
      const call = session.callTool('wait', {}, { timeoutMs: 60_000 });
      const outcome = call.then(
        () => 'answered',
        (e: GatewayError) => e,
      );
      for (let i = 0; i < 500 && b.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
      // The tool runs before its stream's head has reached the client: killed then, the POST itself would fail.
      await new Promise((r) => setTimeout(r, 100));
      const killed = performance.now();
      await b.kill();
      const error = await outcome;
      expect(performance.now() - killed).toBeLessThan(10_000);
      expect(error).toMatchObject({ code: 'backend', message: expect.stringContaining('was lost') });
      expect(session.closed).toBe(true);
    },
    30_000,
  );

  it('takes a resumable stream’s priming event (an id, no data) for what it is: no transport error, so no ping', async () => {
    const { b, url } = await backend(true);
    const { connector } = connectorFor(url);
    const session = await connector.open('b', { timeoutMs: 30_000 });
    for (let i = 0; i < 5; i++) expect(await session.callTool('echo', { text: `t${i}` })).toMatchObject({ content: [{ text: `t${i}` }] });
    await new Promise((r) => setTimeout(r, 100));
    expect(b.posted.filter((m) => m === 'ping')).toEqual([]);
    await session.close();
  });

  it('closes a session the backend no longer knows (404) without counting it against the circuit', async () => {
    const { b, url } = await backend();
    const { connector, breaker } = connectorFor(url);
    const session = await connector.open('b', { timeoutMs: 30_000 });
    expect(await session.callTool('echo', { text: 'a' })).toMatchObject({ content: [{ text: 'a' }] });
    b.transports.clear(); // as after a restart
    await expect(session.callTool('echo', { text: 'b' })).rejects.toMatchObject({ code: 'backend', message: expect.stringContaining('no longer knows') });
    expect(session.closed).toBe(true);
    expect(breaker.failures).toEqual([]);
    const fresh = await connector.open('b', { timeoutMs: 30_000 });
    expect(await fresh.callTool('echo', { text: 'c' })).toMatchObject({ content: [{ text: 'c' }] });
    await fresh.close();
  }, 30_000);

  it('sends notifications/cancelled for a call aborted in flight, and none when the signal aborts after the answer', async () => {
    const { b, url } = await backend();
    const { connector } = connectorFor(url);
    const session = await connector.open('b', { timeoutMs: 30_000 });
    // A tool stream aborts its call's signal when its client goes, which is after the answer for every call that ends.
    const done = new AbortController();
    expect(await session.callTool('echo', { text: 'a' }, { signal: done.signal })).toMatchObject({ content: [{ text: 'a' }] });
    done.abort(new Error('the client went away'));
    const running = new AbortController();
    const call = session.callTool('wait', {}, { signal: running.signal, timeoutMs: 30_000 });
    for (let i = 0; i < 500 && b.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
    running.abort(new Error('the client went away'));
    await expect(call).rejects.toMatchObject({ code: 'cancelled' });
    for (let i = 0; i < 500 && !b.posted.includes('notifications/cancelled'); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(b.posted.filter((m) => m !== 'notifications/initialized')).toEqual(['initialize', 'tools/call', 'tools/call', 'notifications/cancelled']);
    await session.close();
  }, 30_000);

  it('makes a call refused 404 (the backend forgot the session) once more on a new session: at most once, and not after a timeout', async () => {
    const { b, url } = await backend();
    let forgetEveryCall = false;
    let callPosts = 0;
    class Forgetful extends Agent {
      override request(...args: Parameters<Agent['request']>): ReturnType<Agent['request']> {
        const [opts] = args;
        if (opts.method === 'POST' && typeof opts.body === 'string' && opts.body.includes('"tools/call"')) {
          callPosts++;
          if (forgetEveryCall) b.transports.clear();
        }
        return super.request(...args);
      }
    }
    const { connector, breaker } = connectorFor(url, { dispatcher: new Forgetful() });
    const pool = new BackendPool(connector, 30_000, () => undefined);
    const call = (name: string, args: Record<string, unknown>, timeoutMs = 30_000) =>
      retryOnStaleSession(
        () => pool.get('b'),
        (s) => s.callTool(name, args, { timeoutMs }),
      );
    expect(await call('echo', { text: 'a' })).toMatchObject({ content: [{ text: 'a' }] });
    b.transports.clear(); // as after a restart
    callPosts = 0;
    expect(await call('echo', { text: 'b' })).toMatchObject({ content: [{ text: 'b' }] });
    expect(callPosts).toBe(2); // refused on the stale session, then made on a new one
    // Calls in flight together on a stale session: each refused on it (none rejected as "connection closed" by
    // another's 404), each made once on the new one.
    b.transports.clear();
    callPosts = 0;
    const texts = ['c1', 'c2', 'c3', 'c4', 'c5'];
    expect(await Promise.all(texts.map((text) => call('echo', { text })))).toEqual(
      texts.map((text) => expect.objectContaining({ content: [{ type: 'text', text }] })),
    );
    expect(callPosts).toBe(10);
    // A call that took the session from the pool just before another call's 404 retired it: refused as stale
    // before anything is sent (not "the session is closed"), then made on the new session.
    b.transports.clear();
    callPosts = 0;
    const held = await pool.get('b');
    expect(await call('echo', { text: 'd1' })).toMatchObject({ content: [{ text: 'd1' }] });
    expect(held.closed).toBe(true);
    await expect(held.callTool('echo', { text: 'x' }, { timeoutMs: 30_000 })).rejects.toBeInstanceOf(StaleBackendSession);
    let taken = false;
    const fromHeld = retryOnStaleSession(
      () => (taken ? pool.get('b') : ((taken = true), Promise.resolve(held))),
      (s) => s.callTool('echo', { text: 'd2' }, { timeoutMs: 30_000 }),
    );
    expect(await fromHeld).toMatchObject({ content: [{ text: 'd2' }] });
    expect(callPosts).toBe(3); // d1 refused (404) and made again; d2 sent once, on the new session only
    // A backend that forgets every session: one retry, then the refusal.
    forgetEveryCall = true;
    callPosts = 0;
    await expect(call('echo', { text: 'c' })).rejects.toBeInstanceOf(StaleBackendSession);
    expect(callPosts).toBe(2);
    forgetEveryCall = false;
    expect(breaker.failures).toEqual([]);
    // A timeout may have been processed: not made again.
    callPosts = 0;
    const waiting = b.waiting;
    await expect(call('wait', {}, 300)).rejects.toMatchObject({ code: 'timeout' });
    expect([callPosts, b.waiting]).toEqual([1, waiting + 1]);
    await pool.close();
  }, 30_000);

  it('keeps a session that answers the ping after a transient transport error', async () => {
    const { url } = await backend();
    let failNext = false;
    class Flaky extends Agent {
      override request(...args: Parameters<Agent['request']>): ReturnType<Agent['request']> {
        const [opts] = args;
        if (failNext && opts.method === 'POST') {
          failNext = false;
          return Promise.reject(new TypeError('fetch failed (injected)'));
        }
        return super.request(...args);
      }
    }
    const { connector, breaker } = connectorFor(url, { dispatcher: new Flaky() });
    const session = await connector.open('b', { timeoutMs: 30_000 });
    failNext = true;
    await expect(session.callTool('echo', { text: 'x' })).rejects.toMatchObject({ code: 'backend' });
    expect(breaker.failures).toHaveLength(1);
    // The probe (a ping) answers: the session stays open and serves the next call.
    await new Promise((r) => setTimeout(r, 1000));
    expect(session.closed).toBe(false);
    expect(await session.callTool('echo', { text: 'y' })).toMatchObject({ content: [{ text: 'y' }] });
    await session.close();
  }, 30_000);
});
