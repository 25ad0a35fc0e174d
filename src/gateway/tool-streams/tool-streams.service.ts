import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/principal.js';
import { DomainError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { EventFilter } from '../../streaming/event-filter.js';
import { SseStreamService } from '../../streaming/sse-stream.service.js';
import { BackendConnector, type BackendSession, retryOnStaleSession } from '../core/backend-connector.js';
import { GatewayCallers } from '../core/gateway-caller.js';
import { GatewayError } from '../core/gateway-errors.js';
import { GatewayCalls, outcomeOf } from '../core/gateway-metrics.js';
import { GatewayPolicy } from '../core/gateway-policy.js';
import { toolArguments } from '../core/tool-arguments.js';

/** Pooled backend sessions unused this long are closed. */
const POOL_IDLE_MS = 5 * 60_000;

interface Pooled {
  readonly session: Promise<BackendSession>;
  lastUsed: number;
  inflight: number;
}

function closeSession(p: Pooled): Promise<void> {
  return p.session.then((s) => s.close()).catch(() => undefined);
}

/**
 * Tool calls streamed with progress (`POST /api/v1/mcp/stream`,
 * `GET /api/v1/stream/tools/:server/:tool`): one SSE response per call,
 * `start` → `progress`… → `result` → `complete`, then the JSON-RPC response
 * as a plain data frame and `data: [DONE]`; a failure is an `error` event
 * (a JSON-RPC error response) before `[DONE]`. The stream is an SSE
 * connection like the others (connection limits, drain, credential checks);
 * when the client goes, the backend call is aborted, which makes the SDK send
 * `notifications/cancelled`. Backend sessions are pooled per server on each
 * replica (one MCP client serves concurrent calls; progress and cancellation
 * are per request).
 */
@Injectable()
export class ToolStreams implements OnModuleInit, OnApplicationShutdown {
  private readonly pool = new Map<string, Pooled>();
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly connector: BackendConnector,
    private readonly policy: GatewayPolicy,
    private readonly callers: GatewayCallers,
    private readonly calls: GatewayCalls,
    private readonly sse: SseStreamService,
  ) {}

  onModuleInit(): void {
    // A server changed (URL, headers, enabled, a trust rule): its pooled session is dropped, the next call opens a new
    // one. The calls running on it were allowed when they started and finish on it (a new trust rule ended every
    // running tool stream of the server with "the session is closed").
    this.policy.onAccessChanged(({ serverIds }) => {
      for (const id of serverIds === 'all' ? [...this.pool.keys()] : serverIds) void this.drop(id, false);
    });
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.pool) if (p.inflight === 0 && now - p.lastUsed > POOL_IDLE_MS) void this.drop(id);
    }, 30_000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.pool.keys()].map((id) => this.drop(id)));
  }

  /** Takes a server's session out of the pool; closes it now, or (`now` false) once the calls running on it are done. */
  private drop(serverId: string, now = true): Promise<void> {
    const p = this.pool.get(serverId);
    if (!p) return Promise.resolve();
    this.pool.delete(serverId);
    // Left to its last call's release, which closes an entry no longer in the pool.
    if (!now && p.inflight > 0) return Promise.resolve();
    return closeSession(p);
  }

  private acquire(serverId: string): { session: Promise<BackendSession>; release: () => void } {
    let p = this.pool.get(serverId);
    if (!p) {
      const opening = this.connector.open(serverId, { timeoutMs: Math.min(this.config.gateway.requestTimeoutMs, 30_000) });
      const entry: Pooled = { session: opening, lastUsed: Date.now(), inflight: 0 };
      opening.catch(() => {
        if (this.pool.get(serverId) === entry) this.pool.delete(serverId);
      });
      this.pool.set(serverId, entry);
      p = entry;
    }
    const entry = p;
    entry.inflight++;
    entry.lastUsed = Date.now();
    // A pooled session found closed (it closes itself when found dead) is replaced; the call then counts on the
    // new entry (so that one is not swept while the call runs) and gives that count back instead.
    let release = () => {
      entry.inflight--;
      entry.lastUsed = Date.now();
      // Dropped from the pool while calls ran on it (its server changed): the last one closes it.
      if (entry.inflight === 0 && this.pool.get(serverId) !== entry) void closeSession(entry);
    };
    const session = entry.session.then((s) => {
      if (!s.closed) return s;
      if (this.pool.get(serverId) === entry) this.pool.delete(serverId);
      release();
      const next = this.acquire(serverId);
      release = next.release;
      return next.session;
    });
    return { session, release: () => release() };
  }

  async run(
    request: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    call: { serverId: string; tool: string; arguments: unknown; id: string | number },
  ): Promise<void> {
    if (!this.config.gateway.toolStreamsEnabled) throw new DomainError('not_found', 'tool streams are switched off (GATEWAY_TOOL_STREAMS_ENABLED=false)');
    const caller = await this.callers.resolve(principal);
    await this.sse.open(request, reply, principal, EventFilter.parse(undefined, principal.role), undefined, async (conn) => {
      const started = performance.now();
      const controller = new AbortController();
      this.sse.whenClosed(conn, () => controller.abort(new Error('the client went away')));
      const send = (event: string | null, data: string) => conn.writeFrame(`${event ? `event: ${event}\n` : ''}data: ${data}\n\n`);
      const id = JSON.stringify(call.id);
      send('start', JSON.stringify({ id: call.id, server: call.serverId, tool: call.tool, ts: new Date().toISOString() }));
      let release: (() => void) | undefined;
      try {
        const args = toolArguments(call.arguments);
        const decision = await this.policy.decideTool(caller, call.serverId, call.tool);
        if (!decision.allowed) throw new GatewayError(decision.code, decision.detail, { server: call.serverId, tool: call.tool });
        // A pooled session the backend no longer knows (it restarted) is given back, and the call made once more on a new one.
        const acquire = () => {
          release?.();
          const acquired = this.acquire(call.serverId);
          release = acquired.release;
          return acquired.session;
        };
        const result = await retryOnStaleSession(acquire, (backend) =>
          backend.callTool(call.tool, args, {
            signal: controller.signal,
            timeoutMs: this.config.gateway.requestTimeoutMs,
            onProgress: (p) => send('progress', JSON.stringify({ progress: p.progress, total: p.total, message: p.message })),
          }),
        );
        const json = JSON.stringify(result);
        const durationMs = performance.now() - started;
        // The last four frames and the end of the response leave in one write.
        conn.holdUntilClose();
        send('result', json);
        send('complete', `{"duration_ms":${Math.round(durationMs * 100) / 100}}`);
        send(null, `{"jsonrpc":"2.0","id":${id},"result":${json}}`);
        send(null, '[DONE]');
        this.calls.record({ caller, serverId: call.serverId, tool: call.tool, method: 'tools/call', durationMs, outcome: 'ok', surface: 'tool_stream' });
      } catch (error) {
        const e =
          error instanceof GatewayError
            ? error
            : new GatewayError(controller.signal.aborted ? 'cancelled' : 'internal', (error as Error).message ?? String(error));
        conn.holdUntilClose();
        send('error', JSON.stringify({ jsonrpc: '2.0', id: call.id, error: e.toJsonRpc() }));
        send(null, '[DONE]');
        this.calls.record({
          caller,
          serverId: call.serverId,
          tool: call.tool,
          method: 'tools/call',
          durationMs: performance.now() - started,
          outcome: outcomeOf(e.code),
          surface: 'tool_stream',
          detail: e.message,
        });
      } finally {
        release?.();
        conn.close('complete');
      }
    });
  }
}
