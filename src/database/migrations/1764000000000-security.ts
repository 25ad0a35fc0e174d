import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Issue 8 (security): API keys may expire; an MCP server URL's query string
 * (which may hold a credential such as `?api_key=`) is stored encrypted
 * beside a masked copy; sessions are looked up by user (password change ends
 * them all).
 */
export class Security1764000000000 implements MigrationInterface {
  name = 'Security1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
      ALTER TABLE mcp_servers ADD COLUMN url_secret text;
      CREATE INDEX sessions_user ON sessions (user_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX sessions_user;
      ALTER TABLE mcp_servers DROP COLUMN url_secret;
      ALTER TABLE api_keys DROP COLUMN expires_at;
    `);
  }
}
