import type { EntityManager } from 'typeorm';

export interface SqlResult<T> {
  rows: T[];
  count: number;
}

/**
 * Runs one SQL statement on the caller's EntityManager (inside its transaction
 * when it has one) and returns rows and affected count for every statement
 * kind alike (TypeORM's plain `query` returns a different shape for UPDATE).
 */
export async function sql<T = Record<string, unknown>>(manager: EntityManager, text: string, params: unknown[] = []): Promise<SqlResult<T>> {
  const own = manager.queryRunner ? undefined : manager.connection.createQueryRunner();
  const runner = manager.queryRunner ?? own!;
  try {
    const result = await runner.query(text, params, true);
    return { rows: result.records as T[], count: result.affected ?? result.records.length };
  } finally {
    if (own) await own.release();
  }
}

export async function rows<T = Record<string, unknown>>(manager: EntityManager, text: string, params: unknown[] = []): Promise<T[]> {
  return (await sql<T>(manager, text, params)).rows;
}

export async function one<T = Record<string, unknown>>(manager: EntityManager, text: string, params: unknown[] = []): Promise<T | undefined> {
  return (await sql<T>(manager, text, params)).rows[0];
}

/** Postgres error codes the registry maps to domain errors. */
export const PG = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  /** ON DELETE RESTRICT raises this rather than 23503. */
  restrictViolation: '23001',
  serializationFailure: '40001',
} as const;

export function pgCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A row another row still references (NO ACTION raises 23503, RESTRICT 23001). */
export function isReferencedError(error: unknown): boolean {
  const code = pgCode(error);
  return code === PG.foreignKeyViolation || code === PG.restrictViolation;
}

export function pgConstraint(error: unknown): string | undefined {
  const e = error as { constraint?: unknown; driverError?: { constraint?: unknown } };
  const c = e?.driverError?.constraint ?? e?.constraint;
  return typeof c === 'string' ? c : undefined;
}

/**
 * "No limit" for a LIMIT or an upper bound on seq: every row, every event.
 * The largest integer a JavaScript number holds exactly (PostgreSQL takes it
 * as a bigint), so no real count or seq ever reaches it.
 */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;
