import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Prompt versions are immutable: a number, once given, must never name other
 * content. `max(version) + 1` would hand out a deleted version's number again,
 * so each agent keeps the last number it issued.
 */
export class PromptVersionCounter1763800000000 implements MigrationInterface {
  name = 'PromptVersionCounter1763800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE agents ADD COLUMN last_prompt_version integer NOT NULL DEFAULT 0;
      UPDATE agents a SET last_prompt_version = coalesce((SELECT max(version) FROM prompts p WHERE p.agent_id = a.id), 0);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE agents DROP COLUMN last_prompt_version');
  }
}
