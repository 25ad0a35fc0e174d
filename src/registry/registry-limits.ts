import type { EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { REGISTRY_CAP_LOCKS } from '../database/advisory-locks.js';
import { one } from '../database/sql.js';

export function quotaExceeded(what: string, limit: number, setting: string): DomainError {
  return new DomainError('quota_exceeded', `the registry already holds ${limit} ${what}, the most ${setting} allows; delete some first`, {
    extensions: { limit, setting },
  });
}

/**
 * Registry size caps (MAX_AGENTS, MAX_MCP_SERVERS, MAX_TRUST_RULES) bound what
 * a discovery snapshot can hold, so one editor cannot make every snapshot
 * arbitrarily large. Called inside the create transaction: the transaction
 * lock serializes creates of one kind (writes are rare), then the rows are counted.
 */
export async function assertBelowCap(m: EntityManager, table: keyof typeof REGISTRY_CAP_LOCKS, limit: number, setting: string, what: string): Promise<void> {
  await m.query('SELECT pg_advisory_xact_lock($1)', [REGISTRY_CAP_LOCKS[table]]);
  const row = await one<{ n: number }>(m, `SELECT count(*)::int AS n FROM ${table}`);
  if (row!.n >= limit) throw quotaExceeded(what, limit, setting);
}
