import type { HealthCheck } from '../registry/mcp-servers/mcp-server.schemas.js';
import type { CheckQuality, HealthStatus } from './health.types.js';

/** Where one server stands between checks (kept by its owning replica). */
export interface StatusTracker {
  status: HealthStatus;
  reason: string | null;
  /** Checks in a row that failed / answered. */
  failures: number;
  successes: number;
}

export interface StatusChange {
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly reason: string;
}

const RANK: Record<HealthStatus, number> = { unknown: 0, healthy: 3, degraded: 2, unhealthy: 1 };

/**
 * The status after one more check, with the server's thresholds:
 * - a failed check makes it `degraded` at once (partial failure) and
 *   `unhealthy` after `unhealthyThreshold` failures in a row;
 * - an answered check makes it `healthy` (or `degraded` when slow or partial);
 *   a move to a better status needs `healthyThreshold` answers in a row, a
 *   move to a worse one (slow, partial) happens at once;
 * - `unknown` (never probed) takes the first check's verdict at once: there is
 *   no established status to protect from flapping.
 * Returns the change, or undefined when the status stays (the reason may still change).
 */
export function applyCheck(
  t: StatusTracker,
  quality: CheckQuality,
  detail: string,
  settings: Pick<HealthCheck, 'unhealthyThreshold' | 'healthyThreshold'>,
): StatusChange | undefined {
  const from = t.status;
  let to: HealthStatus;
  let reason: string;
  if (quality === 'failed') {
    t.failures++;
    t.successes = 0;
    if (t.failures >= settings.unhealthyThreshold) {
      to = 'unhealthy';
      reason = `${t.failures} failed check${t.failures === 1 ? '' : 's'} in a row: ${detail}`;
    } else if (from === 'unhealthy') {
      to = 'unhealthy';
      reason = t.reason ?? detail;
    } else {
      to = 'degraded';
      reason = `${t.failures} of ${settings.unhealthyThreshold} failed checks before unhealthy: ${detail}`;
    }
  } else {
    t.successes++;
    t.failures = 0;
    const target: HealthStatus = quality === 'good' ? 'healthy' : 'degraded';
    reason = quality === 'good' ? 'answered within its latency threshold' : detail;
    const better = RANK[target] > RANK[from];
    to = from === 'unknown' || !better || t.successes >= settings.healthyThreshold ? target : from;
    if (to === from && from !== target) reason = t.reason ?? reason;
  }
  t.status = to;
  t.reason = reason;
  return to === from ? undefined : { from, to, reason };
}
