/**
 * The one place that defines event types, resources, Redis channel names and
 * which role may read what. Server, GUI and tests import it.
 */
export const RESOURCES = ['agent', 'prompt', 'mcp_server', 'trust_rule'] as const;
export type Resource = (typeof RESOURCES)[number];

export const EVENT_TYPES = [
  'agent.created',
  'agent.updated',
  'agent.deleted',
  'prompt.created',
  'prompt.activated',
  'prompt.deleted',
  'mcp_server.created',
  'mcp_server.updated',
  'mcp_server.deleted',
  'mcp_server.health_changed',
  'mcp_server.circuit_changed',
  'trust_rule.created',
  'trust_rule.updated',
  'trust_rule.deleted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type Role = 'viewer' | 'editor' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'editor', 'admin'];
const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2 };

export function roleAtLeast(role: Role, required: Role): boolean {
  return RANK[role] >= RANK[required];
}

/**
 * Read policy: trust rules are security policy, readable by editors and admins
 * only; everything else is readable by every role. Streams apply the same rule.
 */
export const READ_ROLE: Record<Resource, Role> = {
  agent: 'viewer',
  prompt: 'viewer',
  mcp_server: 'viewer',
  trust_rule: 'editor',
};

export function canRead(role: Role, resource: Resource): boolean {
  return roleAtLeast(role, READ_ROLE[resource]);
}

/** An event as appended to the outbox inside the mutation's transaction. */
export interface NewEvent {
  readonly type: EventType;
  readonly id: string;
  readonly version?: number;
  readonly actor?: string;
  readonly data?: Record<string, unknown>;
}

/** The lightweight delta delivered to subscribers (SSE `data:`, Socket.IO payload, REST). */
export interface ChangeEvent {
  readonly seq: number;
  readonly type: EventType;
  readonly resource: Resource;
  readonly id: string;
  readonly action: string;
  readonly version?: number;
  readonly actor?: string;
  readonly ts: string;
  readonly data?: Record<string, unknown>;
}

export function splitType(type: EventType): { resource: Resource; action: string } {
  const dot = type.indexOf('.');
  return { resource: type.slice(0, dot) as Resource, action: type.slice(dot + 1) };
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Redis channel names and keys, prefixed so several deployments can share one Redis. */
export const channels = {
  events: (prefix: string) => `${prefix}:events`,
} as const;
