import { Agent } from 'undici';
import { egressFetch } from '../../src/egress/egress.dispatcher.js';
import { BackendConnector } from '../../src/gateway/core/backend-connector.js';

/**
 * A real BackendConnector for one backend (`serverId` at `url`), with the real egress client's two ways out (fetch
 * for the SDK's own paths, the dispatcher for calls in a session) and a breaker that only records: `breaker` counts
 * the successes and keeps the failures' reasons. `maxTotalMs` is MCP_CALL_MAX_TOTAL_MS (the total time a call that
 * reports progress may run). For unit specs of the connector (no Nest, no database).
 */
export function connectorFor(
  url: string,
  {
    serverId = 'b',
    timeoutMs = 10_000,
    maxTotalMs = 600_000,
    dispatcher = new Agent(),
  }: { serverId?: string; timeoutMs?: number; maxTotalMs?: number; dispatcher?: Agent } = {},
) {
  const maxMessageBytes = 16 * 1024 * 1024;
  const breaker = { successes: 0, failures: [] as string[] };
  const target = { id: serverId, enabled: true, transport: 'streamable-http', healthCheck: { timeoutMs } };
  const directory = { ready: () => Promise.resolve(), get: () => target, endpoint: () => Promise.resolve({ url, headers: {} }) };
  const breakers = {
    apply: (_id: string, op: string, _s: unknown, reason?: string) => {
      if (op === 'success') breaker.successes++;
      if (op === 'failure') breaker.failures.push(reason ?? '');
      return Promise.resolve({ allowed: true, transitioned: false, state: { state: 'closed', failures: breaker.failures.length } });
    },
    recordSuccess: (id: string) => breakers.apply(id, 'success', undefined),
    recordFailure: (id: string, reason: string) => breakers.apply(id, 'failure', undefined, reason),
  };
  const egress = { fetch: egressFetch(dispatcher, maxMessageBytes), dispatcher, maxMessageBytes };
  const config = { security: { mcpCallMaxTotalMs: maxTotalMs } };
  const connector = new BackendConnector(directory as never, breakers as never, egress as never, config as never);
  return { connector, breaker };
}
