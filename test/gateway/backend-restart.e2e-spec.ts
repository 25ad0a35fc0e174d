import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createParser } from 'eventsource-parser';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

/**
 * A backend MCP server that dies and comes back (a real SDK server in its own
 * process, killed with SIGKILL and started again on the same port, knowing
 * none of the old sessions): calls in flight on it fail at once, not after the
 * request timeout; the gateway's streaming sessions, tool streams and /mcp
 * sessions open new backend sessions and work again once it is back; its
 * circuit does not stay open against it. A backend without a standalone
 * stream (`quiet`) restarts unseen: the first call on each stale backend
 * session is refused 404, and made once more on a new session.
 */

/** Far above what the tests allow a failure to take: a call left hanging until its timeout fails them. */
const REQUEST_TIMEOUT_MS = 60_000;
/** "At once": well under REQUEST_TIMEOUT_MS, generous for a loaded 2-core machine. */
const PROMPT_MS = 15_000;

class Backend {
  output = '';
  private constructor(readonly process: ChildProcess) {}

  static async start(port: number, { standaloneStream = true } = {}): Promise<Backend> {
    const child = spawn(process.execPath, [path.resolve('test/gateway/backend-restart-server.mjs')], {
      env: { PATH: process.env.PATH, PORT: String(port), ...(standaloneStream ? {} : { STANDALONE_STREAM: 'off' }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const backend = new Backend(child);
    child.stdout.on('data', (d: Buffer) => (backend.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (backend.output += d.toString()));
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`the backend exited (${child.exitCode}): ${backend.output}`);
        return backend.output.includes('listening');
      },
      20_000,
      'the backend to listen',
    ).catch((error: Error) => {
      child.kill('SIGKILL');
      throw error;
    });
    return backend;
  }

  calls(tool: string): number {
    return this.output.split('\n').filter((l) => l === `call ${tool}`).length;
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGKILL');
    await exited;
  }
}

/** The promise's value, or a failure naming what did not come within `ms` (the calls must not wait for their timeout). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not come within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

interface Frame {
  event: string;
  data: string;
}

describe('gateway: a backend that dies and restarts (real processes, a real MCP server)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  let port: number;
  let backend: Backend;
  /** Serves no standalone GET stream: the gateway holds no connection to it between calls, so it cannot see it restart. */
  let quietPort: number;
  let quiet: Backend;
  let session: string;
  let stream: SseClient;
  let mcp: { client: Client; transport: StreamableHTTPClientTransport };
  let nextId = 1;

  const admin = () => cluster.adminKey;
  /** A tool stream: its frames and when it ended. */
  const toolStream = async (name: string, args: Record<string, unknown> = {}) => {
    const res = await fetch(`${r.url}/api/v1/mcp/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin()}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } }),
    });
    const text = await res.text();
    const frames: Frame[] = [];
    createParser({ onEvent: (e) => frames.push({ event: e.event ?? 'message', data: e.data }) }).feed(text);
    return { status: res.status, frames, endedAt: performance.now() };
  };
  const outcome = (frames: Frame[]) => frames.find((f) => f.event === 'result' || f.event === 'error');
  /** Sends a request on the streaming session; resolves with its answer event on the session's stream. */
  const sessionCall = async (name: string, args: Record<string, unknown> = {}) => {
    const id = `s${nextId++}`;
    const res = await api(r.url, 'POST', `/api/v1/gateway/stream/${session}/request`, {
      key: admin(),
      body: { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
    });
    expect([res.status, res.text.slice(0, 300)]).toEqual([202, expect.any(String)]);
    return id;
  };
  const answerOf = async (id: string, timeoutMs: number) => {
    const find = () => stream.frames.find((f) => (f.event === 'response' || f.event === 'error') && (JSON.parse(f.data) as { id: unknown }).id === id);
    await stream.waitFor(() => find() !== undefined, timeoutMs, `the answer to ${id}`);
    const f = find()!;
    return { event: f.event, body: JSON.parse(f.data), at: f.at! };
  };
  /** One echo call through each way in (tool stream, streaming session, `/mcp`), each answered with its echo. */
  const echoEachWay = async (server: string, text: string) => {
    const streamed = await toolStream(`${server}__echo`, { text });
    expect(outcome(streamed.frames)).toEqual({ event: 'result', data: expect.stringContaining(`echo ${text}`) });
    const answer = await answerOf(await sessionCall(`${server}__echo`, { text }), 15_000);
    expect([answer.event, JSON.stringify(answer.body)]).toEqual(['response', expect.stringContaining(`echo ${text}`)]);
    expect(await mcp.client.callTool({ name: `${server}__echo`, arguments: { text } })).toMatchObject({ content: [{ text: `echo ${text}` }] });
  };
  const circuit = async (server = 'restart') =>
    (await api(r.url, 'GET', `/api/v1/mcp-servers/${server}/health`, { key: admin() })).body.circuit.state as string;

  beforeAll(async () => {
    db = await createTestDatabase();
    port = await freePort();
    quietPort = await freePort();
    [backend, quiet] = await Promise.all([Backend.start(port), Backend.start(quietPort, { standaloneStream: false })]);
    cluster = new Cluster(db.url, redisUrl(), {
      MCP_ALLOW_PRIVATE_NETWORKS: 'true',
      HEALTH_PROBES: 'false',
      GATEWAY_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      GATEWAY_MCP_CALL_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    });
    r = await cluster.start('r1');
    const healthCheck = { intervalMs: 600_000, timeoutMs: 5000, failureThreshold: 2, coolDownMs: 1000, maxCoolDownMs: 2000 };
    const created = await api(r.url, 'POST', '/api/v1/mcp-servers', {
      key: admin(),
      body: { id: 'restart', name: 'restart', url: `http://127.0.0.1:${port}/mcp`, healthCheck },
    });
    expect([created.status, created.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    const createdQuiet = await api(r.url, 'POST', '/api/v1/mcp-servers', {
      key: admin(),
      body: { id: 'quiet', name: 'quiet', url: `http://127.0.0.1:${quietPort}/mcp`, healthCheck },
    });
    expect([createdQuiet.status, createdQuiet.text.slice(0, 300)]).toEqual([201, expect.any(String)]);

    const opened = await api(r.url, 'POST', '/api/v1/gateway/stream', { key: admin(), body: { servers: ['restart', 'quiet'] } });
    expect([opened.status, opened.text.slice(0, 300)]).toEqual([201, expect.any(String)]);
    session = opened.body.session_id;
    stream = await SseClient.connect(`${r.url}/api/v1/gateway/stream/${session}`, { authorization: `Bearer ${admin()}` });
    expect(stream.status).toBe(200);

    const client = new Client({ name: 'restart-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${r.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${admin()}` } } });
    await client.connect(transport);
    mcp = { client, transport };

    // Every way in holds a working backend session before the backend dies.
    await echoEachWay('restart', 'before');
    await echoEachWay('quiet', 'before');
  }, 120_000);

  afterAll(async () => {
    stream?.close();
    await mcp?.client.close().catch(() => undefined);
    await cluster?.stop();
    await backend?.kill();
    await quiet?.kill();
    await db?.drop();
  });

  it('fails the calls in flight at once (not after the request timeout) when the backend dies mid-call', async () => {
    const waitsBefore = backend.calls('wait');
    const streamed = toolStream('restart__wait');
    const concurrent = toolStream('restart__wait');
    const inSession = await sessionCall('restart__wait');
    const viaMcp = mcp.client.callTool({ name: 'restart__wait', arguments: {} }, undefined, { timeout: 120_000 }).then(
      (result) => ({ result, at: performance.now() }),
      (error: Error) => ({ error, at: performance.now() }),
    );
    await waitFor(() => backend.calls('wait') >= waitsBefore + 4, 20_000, 'the four calls to reach the backend');

    const killedAt = performance.now();
    await backend.kill();

    const [a, b] = await within(Promise.all([streamed, concurrent]), PROMPT_MS, 'the end of both tool streams');
    for (const s of [a, b]) {
      const failed = outcome(s.frames);
      expect(failed?.event).toBe('error');
      const error = JSON.parse(failed!.data).error as { code: number; message: string };
      expect(error.code).not.toBe(-32001); // not "did not answer in time"
      expect(s.endedAt - killedAt).toBeLessThan(PROMPT_MS);
    }
    const answer = await answerOf(inSession, PROMPT_MS);
    expect(answer.event).toBe('error');
    expect(answer.body.error.code).not.toBe(-32001);
    expect(answer.at - killedAt).toBeLessThan(PROMPT_MS);
    const m = await within(viaMcp, PROMPT_MS, 'the answer to the /mcp call');
    expect('error' in m).toBe(true);
    expect(m.at - killedAt).toBeLessThan(PROMPT_MS);
  }, 90_000);

  it('opens new backend sessions once the backend is back: the next call of each way in succeeds', async () => {
    backend = await Backend.start(port);
    await sleep(1500); // past the circuit's cool-down, should the failures above have opened it
    await echoEachWay('restart', 'after');
    expect(backend.calls('echo')).toBe(3);
  }, 60_000);

  it('the very first call of each way in after a restart it could not see succeeds: the stale backend session is replaced, the call made once', async () => {
    // Every way in holds an idle backend session with `quiet` (beforeAll); it restarts under them, no call in flight.
    await quiet.kill();
    quiet = await Backend.start(quietPort, { standaloneStream: false });
    // Before, each way's first call failed ("no longer knows the backend session; call again"), and only the next worked.
    await echoEachWay('quiet', 'first');
    // Each made once on the new process: the refused POSTs were not processed, the retries were.
    expect(quiet.calls('echo')).toBe(3);
    expect(await circuit('quiet')).toBe('closed'); // a 404 is the backend answering, not failing
  }, 60_000);

  it('does not keep the circuit open against the backend once it is back', async () => {
    // Down long enough for calls to open the circuit (failureThreshold 2), then back.
    await backend.kill();
    await waitFor(
      async () => {
        await toolStream('restart__echo', { text: 'down' });
        if ((await circuit()) === 'open') return true;
        await sleep(200);
        return false;
      },
      20_000,
      'the circuit to open while the backend is down',
    );
    backend = await Backend.start(port);
    // Within a few cool-downs (1 s, at most 2 s) every way in works again and the circuit closes.
    await waitFor(
      async () => outcome((await toolStream('restart__echo', { text: 'back' })).frames)?.event === 'result',
      20_000,
      'a tool stream call to succeed',
    );
    await waitFor(async () => (await circuit()) === 'closed', 10_000, 'the circuit to close');
    const answer = await answerOf(await sessionCall('restart__echo', { text: 'back' }), 15_000);
    expect(answer.event).toBe('response');
    expect(await mcp.client.callTool({ name: 'restart__echo', arguments: { text: 'back' } })).toMatchObject({ content: [{ text: 'echo back' }] });
    // And it stays closed: several calls in a row go through.
    for (let i = 0; i < 5; i++) expect(outcome((await toolStream('restart__echo', { text: `n${i}` })).frames)?.event).toBe('result');
    expect(await circuit()).toBe('closed');
  }, 90_000);
});
