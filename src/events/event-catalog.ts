/**
 * The one place that defines event types, resources and Redis channel names.
 * Server, GUI and tests import it. Who may read which resource is auth's
 * business: `src/auth/roles.ts`.
 */
export const RESOURCES = ['agent', 'prompt', 'mcp_server', 'trust_rule', 'system'] as const;
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
  // Admin notices (POST /api/v1/admin/notices): `id` is the notice's id, `data` { message, expiresAt }.
  'system.alert',
  'system.maintenance',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

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
  /** Commands and hints for every replica (admin disconnect, presence changes). */
  control: (prefix: string) => `${prefix}:control`,
} as const;
