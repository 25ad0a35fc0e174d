import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Admin notices (`system.alert`, `system.maintenance`): kept so a GUI that (re)connects sees the active ones. */
export class Notices1764300000000 implements MigrationInterface {
  name = 'Notices1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE notices (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind text NOT NULL CHECK (kind IN ('system.alert', 'system.maintenance')),
        message text NOT NULL,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz
      );
      CREATE INDEX notices_active ON notices (expires_at);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE notices');
  }
}
