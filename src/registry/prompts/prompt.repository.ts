import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows, sql } from '../../database/sql.js';

export interface Prompt {
  agentId: string;
  version: number;
  template: string;
  description: string;
  variables: string[];
  active: boolean;
  createdBy: string | null;
  createdAt: string;
}

interface PromptRow {
  agent_id: string;
  version: number;
  template: string;
  description: string;
  variables: string[];
  active: boolean;
  created_by: string | null;
  created_at: Date;
}

export interface NewPrompt {
  agentId: string;
  version: number;
  template: string;
  description: string;
  variables: string[];
  createdBy: string;
}

function toPrompt(row: PromptRow): Prompt {
  return {
    agentId: row.agent_id,
    version: row.version,
    template: row.template,
    description: row.description,
    variables: row.variables,
    active: row.active,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
  };
}

/** Every prompt query; each takes the caller's EntityManager (and so its transaction). */
@Injectable()
export class PromptRepository {
  /**
   * Locks the agent row so prompt numbering and activation of one agent are
   * serialized. Returns false when the agent does not exist.
   */
  async lockAgent(m: EntityManager, agentId: string): Promise<boolean> {
    return (await one(m, 'SELECT id FROM agents WHERE id = $1 FOR UPDATE', [agentId])) !== undefined;
  }

  /** How many versions the agent holds now. */
  async countOf(m: EntityManager, agentId: string): Promise<number> {
    return (await one<{ n: number }>(m, 'SELECT count(*)::int AS n FROM prompts WHERE agent_id = $1', [agentId]))!.n;
  }

  async agentExists(m: EntityManager, agentId: string): Promise<boolean> {
    return (await one(m, 'SELECT 1 FROM agents WHERE id = $1', [agentId])) !== undefined;
  }

  /**
   * Issues the agent's next version number from its counter, so a deleted
   * version's number is never given to other content (the UPDATE also locks
   * the agent row for the rest of the transaction).
   */
  async nextVersion(m: EntityManager, agentId: string): Promise<number> {
    const row = await one<{ next: number }>(
      m,
      'UPDATE agents SET last_prompt_version = last_prompt_version + 1 WHERE id = $1 RETURNING last_prompt_version AS next',
      [agentId],
    );
    return row!.next;
  }

  /** Every prompt of every agent, in (agent, version) order (discovery snapshots). */
  async all(m: EntityManager): Promise<Prompt[]> {
    return (await rows<PromptRow>(m, 'SELECT * FROM prompts ORDER BY agent_id, version')).map(toPrompt);
  }

  async insert(m: EntityManager, p: NewPrompt): Promise<Prompt> {
    const row = await one<PromptRow>(
      m,
      `INSERT INTO prompts (agent_id, version, template, description, variables, created_by)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [p.agentId, p.version, p.template, p.description, p.variables, p.createdBy],
    );
    return toPrompt(row!);
  }

  async find(m: EntityManager, agentId: string, version: number): Promise<Prompt | undefined> {
    const row = await one<PromptRow>(m, 'SELECT * FROM prompts WHERE agent_id = $1 AND version = $2', [agentId, version]);
    return row ? toPrompt(row) : undefined;
  }

  async findActive(m: EntityManager, agentId: string): Promise<Prompt | undefined> {
    const row = await one<PromptRow>(m, 'SELECT * FROM prompts WHERE agent_id = $1 AND active', [agentId]);
    return row ? toPrompt(row) : undefined;
  }

  /** Newest first; `before` is the last version of the previous page. */
  async list(m: EntityManager, agentId: string, limit: number, before?: number): Promise<Prompt[]> {
    const found = await rows<PromptRow>(m, `SELECT * FROM prompts WHERE agent_id = $1 AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3`, [
      agentId,
      before ?? null,
      limit,
    ]);
    return found.map(toPrompt);
  }

  /**
   * Makes `version` the only active one: the current one is deactivated first,
   * so the partial unique index `prompts_one_active` holds after each statement.
   */
  async activate(m: EntityManager, agentId: string, version: number): Promise<Prompt> {
    await sql(m, 'UPDATE prompts SET active = false WHERE agent_id = $1 AND active AND version <> $2', [agentId, version]);
    const row = await one<PromptRow>(m, 'UPDATE prompts SET active = true WHERE agent_id = $1 AND version = $2 RETURNING *', [agentId, version]);
    return toPrompt(row!);
  }

  async delete(m: EntityManager, agentId: string, version: number): Promise<number> {
    return (await sql(m, 'DELETE FROM prompts WHERE agent_id = $1 AND version = $2', [agentId, version])).count;
  }
}
