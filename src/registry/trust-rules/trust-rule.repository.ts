import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows, sql } from '../../database/sql.js';
import { OUTBOX_INSERT } from '../../outbox/outbox.repository.js';
import type { Statement } from '../registry.writer.js';
import type { CreateTrustRule, Effect } from './trust-rule.schemas.js';

export interface TrustRule {
  id: string;
  agentId: string;
  mcpServerId: string;
  toolPattern: string;
  effect: Effect;
  priority: number;
  description: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface TrustRuleRow {
  id: string;
  agent_id: string;
  mcp_server_id: string;
  tool_pattern: string;
  effect: Effect;
  priority: number;
  description: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** Position after which a page starts, in `priority DESC, id` order. */
export interface TrustRuleCursor {
  priority: number;
  id: string;
}

export interface TrustRuleFilter {
  agentId?: string;
  mcpServerId?: string;
}

function toTrustRule(row: TrustRuleRow): TrustRule {
  return {
    id: row.id,
    agentId: row.agent_id,
    mcpServerId: row.mcp_server_id,
    toolPattern: row.tool_pattern,
    effect: row.effect,
    priority: row.priority,
    description: row.description,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * A create in one statement (one round trip, its own transaction): the
 * referenced agent and MCP server locked against deletion (FOR KEY SHARE, as
 * the foreign keys would), the cap's counter row locked, the rule inserted
 * only when both exist and the count is below the cap, and its
 * `trust_rule.created` outbox row from what the INSERT returned.
 */
const CREATE = `
WITH refs AS (
  SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1::text FOR KEY SHARE) AS agent,
         EXISTS (SELECT 1 FROM mcp_servers WHERE id = $2::text FOR KEY SHARE) AS mcp_server
),
cap AS (SELECT n FROM registry_counts WHERE table_name = 'trust_rules' FOR UPDATE),
r AS (
  INSERT INTO trust_rules (agent_id, mcp_server_id, tool_pattern, effect, priority, description)
  SELECT $1::text, $2::text, $3::text, $4::text, $5::int, $6::text FROM refs, cap
  WHERE refs.agent AND refs.mcp_server AND cap.n < $8::bigint
  RETURNING *
),
o AS (
  ${OUTBOX_INSERT}
  SELECT 'trust_rule.created', r.id::text, r.version, $7::text, jsonb_build_object('agentId', r.agent_id, 'mcpServerId', r.mcp_server_id) FROM r
)
SELECT refs.agent AS agent_exists, refs.mcp_server AS mcp_server_exists, r.* FROM refs CROSS JOIN cap LEFT JOIN r ON true`;

/** What `create` found: the new rule, or why there is none. */
export type CreatedRule = { rule: TrustRule } | { refused: 'references'; agent: boolean; mcpServer: boolean } | { refused: 'cap' };

/** Every trust rule query; each takes the caller's EntityManager (and so its transaction), `create` the writer's one statement. */
@Injectable()
export class TrustRuleRepository {
  /** Creates the rule and appends its `trust_rule.created` event (actor `actor`) in one statement. */
  async create(run: Statement, r: CreateTrustRule, actor: string, limit: number): Promise<CreatedRule> {
    const [row] = await run<TrustRuleRow & { agent_exists: boolean; mcp_server_exists: boolean }>('registry.trust-rule.create', CREATE, [
      r.agentId,
      r.mcpServerId,
      r.toolPattern,
      r.effect,
      r.priority,
      r.description,
      actor,
      limit,
    ]);
    if (!row) throw new Error('registry_counts has no row for trust_rules');
    if (!row.agent_exists || !row.mcp_server_exists) return { refused: 'references', agent: row.agent_exists, mcpServer: row.mcp_server_exists };
    if (row.id === null) return { refused: 'cap' };
    return { rule: toTrustRule(row) };
  }

  async find(m: EntityManager, id: string, lock = false): Promise<TrustRule | undefined> {
    const row = await one<TrustRuleRow>(m, `SELECT * FROM trust_rules WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return row ? toTrustRule(row) : undefined;
  }

  /**
   * Which of the referenced agent and MCP server exist, locking them against
   * deletion until the caller's transaction ends (as the foreign keys would).
   */
  async referencesExist(m: EntityManager, agentId: string, mcpServerId: string): Promise<{ agent: boolean; mcpServer: boolean }> {
    const row = await one<{ agent: boolean; mcp_server: boolean }>(
      m,
      `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 FOR KEY SHARE) AS agent,
              EXISTS (SELECT 1 FROM mcp_servers WHERE id = $2 FOR KEY SHARE) AS mcp_server`,
      [agentId, mcpServerId],
    );
    return { agent: row!.agent, mcpServer: row!.mcp_server };
  }

  /** Ordered by priority (highest first), then id. */
  async list(m: EntityManager, limit: number, after: TrustRuleCursor | undefined, filter: TrustRuleFilter): Promise<TrustRule[]> {
    const found = await rows<TrustRuleRow>(
      m,
      `SELECT * FROM trust_rules
        WHERE ($1::int IS NULL OR priority < $1 OR (priority = $1 AND id > $2::uuid))
          AND ($3::text IS NULL OR agent_id = $3)
          AND ($4::text IS NULL OR mcp_server_id = $4)
        ORDER BY priority DESC, id
        LIMIT $5`,
      [after?.priority ?? null, after?.id ?? null, filter.agentId ?? null, filter.mcpServerId ?? null, limit],
    );
    return found.map(toTrustRule);
  }

  async update(m: EntityManager, next: TrustRule): Promise<TrustRule> {
    const row = await one<TrustRuleRow>(
      m,
      `UPDATE trust_rules SET agent_id = $2, mcp_server_id = $3, tool_pattern = $4, effect = $5, priority = $6,
              description = $7, version = version + 1, updated_at = now()
        WHERE id = $1 RETURNING *`,
      [next.id, next.agentId, next.mcpServerId, next.toolPattern, next.effect, next.priority, next.description],
    );
    return toTrustRule(row!);
  }

  async delete(m: EntityManager, id: string): Promise<number> {
    return (await sql(m, 'DELETE FROM trust_rules WHERE id = $1', [id])).count;
  }
}
