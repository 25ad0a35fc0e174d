import { Injectable, Logger } from '@nestjs/common';
import { Counter, Histogram } from 'prom-client';
import { MetricsService } from '../../ops/metrics.service.js';
import { callerLabel, type GatewayCaller } from './gateway-caller.js';

export type GatewayOutcome = 'ok' | 'error' | 'denied' | 'timeout' | 'cancelled' | 'circuit_open' | 'overloaded';

export interface GatewayCallRecord {
  readonly caller: GatewayCaller;
  /** The backend (null: refused before one was chosen, e.g. an unknown server). */
  readonly serverId: string | null;
  /** The tool name as the backend knows it (tools/call), else null. */
  readonly tool: string | null;
  readonly method: string;
  readonly durationMs: number;
  readonly outcome: GatewayOutcome;
  /** Which way in: `session`, `mcp`, `tool_stream`. */
  readonly surface?: string;
  readonly detail?: string;
}

/**
 * Attribution of every call through any gateway surface: a Prometheus counter
 * and histogram (labels: agent, server, outcome, method — all bounded: agents
 * and servers by the registry caps, methods to the MCP ones) and one
 * structured log line with the agent, key, server, tool, duration and outcome.
 */
@Injectable()
export class GatewayCalls {
  private readonly logger = new Logger('Gateway');
  private readonly calls: Counter<'agent' | 'server' | 'method' | 'outcome'>;
  private readonly duration: Histogram<'server' | 'outcome'>;

  constructor(metrics: MetricsService) {
    this.calls = new Counter({
      name: 'registry_gateway_calls_total',
      help: 'MCP gateway calls by agent (admin, none), server, method and outcome',
      labelNames: ['agent', 'server', 'method', 'outcome'],
      registers: [metrics.registry],
    });
    this.duration = new Histogram({
      name: 'registry_gateway_call_duration_seconds',
      help: 'MCP gateway call duration (gateway in to backend answer) by server and outcome',
      labelNames: ['server', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [metrics.registry],
    });
  }

  record(r: GatewayCallRecord): void {
    const agent = callerLabel(r.caller);
    const server = r.serverId ?? 'none';
    const method = KNOWN_METHODS.has(r.method) ? r.method : 'other';
    this.calls.inc({ agent, server, method, outcome: r.outcome });
    this.duration.observe({ server, outcome: r.outcome }, r.durationMs / 1000);
    const fields = {
      msg: 'gateway call',
      agent: r.caller.agentId,
      key: r.caller.keyId,
      principal: r.caller.principal.id,
      server: r.serverId,
      tool: r.tool,
      method: r.method,
      durationMs: Math.round(r.durationMs * 100) / 100,
      outcome: r.outcome,
      ...(r.surface ? { surface: r.surface } : {}),
      ...(r.detail ? { detail: r.detail.slice(0, 300) } : {}),
    };
    if (r.outcome === 'ok') this.logger.log(fields);
    else this.logger.warn(fields);
  }
}

const KNOWN_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);

/** The outcome a gateway error is recorded as. */
export function outcomeOf(code: string): GatewayOutcome {
  switch (code) {
    case 'denied':
    case 'approval_required':
    case 'not_found':
      return 'denied';
    case 'timeout':
      return 'timeout';
    case 'cancelled':
      return 'cancelled';
    case 'circuit_open':
      return 'circuit_open';
    case 'overloaded':
      return 'overloaded';
    default:
      return 'error';
  }
}
