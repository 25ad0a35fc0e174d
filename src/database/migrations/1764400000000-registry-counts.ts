import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Registry size caps without a table-wide lock: a row per capped table kept
 * exact by triggers. A create's INSERT bumps its table's counter (a row lock
 * held from that statement to COMMIT, the end of the transaction), then the
 * service reads the counter and rolls back if it passed the cap. Before, every
 * create took an advisory lock and counted the whole table, serializing
 * creates for their whole transaction.
 */
export class RegistryCounts1764400000000 implements MigrationInterface {
  name = 'RegistryCounts1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE registry_counts (
        table_name text PRIMARY KEY,
        n bigint NOT NULL CHECK (n >= 0)
      );
      INSERT INTO registry_counts (table_name, n)
        SELECT 'agents', count(*) FROM agents
        UNION ALL SELECT 'mcp_servers', count(*) FROM mcp_servers
        UNION ALL SELECT 'trust_rules', count(*) FROM trust_rules;

      CREATE FUNCTION registry_count() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE registry_counts SET n = n + CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END WHERE table_name = TG_TABLE_NAME;
        RETURN NULL;
      END $$;
      CREATE TRIGGER agents_count AFTER INSERT OR DELETE ON agents FOR EACH ROW EXECUTE FUNCTION registry_count();
      CREATE TRIGGER mcp_servers_count AFTER INSERT OR DELETE ON mcp_servers FOR EACH ROW EXECUTE FUNCTION registry_count();
      CREATE TRIGGER trust_rules_count AFTER INSERT OR DELETE ON trust_rules FOR EACH ROW EXECUTE FUNCTION registry_count();
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TRIGGER trust_rules_count ON trust_rules;
      DROP TRIGGER mcp_servers_count ON mcp_servers;
      DROP TRIGGER agents_count ON agents;
      DROP FUNCTION registry_count();
      DROP TABLE registry_counts;
    `);
  }
}
