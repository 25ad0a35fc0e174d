import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An API key may be bound to an agent: the MCP gateway then limits what the
 * key reaches to that agent's trust rules. Deleting the agent unbinds the key
 * (it then reaches nothing through the gateway: fail closed).
 */
export class ApiKeyAgent1764500000000 implements MigrationInterface {
  name = 'ApiKeyAgent1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE api_keys ADD COLUMN agent_id text REFERENCES agents (id) ON DELETE SET NULL;
      CREATE INDEX api_keys_agent ON api_keys (agent_id) WHERE agent_id IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX api_keys_agent;
      ALTER TABLE api_keys DROP COLUMN agent_id;
    `);
  }
}
