import type { HealthState } from './store';
import type { McpServer } from './types';

export type Badge = 'green' | 'yellow' | 'red' | 'unknown';

export interface HealthView {
  badge: Badge;
  /** What the badge says (`healthy`, `degraded`, `unhealthy`, `unknown`). */
  label: string;
  /** Circuit breaker state (`closed`, `open`, `half_open`) or `unknown`. */
  circuit: string;
}

const GREEN = new Set(['healthy', 'up', 'ok', 'online']);
const YELLOW = new Set(['degraded', 'slow', 'warning', 'half_open', 'recovering']);
const RED = new Set(['unhealthy', 'down', 'error', 'offline', 'failed', 'unreachable']);

function field(value: unknown, ...names: string[]): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const name of names) {
    const v = (value as Record<string, unknown>)[name];
    if (typeof v === 'string') return v;
  }
  return undefined;
}

/**
 * The health badge of an MCP server: from the row (once the health module adds
 * `health`/`status`/`circuit` to it) or from the latest health events; until
 * either says anything, "unknown".
 */
export function healthOf(server: McpServer, events: HealthState | undefined): HealthView {
  const status = events?.status ?? field(server.health, 'status', 'state') ?? field(server.status, 'status');
  const circuit =
    events?.circuit ??
    field(server.circuit, 'state', 'status') ??
    field(server.health, 'circuit', 'circuitState') ??
    field((server.health as { circuit?: unknown } | undefined)?.circuit, 'state');
  const s = status?.toLowerCase();
  let badge: Badge = 'unknown';
  if (s && GREEN.has(s)) badge = 'green';
  else if (s && YELLOW.has(s)) badge = 'yellow';
  else if (s && RED.has(s)) badge = 'red';
  return { badge, label: badge === 'unknown' ? 'unknown' : s!, circuit: circuit ?? 'unknown' };
}
