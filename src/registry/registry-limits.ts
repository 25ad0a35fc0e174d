import type { EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { one } from '../database/sql.js';

export function quotaExceeded(what: string, limit: number, setting: string): DomainError {
  return new DomainError('quota_exceeded', `the registry already holds ${limit} ${what}, the most ${setting} allows; delete some first`, {
    extensions: { limit, setting },
  });
}

/**
 * Registry size caps (MAX_AGENTS, MAX_MCP_SERVERS, MAX_TRUST_RULES) bound what
 * a discovery snapshot can hold, so one editor cannot make every snapshot
 * arbitrarily large. Called inside the create transaction right after its
 * INSERT: a trigger has counted the new row in `registry_counts` (locking that
 * counter row until COMMIT, so concurrent creates of one kind queue only for
 * the end of each other's transactions), and a count over the cap rolls the
 * create back. Exact, without a table-wide lock or a count of the table.
 */
export async function assertWithinCap(
  m: EntityManager,
  table: 'agents' | 'mcp_servers' | 'trust_rules',
  limit: number,
  setting: string,
  what: string,
): Promise<void> {
  const row = await one<{ n: string }>(m, 'SELECT n FROM registry_counts WHERE table_name = $1', [table]);
  if (Number(row!.n) > limit) throw quotaExceeded(what, limit, setting);
}
