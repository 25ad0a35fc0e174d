/**
 * Every PostgreSQL advisory lock id the service takes, in one place, so no two
 * purposes can ever share a number. Ids are 64-bit keys (`pg_advisory_lock(bigint)`)
 * under one prefix of ours, 7_346_110_xxx.
 *
 * Session locks (`pg_advisory_lock`) are held by a dedicated connection until
 * unlocked or until the connection ends (a replica that dies releases them);
 * transaction locks (`pg_advisory_xact_lock`) end with their transaction.
 */

/** Session lock: replicas that start together apply migrations one at a time (src/database/data-source.ts). */
export const MIGRATION_LOCK = 7_346_110_001;

/** Session lock: whoever numbers or prunes outbox rows, on any replica (src/outbox/sequencer-lock.ts). */
export const SEQUENCER_LOCK = 7_346_110_002;

/** Transaction lock: replicas that start together register the bootstrap admin key once (src/auth/api-key.repository.ts). */
export const BOOTSTRAP_LOCK = 7_346_110_003;
