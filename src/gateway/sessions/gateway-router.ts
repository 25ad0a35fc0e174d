import type { Prompt, Resource, Tool } from '@modelcontextprotocol/sdk/types.js';
import { type BackendCallOptions, type BackendSession, retryOnStaleSession } from '../core/backend-connector.js';
import type { GatewayCaller } from '../core/gateway-caller.js';
import { GatewayError } from '../core/gateway-errors.js';
import type { GatewayPolicy } from '../core/gateway-policy.js';
import { type BroadcastMethod, isBroadcastMethod, namespaced, parseNamespaced } from '../core/namespacing.js';

/** Where one JSON-RPC request of a session goes. */
export type Route =
  | { readonly kind: 'local'; readonly method: 'ping' }
  | { readonly kind: 'broadcast'; readonly method: BroadcastMethod; readonly servers: string[] }
  | {
      readonly kind: 'server';
      readonly serverId: string;
      readonly method: string;
      readonly params: Record<string, unknown> | undefined;
      readonly tool: string | null;
    };

/** `_meta` member of a merged list naming the servers that could not contribute. */
export const PARTIAL_META_KEY = 'io.agentic-registry/errors';

/**
 * Routes a request among a session's servers: `tools/list`, `resources/list`
 * and `prompts/list` to every server; `server__method` to that server (the
 * method as the server knows it); `tools/call` and `prompts/get` by their
 * namespaced `name`; anything else to the only server of a one-server
 * session. An unknown server, a server not in the session, or a request that
 * could go to several servers is refused with a clear error.
 */
export function route(servers: readonly string[], method: string, params: Record<string, unknown> | undefined): Route {
  if (method === 'ping') return { kind: 'local', method: 'ping' };
  if (isBroadcastMethod(method)) return { kind: 'broadcast', method, servers: [...servers] };
  const prefixed = parseNamespaced(method);
  if (prefixed) {
    if (!servers.includes(prefixed.serverId)) throw notInSession(prefixed.serverId, servers);
    return target(prefixed.serverId, prefixed.name, params);
  }
  if (method === 'tools/call' || method === 'prompts/get') {
    const name = params?.name;
    if (typeof name !== 'string' || name === '') throw new GatewayError('invalid_params', `${method} needs params.name (a namespaced name: server__name)`);
    const parsed = parseNamespaced(name);
    if (parsed) {
      if (!servers.includes(parsed.serverId)) throw notInSession(parsed.serverId, servers);
      return target(parsed.serverId, method, { ...params, name: parsed.name });
    }
  }
  if (servers.length === 1) return target(servers[0], method, params);
  throw new GatewayError(
    'invalid_request',
    `${method} is ambiguous in a session with ${servers.length} servers: name the server (server__${method}, or a namespaced params.name such as ${servers[0]}__<name>)`,
    { servers: [...servers] },
  );
}

function target(serverId: string, method: string, params: Record<string, unknown> | undefined): Route {
  const tool = method === 'tools/call' && typeof params?.name === 'string' ? params.name : null;
  return { kind: 'server', serverId, method, params, tool };
}

function notInSession(serverId: string, servers: readonly string[]): GatewayError {
  return new GatewayError('not_found', `unknown server ${serverId}: this session has ${servers.join(', ') || 'no servers'}`, { server: serverId });
}

export interface ListOutcome {
  readonly result: Record<string, unknown>;
  readonly errors: { server: string; code: number; message: string }[];
  /** Every namespaced tool the caller may call (tools/list only; for deferred loading). */
  readonly tools?: Tool[];
}

/**
 * A broadcast list: each server's list (servers the caller can no longer
 * reach are skipped), names namespaced (`server__name`), tools the caller may
 * not call left out; servers that failed are named in the result's `_meta`.
 * All failing is an error.
 */
export async function broadcastList(
  method: BroadcastMethod,
  servers: readonly string[],
  caller: GatewayCaller,
  policy: GatewayPolicy,
  backend: (serverId: string) => Promise<BackendSession>,
  options: BackendCallOptions,
): Promise<ListOutcome> {
  const errors: { server: string; code: number; message: string }[] = [];
  const parts = await Promise.all(
    servers.map(async (serverId) => {
      try {
        const decision = await policy.decideServer(caller, serverId);
        if (!decision.allowed) return [];
        // A backend session the backend no longer knows (it restarted) is replaced and asked again, once.
        const list = <T>(call: (session: BackendSession) => Promise<T>) => retryOnStaleSession(() => backend(serverId), call);
        if (method === 'tools/list') {
          const tools = await list((s) => s.listTools(options));
          const visible: Tool[] = [];
          for (const t of tools) if (await policy.toolVisible(caller, serverId, t.name)) visible.push({ ...t, name: namespaced(serverId, t.name) });
          return visible;
        }
        if (method === 'resources/list')
          return (await list((s) => s.listResources(options))).map((r: Resource) => ({ ...r, name: namespaced(serverId, r.name) }));
        return (await list((s) => s.listPrompts(options))).map((p: Prompt) => ({ ...p, name: namespaced(serverId, p.name) }));
      } catch (error) {
        const e = error instanceof GatewayError ? error : new GatewayError('backend', (error as Error).message);
        const rpc = e.toJsonRpc();
        errors.push({ server: serverId, code: rpc.code, message: rpc.message });
        return undefined;
      }
    }),
  );
  if (servers.length > 0 && parts.every((p) => p === undefined)) {
    throw new GatewayError('backend', `${method} failed on every server`, { errors });
  }
  const items: unknown[] = [];
  for (const p of parts) if (p) items.push(...(p as unknown[]));
  const member = method === 'tools/list' ? 'tools' : method === 'resources/list' ? 'resources' : 'prompts';
  const result: Record<string, unknown> = { [member]: items };
  if (errors.length > 0) result._meta = { [PARTIAL_META_KEY]: errors };
  return { result, errors, ...(method === 'tools/list' ? { tools: items as Tool[] } : {}) };
}
