import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { rows } from '../../database/sql.js';
import { ServerDirectory } from '../../health/server-directory.js';
import type { Transport } from '../../registry/mcp-servers/mcp-server.schemas.js';
import { evaluateTrust, type TrustRuleLike } from '../../registry/trust-rules/trust-evaluator.js';
import type { Effect } from '../../registry/trust-rules/trust-rule.schemas.js';
import { EventFilter } from '../../streaming/event-filter.js';
import type { HubEvent } from '../../streaming/event-window.js';
import { StreamHub } from '../../streaming/stream.hub.js';
import type { Codec, Subscriber } from '../../streaming/subscriber.js';
import { findServer } from './backend-connector.js';
import type { GatewayCaller } from './gateway-caller.js';

/** An enabled MCP server a caller may reach at all (some of its tools may still be denied). */
export interface ReachableServer {
  readonly id: string;
  readonly name: string;
  readonly transport: Transport;
}

export type GatewayDecision = { allowed: true } | { allowed: false; code: 'not_found' | 'denied' | 'approval_required' | 'circuit_open'; detail: string };

export interface AccessChange {
  readonly serverIds: string[] | 'all';
}

/** The changes that can change what a caller reaches (trust rules, servers, a server's tool list). */
const ACCESS_EVENTS = 'trust_rule.*,mcp_server.created,mcp_server.updated,mcp_server.deleted,mcp_server.health_changed';
const PASS_THROUGH: Codec<HubEvent[]> = { transport: 'gateway-policy', events: (events) => events, cursor: () => [] };
/** Rules cached per agent are dropped after this long even without an event (safety net). */
const RULES_TTL_MS = 30_000;
const MAX_CACHED_AGENTS = 10_000;

interface RuleRow {
  agent_id: string;
  mcp_server_id: string;
  tool_pattern: string;
  effect: Effect;
  priority: number;
}

/**
 * What a gateway caller may reach. Admins: every enabled server and tool.
 * A key bound to an agent: the agent's trust rules, evaluated as everywhere in
 * the registry (`evaluateTrust`: the highest-priority matching rule decides,
 * so a specific rule is given a higher priority than a broad one; on equal
 * priority deny wins over require_approval over allow; no matching rule means
 * deny). `require_approval` is refused with its own code for now. Anyone else
 * reaches nothing.
 *
 * Rules are read per agent and cached until a `trust_rule.*` event (followed
 * through the replica's StreamHub, so a change made through any replica
 * reaches every replica) or RULES_TTL_MS. The same events, MCP server changes
 * and tool-list changes recorded by the health probes fire `onAccessChanged`
 * on every replica.
 */
@Injectable()
export class GatewayPolicy implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('GatewayPolicy');
  private readonly rules = new Map<string, { at: number; rules: Promise<TrustRuleLike[]> }>();
  private readonly listeners = new Set<(change: AccessChange) => void>();
  private subscriber?: Subscriber<HubEvent[]> & { closed: boolean };
  private stopped = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly directory: ServerDirectory,
    private readonly hub: StreamHub,
  ) {}

  onApplicationBootstrap(): void {
    this.follow();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.subscriber) {
      this.subscriber.closed = true;
      this.hub.leave(this.subscriber);
    }
  }

  /** Fired on every replica when what some caller reaches may have changed; returns the unsubscribe function. */
  onAccessChanged(listener: (change: AccessChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Enabled servers the caller may reach at all: admin all; an agent those with at least one allow rule. */
  async reachableServers(caller: GatewayCaller): Promise<ReachableServer[]> {
    await this.directory.ready();
    const enabled = this.directory
      .all()
      .filter((s) => s.enabled)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (caller.admin) return enabled.map(toReachable);
    if (caller.agentId === null) return [];
    const rules = await this.rulesOf(caller.agentId);
    const allowing = new Set(rules.filter((r) => r.effect === 'allow').map((r) => r.mcpServerId));
    return enabled.filter((s) => allowing.has(s.id)).map(toReachable);
  }

  /** Whether the caller may reach this server at all (lists, resources, prompts). */
  async decideServer(caller: GatewayCaller, serverId: string): Promise<GatewayDecision> {
    const server = await findServer(this.directory, serverId);
    if (!server || !server.enabled) return { allowed: false, code: 'not_found', detail: `no enabled MCP server ${serverId}` };
    if (caller.admin) return { allowed: true };
    if (caller.agentId === null) return notBound(caller);
    const rules = await this.rulesOf(caller.agentId);
    if (rules.some((r) => r.mcpServerId === serverId && r.effect === 'allow')) return { allowed: true };
    // Not revealing more than "not reachable": the server exists, but not for this agent.
    return { allowed: false, code: 'not_found', detail: `MCP server ${serverId} is not reachable by agent ${caller.agentId}` };
  }

  /** Whether the caller may call this tool of this server. */
  async decideTool(caller: GatewayCaller, serverId: string, toolName: string): Promise<GatewayDecision> {
    const server = await findServer(this.directory, serverId);
    if (!server || !server.enabled) return { allowed: false, code: 'not_found', detail: `no enabled MCP server ${serverId}` };
    if (caller.admin) return { allowed: true };
    if (caller.agentId === null) return notBound(caller);
    const effect = evaluateTrust(await this.rulesOf(caller.agentId), caller.agentId, serverId, toolName);
    if (effect === 'allow') return { allowed: true };
    if (effect === 'require_approval') {
      return {
        allowed: false,
        code: 'approval_required',
        detail: `tool ${toolName} of ${serverId} requires approval for agent ${caller.agentId}; approvals are not supported by the gateway yet`,
      };
    }
    return { allowed: false, code: 'denied', detail: `agent ${caller.agentId} may not call tool ${toolName} of ${serverId} (trust rules)` };
  }

  /** Whether the caller may see this tool in a list (the same decision as calling it). */
  async toolVisible(caller: GatewayCaller, serverId: string, toolName: string): Promise<boolean> {
    return (await this.decideTool(caller, serverId, toolName)).allowed;
  }

  private rulesOf(agentId: string): Promise<TrustRuleLike[]> {
    const now = Date.now();
    const cached = this.rules.get(agentId);
    if (cached && now - cached.at < RULES_TTL_MS) return cached.rules;
    const loading = rows<RuleRow>(
      this.dataSource.manager,
      'SELECT agent_id, mcp_server_id, tool_pattern, effect, priority FROM trust_rules WHERE agent_id = $1',
      [agentId],
    ).then((found) =>
      found.map((r) => ({ agentId: r.agent_id, mcpServerId: r.mcp_server_id, toolPattern: r.tool_pattern, effect: r.effect, priority: r.priority })),
    );
    if (this.rules.size >= MAX_CACHED_AGENTS) this.rules.clear();
    this.rules.set(agentId, { at: now, rules: loading });
    loading.catch(() => {
      if (this.rules.get(agentId)?.rules === loading) this.rules.delete(agentId);
    });
    return loading;
  }

  private follow(): void {
    if (this.stopped) return;
    const sub = {
      filter: EventFilter.parse(ACCESS_EVENTS, 'admin'),
      cursor: 0,
      closed: false,
      write: (events: HubEvent[]) => this.onEvents(events),
      writeReplay: (events: HubEvent[]) => {
        this.onEvents(events);
        return Promise.resolve();
      },
      reset: () => this.changed('all'),
      close: () => {
        sub.closed = true;
        this.hub.leave(sub);
        this.changed('all');
        if (!this.stopped) setTimeout(() => this.follow(), 1000).unref();
      },
    };
    this.subscriber = sub;
    void this.hub.follow(sub, PASS_THROUGH, undefined).catch((error: Error) => {
      this.logger.warn(`following access changes failed (${error.message}); retrying`);
      sub.close();
    });
  }

  private onEvents(events: HubEvent[]): void {
    const servers = new Set<string>();
    for (const e of events) {
      let event: { type?: string; id?: string; data?: { mcpServerId?: string; tools?: { changed?: boolean }; to?: string; from?: string } };
      try {
        event = JSON.parse(e.json) as typeof event;
      } catch {
        continue;
      }
      if (e.resource === 'trust_rule') {
        this.rules.clear();
        if (event.data?.mcpServerId) servers.add(event.data.mcpServerId);
        else return this.changed('all');
      } else if (event.type === 'mcp_server.health_changed') {
        // Only a changed tool list changes what is offered.
        if (event.data?.tools?.changed && event.id) servers.add(event.id);
      } else if (event.id) {
        servers.add(event.id);
      }
    }
    if (servers.size > 0) this.changed([...servers]);
  }

  private changed(serverIds: string[] | 'all'): void {
    if (serverIds === 'all') this.rules.clear();
    // The directory may not have applied an mcp_server change yet: listeners re-read lazily.
    for (const l of [...this.listeners]) {
      try {
        l({ serverIds });
      } catch (error) {
        this.logger.warn(`an access-change listener failed: ${(error as Error).message}`);
      }
    }
  }
}

function toReachable(s: { id: string; name: string; transport: Transport }): ReachableServer {
  return { id: s.id, name: s.name, transport: s.transport };
}

function notBound(caller: GatewayCaller): GatewayDecision {
  return {
    allowed: false,
    code: 'denied',
    detail:
      caller.principal.kind === 'api_key'
        ? 'this API key is not bound to an agent: only admin keys and keys bound to an agent (agentId) may use the gateway'
        : 'only admins and API keys bound to an agent may use the gateway',
  };
}
