import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 for the library's unit tests: each test
 * answers requests with its own handler, speaking the service's documented
 * protocol (SSE frames, problem+json errors). The library under test talks
 * to it over real sockets with the real `fetch`.
 */
export class ProtocolServer {
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  /** Responses still open (SSE streams), so a test can cut them. */
  readonly open = new Set<http.ServerResponse>();
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(handler: (req: http.IncomingMessage & { body: string }, res: http.ServerResponse) => void | Promise<void>): Promise<ProtocolServer> {
    const self = { server: undefined as unknown as ProtocolServer };
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        self.server.requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        self.server.open.add(res);
        res.on('close', () => self.server.open.delete(res));
        Promise.resolve(handler(Object.assign(req, { body }), res)).catch((error: unknown) => {
          res.destroy(error as Error);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self.server = new ProtocolServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self.server;
  }

  /** Cuts every open response (a dropped connection, as a killed replica's). */
  cutAll(): void {
    for (const res of this.open) res.destroy();
  }

  async stop(): Promise<void> {
    this.cutAll();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function sseHead(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' });
  res.write('retry: 2000\n\n');
}

export function frame(res: http.ServerResponse, event: string, data: unknown, id?: number | string): void {
  res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

export function problem(res: http.ServerResponse, status: number, code: string, detail: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  res.end(JSON.stringify({ type: 'about:blank', status, code, detail }));
}

export function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A change event as the service sends it. */
export function change(seq: number, type = 'agent.updated', id = `a${seq}`) {
  const [resource, action] = type.split('.');
  return { seq, type, resource, id, action, ts: new Date(0).toISOString(), version: 1 };
}

export function waitUntil<T>(check: () => T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = check();
      if (v) return resolve(v);
      if (Date.now() > until) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}
