import { StreamableHTTPServerTransport, type StreamableHTTPServerTransportOptions } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * Stateful Streamable HTTP on node:http, as the SDK's examples serve it, for test backends: a transport per MCP
 * session, made at `initialize` and handed to `connect` (which connects a server of its own to it), found by
 * Mcp-Session-Id afterwards (404 for an unknown id, 400 for no id and no initialize). `observe` sees each request
 * of a known session before the SDK handles it; `options` gives each session's transport more options (an event store, …).
 */
export class McpSessionHost {
  readonly transports = new Map<string, StreamableHTTPServerTransport>();
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  port = 0;

  private constructor(
    private readonly connect: (transport: StreamableHTTPServerTransport) => Promise<void>,
    private readonly observe?: (req: http.IncomingMessage, res: http.ServerResponse, sessionId: string) => void,
    private readonly options?: () => Partial<StreamableHTTPServerTransportOptions>,
  ) {}

  static async start(
    connect: (transport: StreamableHTTPServerTransport) => Promise<void>,
    observe?: (req: http.IncomingMessage, res: http.ServerResponse, sessionId: string) => void,
    options?: () => Partial<StreamableHTTPServerTransportOptions>,
  ): Promise<McpSessionHost> {
    const host = new McpSessionHost(connect, observe, options);
    host.server.on('connection', (s: Socket) => {
      host.sockets.add(s);
      s.on('close', () => host.sockets.delete(s));
    });
    await new Promise<void>((resolve) => host.server.listen(0, '127.0.0.1', resolve));
    host.port = (host.server.address() as AddressInfo).port;
    return host;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/mcp`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let body: unknown;
    if (req.method === 'POST') {
      const parts: Buffer[] = [];
      for await (const p of req) parts.push(p as Buffer);
      body = JSON.parse(Buffer.concat(parts).toString('utf8'));
    }
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? this.transports.get(sid) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(typeof sid === 'string' ? 404 : 400).end();
        return;
      }
      const t = new StreamableHTTPServerTransport({
        ...this.options?.(),
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void this.transports.set(id, t),
      });
      t.onclose = () => t.sessionId && this.transports.delete(t.sessionId);
      await this.connect(t);
      transport = t;
    } else if (typeof sid === 'string') {
      this.observe?.(req, res, sid);
    }
    await transport.handleRequest(req, res, body);
  }

  async close(): Promise<void> {
    for (const t of this.transports.values()) await t.close().catch(() => undefined);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
