import {
  callToolStream,
  GatewaySession,
  HttpError,
  JsonRpcError,
  openSession,
  RequestTimeoutError,
  SessionClosedError,
  type ToolStreamEvent,
} from '../../packages/client/src/index.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { EverythingServer, type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { TcpBalancer } from '../support/tcp-balancer.js';
import { api, createTestDatabase, redisUrl, waitFor } from '../support/test-env.js';

const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

/**
 * The library's gateway part against the real gateway: two replicas behind a
 * TCP load balancer (a session's stream and its requests may land on
 * different replicas), a stateful SDK fixture server (`echo`, `progress`,
 * `wait` that records its cancellation) and server-everything.
 */
describe('@agentic-registry/client gateway sessions and tool streams (real replicas, real MCP servers)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let host: McpFixtureHost;
  let everything: EverythingServer;
  let r1: Replica;
  let r2: Replica;
  let balancer: TcpBalancer;
  let alpha: McpFixture;
  const conn = () => ({ baseUrl: balancer.url, apiKey: cluster.adminKey, heartbeatMs: 300 });
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });
  const open = async (servers: string[], extra: { requestTimeoutMs?: number } = {}) => {
    const s = await openSession({ ...conn(), servers, ...extra });
    cleanups.push(() => s.close());
    return s;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    [host, everything] = await Promise.all([McpFixtureHost.start(), freePort().then((port) => EverythingServer.start(port))]);
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'progress', 'wait'];
    cluster = new Cluster(db.url, redisUrl(), {
      MCP_ALLOW_PRIVATE_NETWORKS: 'true',
      HEALTH_PROBES: 'false',
      GATEWAY_HEARTBEAT_MS: '300',
      GATEWAY_REQUEST_TIMEOUT_MS: '1500',
    });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    for (const [id, url] of [
      ['alpha', alpha.statefulUrl],
      ['everything', everything.url],
    ] as const) {
      expect((await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: cluster.adminKey, body: { id, name: id, url, healthCheck: noProbes } })).status).toBe(
        201,
      );
    }
    balancer = await TcpBalancer.start([Number(new URL(r1.url).port), Number(new URL(r2.url).port)]);
  }, 120_000);
  afterAll(async () => {
    await balancer?.close();
    await cluster?.stop();
    await everything?.stop();
    await host?.close();
    await db?.drop();
  });

  it('openSession(): requests answered on the stream by id, merged lists, heartbeats, typed JSON-RPC errors', async () => {
    const session = await open(['alpha', 'everything']);
    expect(session).toBeInstanceOf(GatewaySession);
    expect(session.servers.map((s) => [s.id, s.status]).sort()).toEqual([
      ['alpha', 'ready'],
      ['everything', 'ready'],
    ]);
    let heartbeats = 0;
    const responses: unknown[] = [];
    session.addEventListener('heartbeat', () => heartbeats++);
    session.addEventListener('response', (e) => responses.push((e as CustomEvent).detail));

    const [list, echo] = await Promise.all([
      session.request<{ tools: { name: string }[] }>('tools/list'),
      session.request<{ content: { text: string }[] }>('tools/call', { name: 'alpha__echo', arguments: {} }),
    ]);
    const names = list.tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['alpha__echo', 'alpha__progress', 'alpha__wait', 'everything__echo']));
    expect(echo.content[0].text).toBe('echo');
    // The everything server's echo through its namespaced method form, and its own arguments.
    const routed = await session.request<{ content: { text: string }[] }>('everything__tools/call', {
      name: 'echo',
      arguments: { message: 'through the library' },
    });
    expect(routed.content[0].text).toContain('through the library');
    expect(responses.length).toBeGreaterThanOrEqual(3);

    // A tool's own failure is an MCP result (`isError`); a server outside the session is the gateway's JSON-RPC error.
    const toolError = await session.request<{ isError?: boolean }>('tools/call', { name: 'alpha__nope', arguments: {} });
    expect(toolError.isError).toBe(true);
    const outside = await session.request('tools/call', { name: 'nowhere__echo', arguments: {} }).catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(JsonRpcError);
    expect((outside as JsonRpcError).code).toBe(-32004);
    const ambiguous = await session.request('resources/read', { uri: 'x' }).catch((e: unknown) => e);
    expect(ambiguous).toBeInstanceOf(JsonRpcError);
    expect((ambiguous as JsonRpcError).code).toBe(-32600);
    expect((ambiguous as JsonRpcError).message).toContain('ambiguous');

    await waitFor(() => heartbeats >= 2, 10_000, 'heartbeats');
  }, 60_000);

  it('request timeouts: the gateway’s (an error event) and the client’s own, both RequestTimeoutError; close() ends the session', async () => {
    const session = await open(['alpha'], { requestTimeoutMs: 20_000 });
    const errors: unknown[] = [];
    session.addEventListener('error', (e) => errors.push((e as CustomEvent).detail));
    const atGateway = await session.request('tools/call', { name: 'alpha__wait', arguments: {} }).catch((e: unknown) => e);
    expect(atGateway).toBeInstanceOf(RequestTimeoutError);
    expect(errors).toHaveLength(1);

    const timeouts: unknown[] = [];
    session.addEventListener('request-timeout', (e) => timeouts.push((e as CustomEvent).detail));
    const mine = await session.request('tools/call', { name: 'alpha__wait', arguments: {} }, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(mine).toBeInstanceOf(RequestTimeoutError);
    expect((mine as RequestTimeoutError).timeoutMs).toBe(200);
    expect(timeouts).toEqual([expect.objectContaining({ method: 'tools/call' })]);

    let closed = '';
    session.addEventListener('closed', (e) => (closed = (e as CustomEvent<{ reason: string }>).detail.reason));
    await session.close();
    expect(closed).toBe('closed by the client');
    await expect(session.request('tools/list')).rejects.toBeInstanceOf(SessionClosedError);
    // The gateway dropped it: its stream is gone for everyone.
    const gone = await fetch(`${r2.url}/api/v1/gateway/stream/${session.id}`, { headers: { authorization: `Bearer ${cluster.adminKey}` } });
    expect(gone.status).toBe(404);
    await gone.body?.cancel();
  }, 60_000);

  it('a session whose stream is cut while a request runs gets the answer on the resumed stream (Last-Event-ID), nothing lost', async () => {
    const proxy = await FaultProxy.start('127.0.0.1', Number(new URL(r1.url).port));
    // Bounded: a straggling socket must not hold the suite (FaultProxy.close waits for its server to close).
    cleanups.push(() => Promise.race([proxy.close(), new Promise((resolve) => setTimeout(resolve, 3000).unref())]));
    const statuses: string[] = [];
    const s = await openSession({
      baseUrl: `http://127.0.0.1:${proxy.port}`,
      apiKey: cluster.adminKey,
      servers: ['alpha'],
      heartbeatMs: 300,
      backoff: { initialMs: 50, maxMs: 300 },
      onStatus: (st) => statuses.push(st.state),
    });
    cleanups.push(() => s.close());
    let heartbeats = 0;
    s.addEventListener('heartbeat', () => heartbeats++);
    await waitFor(() => heartbeats >= 1, 10_000, 'the stream open');
    const waiting = alpha.waiting;
    const answered = s.request<{ content: { text: string }[] }>('tools/call', { name: 'alpha__wait', arguments: { ms: 1000 } });
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running');
    proxy.cut(); // the stream drops while the backend works; the answer is kept in the session
    await waitFor(() => statuses.includes('retrying'), 10_000, 'the client noticing');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    proxy.restore();
    expect((await answered).content[0].text).toBe('waited 1000');
    expect(statuses.filter((x) => x === 'open').length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('openSession() with a server that does not exist is refused with the problem details', async () => {
    const refused = await openSession({ ...conn(), servers: ['no-such-server'] }).then(
      (s) => {
        cleanups.push(() => s.close());
        return s;
      },
      (e: unknown) => e,
    );
    // Either refused outright, or opened with that server reported as failed: never silently ok.
    if (refused instanceof HttpError) expect(refused.status).toBeGreaterThanOrEqual(400);
    else expect((refused as GatewaySession).servers.find((s) => s.id === 'no-such-server')?.status).not.toBe('ready');
  });

  it('callToolStream(): start, progress, result, complete, then the JSON-RPC response', async () => {
    const events: ToolStreamEvent[] = [];
    const it = callToolStream(conn(), 'alpha', 'progress', { steps: 3, delayMs: 20 });
    let step = await it.next();
    while (!step.done) {
      events.push(step.value);
      step = await it.next();
    }
    expect(events.map((e) => e.type)).toEqual(['start', 'progress', 'progress', 'progress', 'result', 'complete']);
    expect(events.filter((e) => e.type === 'progress')).toEqual([
      { type: 'progress', progress: 1, total: 3, message: 'step 1 of 3' },
      { type: 'progress', progress: 2, total: 3, message: 'step 2 of 3' },
      { type: 'progress', progress: 3, total: 3, message: 'step 3 of 3' },
    ]);
    expect(step.value).toMatchObject({ jsonrpc: '2.0', result: { content: [expect.objectContaining({ type: 'text' })] } });

    await expect(
      (async () => {
        for await (const _ of callToolStream(conn(), 'nowhere', 'echo')) void _;
      })(),
    ).rejects.toBeInstanceOf(JsonRpcError);
  }, 30_000);

  it('callToolStream(): leaving the loop mid-call, or aborting it, cancels the call at the backend', async () => {
    const before = alpha.cancelled;
    const started = alpha.waiting;
    for await (const e of callToolStream(conn(), 'alpha', 'wait')) {
      if (e.type === 'start') {
        await waitFor(() => alpha.waiting > started, 10_000, 'the call running at the backend');
        break;
      }
    }
    await waitFor(() => alpha.cancelled > before, 10_000, 'the backend call cancelled after break');

    const ac = new AbortController();
    const running = (async () => {
      for await (const _ of callToolStream({ ...conn(), signal: ac.signal }, 'alpha', 'wait')) void _;
    })();
    await waitFor(() => alpha.waiting > started + 1, 10_000, 'the second call running');
    ac.abort();
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(() => alpha.cancelled > before + 1, 10_000, 'the backend call cancelled after abort');
  }, 30_000);
});
