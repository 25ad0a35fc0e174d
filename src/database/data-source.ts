import pg from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATION_LOCK } from './advisory-locks.js';
import { MIGRATIONS } from './migration-list.js';

// int8 (bigint) as number: seq and counts stay below 2^53.
pg.types.setTypeParser(20, (value: string) => Number(value));

export function createDataSource(url: string, poolSize = 10, applicationName = 'agentic-registry'): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    migrationsRun: false,
    synchronize: false,
    logging: false,
    applicationName,
    extra: { max: poolSize, connectionTimeoutMillis: 10_000 },
  });
}

/**
 * Applies pending migrations under a session advisory lock, so replicas that
 * start together apply each migration once and the others wait, then see
 * nothing pending.
 */
export async function migrate(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
