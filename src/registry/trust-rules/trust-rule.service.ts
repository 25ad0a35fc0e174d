import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError, type FieldError } from '../../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { PG, pgCode, pgConstraint } from '../../database/sql.js';
import { quotaExceeded } from '../registry-limits.js';
import { decodeCursor, type Page, pageOf } from '../registry.schemas.js';
import { type ChangeTarget, RegistryWriter } from '../registry.writer.js';
import { type CreatedRule, type TrustRule, type TrustRuleCursor, type TrustRuleFilter, TrustRuleRepository } from './trust-rule.repository.js';
import type { CreateTrustRule, UpdateTrustRule } from './trust-rule.schemas.js';

const UNKNOWN_AGENT: FieldError = { field: 'agentId', message: 'no agent has this id' };
const UNKNOWN_SERVER: FieldError = { field: 'mcpServerId', message: 'no MCP server has this id' };

/** Maps a foreign-key violation (a reference deleted concurrently) to the field it concerns. */
function referenceError(error: unknown): DomainError | undefined {
  if (pgCode(error) !== PG.foreignKeyViolation) return undefined;
  const constraint = pgConstraint(error) ?? '';
  if (constraint.includes('agent_id')) return DomainError.validation([UNKNOWN_AGENT]);
  if (constraint.includes('mcp_server_id')) return DomainError.validation([UNKNOWN_SERVER]);
  return undefined;
}

const CURSOR = /^(-?\d{1,7}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

function decodeRuleCursor(cursor: string | undefined): TrustRuleCursor | undefined {
  const decoded = decodeCursor(cursor);
  if (decoded === undefined) return undefined;
  const m = CURSOR.exec(decoded);
  if (!m) throw DomainError.field('cursor', 'is not a cursor returned by this API');
  return { priority: Number(m[1]), id: m[2] };
}

/** Trust rule use cases. Each mutation writes the row and its outbox event in one transaction (RegistryWriter). */
@Injectable()
export class TrustRuleService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly rules: TrustRuleRepository,
    private readonly writer: RegistryWriter,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(input: CreateTrustRule, actor: string): Promise<TrustRule> {
    const limit = this.config.registryLimits.trustRules;
    let created: CreatedRule;
    try {
      created = await this.rules.create(this.writer.statement, input, actor, limit);
    } catch (error) {
      throw referenceError(error) ?? error;
    }
    if ('rule' in created) return created.rule;
    if (created.refused === 'references') {
      throw DomainError.validation([...(created.agent ? [] : [UNKNOWN_AGENT]), ...(created.mcpServer ? [] : [UNKNOWN_SERVER])]);
    }
    throw quotaExceeded('trust rules', limit, 'MAX_TRUST_RULES');
  }

  async get(id: string): Promise<TrustRule> {
    const rule = await this.rules.find(this.dataSource.manager, id);
    if (!rule) throw DomainError.notFound('trust rule', id);
    return rule;
  }

  async list(limit: number, cursor: string | undefined, filter: TrustRuleFilter): Promise<Page<TrustRule>> {
    const found = await this.rules.list(this.dataSource.manager, limit + 1, decodeRuleCursor(cursor), filter);
    return pageOf(found, limit, (r) => `${r.priority}:${r.id}`);
  }

  async update(id: string, patch: UpdateTrustRule, expected: number | undefined, actor: string): Promise<TrustRule> {
    try {
      return await this.writer.change(this.target(id, expected), async (current, m) => {
        const { version: _ignored, ...fields } = patch;
        const changed = Object.keys(fields).filter((k) => JSON.stringify(fields[k as keyof typeof fields]) !== JSON.stringify(current[k as keyof TrustRule]));
        if (changed.length === 0) return { result: current };
        const next = { ...current, ...fields };
        if (changed.includes('agentId') || changed.includes('mcpServerId')) await this.checkReferences(m, next.agentId, next.mcpServerId);
        const rule = await this.rules.update(m, next);
        return {
          result: rule,
          event: { type: 'trust_rule.updated', id, version: rule.version, actor, data: { changed, agentId: rule.agentId, mcpServerId: rule.mcpServerId } },
        };
      });
    } catch (error) {
      throw referenceError(error) ?? error;
    }
  }

  async delete(id: string, expected: number | undefined, actor: string): Promise<void> {
    await this.writer.change(this.target(id, expected), async (current, m) => {
      await this.rules.delete(m, id);
      return {
        result: undefined,
        event: { type: 'trust_rule.deleted', id, version: current.version, actor, data: { agentId: current.agentId, mcpServerId: current.mcpServerId } },
      };
    });
  }

  private target(id: string, expected: number | undefined): ChangeTarget<TrustRule> {
    return { what: 'trust rule', id, expected, lock: (m) => this.rules.find(m, id, true) };
  }

  /** 400 naming `agentId` and/or `mcpServerId` when they do not exist. */
  private async checkReferences(m: EntityManager, agentId: string, mcpServerId: string): Promise<void> {
    const exists = await this.rules.referencesExist(m, agentId, mcpServerId);
    const errors = [...(exists.agent ? [] : [UNKNOWN_AGENT]), ...(exists.mcpServer ? [] : [UNKNOWN_SERVER])];
    if (errors.length > 0) throw DomainError.validation(errors);
  }
}
