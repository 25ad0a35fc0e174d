import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';
import { sleep } from './timing.js';

/**
 * How a fixture answers, switchable at any time:
 * - `ok`: a real MCP server (SDK-built), Streamable HTTP (stateless) or legacy HTTP+SSE;
 * - `fail`: HTTP 500 to everything;
 * - `hang`: accepts the request and never answers;
 * - `slow`: a real MCP server after `delayMs` per request;
 * - `garbage`: 200 with an HTML page instead of JSON-RPC;
 * - `down`: the connection is closed at once.
 */
export type FixtureMode = 'ok' | 'fail' | 'hang' | 'slow' | 'garbage' | 'down';

export class McpFixture {
  mode: FixtureMode = 'ok';
  delayMs = 0;
  tools: string[] = ['echo'];
  /** HTTP requests that reached this fixture. */
  requests = 0;
  /** MCP `initialize` requests answered (one per probe). */
  initializes = 0;
  /** Calls of the `wait` tool that ended because the client cancelled them (`notifications/cancelled`). */
  cancelled = 0;
  /** Calls of the `wait` tool that started. */
  waiting = 0;
  /** Calls of the `progress` tool that stopped because the client cancelled them. */
  progressCancelled = 0;

  constructor(
    readonly name: string,
    private readonly host: McpFixtureHost,
  ) {}

  /** Streamable HTTP endpoint. */
  get url(): string {
    return `${this.host.origin}/${this.name}/mcp`;
  }

  /**
   * Stateful Streamable HTTP endpoint (a server per MCP session, SSE responses):
   * what `progress` notifications and cancellation of a running `wait` need.
   */
  get statefulUrl(): string {
    return `${this.host.origin}/${this.name}/smcp`;
  }

  /** Legacy HTTP+SSE endpoint (GET opens the stream; POSTs go to the endpoint it announces). */
  get sseUrl(): string {
    return `${this.host.origin}/${this.name}/sse`;
  }

  set(mode: FixtureMode, delayMs = this.delayMs): this {
    this.mode = mode;
    this.delayMs = delayMs;
    return this;
  }

  /**
   * A server with `tools`. Some names behave specially (list them in `tools` to offer them):
   * `progress` reports `steps` progress notifications (`{steps, delayMs}`) before answering, stopping (counted in
   * `progressCancelled`) if the client cancels the call;
   * `wait` answers only after `ms` (default: never), counting in `cancelled` a call the client cancelled;
   * `big` answers `kb` kilobytes of text.
   */
  build(): McpServer {
    const server = new McpServer({ name: `fixture-${this.name}`, version: '1.0.0' });
    for (const tool of this.tools) {
      if (tool === 'progress') {
        server.registerTool(
          tool,
          {
            description: `reports progress, then answers (${this.name})`,
            inputSchema: { steps: z.number().int().min(1).max(1000).optional(), delayMs: z.number().int().min(0).max(10_000).optional() },
          },
          async ({ steps = 3, delayMs = 10 }, extra) => {
            const token = extra._meta?.progressToken;
            for (let i = 1; i <= steps; i++) {
              await sleep(delayMs);
              if (extra.signal.aborted) {
                this.progressCancelled++;
                return { content: [{ type: 'text' as const, text: `cancelled after ${i - 1}` }] };
              }
              if (token !== undefined) {
                await extra.sendNotification({
                  method: 'notifications/progress',
                  params: { progressToken: token, progress: i, total: steps, message: `step ${i} of ${steps}` },
                });
              }
            }
            return { content: [{ type: 'text' as const, text: `done ${steps}` }] };
          },
        );
      } else if (tool === 'big') {
        server.registerTool(
          tool,
          { description: `answers kb kilobytes of text (${this.name})`, inputSchema: { kb: z.number().int().min(1).max(10_000) } },
          ({ kb }) => Promise.resolve({ content: [{ type: 'text' as const, text: 'abcdefghijklmnop'.repeat(64 * kb) }] }),
        );
      } else if (tool === 'wait') {
        server.registerTool(
          tool,
          {
            description: `answers after ms (default: never), unless cancelled (${this.name})`,
            inputSchema: { ms: z.number().int().min(0).max(600_000).optional() },
          },
          async ({ ms }, extra) => {
            this.waiting++;
            const cancelled = await new Promise<boolean>((resolve) => {
              const timer = ms === undefined ? undefined : setTimeout(() => resolve(false), ms);
              extra.signal.addEventListener('abort', () => {
                clearTimeout(timer);
                resolve(true);
              });
            });
            if (cancelled) this.cancelled++;
            return { content: [{ type: 'text' as const, text: cancelled ? 'cancelled' : `waited ${ms}` }] };
          },
        );
      } else {
        server.registerTool(tool, { description: `the ${tool} tool of ${this.name}` }, async () => ({ content: [{ type: 'text' as const, text: tool }] }));
      }
    }
    return server;
  }
}

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString('utf8');
      try {
        resolve(text === '' ? undefined : JSON.parse(text));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    req.on('error', reject);
  });
}

/**
 * Many MCP fixture servers multiplexed on one port (`/<name>/mcp`,
 * `/<name>/sse`), built with the SDK, in the test process. Counts TCP
 * connections (a forbidden URL must see none) and requests per fixture.
 */
export class McpFixtureHost {
  readonly fixtures = new Map<string, McpFixture>();
  /** TCP connections accepted, all fixtures together. */
  connections = 0;
  private server!: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly sseSessions = new Map<string, SSEServerTransport>();
  private readonly statefulSessions = new Map<string, StreamableHTTPServerTransport>();
  port = 0;

  static async start(): Promise<McpFixtureHost> {
    const host = new McpFixtureHost();
    await host.listen();
    return host;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  add(name: string, mode: FixtureMode = 'ok'): McpFixture {
    const fixture = new McpFixture(name, this).set(mode);
    this.fixtures.set(name, fixture);
    return fixture;
  }

  private listen(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      }),
    );
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const [, name, kind] = url.pathname.split('/');
    const fixture = this.fixtures.get(name ?? '');
    if (!fixture) {
      res.writeHead(404).end();
      return;
    }
    fixture.requests++;
    const mode = fixture.mode;
    if (mode === 'down') {
      req.socket.destroy();
      return;
    }
    if (mode === 'hang') return; // never answers; the socket closes with the host
    if (mode === 'fail') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      return;
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>not an MCP server</body></html>');
      return;
    }
    if (mode === 'slow') await sleep(fixture.delayMs);
    try {
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      if (isInitialize(body)) fixture.initializes++;
      if (kind === 'mcp') await this.streamable(fixture, req, res, body);
      else if (kind === 'smcp') await this.stateful(fixture, req, res, body);
      else if (kind === 'sse' && req.method === 'GET') await this.sseOpen(fixture, res);
      else if (kind === 'messages' && req.method === 'POST') await this.ssePost(url, req, res, body);
      else res.writeHead(404).end();
    } catch {
      if (!res.headersSent) res.writeHead(400).end();
    }
  }

  /** Stateless Streamable HTTP: a server and a transport per request, as the SDK's stateless example does. */
  private async streamable(fixture: McpFixture, req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const server = fixture.build();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  /** Stateful Streamable HTTP: one server and transport per MCP session (mcp-session-id), SSE responses. */
  private async stateful(fixture: McpFixture, req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? this.statefulSessions.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId !== undefined || !isInitialize(body)) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void this.statefulSessions.set(id, created),
      });
      created.onclose = () => {
        if (created.sessionId) this.statefulSessions.delete(created.sessionId);
      };
      await fixture.build().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, body);
  }

  /** Stateful sessions open on this host (a client that ends its session removes it). */
  get statefulSessionCount(): number {
    return this.statefulSessions.size;
  }

  private async sseOpen(fixture: McpFixture, res: http.ServerResponse): Promise<void> {
    const transport = new SSEServerTransport(`/${fixture.name}/messages`, res);
    this.sseSessions.set(transport.sessionId, transport);
    res.on('close', () => this.sseSessions.delete(transport.sessionId));
    await fixture.build().connect(transport);
  }

  private async ssePost(url: URL, req: http.IncomingMessage, res: http.ServerResponse, body: unknown): Promise<void> {
    const transport = this.sseSessions.get(url.searchParams.get('sessionId') ?? '');
    if (!transport) {
      res.writeHead(404).end('no such session');
      return;
    }
    await transport.handlePostMessage(req, res, body);
  }

  async close(): Promise<void> {
    for (const t of this.statefulSessions.values()) void t.close();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function isInitialize(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((m) => (m as { method?: string } | undefined)?.method === 'initialize');
}

/**
 * `@modelcontextprotocol/server-everything` over Streamable HTTP, as a real
 * process on a free loopback port (`node dist/index.js streamableHttp`);
 * ended by pid.
 */
export class EverythingServer {
  private constructor(
    readonly process: ChildProcess,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  static async start(port: number): Promise<EverythingServer> {
    const require = createRequire(import.meta.url);
    const entry = path.join(path.dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
    const child = spawn(process.execPath, [entry, 'streamableHttp'], {
      env: { PATH: process.env.PATH, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const until = Date.now() + 20_000;
    while (!output.includes('listening on port')) {
      if (child.exitCode !== null) throw new Error(`server-everything exited (${child.exitCode}): ${output}`);
      if (Date.now() > until) {
        child.kill('SIGKILL');
        throw new Error(`server-everything did not start: ${output}`);
      }
      await sleep(50);
    }
    return new EverythingServer(child, port);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGTERM');
    await Promise.race([exited, sleep(3000)]);
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill('SIGKILL');
      await exited;
    }
  }
}
