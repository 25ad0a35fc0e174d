import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The durable health record of each MCP server (src/health): its status and
 * circuit state as last recorded, written in the same transaction as the
 * `mcp_server.health_changed` / `mcp_server.circuit_changed` outbox event that
 * announces the change, so the events and this table never disagree. Per-check
 * data (samples, latency) lives in Redis; see docs/health.md.
 */
export class McpServerHealth1764200000000 implements MigrationInterface {
  name = 'McpServerHealth1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mcp_server_health (
        server_id text PRIMARY KEY REFERENCES mcp_servers(id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'healthy', 'degraded', 'unhealthy')),
        status_reason text,
        status_since timestamptz NOT NULL DEFAULT now(),
        -- latency of the check that last changed the status
        latency_ms integer,
        tool_count integer,
        tools_hash text,
        circuit text NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open', 'half_open')),
        circuit_reason text,
        circuit_since timestamptz NOT NULL DEFAULT now(),
        -- the breaker's transition log is recorded up to this position (microseconds, Redis clock)
        circuit_at bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE mcp_server_health');
  }
}
