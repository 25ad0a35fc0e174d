import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows, sql } from '../../database/sql.js';
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

/** Every agent query; each takes the caller's EntityManager (and so its transaction). */
@Injectable()
export class AgentRepository {
  async insert(m: EntityManager, a: CreateAgent): Promise<Agent> {
    await m.query(`INSERT INTO agents (id, name, description, model, tags, metadata) VALUES ($1, $2, $3, $4, $5, $6)`, [
      a.id,
      a.name,
      a.description,
      JSON.stringify(a.model),
      a.tags,
      JSON.stringify(a.metadata),
    ]);
    return (await this.find(m, a.id))!;
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
    await m.query(
      `UPDATE agents SET name = $2, description = $3, model = $4, tags = $5, metadata = $6,
              version = version + 1, updated_at = now() WHERE id = $1`,
      [next.id, next.name, next.description, JSON.stringify(next.model), next.tags, JSON.stringify(next.metadata)],
    );
    return (await this.find(m, next.id))!;
  }

  async delete(m: EntityManager, id: string): Promise<number> {
    return (await sql(m, 'DELETE FROM agents WHERE id = $1', [id])).count;
  }
}
