/**
 * The gateway's names: a tool, resource or prompt `name` of server
 * `serverId` is `serverId__name`, and `serverId__method` routes a request to
 * one server. Server ids are slugs (`[a-z0-9-]`), so the first `__` ends the
 * server id.
 */
export const NAMESPACE_SEPARATOR = '__';

/** The methods the gateway sends to every allowed server, merging their results under namespaced names. */
export const BROADCAST_METHODS: readonly string[] = ['tools/list', 'resources/list', 'prompts/list'];

const SERVER_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** `namespaced('github', 'create_issue')` → `github__create_issue`. */
export function namespaced(serverId: string, name: string): string {
  return `${serverId}${NAMESPACE_SEPARATOR}${name}`;
}

/** `github__create_issue` → `{ serverId: 'github', name: 'create_issue' }`; null when the name is not namespaced. */
export function parseNamespaced(name: string): { serverId: string; name: string } | null {
  const at = name.indexOf(NAMESPACE_SEPARATOR);
  if (at <= 0) return null;
  const serverId = name.slice(0, at);
  const rest = name.slice(at + NAMESPACE_SEPARATOR.length);
  if (!SERVER_ID.test(serverId) || rest === '') return null;
  return { serverId, name: rest };
}

/** Whether the gateway answers `method` from every allowed server at once (`tools/list`, `resources/list`, `prompts/list`). */
export function isBroadcastMethod(method: string): boolean {
  return BROADCAST_METHODS.includes(method);
}
