import type { Resource } from '../events/event-catalog.js';

/** What a caller may do: `viewer` reads and streams, `editor` writes, `admin` manages keys, users and trust rules. */
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
  system: 'viewer',
};

export function canRead(role: Role, resource: Resource): boolean {
  return roleAtLeast(role, READ_ROLE[resource]);
}
