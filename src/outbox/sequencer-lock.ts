import type { DataSource, QueryRunner } from 'typeorm';
import type { IsolationLevel } from 'typeorm/driver/types/IsolationLevel.js';
import { SEQUENCER_LOCK } from '../database/advisory-locks.js';

/**
 * Runs `work` in one transaction while holding SEQUENCER_LOCK. The lock is a
 * session lock taken before the transaction starts, so a REPEATABLE READ
 * snapshot already sees the previous holder's commit. `afterCommit` runs once
 * the transaction has committed and before the lock is released (the
 * sequencer publishes there, so bus order equals seq order).
 */
export async function underSequencerLock<T>(
  dataSource: DataSource,
  isolation: IsolationLevel,
  work: (runner: QueryRunner) => Promise<T>,
  afterCommit?: (result: T) => Promise<void>,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [SEQUENCER_LOCK]);
    try {
      await runner.startTransaction(isolation);
      let result: T;
      try {
        result = await work(runner);
        await runner.commitTransaction();
      } catch (error) {
        await runner.rollbackTransaction().catch(() => undefined);
        throw error;
      }
      await afterCommit?.(result);
      return result;
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [SEQUENCER_LOCK]).catch(() => undefined);
    }
  } finally {
    await runner.release();
  }
}
