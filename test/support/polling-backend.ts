import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { McpSessionHost } from './mcp-session-host.js';

/**
 * An event store that replays events in the order they were stored, including events stored while it replays. (The
 * SDK's example store sorts ids made of a time and a random part: two events of one millisecond may come back swapped.)
 */
export class OrderedEventStore implements EventStore {
  private readonly events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}.${this.events.length + 1}`;
    this.events.push({ id, streamId, message });
    return Promise.resolve(id);
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return Promise.resolve(this.events.find((e) => e.id === eventId)?.streamId);
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    if (at === -1) return '';
    const { streamId } = this.events[at];
    for (let i = at + 1; i < this.events.length; i++) if (this.events[i].streamId === streamId) await send(this.events[i].id, this.events[i].message);
    return streamId;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A real SDK server (stateful Streamable HTTP, an event store: resumable streams) whose tool `poll` works the way the
 * MCP spec's polling lets a server work (SEP-1699): it ends the request's stream (`closeSSEStream`) right after the
 * priming event, and the client must resume it (GET with Last-Event-ID, after the `retry` the server gave, `retryMs`).
 * `poll {ends: n}` ends the stream n times: each time it waits for the client to come back, sends one progress
 * notification (progress i of n), and after the n-th answers `polled n`.
 */
export class PollingBackend {
  /** The Last-Event-ID of each GET that resumed a stream, in order. */
  readonly resumes: string[] = [];
  /** How many times a `poll` ended its stream. */
  ends = 0;
  /** How many `poll` calls started, and how many of them were cancelled by the client. */
  calls = 0;
  cancelled = 0;
  private host!: McpSessionHost;

  static async start({ retryMs }: { retryMs?: number } = {}): Promise<PollingBackend> {
    const b = new PollingBackend();
    b.host = await McpSessionHost.start(
      (transport) => b.build().connect(transport),
      (req) => {
        const last = req.headers['last-event-id'];
        if (req.method === 'GET' && typeof last === 'string') b.resumes.push(last);
      },
      () => ({ eventStore: new OrderedEventStore(), ...(retryMs !== undefined ? { retryInterval: retryMs } : {}) }),
    );
    return b;
  }

  get url(): string {
    return this.host.url;
  }

  close(): Promise<void> {
    return this.host.close();
  }

  private build(): McpServer {
    const server = new McpServer({ name: 'polling', version: '1.0.0' });
    server.registerTool('poll', { inputSchema: { ends: z.number().int().min(0).max(10) } }, async ({ ends }, extra) => {
      this.calls++;
      extra.signal.addEventListener('abort', () => this.cancelled++, { once: true });
      if (!extra.closeSSEStream) throw new Error('no closeSSEStream: the client did not negotiate 2025-11-25, or no event store');
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= ends; i++) {
        const before = this.resumes.length;
        extra.closeSSEStream();
        this.ends++;
        // Until the client is back (its GET registered), or the call is cancelled.
        for (let t = 0; t < 1000 && this.resumes.length === before && !extra.signal.aborted; t++) await sleep(10);
        if (extra.signal.aborted) return { content: [] };
        await sleep(50);
        if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: ends } });
      }
      return { content: [{ type: 'text', text: `polled ${ends}` }] };
    });
    return server;
  }
}
