import { apiUrl } from './http.js';
import { AsyncQueue, cancellable } from './queue.js';
import { runResumable, type StreamOptions } from './sse.js';
import type { ChangeEvent } from './types.js';

/** One MCP server's health as the snapshot gives it (see the README's "MCP server health"). */
export interface ServerHealth {
  id: string;
  name: string;
  enabled: boolean;
  status: 'unknown' | 'healthy' | 'degraded' | 'unhealthy';
  reason: string | null;
  since: string | null;
  latencyMs: number | null;
  checkedAt: string | null;
  circuit: { state: 'closed' | 'open' | 'half_open'; reason: string | null; since: string | null; failures: number; retryAt: string | null };
  tools: { count: number; hash: string } | null;
}

/** One probe's result (`health.check` frames: live only, never replayed). */
export interface HealthCheckResult {
  serverId: string;
  ok: boolean;
  quality: 'good' | 'slow' | 'partial' | 'failed';
  latencyMs: number;
  at: string;
  step?: string;
  error?: string;
  toolCount?: number;
  toolsHash?: string;
  replica?: string;
  status?: string;
}

/** What `followHealth()` yields: a snapshot first (and again after a `reset`), then recorded changes and live checks. */
export type HealthUpdate =
  | { type: 'snapshot'; cursor: number; servers: ServerHealth[] }
  | { type: 'change'; event: ChangeEvent<{ from: string; to: string; reason: string; [key: string]: unknown }> }
  | { type: 'check'; check: HealthCheckResult };

export interface FollowHealthOptions extends StreamOptions {
  /** Only these servers (`?servers=`). */
  servers?: string[];
  /** Include `health.check` results (default true). */
  checks?: boolean;
}

class Resnapshot extends Error {}

/**
 * Follows MCP server health (`/api/v1/stream/health`): a `snapshot` of every
 * server's status and circuit, then `mcp_server.health_changed` /
 * `circuit_changed` events as they happen and `health.check` results.
 * Reconnects resume after the last event (no new snapshot, nothing missed);
 * a `reset` yields a fresh snapshot. Aborting `signal` ends the iteration.
 */
export function followHealth(options: FollowHealthOptions = {}): AsyncGenerator<HealthUpdate, void, undefined> {
  return cancellable((signal) => followHealthSignalled({ ...options, signal }), options.signal);
}

async function* followHealthSignalled(options: FollowHealthOptions): AsyncGenerator<HealthUpdate, void, undefined> {
  let received: number | undefined;
  const queue = new AsyncQueue<HealthUpdate>(1000);
  const local = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) return;
  const onAbort = () => local.abort(outer!.reason);
  outer?.addEventListener('abort', onAbort, { once: true });
  const query = options.servers?.length ? `?servers=${encodeURIComponent(options.servers.join(','))}` : '';
  const pump = runResumable(
    { ...options, signal: local.signal },
    {
      url: () => apiUrl(options, `/stream/health${query}`),
      lastEventId: () => (received === undefined ? undefined : String(received)),
      onFrame: async (frame) => {
        if (frame.event === 'snapshot') {
          const s = JSON.parse(frame.data) as { cursor: number; servers: ServerHealth[] };
          received = s.cursor;
          await queue.push({ type: 'snapshot', cursor: s.cursor, servers: s.servers });
        } else if (frame.event === 'health.check') {
          if (options.checks !== false) await queue.push({ type: 'check', check: JSON.parse(frame.data) as HealthCheckResult });
        } else if (frame.event === 'cursor') {
          const seq = Number(frame.data);
          if (received === undefined || seq > received) received = seq;
        } else if (frame.event === 'reset') {
          // Older than retention: start again from a snapshot.
          received = undefined;
          throw new Resnapshot('reset');
        } else if (frame.event.includes('.')) {
          const event = JSON.parse(frame.data) as ChangeEvent<{ from: string; to: string; reason: string }>;
          if (received !== undefined && event.seq <= received) return;
          received = event.seq;
          await queue.push({ type: 'change', event });
        }
      },
    },
  );
  pump.then(
    () => queue.end(),
    (error) => queue.fail(error),
  );
  try {
    for (;;) {
      const item = await queue.shift();
      if (item === undefined) return;
      yield item;
    }
  } finally {
    outer?.removeEventListener('abort', onAbort);
    local.abort();
    await pump.catch(() => undefined);
  }
}
