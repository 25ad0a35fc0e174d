import { Injectable } from '@nestjs/common';
import { McpServerService } from '../registry/mcp-servers/mcp-server.service.js';
import { CircuitBreakers } from './circuit-breakers.js';
import { HealthRuntime } from './health.runtime.js';
import { HealthRepository } from './health.repository.js';
import type { BreakerState, CheckResult, CircuitState, HealthRecord, HealthStatus, ProbeTarget } from './health.types.js';
import { ServerDirectory } from './server-directory.js';

/** One server's health as the API and the stream's snapshot show it. */
export interface ServerHealth {
  id: string;
  name: string;
  enabled: boolean;
  status: HealthStatus;
  reason: string | null;
  since: string | null;
  /** The last check's latency and time (null: never checked). */
  latencyMs: number | null;
  checkedAt: string | null;
  circuit: { state: CircuitState; reason: string | null; since: string | null; failures: number; retryAt: string | null };
  tools: { count: number; hash: string } | null;
  /** The replica probing it now (null: none, e.g. disabled). */
  owner?: string | null;
  samples?: CheckResult[];
}

export interface HealthOverview {
  items: ServerHealth[];
  /** Live probing replicas and how many servers each probes. */
  replicas: { id: string; servers: number }[];
}

export interface HealthSnapshot {
  /** The stream position the statuses and circuits are consistent with (also the frame's `id:`). */
  cursor: number;
  servers: ServerHealth[];
}

function view(target: ProbeTarget, record: HealthRecord | undefined, breaker: BreakerState | undefined, last: CheckResult | undefined): ServerHealth {
  return {
    id: target.id,
    name: target.name,
    enabled: target.enabled,
    status: record?.status ?? 'unknown',
    reason: record?.statusReason ?? null,
    since: record?.statusSince ?? null,
    latencyMs: last?.latencyMs ?? record?.latencyMs ?? null,
    checkedAt: last?.at ?? null,
    circuit: {
      // The recorded state (what the events said); failures and retry time are the live breaker's.
      state: record?.circuit ?? breaker?.state ?? 'closed',
      reason: record?.circuitReason ?? null,
      since: record?.circuitSince ?? null,
      failures: breaker?.failures ?? 0,
      retryAt: breaker?.retryAt !== undefined ? new Date(breaker.retryAt).toISOString() : null,
    },
    tools: record?.toolCount != null && record.toolsHash != null ? { count: record.toolCount, hash: record.toolsHash } : null,
  };
}

/** Reads health for the REST API and the stream's snapshot: the durable record, the live breaker, the samples. */
@Injectable()
export class HealthService {
  constructor(
    private readonly directory: ServerDirectory,
    private readonly repository: HealthRepository,
    private readonly breakers: CircuitBreakers,
    private readonly runtime: HealthRuntime,
    private readonly mcpServers: McpServerService,
  ) {}

  private targets(servers?: ReadonlySet<string>): ProbeTarget[] {
    const all = this.directory.all().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return servers ? all.filter((t) => servers.has(t.id)) : all;
  }

  private async views(targets: ProbeTarget[], samples: number, owners: boolean): Promise<ServerHealth[]> {
    const ids = targets.map((t) => t.id);
    const [records, breakers, recent, ownerMap] = await Promise.all([
      this.repository.find(ids),
      this.breakers.states(ids).catch(() => new Map<string, BreakerState>()),
      this.runtime.samples.recent(ids, Math.max(1, samples)),
      owners ? this.runtime.ownership.owners(ids).catch(() => new Map<string, string | null>()) : Promise.resolve(undefined),
    ]);
    return targets.map((t) => {
      const v = view(t, records.get(t.id), breakers.get(t.id), recent.get(t.id)?.[0]);
      if (ownerMap) v.owner = t.enabled ? (ownerMap.get(t.id) ?? null) : null;
      if (samples > 0) v.samples = recent.get(t.id) ?? [];
      return v;
    });
  }

  /** `GET /mcp-servers/:id/health`: 404 when the server does not exist. */
  async get(id: string): Promise<ServerHealth> {
    let target = this.directory.get(id);
    if (!target) {
      const server = await this.mcpServers.get(id); // 404
      target = {
        id: server.id,
        name: server.name,
        transport: server.transport,
        enabled: server.enabled,
        version: server.version,
        healthCheck: server.healthCheck,
      };
    }
    const [health] = await this.views([target], this.runtime.samples.size, true);
    return health;
  }

  /** `GET /health`. */
  async overview(servers: ReadonlySet<string> | undefined, samples: boolean): Promise<HealthOverview> {
    const items = await this.views(this.targets(servers), samples ? this.runtime.samples.size : 0, true);
    const members = await this.runtime.ownership.members();
    const counts = new Map<string, number>(members.map((m) => [m, 0]));
    if (!servers) for (const item of items) if (item.owner) counts.set(item.owner, (counts.get(item.owner) ?? 0) + 1);
    return { items, replicas: [...counts].map(([id, n]) => ({ id, servers: n })).sort((a, b) => (a.id < b.id ? -1 : 1)) };
  }

  /** The stream's first frame: every (selected) server's status, circuit and last latency. */
  async snapshot(cursor: number, servers?: ReadonlySet<string>): Promise<HealthSnapshot> {
    return { cursor, servers: await this.views(this.targets(servers), 0, false) };
  }
}
