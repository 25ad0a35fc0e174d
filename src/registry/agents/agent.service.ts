import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { isReferencedError, PG, pgCode } from '../../database/sql.js';
import { quotaExceeded } from '../registry-limits.js';
import { decodeCursor, isSlug, type Page, pageOf } from '../registry.schemas.js';
import { type ChangeTarget, RegistryWriter } from '../registry.writer.js';
import { WriteBatcher } from '../write-batcher.js';
import { type Agent, AgentRepository, type Created } from './agent.repository.js';
import type { CreateAgent, UpdateAgent } from './agent.schemas.js';

/** Agent use cases. Each mutation writes the row and its outbox event in one transaction (RegistryWriter). */
@Injectable()
export class AgentService {
  /** Creates arriving while another runs go together in one statement (group commit). */
  private readonly creates: WriteBatcher<{ agent: CreateAgent; actor: string }, Created>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly agents: AgentRepository,
    private readonly writer: RegistryWriter,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    const limit = config.registryLimits.agents;
    // One statement in flight per replica: every create locks the cap's counter row, so two
    // would only queue on it inside PostgreSQL; the creates that wait here go out together instead.
    this.creates = new WriteBatcher(
      ({ agent, actor }) => this.agents.create(this.writer.statement, agent, actor, limit),
      (batch) => this.agents.createMany(this.writer.statement, batch, limit),
      1,
    );
  }

  async create(input: CreateAgent, actor: string): Promise<Agent> {
    try {
      const limit = this.config.registryLimits.agents;
      const created = await this.creates.submit({ agent: input, actor });
      if ('agent' in created) return created.agent;
      if (created.refused === 'exists') throw DomainError.conflict(`agent "${input.id}" already exists`);
      throw quotaExceeded('agents', limit, 'MAX_AGENTS');
    } catch (error) {
      if (pgCode(error) === PG.uniqueViolation) throw DomainError.conflict(`agent "${input.id}" already exists`);
      throw error;
    }
  }

  async get(id: string): Promise<Agent> {
    const agent = await this.agents.find(this.dataSource.manager, id);
    if (!agent) throw DomainError.notFound('agent', id);
    return agent;
  }

  async list(limit: number, cursor?: string, tag?: string): Promise<Page<Agent>> {
    const found = await this.agents.list(this.dataSource.manager, limit + 1, decodeCursor(cursor, isSlug), tag);
    return pageOf(found, limit, (a) => a.id);
  }

  /**
   * Optimistic, two round trips: read the agent, decide what changes, write it and its event
   * in one statement guarded by the version read. When another write got there first, read
   * again (with If-Match that is a 412 then); after a few such races, the locked path.
   */
  async update(id: string, patch: UpdateAgent, expected: number | undefined, actor: string): Promise<Agent> {
    const { version: _ignored, ...fields } = patch;
    const changedIn = (current: Agent) =>
      Object.keys(fields).filter((k) => JSON.stringify(fields[k as keyof typeof fields]) !== JSON.stringify(current[k as keyof Agent]));
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await this.agents.current(this.writer.statement, id);
      if (!current) throw DomainError.notFound('agent', id);
      if (expected !== undefined && expected !== current.version) throw DomainError.stale('agent', id, current.version);
      const changed = changedIn(current);
      if (changed.length === 0) return current;
      const agent = await this.agents.updateIfVersion(this.writer.statement, { ...current, ...fields }, current.version, actor, { changed });
      if (agent) return agent;
    }
    return this.writer.change(this.target(id, expected), async (current, m) => {
      const changed = changedIn(current);
      if (changed.length === 0) return { result: current };
      const agent = await this.agents.update(m, { ...current, ...fields });
      return { result: agent, event: { type: 'agent.updated', id, version: agent.version, actor, data: { changed } } };
    });
  }

  async delete(id: string, expected: number | undefined, actor: string): Promise<void> {
    let found: { version: number; deleted: boolean } | undefined;
    try {
      found = await this.agents.delete(this.writer.statement, id, expected, actor);
    } catch (error) {
      if (isReferencedError(error)) {
        throw DomainError.conflict(`agent "${id}" is referenced by trust rules; delete those first`);
      }
      throw error;
    }
    if (!found) throw DomainError.notFound('agent', id);
    if (!found.deleted) throw DomainError.stale('agent', id, found.version);
  }

  private target(id: string, expected: number | undefined): ChangeTarget<Agent> {
    return { what: 'agent', id, expected, lock: (m) => this.agents.find(m, id, true) };
  }
}
