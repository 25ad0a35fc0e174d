import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1763700000000 implements MigrationInterface {
  name = 'InitialSchema1763700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE settings (
        key text PRIMARY KEY,
        value text NOT NULL
      );

      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        key_hash text NOT NULL UNIQUE,
        role text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz
      );

      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
        created_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE sessions (
        token_hash text PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX sessions_expiry ON sessions (expires_at);

      CREATE TABLE agents (
        id text PRIMARY KEY,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        model jsonb NOT NULL DEFAULT '{}',
        tags text[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX agents_tags ON agents USING gin (tags);

      CREATE TABLE prompts (
        agent_id text NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        version integer NOT NULL,
        template text NOT NULL,
        description text NOT NULL DEFAULT '',
        variables text[] NOT NULL DEFAULT '{}',
        active boolean NOT NULL DEFAULT false,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (agent_id, version)
      );
      CREATE UNIQUE INDEX prompts_one_active ON prompts (agent_id) WHERE active;

      CREATE TABLE mcp_servers (
        id text PRIMARY KEY,
        name text NOT NULL,
        url text NOT NULL,
        transport text NOT NULL CHECK (transport IN ('streamable-http', 'sse')),
        headers_secret text,
        header_names text[] NOT NULL DEFAULT '{}',
        health_check jsonb NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE trust_rules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        agent_id text NOT NULL REFERENCES agents(id) ON DELETE RESTRICT,
        mcp_server_id text NOT NULL REFERENCES mcp_servers(id) ON DELETE RESTRICT,
        tool_pattern text NOT NULL,
        effect text NOT NULL CHECK (effect IN ('allow', 'deny', 'require_approval')),
        priority integer NOT NULL DEFAULT 0,
        description text NOT NULL DEFAULT '',
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX trust_rules_agent ON trust_rules (agent_id);
      CREATE INDEX trust_rules_server ON trust_rules (mcp_server_id);

      -- The transactional outbox. Rows are appended with seq NULL inside the
      -- mutation's transaction; the sequencer numbers them after commit.
      CREATE TABLE outbox (
        id bigserial PRIMARY KEY,
        seq bigint UNIQUE,
        type text NOT NULL,
        resource_id text NOT NULL,
        version integer,
        actor text,
        data jsonb,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        sequenced_at timestamptz
      );
      CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL;

      -- One row: the last seq handed out and the highest seq pruned away.
      CREATE TABLE outbox_head (
        id integer PRIMARY KEY CHECK (id = 1),
        last_seq bigint NOT NULL DEFAULT 0,
        pruned_through bigint NOT NULL DEFAULT 0
      );
      INSERT INTO outbox_head (id) VALUES (1);

      -- NOTIFY is delivered at commit, so the sequencer wakes when a change is visible.
      CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('outbox_pending', '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE outbox_head; DROP TABLE outbox; DROP FUNCTION outbox_notify();
      DROP TABLE trust_rules; DROP TABLE mcp_servers; DROP TABLE prompts; DROP TABLE agents;
      DROP TABLE sessions; DROP TABLE users; DROP TABLE api_keys; DROP TABLE settings;
    `);
  }
}
