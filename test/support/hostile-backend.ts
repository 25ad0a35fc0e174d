import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A Streamable HTTP MCP server written by hand (node:http), to misbehave where the SDK's server would refuse to:
 * each tool's name says how it answers `tools/call`. Stateful (one session id), no standalone GET stream (405); a GET
 * resuming a stream (Last-Event-ID) is answered as that stream's tool says (its event ids begin with the tool's name).
 * For tests only (unit specs and e2e suites).
 */
export type Misbehaviour =
  | 'ok'
  | 'content-not-array'
  | 'string-result'
  | 'no-result'
  | 'other-id-json'
  | 'other-id-sse'
  | 'twice'
  | 'bad-json'
  | 'bad-sse-then-answer'
  | 'bad-sse-then-end'
  | 'html-500'
  | 'huge-error'
  | 'sampling'
  | 'roots'
  | 'elicitation'
  | 'ping'
  | 'progress-other-token'
  | 'progress-odd-values'
  | 'schema-mismatch'
  | 'no-structured-content'
  | 'progress-forever'
  | 'end-every-stream'
  | 'resume-405'
  | 'resume-404'
  | 'wait';

export const MISBEHAVIOURS: readonly Misbehaviour[] = [
  'ok',
  'content-not-array',
  'string-result',
  'no-result',
  'other-id-json',
  'other-id-sse',
  'twice',
  'bad-json',
  'bad-sse-then-answer',
  'bad-sse-then-end',
  'html-500',
  'huge-error',
  'sampling',
  'roots',
  'elicitation',
  'ping',
  'progress-other-token',
  'progress-odd-values',
  'schema-mismatch',
  'no-structured-content',
  'progress-forever',
  'end-every-stream',
  'resume-405',
  'resume-404',
  'wait',
];

/** The output schema tools/list gives the tools whose results break it. */
const OUTPUT_SCHEMA = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] };
const WITH_OUTPUT_SCHEMA: ReadonlySet<Misbehaviour> = new Set(['schema-mismatch', 'no-structured-content']);

type Id = string | number;
interface Message {
  jsonrpc: '2.0';
  id?: Id;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
}

const text = (t: string) => ({ content: [{ type: 'text', text: t }] });

export class HostileBackend {
  readonly sessionId = 'hostile-session';
  private readonly sockets = new Set<Socket>();
  /** The answers the client POSTed to the server's own requests, by their id. */
  readonly answers = new Map<Id, Message>();
  private readonly answerWaiters = new Map<Id, (m: Message) => void>();
  /** The Last-Event-ID of each GET that resumed a stream, in order. */
  readonly resumes: string[] = [];
  /** Methods of the messages POSTed, in order. */
  readonly posted: string[] = [];
  /** tools/call ids in flight (for 'progress-other-token': the token of another call in flight). */
  private readonly calls: Id[] = [];
  /** The request ids the client cancelled (`notifications/cancelled`), in order. */
  readonly cancelled: Id[] = [];
  /** 'progress-forever' calls still sending progress (their stream open). */
  progressing = 0;
  /** Streams of 'wait' calls, by request id: their answers are sent by `release`. */
  private readonly waiting = new Map<Id, http.ServerResponse>();
  private nextServerId = 1;
  readonly server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));

  static async start(): Promise<HostileBackend> {
    const b = new HostileBackend();
    b.server.on('connection', (s: Socket) => {
      b.sockets.add(s);
      s.on('close', () => b.sockets.delete(s));
    });
    await new Promise<void>((resolve) => b.server.listen(0, '127.0.0.1', resolve));
    return b;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/mcp`;
  }

  /** How many 'wait' calls are being held. */
  get held(): number {
    return this.waiting.size;
  }

  /** Answers every held 'wait' call. */
  release(): void {
    for (const [id, res] of this.waiting) this.event(res, { jsonrpc: '2.0', id, result: text('released') }).end();
    this.waiting.clear();
  }

  async stop(): Promise<void> {
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private event(res: http.ServerResponse, message: unknown): http.ServerResponse {
    res.write(`event: message\ndata: ${typeof message === 'string' ? message : JSON.stringify(message)}\n\n`);
    return res;
  }

  private sse(res: http.ServerResponse): http.ServerResponse {
    return res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': this.sessionId });
  }

  private json(res: http.ServerResponse, body: unknown, status = 200): void {
    res.writeHead(status, { 'content-type': 'application/json', 'mcp-session-id': this.sessionId }).end(typeof body === 'string' ? body : JSON.stringify(body));
  }

  /** Sends a request to the client on `res` (a call's stream) and waits for its answer (10 s at most). */
  private async ask(res: http.ServerResponse, method: string, params: Record<string, unknown>): Promise<{ answer?: Message; ms: number }> {
    const id = `srv-${this.nextServerId++}`;
    const started = performance.now();
    const answered = new Promise<Message | undefined>((resolve) => {
      this.answerWaiters.set(id, resolve);
      setTimeout(() => resolve(undefined), 10_000).unref();
    });
    this.event(res, { jsonrpc: '2.0', id, method, params });
    const answer = await answered;
    return { ...(answer ? { answer } : {}), ms: Math.round(performance.now() - started) };
  }

  /**
   * A GET: one resuming a stream (Last-Event-ID) as its tool says — 'end-every-stream' sends an event without a new
   * id (its last id again) and ends the stream once more, 'resume-404' says the session is gone — and 405 (no such
   * stream) for any other.
   */
  private resume(req: http.IncomingMessage, res: http.ServerResponse): void {
    const last = req.headers['last-event-id'];
    if (typeof last !== 'string') return void res.writeHead(405).end();
    this.resumes.push(last);
    if (last.startsWith('end-every-stream')) {
      const stream = this.sse(res);
      stream.write(`id: ${last}\n`);
      this.event(stream, { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'nothing new' } }).end();
      return;
    }
    if (last.startsWith('resume-404')) return this.json(res, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }, 404);
    res.writeHead(405).end();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'GET') return this.resume(req, res);
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const m = JSON.parse(Buffer.concat(chunks).toString()) as Message;
    if (m.method) this.posted.push(m.method);
    if (m.method === 'initialize') {
      return this.json(res, {
        jsonrpc: '2.0',
        id: m.id,
        result: { protocolVersion: m.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } },
      });
    }
    if (m.id !== undefined && !m.method) {
      // The client's answer to one of the server's requests.
      this.answers.set(m.id, m);
      this.answerWaiters.get(m.id)?.(m);
      return void res.writeHead(202).end();
    }
    if (m.method === 'notifications/cancelled') this.cancelled.push(m.params?.requestId as Id);
    if (m.id === undefined) return void res.writeHead(202).end();
    if (m.method === 'ping') return this.json(res, { jsonrpc: '2.0', id: m.id, result: {} });
    if (m.method === 'tools/list') {
      const tools = MISBEHAVIOURS.map((name) => ({
        name,
        inputSchema: { type: 'object' },
        ...(WITH_OUTPUT_SCHEMA.has(name) ? { outputSchema: OUTPUT_SCHEMA } : {}),
      }));
      return this.json(res, { jsonrpc: '2.0', id: m.id, result: { tools } });
    }
    if (m.method !== 'tools/call') return this.json(res, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
    const id = m.id;
    const name = m.params?.name as Misbehaviour;
    const token = (m.params?._meta as { progressToken?: Id } | undefined)?.progressToken;
    this.calls.push(id);
    try {
      await this.misbehave(name, id, token, res, m.params?.arguments as Record<string, unknown> | undefined);
    } finally {
      this.calls.splice(this.calls.indexOf(id), 1);
    }
  }

  private async misbehave(name: Misbehaviour, id: Id, token: Id | undefined, res: http.ServerResponse, args?: Record<string, unknown>): Promise<void> {
    switch (name) {
      case 'ok':
        return this.json(res, { jsonrpc: '2.0', id, result: text('fine') });
      case 'content-not-array':
        return this.json(res, { jsonrpc: '2.0', id, result: { content: 'not an array' } });
      case 'string-result':
        return this.json(res, { jsonrpc: '2.0', id, result: 'a string' });
      case 'no-result':
        return this.json(res, { jsonrpc: '2.0', id });
      case 'other-id-json':
        return this.json(res, { jsonrpc: '2.0', id: typeof id === 'number' ? id + 1000 : `${id}-other`, result: text('for someone else') });
      case 'other-id-sse':
        this.event(this.sse(res), { jsonrpc: '2.0', id: typeof id === 'number' ? id + 1000 : `${id}-other`, result: text('for someone else') }).end();
        return;
      case 'twice':
        this.event(this.event(this.sse(res), { jsonrpc: '2.0', id, result: text('first') }), { jsonrpc: '2.0', id, result: text('second') }).end();
        return;
      case 'bad-json':
        return this.json(res, '{"jsonrpc":"2.0","id":');
      case 'schema-mismatch':
        return this.json(res, { jsonrpc: '2.0', id, result: { ...text('n is not a number'), structuredContent: { n: 'x' } } });
      case 'no-structured-content':
        return this.json(res, { jsonrpc: '2.0', id, result: text('no structured content') });
      case 'bad-sse-then-answer':
        this.event(this.event(this.sse(res), '{not json'), { jsonrpc: '2.0', id, result: text('after the bad event') }).end();
        return;
      case 'bad-sse-then-end':
        this.event(this.sse(res), '{not json').end();
        return;
      case 'html-500':
        res
          .writeHead(500, { 'content-type': 'text/html' })
          .end(`<html><body><h1>Internal Server Error</h1>${'<p>stack frame</p>\n'.repeat(2000)}</body></html>`);
        return;
      case 'huge-error':
        return this.json(res, {
          jsonrpc: '2.0',
          id,
          error: { code: -32000, message: `boom ${'x'.repeat(1_000_000)}`, data: { nested: [1, { deep: 'y'.repeat(1000) }] } },
        });
      case 'sampling':
      case 'roots':
      case 'elicitation':
      case 'ping': {
        const method = {
          sampling: 'sampling/createMessage',
          roots: 'roots/list',
          elicitation: 'elicitation/create',
          ping: 'ping',
        }[name];
        const params =
          name === 'sampling'
            ? { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 10 }
            : name === 'elicitation'
              ? { message: 'who?', requestedSchema: { type: 'object', properties: {} } }
              : {};
        const stream = this.sse(res);
        const { answer, ms } = await this.ask(stream, method, params);
        this.event(stream, { jsonrpc: '2.0', id, result: text(JSON.stringify({ answer: answer ?? null, ms })) }).end();
        return;
      }
      case 'progress-other-token': {
        const stream = this.sse(res);
        const other = [...this.waiting.keys(), ...this.calls].find((c) => c !== id) ?? 'no-such-token';
        this.event(stream, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: other, progress: 1, message: 'not yours' } });
        this.event(stream, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'never-issued', progress: 2 } });
        this.event(stream, { jsonrpc: '2.0', id, result: text('done') }).end();
        return;
      }
      case 'progress-odd-values': {
        const stream = this.sse(res);
        for (const p of [1e308, -5, 'abc', { x: 1 }, 2])
          this.event(stream, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token ?? id, progress: p, total: -1 } });
        this.event(stream, { jsonrpc: '2.0', id, result: text('done') }).end();
        return;
      }
      case 'progress-forever': {
        // Progress every 50 ms (each resets a client's per-request timeout; none without a progress token) until
        // `answerAfterMs` (default: never), the client cancels the call, or the stream is closed.
        const stream = this.sse(res);
        const answerAfterMs = typeof args?.answerAfterMs === 'number' ? args.answerAfterMs : undefined;
        const started = performance.now();
        let n = 0;
        this.progressing++;
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (this.cancelled.includes(id) || stream.destroyed) {
              clearInterval(timer);
              return resolve();
            }
            if (answerAfterMs !== undefined && performance.now() - started >= answerAfterMs) {
              clearInterval(timer);
              this.event(stream, { jsonrpc: '2.0', id, result: text(`answered after ${n} progress notifications`) }).end();
              return resolve();
            }
            if (token !== undefined) this.event(stream, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: ++n } });
          }, 50);
          stream.once('close', () => {
            clearInterval(timer);
            resolve();
          });
        });
        this.progressing--;
        return;
      }
      case 'end-every-stream':
      case 'resume-405':
      case 'resume-404':
        // A priming event (an id to resume from, a retry delay), and the stream ends without the answer.
        this.sse(res).end(`id: ${name}-${id}\nretry: 20\ndata: \n\n`);
        return;
      case 'wait':
        this.waiting.set(id, this.sse(res));
        return;
    }
  }
}
