import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One sequencing replica: the lease its holder renews (see
 * src/outbox/sequencer.leader.ts). Times are PostgreSQL's clock, so replicas'
 * clocks never have to agree.
 */
export class SequencerLease1764100000000 implements MigrationInterface {
  name = 'SequencerLease1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE sequencer_lease (
        id integer PRIMARY KEY CHECK (id = 1),
        holder text,
        term bigint NOT NULL DEFAULT 0,
        expires_at timestamptz NOT NULL DEFAULT '-infinity'
      );
      INSERT INTO sequencer_lease (id) VALUES (1);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE sequencer_lease');
  }
}
