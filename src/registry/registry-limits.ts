import { DomainError } from '../common/domain-error.js';

/**
 * Registry size caps (MAX_AGENTS, MAX_MCP_SERVERS, MAX_TRUST_RULES) bound what
 * a discovery snapshot can hold, so one editor cannot make every snapshot
 * arbitrarily large. Each create is one statement that locks its table's
 * counter row in `registry_counts` (kept exact by triggers on INSERT and
 * DELETE) and inserts only while the count is below the cap; concurrent
 * creates of a kind queue on that row for one statement each, not for a
 * table-wide lock or a count of the table. The repositories hold the SQL
 * (`AgentRepository.create`/`createMany`, `McpServerRepository.create`,
 * `TrustRuleRepository.create`); a create refused by the cap gets this error.
 */
export function quotaExceeded(what: string, limit: number, setting: string): DomainError {
  return new DomainError('quota_exceeded', `the registry already holds ${limit} ${what}, the most ${setting} allows; delete some first`, {
    extensions: { limit, setting },
  });
}
