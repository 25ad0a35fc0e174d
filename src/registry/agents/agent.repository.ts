import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows } from '../../database/sql.js';
import { OUTBOX_INSERT } from '../../outbox/outbox.repository.js';
import type { Statement } from '../registry.writer.js';
import type { CreateAgent, ModelSettings } from './agent.schemas.js';

export interface Agent {
  id: string;
  name: string;
  description: string;
  model: ModelSettings;
  tags: string[];
  metadata: Record<string, unknown>;
  activePromptVersion: number | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface AgentRow {
  id: string;
  name: string;
  description: string;
  model: ModelSettings;
  tags: string[];
  metadata: Record<string, unknown>;
  active_prompt_version: number | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const SELECT = `SELECT a.*, (SELECT p.version FROM prompts p WHERE p.agent_id = a.id AND p.active) AS active_prompt_version FROM agents a`;

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    model: row.model,
    tags: row.tags,
    metadata: row.metadata,
    activePromptVersion: row.active_prompt_version,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * A create in one statement, so one round trip and its own transaction:
 * lock the `registry_counts` row of agents (FOR UPDATE in READ COMMITTED
 * returns its newest committed count once a concurrent create has committed),
 * insert the agent only while that count is below the cap (the row's trigger
 * then adds it to the count, on the row this statement holds), and its
 * `agent.created` outbox row from what the INSERT returned. The lock is held
 * for this one statement and its commit. `taken` keeps "already exists"
 * before "over the cap" when both hold, as when the INSERT ran first.
 */
const CREATE = `
WITH cap AS (SELECT n FROM registry_counts WHERE table_name = 'agents' FOR UPDATE),
a AS (
  INSERT INTO agents (id, name, description, model, tags, metadata)
  SELECT $1::text, $2::text, $3::text, $4::jsonb, $5::text[], $6::jsonb FROM cap WHERE cap.n < $8::bigint
  RETURNING *
),
o AS (${OUTBOX_INSERT} SELECT 'agent.created', a.id, a.version, $7::text, NULL FROM a)
SELECT a.*, NULL::int AS active_prompt_version, a.id IS NULL AND EXISTS (SELECT 1 FROM agents WHERE id = $1::text) AS taken
FROM cap LEFT JOIN a ON true`;

/**
 * Several creates in one statement (group commit, see WriteBatcher): the
 * batch is one JSON array parameter, `ord` its order. The counter row is
 * locked once; rows are inserted while `count + ord` stays within the cap
 * (the rest are refused), each with its own `agent.created` outbox row and
 * actor. One duplicate id fails the whole statement (the caller then runs
 * each create alone).
 */
const CREATE_MANY = `
WITH cap AS (SELECT n FROM registry_counts WHERE table_name = 'agents' FOR UPDATE),
input AS (SELECT e, ord FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, ord)),
a AS (
  INSERT INTO agents (id, name, description, model, tags, metadata)
  SELECT e->>'id', e->>'name', e->>'description', e->'model', ARRAY(SELECT t FROM jsonb_array_elements_text(e->'tags') WITH ORDINALITY AS x(t, i) ORDER BY i), e->'metadata'
  FROM input, cap WHERE cap.n + input.ord <= $2::bigint ORDER BY input.ord
  RETURNING *
),
o AS (${OUTBOX_INSERT} SELECT 'agent.created', a.id, a.version, input.e->>'actor', NULL FROM a JOIN input ON input.e->>'id' = a.id ORDER BY input.ord)
SELECT a.*, NULL::int AS active_prompt_version, a.id IS NULL AND EXISTS (SELECT 1 FROM agents x WHERE x.id = input.e->>'id') AS taken
FROM input LEFT JOIN a ON a.id = input.e->>'id' ORDER BY input.ord`;

/**
 * A delete in one statement: lock the row, delete it if `$2` (the expected
 * version, NULL: any) is its version, append `agent.deleted` with the version
 * it had. No row: it does not exist; `deleted` false: the version differed.
 * A trust rule still referencing it fails the statement (ON DELETE RESTRICT).
 */
const DELETE = `
WITH cur AS (SELECT id, version FROM agents WHERE id = $1::text FOR UPDATE),
d AS (DELETE FROM agents a USING cur WHERE a.id = cur.id AND ($2::int IS NULL OR cur.version = $2::int) RETURNING a.id, cur.version),
o AS (${OUTBOX_INSERT} SELECT 'agent.deleted', d.id, d.version, $3::text, NULL FROM d)
SELECT cur.version, d.id IS NOT NULL AS deleted FROM cur LEFT JOIN d ON true`;

/**
 * An update in one statement, if the row is still at version `$7` (read just
 * before): the new values, version + 1, and its `agent.updated` outbox row
 * with `$9` as data. No row: another write changed it since it was read.
 */
const UPDATE_IF_VERSION = `
WITH a AS (
  UPDATE agents a SET name = $2::text, description = $3::text, model = $4::jsonb, tags = $5::text[], metadata = $6::jsonb,
         version = version + 1, updated_at = now()
   WHERE id = $1::text AND version = $7::int
  RETURNING a.*, (SELECT p.version FROM prompts p WHERE p.agent_id = a.id AND p.active) AS active_prompt_version
),
o AS (${OUTBOX_INSERT} SELECT 'agent.updated', a.id, a.version, $8::text, $9::jsonb FROM a)
SELECT * FROM a`;

/** What `create` found: the new agent, or why there is none. */
export type Created = { agent: Agent } | { refused: 'exists' | 'cap' };

function created(row: AgentRow & { taken: boolean }): Created {
  if (row.id === null) return { refused: row.taken ? 'exists' : 'cap' };
  return { agent: toAgent(row) };
}

/** Every agent query; each takes the caller's EntityManager (and so its transaction), `create` the writer's one statement. */
@Injectable()
export class AgentRepository {
  /**
   * Creates the agent and appends its `agent.created` event (actor `actor`)
   * in one statement, unless the registry holds `limit` agents already.
   * A duplicate id raises PostgreSQL's unique violation, as an INSERT does.
   */
  async create(run: Statement, a: CreateAgent, actor: string, limit: number): Promise<Created> {
    const found = await run<AgentRow & { taken: boolean }>('registry.agent.create', CREATE, [
      a.id,
      a.name,
      a.description,
      JSON.stringify(a.model),
      a.tags,
      JSON.stringify(a.metadata),
      actor,
      limit,
    ]);
    const row = found[0];
    if (!row) throw new Error('registry_counts has no row for agents');
    return created(row);
  }

  /**
   * `create` for several agents in one statement, results in the same order; fails whole
   * (nothing committed) on any duplicate id. Once it has committed it no longer throws:
   * a result it cannot read is that create's Error.
   */
  async createMany(run: Statement, batch: readonly { agent: CreateAgent; actor: string }[], limit: number): Promise<(Created | Error)[]> {
    const input = batch.map(({ agent: a, actor }) => ({
      id: a.id,
      name: a.name,
      description: a.description,
      model: a.model,
      tags: a.tags,
      metadata: a.metadata,
      actor,
    }));
    const found = await run<AgentRow & { taken: boolean }>('registry.agent.create-many', CREATE_MANY, [JSON.stringify(input), limit]);
    return batch.map((_, i) => {
      const row = found[i];
      if (!row) return new Error(`a batch of ${batch.length} creates returned ${found.length} rows`);
      try {
        return created(row);
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
  }

  /** The agent as it is now, read on the pool directly (one round trip, no transaction). */
  async current(run: Statement, id: string): Promise<Agent | undefined> {
    const [row] = await run<AgentRow>('registry.agent.current', `${SELECT} WHERE a.id = $1`, [id]);
    return row ? toAgent(row) : undefined;
  }

  /**
   * Writes `next` and appends `agent.updated` (data `data`) in one statement if the agent is
   * still at version `read`; undefined when another write got there first.
   */
  async updateIfVersion(run: Statement, next: Agent, read: number, actor: string, data: Record<string, unknown>): Promise<Agent | undefined> {
    const [row] = await run<AgentRow>('registry.agent.update', UPDATE_IF_VERSION, [
      next.id,
      next.name,
      next.description,
      JSON.stringify(next.model),
      next.tags,
      JSON.stringify(next.metadata),
      read,
      actor,
      JSON.stringify(data),
    ]);
    return row ? toAgent(row) : undefined;
  }

  async find(m: EntityManager, id: string, lock = false): Promise<Agent | undefined> {
    const row = await one<AgentRow>(m, `${SELECT} WHERE a.id = $1${lock ? ' FOR UPDATE OF a' : ''}`, [id]);
    return row ? toAgent(row) : undefined;
  }

  async list(m: EntityManager, limit: number, after?: string, tag?: string): Promise<Agent[]> {
    const found = await rows<AgentRow>(m, `${SELECT} WHERE ($1::text IS NULL OR a.id > $1) AND ($2::text IS NULL OR $2 = ANY(a.tags)) ORDER BY a.id LIMIT $3`, [
      after ?? null,
      tag ?? null,
      limit,
    ]);
    return found.map(toAgent);
  }

  async update(m: EntityManager, next: Agent): Promise<Agent> {
    const row = await one<AgentRow>(
      m,
      `UPDATE agents a SET name = $2, description = $3, model = $4, tags = $5, metadata = $6,
              version = version + 1, updated_at = now() WHERE id = $1
       RETURNING a.*, (SELECT p.version FROM prompts p WHERE p.agent_id = a.id AND p.active) AS active_prompt_version`,
      [next.id, next.name, next.description, JSON.stringify(next.model), next.tags, JSON.stringify(next.metadata)],
    );
    return toAgent(row!);
  }

  /**
   * Deletes the agent and appends its `agent.deleted` event (one statement), unless its
   * version is not `expected`. Returns its version then, or undefined when there is no such agent.
   */
  async delete(run: Statement, id: string, expected: number | undefined, actor: string): Promise<{ version: number; deleted: boolean } | undefined> {
    const [row] = await run<{ version: number; deleted: boolean }>('registry.agent.delete', DELETE, [id, expected ?? null, actor]);
    return row;
  }
}
