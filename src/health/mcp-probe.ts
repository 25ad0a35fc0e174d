import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport as SdkTransport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { createHash } from 'node:crypto';
import { describeEgressError as describe, egressDenial, type EgressFetch } from '../egress/egress.dispatcher.js';
import type { HealthCheck, Transport } from '../registry/mcp-servers/mcp-server.schemas.js';
import type { CheckQuality } from './health.types.js';

export const PROBE_CLIENT_INFO = { name: 'agentic-registry-health', version: '1' } as const;

/** What one probe needs: where, how, with which (decrypted) headers and settings. */
export interface ProbeRequest {
  readonly url: string;
  readonly transport: Transport;
  readonly headers: Record<string, string>;
  readonly settings: Pick<HealthCheck, 'timeoutMs' | 'latencyThresholdMs' | 'listTools'>;
}

export interface ProbeOutcome {
  readonly ok: boolean;
  readonly quality: CheckQuality;
  readonly latencyMs: number;
  readonly step?: string;
  readonly error?: string;
  readonly toolCount?: number;
  readonly toolsHash?: string;
}

/** A stable digest of a tool list: names, descriptions and schemas, in name order. */
export function hashTools(tools: readonly { name: string; description?: string; inputSchema?: unknown; outputSchema?: unknown }[]): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
      );
    }
    return value;
  };
  const list = [...tools]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => canonical({ name: t.name, description: t.description ?? '', inputSchema: t.inputSchema ?? null, outputSchema: t.outputSchema ?? null }));
  return createHash('sha256').update(JSON.stringify(list)).digest('hex').slice(0, 16);
}

/**
 * Probes one MCP server the way a client would use it, with
 * `@modelcontextprotocol/sdk`: `initialize` over its transport (Streamable
 * HTTP, or legacy HTTP+SSE), then `ping`, then `tools/list` (every page) when
 * configured. Every request goes through `fetch` — the egress client, which
 * checks each resolved address at connect time — with the server's stored
 * headers. The whole probe has one deadline (`timeoutMs`); whatever happens,
 * the session is ended (DELETE for Streamable HTTP) and the transport closed.
 */
export async function probeMcpServer(request: ProbeRequest, fetch: EgressFetch): Promise<ProbeOutcome> {
  const { timeoutMs, latencyThresholdMs, listTools } = request.settings;
  const deadline = new AbortController();
  const started = performance.now();
  let step = 'connect';
  const timer = setTimeout(() => deadline.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  const boundFetch: EgressFetch = (input, init) =>
    fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal });
  const url = new URL(request.url);
  const requestInit = { headers: request.headers };
  const transport: SdkTransport =
    request.transport === 'sse'
      ? new SSEClientTransport(url, { fetch: boundFetch as never, requestInit, eventSourceInit: { fetch: boundFetch } })
      : new StreamableHTTPClientTransport(url, {
          fetch: boundFetch as never,
          requestInit,
          reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
        });
  const client = new Client(PROBE_CLIENT_INFO, { capabilities: {} });
  client.onerror = () => undefined; // errors surface as the failed request below
  const options = { signal: deadline.signal, timeout: timeoutMs };
  const aborted = new Promise<never>((_, reject) => deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason as Error), { once: true }));
  aborted.catch(() => undefined);
  try {
    step = 'initialize';
    await Promise.race([client.connect(transport, options), aborted]);
    step = 'ping';
    await Promise.race([client.ping(options), aborted]);
    let toolCount: number | undefined;
    let toolsHash: string | undefined;
    let partial: string | undefined;
    if (listTools) {
      step = 'tools/list';
      try {
        const tools: { name: string; description?: string; inputSchema?: unknown; outputSchema?: unknown }[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < 100; page++) {
          const result = await Promise.race([client.listTools(cursor ? { cursor } : undefined, options), aborted]);
          tools.push(...result.tools);
          cursor = result.nextCursor;
          if (!cursor) break;
        }
        toolCount = tools.length;
        toolsHash = hashTools(tools);
      } catch (error) {
        if (deadline.signal.aborted) throw error;
        partial = `ping answered but tools/list failed: ${describe(error)}`;
      }
    }
    const latencyMs = Math.round(performance.now() - started);
    let quality: CheckQuality = 'good';
    let detail: string | undefined;
    if (partial) {
      quality = 'partial';
      detail = partial;
    } else if (latencyMs > latencyThresholdMs) {
      quality = 'slow';
      detail = `answered in ${latencyMs} ms, over its ${latencyThresholdMs} ms latency threshold`;
    }
    return { ok: true, quality, latencyMs, ...(detail ? { error: detail } : {}), ...(toolCount !== undefined ? { toolCount, toolsHash } : {}) };
  } catch (error) {
    const latencyMs = Math.round(performance.now() - started);
    const denied = egressDenial(error);
    if (denied) return { ok: false, quality: 'failed', latencyMs, step: 'egress', error: denied.message };
    if (deadline.signal.aborted) return { ok: false, quality: 'failed', latencyMs, step: 'timeout', error: `${step}: no answer within ${timeoutMs} ms` };
    return { ok: false, quality: 'failed', latencyMs, step, error: `${step}: ${describe(error)}` };
  } finally {
    clearTimeout(timer);
    await closeQuietly(client, transport);
  }
}

/** Ends the server-side session (Streamable HTTP) and closes the transport, bounded in time. */
async function closeQuietly(client: Client, transport: SdkTransport): Promise<void> {
  const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  if (transport instanceof StreamableHTTPClientTransport && transport.sessionId !== undefined) await bounded(transport.terminateSession());
  await bounded(client.close());
}
