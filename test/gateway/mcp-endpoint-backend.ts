import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { McpSessionHost } from '../support/mcp-session-host.js';

/**
 * A stateful SDK-built MCP server (Streamable HTTP, sessions) for the gateway
 * tests: `echo`, `slow` (progress every 50 ms until `ms` is over, and it
 * notices cancellation), `add`, `flood` (large progress as fast as it goes, or
 * one every `delayMs`; it stops when cancelled), plus `extra_<n>` tools to
 * make a catalog as large as asked. Calls and cancellations it saw are
 * recorded, so a test can prove a cancel reached the backend.
 */
export class TestBackend {
  calls: { tool: string; args: unknown }[] = [];
  /** `slow` calls that saw their signal aborted. */
  cancelled = 0;
  /** The requests that `notifications/cancelled` named, as `<MCP session id>/<request id>`. */
  readonly cancellations = new Set<string>();
  /** `flood` calls given a `tag`: each one's request (as `<MCP session id>/<request id>`), progress sent, and whether it saw its signal aborted. */
  readonly flooded = {
    requests: new Map<string, string>(),
    sent: new Map<string, number>(),
    aborted: new Set<string>(),
  };
  private host!: McpSessionHost;
  private readonly servers = new Set<McpServer>();

  private constructor(
    readonly name: string,
    private readonly extraTools: number,
  ) {}

  static async start(name: string, extraTools = 0): Promise<TestBackend> {
    const b = new TestBackend(name, extraTools);
    b.host = await McpSessionHost.start(async (t) => {
      await b.build().connect(t);
      // Seen before the SDK's own handling, which aborts the call's signal.
      const inner = t.onmessage;
      t.onmessage = (message, extra) => {
        if ('method' in message && message.method === 'notifications/cancelled') b.cancellations.add(`${t.sessionId}/${String(message.params?.requestId)}`);
        inner?.(message, extra);
      };
    });
    return b;
  }

  get port(): number {
    return this.host.port;
  }

  get url(): string {
    return this.host.url;
  }

  private build(): McpServer {
    const server = new McpServer({ name: `backend-${this.name}`, version: '1.0.0' });
    server.registerTool('echo', { description: `Echoes the text back (${this.name})`, inputSchema: { text: z.string() } }, async ({ text }) => {
      this.calls.push({ tool: 'echo', args: { text } });
      return { content: [{ type: 'text' as const, text: `${this.name}:${text}` }] };
    });
    server.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) => {
      this.calls.push({ tool: 'add', args: { a, b } });
      return { content: [{ type: 'text' as const, text: String(a + b) }] };
    });
    server.registerTool('slow', { description: 'Works for ms milliseconds, reporting progress', inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
      this.calls.push({ tool: 'slow', args: { ms } });
      const steps = Math.max(1, Math.round(ms / 50));
      for (let i = 1; i <= steps; i++) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 50);
          extra.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(new Error('aborted'));
            },
            { once: true },
          );
        }).catch((error: Error) => {
          this.cancelled++;
          throw error;
        });
        const token = extra._meta?.progressToken;
        if (token !== undefined)
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps } });
      }
      return { content: [{ type: 'text' as const, text: `slept ${ms}` }] };
    });
    // Large progress, as fast as the transport takes it (or one every delayMs): fills a client's stream (its stored events) in one call.
    server.registerTool(
      'flood',
      {
        description: 'Sends count progress notifications of size characters each',
        inputSchema: { count: z.number(), size: z.number(), tag: z.string().optional(), delayMs: z.number().optional() },
      },
      async ({ count, size, tag, delayMs = 0 }, extra) => {
        this.calls.push({ tool: 'flood', args: { count, size } });
        const token = extra._meta?.progressToken;
        if (tag !== undefined) {
          this.flooded.requests.set(tag, `${extra.sessionId}/${extra.requestId}`);
          this.flooded.sent.set(tag, 0);
        }
        for (let i = 1; i <= count; i++) {
          if (extra.signal.aborted) {
            if (tag !== undefined) this.flooded.aborted.add(tag);
            throw new Error('cancelled');
          }
          const message = `${i}:`.padEnd(size, 'x');
          if (token !== undefined) {
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: count, message } });
            if (tag !== undefined) this.flooded.sent.set(tag, i);
          }
          if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
        this.calls.push({ tool: 'flood done', args: { count } });
        return { content: [{ type: 'text' as const, text: `flooded ${count}` }] };
      },
    );
    for (let i = 0; i < this.extraTools; i++) {
      server.registerTool(`extra_${i}`, { description: i === 137 ? 'Rotates the signing keys of the vault' : `Extra tool number ${i}` }, async () => ({
        content: [{ type: 'text' as const, text: `extra ${i}` }],
      }));
    }
    server.registerResource('readme', `file:///${this.name}/readme.txt`, { description: 'A text', mimeType: 'text/plain' }, async (uri) => ({
      contents: [{ uri: uri.href, text: `readme of ${this.name}` }],
    }));
    server.registerPrompt('greet', { description: 'Greets', argsSchema: { who: z.string() } }, ({ who }) => ({
      messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Hello ${who} from ${this.name}` } }],
    }));
    this.servers.add(server);
    return server;
  }

  async close(): Promise<void> {
    await this.host.close();
  }
}
