import { Logger } from '@nestjs/common';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  type CallToolRequest,
  CallToolRequestSchema,
  type CallToolResult,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  type Prompt,
  ReadResourceRequestSchema,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { type BackendSession, retryOnStaleSession } from '../core/backend-connector.js';
import type { BackendPool } from '../core/backend-pool.js';
import type { CallLimiter } from '../core/call-limiter.js';
import type { GatewayCaller } from '../core/gateway-caller.js';
import { GatewayError, isSchemaFailure, mcpErrorText } from '../core/gateway-errors.js';
import { type GatewayCalls, type GatewayOutcome, outcomeOf } from '../core/gateway-metrics.js';
import type { GatewayPolicy } from '../core/gateway-policy.js';
import { namespaced, parseNamespaced } from '../core/namespacing.js';
import { toolArguments } from '../core/tool-arguments.js';
import { DeferredToolCatalog, META_TOOL_NAMES } from '../core/tool-catalog.js';

export const GATEWAY_SERVER_INFO = { name: 'agentic-registry-gateway', version: '1.0.0' } as const;

/** Resources keep their backend's URI behind a scheme naming the server: `mcp+<server>:<uri>`. */
export function gatewayUri(serverId: string, uri: string): string {
  return `mcp+${serverId}:${uri}`;
}

export function parseGatewayUri(uri: string): { serverId: string; uri: string } | null {
  const m = /^mcp\+([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?):(.+)$/s.exec(uri);
  return m ? { serverId: m[1], uri: m[2] } : null;
}

export interface AggregatorSettings {
  readonly callTimeoutMs: number;
  readonly listTimeoutMs: number;
  /** The replica's calls in flight, per client and in all (shared by every `/mcp` session of the replica). */
  readonly limiter: CallLimiter;
}

/** What the aggregated server of one `/mcp` session needs from its session. */
export interface AggregatorSession {
  readonly id: string;
  /** The caller of the request being served (re-resolved at every HTTP request). */
  caller(): GatewayCaller;
  /** Deferred loading: the session's catalog, or null when every reachable tool is listed. */
  readonly deferred: boolean;
  activated(): string[];
  /** Activation changed the exposed list: persist it and announce tools/list_changed. */
  onActivated(activated: string[]): Promise<void>;
  /** A backend said its list changed. */
  onBackendListChanged(): void;
  /** Aborts a call when the client cancels it from any replica, or the session ends. */
  callSignal(requestId: string | number): { signal: AbortSignal; done(): void };
}

/**
 * A JSON-RPC error as the aggregated server answers it: the SDK sends an error's `code`, `message` and `data`.
 * (An `McpError`'s message starts with "MCP error <code>: ", and the client's McpError adds that again: the
 * client read "MCP error -32602: MCP error -32602: …".)
 */
export class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcFailure';
  }
}

function rpcError(error: unknown): RpcFailure {
  if (error instanceof RpcFailure) return error;
  if (error instanceof McpError) return new RpcFailure(error.code, mcpErrorText(error), error.data);
  if (error instanceof GatewayError) {
    const e = error.toJsonRpc();
    return new RpcFailure(e.code, e.message, e.data);
  }
  const e = error as { code?: unknown; message?: string; data?: unknown } | undefined;
  if (typeof e?.code === 'number' && Number.isSafeInteger(e.code)) return new RpcFailure(e.code, e.message ?? String(error), e.data);
  return new RpcFailure(ErrorCode.InternalError, e?.message ?? String(error));
}

/** The SDK's schema refusing a request's params: -32602 naming the first field it refused (`params.uri`). */
function invalidParams(issues: readonly { path: readonly PropertyKey[]; message: string }[]): RpcFailure {
  const issue = issues[0];
  const field = (issue?.path ?? []).map(String).join('.') || 'params';
  return rpcError(new GatewayError('invalid_params', `Invalid params: ${field}: ${issue?.message ?? 'invalid'}`, { field }));
}

/** A tools/call's params, checked as the SDK's schema does; what fails is -32602 naming the field (params.arguments first). */
function callToolParams(params: unknown): CallToolRequest['params'] {
  try {
    toolArguments((params as { arguments?: unknown } | undefined)?.arguments);
  } catch (error) {
    throw rpcError(error);
  }
  const parsed = CallToolRequestSchema.shape.params.safeParse(params);
  if (parsed.success) return parsed.data;
  throw invalidParams(parsed.error.issues.map((i) => ({ ...i, path: ['params', ...i.path] })));
}

/**
 * One SDK `Server` per `/mcp` session, aggregating what the caller may reach:
 * tools, resources and prompts of every reachable backend under namespaced
 * names (`server__name`; resources as `mcp+server:<uri>`), calls forwarded
 * to the backend with progress and cancellation, every forwarded call
 * recorded through GatewayCalls, and — for a deferred session — only
 * search_tools / activate_tools plus the activated tools.
 */
export class McpAggregator {
  private readonly logger = new Logger('McpGateway');
  readonly server: Server;
  private toolCache?: { at: number; tools: Promise<Tool[]> };

  constructor(
    private readonly session: AggregatorSession,
    private readonly pool: BackendPool,
    private readonly policy: GatewayPolicy,
    private readonly calls: GatewayCalls,
    private readonly settings: AggregatorSettings,
  ) {
    this.server = new Server(GATEWAY_SERVER_INFO, {
      capabilities: { tools: { listChanged: true }, resources: {}, prompts: {} },
      instructions:
        'Tools, resources and prompts of the MCP servers you may reach through the Agentic Registry gateway, named <server>__<name>.' +
        (session.deferred ? ' Tools are loaded on demand: search_tools finds them, activate_tools makes them callable.' : ''),
    });
    this.server.onerror = (error) => this.logger.debug(`session ${session.id}: ${error.message}`);
    this.server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: await this.exposedTools() }));
    // tools/call is parsed here, not through setRequestHandler: the SDK parses a request before its handler runs and
    // answers one its schema refuses (`"arguments": 5`) -32603 with a dump of zod issues. Bad params are -32602
    // naming the field, as on the other ways in.
    this.server.fallbackRequestHandler = async (request, extra) => {
      if (request.method !== 'tools/call') throw Object.assign(new Error('Method not found'), { code: ErrorCode.MethodNotFound });
      const params = callToolParams(request.params);
      return this.callTool(params.name, params.arguments, extra.requestId, extra.signal, params._meta?.progressToken, (n) => extra.sendNotification(n));
    };
    this.server.setRequestHandler(ListResourcesRequestSchema, async (_r, extra) => ({
      resources: await this.gather<Resource>(
        'resources/list',
        extra.signal,
        (s, o) => s.listResources(o),
        (id, r) => ({
          ...r,
          uri: gatewayUri(id, r.uri),
          name: namespaced(id, r.name),
        }),
      ),
    }));
    this.server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_r, extra) => ({
      resourceTemplates: await this.gather<ResourceTemplate>(
        'resources/templates/list',
        extra.signal,
        async (s, o) => ((await s.request('resources/templates/list', undefined, o)).resourceTemplates as ResourceTemplate[] | undefined) ?? [],
        (id, t) => ({ ...t, uriTemplate: gatewayUri(id, t.uriTemplate), name: namespaced(id, t.name) }),
      ),
    }));
    this.server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) => {
      const target = parseGatewayUri(request.params.uri);
      if (!target)
        throw new RpcFailure(ErrorCode.InvalidParams, `unknown resource ${request.params.uri.slice(0, 200)}: gateway resources are mcp+<server>:<uri>`);
      const result = await this.forward(target.serverId, null, 'resources/read', extra.requestId, extra.signal, (s, o) =>
        s.request('resources/read', { uri: target.uri }, o),
      );
      const contents = (result.contents as { uri: string }[] | undefined) ?? [];
      return { ...result, contents: contents.map((c) => ({ ...c, uri: gatewayUri(target.serverId, c.uri) })) };
    });
    this.server.setRequestHandler(ListPromptsRequestSchema, async (_r, extra) => ({
      prompts: await this.gather<Prompt>(
        'prompts/list',
        extra.signal,
        (s, o) => s.listPrompts(o),
        (id, p) => ({ ...p, name: namespaced(id, p.name) }),
      ),
    }));
    this.server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
      const target = parseNamespaced(request.params.name);
      if (!target) throw new RpcFailure(ErrorCode.InvalidParams, `unknown prompt ${request.params.name.slice(0, 200)}: gateway prompts are <server>__<name>`);
      return this.forward(target.serverId, null, 'prompts/get', extra.requestId, extra.signal, (s, o) =>
        s.request('prompts/get', { name: target.name, ...(request.params.arguments ? { arguments: request.params.arguments } : {}) }, o),
      );
    });
    // The SDK parses a request with its method's schema before the handler runs, and answers a refusal -32603 with
    // a dump of zod issues (`resources/read` with a number as `uri`): every handler's refusal is -32602 naming the field.
    const handlers = (this.server as unknown as { _requestHandlers: Map<string, (request: unknown, extra: unknown) => Promise<unknown>> })._requestHandlers;
    for (const [method, handler] of handlers) {
      handlers.set(method, async (request, extra) => {
        try {
          return await handler(request, extra);
        } catch (error) {
          throw isSchemaFailure(error) ? invalidParams(error.issues) : rpcError(error);
        }
      });
    }
  }

  /** Next tools/list re-reads the backends. */
  invalidate(): void {
    this.toolCache = undefined;
  }

  /** Every tool the caller may call, namespaced (cached for a few seconds; invalidated by access changes). */
  allTools(signal?: AbortSignal): Promise<Tool[]> {
    const now = Date.now();
    if (this.toolCache && now - this.toolCache.at < 5000) return this.toolCache.tools;
    const caller = this.session.caller();
    const tools = this.gather<Tool>(
      'tools/list',
      signal,
      (s, o) => s.listTools(o),
      (id, t) => ({ ...t, name: namespaced(id, t.name) }),
    ).then(async (all) => {
      const visible = await Promise.all(
        all.map(async (t) => {
          const parsed = parseNamespaced(t.name)!;
          return (await this.policy.toolVisible(caller, parsed.serverId, parsed.name)) ? t : null;
        }),
      );
      return visible.filter((t): t is Tool => t !== null);
    });
    this.toolCache = { at: now, tools };
    tools.catch(() => this.toolCache?.tools === tools && (this.toolCache = undefined));
    return tools;
  }

  private async exposedTools(): Promise<Tool[]> {
    const tools = await this.allTools();
    if (!this.session.deferred) return tools;
    return new DeferredToolCatalog(tools, this.session.activated()).exposed();
  }

  /** A broadcast list: every reachable server asked at once; a server that fails is left out (and its failure recorded). */
  private async gather<T>(
    method: string,
    signal: AbortSignal | undefined,
    list: (s: BackendSession, o: { signal?: AbortSignal; timeoutMs: number }) => Promise<T[]>,
    rename: (serverId: string, item: T) => T,
  ): Promise<T[]> {
    const caller = this.session.caller();
    return this.inSlot(caller, null, method, null, async () => {
      const servers = await this.policy.reachableServers(caller);
      const results = await Promise.all(
        servers.map(async (server) => {
          const started = performance.now();
          try {
            const items = await retryOnStaleSession(
              () => this.pool.get(server.id, signal),
              (backend) => list(backend, { ...(signal ? { signal } : {}), timeoutMs: this.settings.listTimeoutMs }),
            );
            this.record(caller, server.id, null, method, started, 'ok');
            return items.map((item) => rename(server.id, item));
          } catch (error) {
            const e = error instanceof GatewayError ? error : new GatewayError('backend', (error as Error).message);
            if (e.code === 'backend') this.pool.drop(server.id);
            // "Method not found" from a server without resources or prompts is not a failure worth a warning.
            const unsupported = e.rpcCode === ErrorCode.MethodNotFound;
            this.record(caller, server.id, null, method, started, unsupported ? 'ok' : outcomeOf(e.code), unsupported ? undefined : e.message);
            return [];
          }
        }),
      );
      return results.flat();
    });
  }

  private record(
    caller: GatewayCaller,
    serverId: string | null,
    tool: string | null,
    method: string,
    started: number,
    outcome: GatewayOutcome,
    detail?: string,
  ) {
    this.calls.record({ caller, serverId, tool, method, durationMs: performance.now() - started, outcome, surface: 'mcp', ...(detail ? { detail } : {}) });
  }

  /**
   * Runs one call of the caller in a slot of this replica's (see CallLimiter), or refuses it with -32008 saying which
   * bound was reached: at once, before anything is asked, so a client past its bound cannot make the replica hold more.
   */
  private async inSlot<T>(caller: GatewayCaller, serverId: string | null, method: string, tool: string | null, run: () => Promise<T>): Promise<T> {
    const { limiter } = this.settings;
    const slot = limiter.enter(caller.principal.id);
    if (typeof slot !== 'function') {
      const message =
        slot === 'client'
          ? `this client already has ${limiter.perClient} calls in flight on this replica (GATEWAY_MCP_MAX_CALLS_PER_CLIENT); call again once some have ended`
          : `this replica already has ${limiter.total} calls in flight (GATEWAY_MCP_MAX_CALLS); call again shortly`;
      this.record(caller, serverId, tool, method, performance.now(), 'overloaded', message);
      throw rpcError(new GatewayError('overloaded', message, { limit: slot === 'client' ? limiter.perClient : limiter.total, bound: slot }));
    }
    try {
      return await run();
    } finally {
      slot();
    }
  }

  /** One forwarded request to one server, after the policy allowed it (tool == null: the server as a whole), in a slot. */
  private async forward<T>(
    serverId: string,
    tool: string | null,
    method: string,
    requestId: string | number,
    clientSignal: AbortSignal,
    call: (s: BackendSession, o: { signal: AbortSignal; timeoutMs: number }) => Promise<T>,
  ): Promise<T> {
    const caller = this.session.caller();
    const started = performance.now();
    return this.inSlot(caller, serverId, method, tool, async () => {
      const decision = tool === null ? await this.policy.decideServer(caller, serverId) : await this.policy.decideTool(caller, serverId, tool);
      if (!decision.allowed) {
        this.record(caller, serverId, tool, method, started, outcomeOf(decision.code), decision.detail);
        throw rpcError(new GatewayError(decision.code, decision.detail, { server: serverId, ...(tool ? { tool } : {}) }));
      }
      const cancel = this.session.callSignal(requestId);
      const signal = AbortSignal.any([clientSignal, cancel.signal]);
      try {
        const result = await retryOnStaleSession(
          () => this.pool.get(serverId, signal),
          (backend) => call(backend, { signal, timeoutMs: this.settings.callTimeoutMs }),
        );
        this.record(caller, serverId, tool, method, started, 'ok');
        return result;
      } catch (error) {
        let e = error instanceof GatewayError ? error : new GatewayError('backend', (error as Error)?.message ?? String(error), { server: serverId });
        if (cancel.signal.aborted && !clientSignal.aborted) {
          // Ended by this side (drain, session closed): the client gets an answer it can act on.
          e = new GatewayError('cancelled', `the call was interrupted: ${String(cancel.signal.reason ?? 'session closed')}; call it again`, {
            server: serverId,
          });
        }
        if (e.code === 'backend' && e.rpcCode === undefined) this.pool.drop(serverId);
        this.record(caller, serverId, tool, method, started, outcomeOf(e.code), e.message);
        throw rpcError(e);
      } finally {
        cancel.done();
      }
    });
  }

  private async callTool(
    name: string,
    args: Record<string, unknown> | undefined,
    requestId: string | number,
    signal: AbortSignal,
    progressToken: string | number | undefined,
    notify: (n: {
      method: 'notifications/progress';
      params: { progressToken: string | number; progress: number; total?: number; message?: string };
    }) => Promise<void>,
  ): Promise<CallToolResult> {
    if (this.session.deferred && META_TOOL_NAMES.includes(name)) {
      const catalog = new DeferredToolCatalog(await this.allTools(signal), this.session.activated());
      const outcome = catalog.callMeta(name, args)!;
      if (outcome.changed) await this.session.onActivated(catalog.activated());
      this.record(this.session.caller(), null, name, 'tools/call', performance.now(), 'ok');
      return outcome.result;
    }
    const target = parseNamespaced(name);
    if (!target) {
      this.record(this.session.caller(), null, name.slice(0, 100), 'tools/call', performance.now(), 'denied', 'not a namespaced tool name');
      throw new RpcFailure(ErrorCode.InvalidParams, `unknown tool ${name.slice(0, 200)}: gateway tools are <server>__<tool>`);
    }
    // Deferred: a tool is callable once activated, as it is listed (streaming sessions refuse it the same way).
    if (this.session.deferred && !this.session.activated().includes(name)) {
      this.record(this.session.caller(), target.serverId, target.name, 'tools/call', performance.now(), 'denied', 'not activated');
      throw new RpcFailure(ErrorCode.InvalidParams, `tool ${name} is not activated in this session: find it with search_tools, then activate_tools`);
    }
    return this.forward(target.serverId, target.name, 'tools/call', requestId, signal, (backend, o) =>
      backend.callTool(target.name, args, {
        ...o,
        ...(progressToken !== undefined
          ? {
              onProgress: (p) => {
                void notify({ method: 'notifications/progress', params: { ...p, progressToken } }).catch(() => undefined);
              },
            }
          : {}),
      }),
    );
  }
}
