/** The resources of the registry, as the discovery snapshot names its sections. */
export type Section = 'agents' | 'prompts' | 'mcp_servers' | 'trust_rules';

/** An event's `resource` field. */
export type ResourceKind = 'agent' | 'prompt' | 'mcp_server' | 'trust_rule' | 'system';

/**
 * One change: a small delta, not the resource (`{seq, type, resource, id,
 * action, version?, actor?, ts, data?}`); see the README's event catalog.
 */
export interface ChangeEvent<D = Record<string, unknown>> {
  /** The event's position: gap-free across the whole registry, the SSE `id:`. */
  readonly seq: number;
  /** `resource.action`, e.g. `agent.updated`. */
  readonly type: string;
  /** A `ResourceKind`. */
  readonly resource: string;
  /** The resource's id (`<agent>/<version>` for prompts). */
  readonly id: string;
  readonly action: string;
  readonly version?: number;
  readonly actor?: string;
  /** ISO time. */
  readonly ts: string;
  readonly data?: D;
}

export interface Agent {
  id: string;
  name: string;
  description: string;
  model: { provider: string; name: string; [key: string]: unknown };
  tags: string[];
  metadata: Record<string, unknown>;
  activePromptVersion: number | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Prompt {
  agentId: string;
  version: number;
  template: string;
  description: string;
  variables: string[];
  active: boolean;
  createdBy: string | null;
  createdAt: string;
}

export interface McpServer {
  id: string;
  name: string;
  url: string;
  transport: string;
  /** Header names with masked values (`"***"`). */
  headers: Record<string, string>;
  healthCheck: Record<string, unknown>;
  enabled: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface TrustRule {
  id: string;
  agentId: string;
  mcpServerId: string;
  toolPattern: string;
  effect: 'allow' | 'deny' | 'require_approval';
  priority: number;
  description: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The resource type of each section. */
export interface SectionTypes {
  agents: Agent;
  prompts: Prompt;
  mcp_servers: McpServer;
  trust_rules: TrustRule;
}

/** `GET /api/v1/discovery`: every section the caller may read, and the `cursor` (seq) the snapshot is consistent with. */
export interface DiscoverySnapshot {
  cursor: number;
  agents: Agent[];
  prompts: Prompt[];
  mcp_servers: McpServer[];
  /** Absent for viewers (trust rules are readable by editors and admins). */
  trust_rules?: TrustRule[];
}
