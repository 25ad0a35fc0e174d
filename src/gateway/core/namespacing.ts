/**
 * How the gateway names what several backends offer as one list: a tool,
 * resource or prompt `name` of server `serverId` is `serverId__name`. Server
 * ids are slugs (`[a-z0-9-]`), never containing `_`, so the first `__` always
 * ends the server id, whatever the backend's own names contain.
 */
export const NAMESPACE_SEPARATOR = '__';

/** The methods sent to every reachable server, their results merged with namespaced names. */
export const BROADCAST_METHODS = ['tools/list', 'resources/list', 'prompts/list'] as const;
export type BroadcastMethod = (typeof BROADCAST_METHODS)[number];

const SERVER_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export function namespaced(serverId: string, name: string): string {
  return `${serverId}${NAMESPACE_SEPARATOR}${name}`;
}

/** Splits on the first `__`; null when there is none, or what precedes it is not a server id, or the name is empty. */
export function parseNamespaced(name: string): { serverId: string; name: string } | null {
  const at = name.indexOf(NAMESPACE_SEPARATOR);
  if (at <= 0) return null;
  const serverId = name.slice(0, at);
  const rest = name.slice(at + NAMESPACE_SEPARATOR.length);
  if (!SERVER_ID.test(serverId) || rest === '') return null;
  return { serverId, name: rest };
}

export function isBroadcastMethod(method: string): method is BroadcastMethod {
  return (BROADCAST_METHODS as readonly string[]).includes(method);
}
