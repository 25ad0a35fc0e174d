import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { quotaExceeded } from '../registry-limits.js';
import { decodeCursor, type Page, pageOf } from '../registry.schemas.js';
import { type RegistryWrite, RegistryWriter } from '../registry.writer.js';
import { type Prompt, PromptRepository } from './prompt.repository.js';
import type { CreatePrompt } from './prompt.schemas.js';

const eventId = (agentId: string, version: number) => `${agentId}/${version}`;

/**
 * Prompt versions of an agent: immutable, numbered 1, 2, 3, ... per agent, at
 * most one active. Every mutation locks the agent row first, so numbering and
 * activation of one agent are serialized, and writes its outbox event(s) in
 * the same transaction (RegistryWriter).
 */
@Injectable()
export class PromptService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly prompts: PromptRepository,
    private readonly writer: RegistryWriter,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(agentId: string, input: CreatePrompt, actor: string): Promise<Prompt> {
    return this.writer.write(async (w) => {
      const { m } = w;
      await this.lockAgent(m, agentId);
      // The agent row is locked: the count cannot change under us (MAX_PROMPT_VERSIONS_PER_AGENT bounds discovery).
      const limit = this.config.registryLimits.promptVersionsPerAgent;
      if ((await this.prompts.countOf(m, agentId)) >= limit)
        throw quotaExceeded(`versions of agent "${agentId}"'s prompt`, limit, 'MAX_PROMPT_VERSIONS_PER_AGENT');
      const version = await this.prompts.nextVersion(m, agentId);
      let prompt = await this.prompts.insert(m, {
        agentId,
        version,
        template: input.template,
        description: input.description,
        variables: input.variables,
        createdBy: actor,
      });
      await w.append({ type: 'prompt.created', id: eventId(agentId, version), version, actor, data: { agentId, version } });
      if (input.activate) prompt = await this.activateLocked(w, prompt, actor);
      return prompt;
    });
  }

  async list(agentId: string, limit: number, cursor?: string): Promise<Page<Prompt>> {
    const before = decodeVersionCursor(cursor);
    const m = this.dataSource.manager;
    const found = await this.prompts.list(m, agentId, limit + 1, before);
    if (found.length === 0 && !(await this.prompts.agentExists(m, agentId))) throw DomainError.notFound('agent', agentId);
    return pageOf(found, limit, (p) => String(p.version));
  }

  async get(agentId: string, version: number): Promise<Prompt> {
    const m = this.dataSource.manager;
    const prompt = await this.prompts.find(m, agentId, version);
    if (prompt) return prompt;
    if (!(await this.prompts.agentExists(m, agentId))) throw DomainError.notFound('agent', agentId);
    throw DomainError.notFound('prompt', eventId(agentId, version));
  }

  /** Makes `version` the agent's one active prompt; a no-op (no event) when it already is. */
  async activate(agentId: string, version: number, actor: string): Promise<Prompt> {
    return this.writer.write(async (w) => {
      await this.lockAgent(w.m, agentId);
      const target = await this.prompts.find(w.m, agentId, version);
      if (!target) throw DomainError.notFound('prompt', eventId(agentId, version));
      return target.active ? target : this.activateLocked(w, target, actor);
    });
  }

  async delete(agentId: string, version: number, actor: string): Promise<void> {
    await this.writer.write(async ({ m, append }) => {
      await this.lockAgent(m, agentId);
      const target = await this.prompts.find(m, agentId, version);
      if (!target) throw DomainError.notFound('prompt', eventId(agentId, version));
      if (target.active) {
        throw DomainError.conflict(`prompt version ${version} of agent "${agentId}" is active; activate another version first`);
      }
      await this.prompts.delete(m, agentId, version);
      await append({ type: 'prompt.deleted', id: eventId(agentId, version), version, actor, data: { agentId, version } });
    });
  }

  private async lockAgent(m: EntityManager, agentId: string): Promise<void> {
    if (!(await this.prompts.lockAgent(m, agentId))) throw DomainError.notFound('agent', agentId);
  }

  /** Activates `target` (not yet active); the caller holds the agent row lock. */
  private async activateLocked(w: RegistryWrite, target: Prompt, actor: string): Promise<Prompt> {
    const { agentId, version } = target;
    const previous = (await this.prompts.findActive(w.m, agentId))?.version ?? null;
    const prompt = await this.prompts.activate(w.m, agentId, version);
    await w.append({
      type: 'prompt.activated',
      id: eventId(agentId, version),
      version,
      actor,
      data: { agentId, version, previous },
    });
    return prompt;
  }
}

function decodeVersionCursor(cursor: string | undefined): number | undefined {
  const decoded = decodeCursor(cursor);
  if (decoded === undefined) return undefined;
  if (!/^[1-9]\d{0,8}$/.test(decoded)) throw DomainError.field('cursor', 'is not a cursor returned by this API');
  return Number(decoded);
}
