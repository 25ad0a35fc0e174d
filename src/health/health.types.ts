import type { HealthCheck, Transport } from '../registry/mcp-servers/mcp-server.schemas.js';

/**
 * `unknown`: never probed; `healthy`; `degraded`: answering, but slower than
 * its latency threshold, only partly (ping answered, tools/list failed), or
 * failing fewer times in a row than its unhealthy threshold; `unhealthy`.
 */
export const HEALTH_STATUSES = ['unknown', 'healthy', 'degraded', 'unhealthy'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export const CIRCUIT_STATES = ['closed', 'open', 'half_open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** What one probe found. `good`: fast and complete; `slow` / `partial` answered; `failed` did not. */
export type CheckQuality = 'good' | 'slow' | 'partial' | 'failed';

/** One probe's result: a sample kept in the server's last N, and the `health.check` frame of the stream. */
export interface CheckResult {
  readonly serverId: string;
  readonly ok: boolean;
  readonly quality: CheckQuality;
  /** From the first request to the last answer (initialize + ping [+ tools/list]), or to the failure. */
  readonly latencyMs: number;
  /** ISO time the probe started. */
  readonly at: string;
  /** The step that failed: `connect`, `initialize`, `ping`, `tools/list`, `egress`, `timeout`. */
  readonly step?: string;
  readonly error?: string;
  readonly toolCount?: number;
  readonly toolsHash?: string;
  /** The replica that probed. */
  readonly replica: string;
  /** The server's status after this check. */
  readonly status?: HealthStatus;
}

/** The breaker settings of one server (its `healthCheck` object). */
export type BreakerSettings = Pick<HealthCheck, 'failureThreshold' | 'coolDownMs' | 'maxCoolDownMs' | 'timeoutMs'>;

/** A server as the health module needs it (from the registry; secrets opened lazily). */
export interface ProbeTarget {
  readonly id: string;
  readonly name: string;
  readonly transport: Transport;
  readonly enabled: boolean;
  readonly version: number;
  readonly healthCheck: HealthCheck;
}

/** The durable record (mcp_server_health). */
export interface HealthRecord {
  readonly serverId: string;
  readonly status: HealthStatus;
  readonly statusReason: string | null;
  readonly statusSince: string;
  readonly latencyMs: number | null;
  readonly toolCount: number | null;
  readonly toolsHash: string | null;
  readonly circuit: CircuitState;
  readonly circuitReason: string | null;
  readonly circuitSince: string;
  readonly circuitAt: number;
}

/** A breaker's live state (Redis, or this replica's memory without Redis). */
export interface BreakerState {
  readonly state: CircuitState;
  readonly failures: number;
  /** The cool-down of the current (or next) opening, ms. */
  readonly coolDownMs: number;
  /** While open: when a trial call is allowed (epoch ms). */
  readonly retryAt?: number;
}

/** One breaker transition, as its store logs it (newest last once sorted by `at`). */
export interface BreakerTransition {
  /** Microseconds since the epoch (the store's clock): orders transitions, and the durable record's position. */
  readonly at: number;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: string;
  readonly failures: number;
  readonly coolDownMs: number;
}
