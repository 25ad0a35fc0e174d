import { Injectable } from '@nestjs/common';
import { canRead, type Role } from '../auth/roles.js';
import { NO_LIMIT } from '../database/sql.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import { OutboxSequencer } from '../outbox/outbox.sequencer.js';
import { type Agent, AgentRepository } from '../registry/agents/agent.repository.js';
import { type McpServer, McpServerRepository } from '../registry/mcp-servers/mcp-server.repository.js';
import { type Prompt, PromptRepository } from '../registry/prompts/prompt.repository.js';
import { type TrustRule, TrustRuleRepository } from '../registry/trust-rules/trust-rule.repository.js';

export interface Snapshot {
  /** Every change in these sections has seq <= cursor; every later change has seq > cursor. */
  readonly cursor: number;
  readonly agents: Agent[];
  readonly prompts: Prompt[];
  readonly mcpServers: McpServer[];
  readonly trustRules: TrustRule[];
}

export interface DiscoveryView {
  readonly cursor: number;
  readonly sections: { agents: Agent[]; prompts: Prompt[]; mcp_servers: McpServer[]; trust_rules?: TrustRule[] };
}

const ALL = NO_LIMIT;

/**
 * Discovery snapshots. A snapshot is read inside a sequencing run at
 * REPEATABLE READ (see OutboxSequencer.sequence), so it is consistent with
 * exactly its cursor. The newest snapshot is kept and reused while nothing
 * has changed, and concurrent requests share one read.
 */
@Injectable()
export class DiscoveryService {
  private latest?: Snapshot;
  private inflight?: Promise<Snapshot>;

  constructor(
    private readonly outbox: OutboxRepository,
    private readonly sequencer: OutboxSequencer,
    private readonly agents: AgentRepository,
    private readonly prompts: PromptRepository,
    private readonly mcpServers: McpServerRepository,
    private readonly trustRules: TrustRuleRepository,
  ) {}

  async snapshot(): Promise<Snapshot> {
    const { lastSeq, pending } = await this.outbox.head();
    if (this.latest && !pending && this.latest.cursor === lastSeq) return this.latest;
    this.inflight ??= this.read().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async read(): Promise<Snapshot> {
    const { snapshot } = await this.sequencer.sequence(async (m, cursor) => ({
      cursor,
      agents: await this.agents.list(m, ALL),
      prompts: await this.prompts.all(m),
      mcpServers: await this.mcpServers.list(m, ALL),
      trustRules: await this.trustRules.list(m, ALL, undefined, {}),
    }));
    if (!this.latest || snapshot!.cursor >= this.latest.cursor) this.latest = snapshot;
    return snapshot!;
  }

  /** What `role` may see of a snapshot. */
  view(snapshot: Snapshot, role: Role): DiscoveryView {
    const sections: DiscoveryView['sections'] = { agents: snapshot.agents, prompts: snapshot.prompts, mcp_servers: snapshot.mcpServers };
    if (canRead(role, 'trust_rule')) sections.trust_rules = snapshot.trustRules;
    return { cursor: snapshot.cursor, sections };
  }

  etag(cursor: number, role: Role): string {
    return `W/"${cursor}-${canRead(role, 'trust_rule') ? 'full' : 'public'}"`;
  }
}
