import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import { ClusterState, type SlotResult } from './event-bus.js';
import { RedisConnections } from './redis.connections.js';
import { withTimeout } from '../common/with-timeout.js';

// Sums a hash's fields whose replica is still alive, dropping dead replicas' shares.
const LIVE_SUM = `
local function live_sum(key, alive_prefix)
  local all = redis.call('HGETALL', key)
  local sum = 0
  for i = 1, #all, 2 do
    if redis.call('EXISTS', alive_prefix .. all[i]) == 1 then
      sum = sum + tonumber(all[i + 1])
    else
      redis.call('HDEL', key, all[i])
    end
  end
  return sum
end
`;

// KEYS: user hash, total hash. ARGV: replica, per-user limit, total limit, alive prefix, alive ttl ms.
const ACQUIRE = `${LIVE_SUM}
redis.call('SET', ARGV[4] .. ARGV[1], '1', 'PX', ARGV[5])
if live_sum(KEYS[1], ARGV[4]) >= tonumber(ARGV[2]) then return 1 end
if live_sum(KEYS[2], ARGV[4]) >= tonumber(ARGV[3]) then return 2 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 0
`;

const RELEASE = `
for i = 1, 2 do
  if redis.call('HINCRBY', KEYS[i], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[i], ARGV[1]) end
end
return 0
`;

const COUNTS = `${LIVE_SUM}
return { live_sum(KEYS[1], ARGV[1]), live_sum(KEYS[2], ARGV[1]) }
`;

type Scripted = Redis & {
  registryAcquire(u: string, t: string, replica: string, perUser: number, total: number, alive: string, ttl: number): Promise<number>;
  registryRelease(u: string, t: string, replica: string): Promise<number>;
  registryCounts(u: string, t: string, alive: string): Promise<[number, number]>;
};

/** A slot request waits this long for Redis before the replica decides alone. */
const ACQUIRE_TIMEOUT_MS = 1000;

/**
 * Connection counts shared by all replicas. Each replica owns one field in
 * each hash and an "alive" key it refreshes; when a replica dies its key
 * expires and the next reader drops its share, so the counts heal by
 * themselves.
 *
 * The replica's own counts (`local`) are the truth for its share: the
 * heartbeat rewrites every field this replica has ever written — including
 * users it no longer serves, whose field it deletes — so a release lost in a
 * Redis blip, or a Redis restart, is repaired within one heartbeat.
 *
 * While Redis cannot be reached, slots are decided by this replica alone
 * against the same limits (per-replica fallback: degraded, reported by the
 * `registry_cluster_limits_degraded` gauge and a log line); new streams are
 * never refused with a 5xx for it.
 */
@Injectable()
export class RedisClusterState extends ClusterState implements OnApplicationShutdown {
  private readonly logger = new Logger('ClusterState');
  private readonly redis: Scripted;
  private readonly alivePrefix: string;
  private readonly totalKey: string;
  private readonly local = new Map<string, number>();
  private localTotal = 0;
  /** Users whose field in Redis this replica may have written (and must keep exact or delete). */
  private readonly written = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private degradedSince?: number;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    connections: RedisConnections,
    metrics: MetricsService,
  ) {
    super();
    this.alivePrefix = `${config.redisPrefix}:replica:`;
    this.totalKey = `${config.redisPrefix}:conn:total`;
    this.redis = connections.commands as Scripted;
    this.redis.defineCommand('registryAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    this.redis.defineCommand('registryRelease', { numberOfKeys: 2, lua: RELEASE });
    this.redis.defineCommand('registryCounts', { numberOfKeys: 2, lua: COUNTS });
    this.timer = setInterval(() => void this.heartbeat(), config.limits.leaseMs / 3);
    this.timer.unref();
    // Back from an outage (or a Redis restart that lost every key): publish our share at once.
    this.redis.on('ready', () => void this.heartbeat());
    const degraded = () => this.degraded;
    new Gauge({
      name: 'registry_cluster_limits_degraded',
      help: 'Connection limits are enforced per replica because Redis is unreachable (1) or cluster-wide (0)',
      registers: [metrics.registry],
      collect() {
        this.set(degraded() ? 1 : 0);
      },
    });
  }

  get degraded(): boolean {
    return this.degradedSince !== undefined;
  }

  private userKey(userId: string): string {
    return `${this.config.redisPrefix}:conn:user:${userId}`;
  }

  async acquireConnection(userId: string, perUser: number, total: number): Promise<SlotResult> {
    if (this.redis.status !== 'ready') return this.acquireLocally(userId, perUser, total, `redis is ${this.redis.status}`);
    this.bump(userId, 1);
    this.written.add(userId);
    let result: number;
    try {
      result = await withTimeout(
        this.redis.registryAcquire(this.userKey(userId), this.totalKey, this.config.replicaId, perUser, total, this.alivePrefix, this.config.limits.leaseMs),
        ACQUIRE_TIMEOUT_MS,
        'no answer from redis',
      );
    } catch (error) {
      this.bump(userId, -1);
      return this.acquireLocally(userId, perUser, total, (error as Error).message);
    }
    this.recovered();
    if (result === 0) return 'ok';
    this.bump(userId, -1);
    return result === 1 ? 'user_limit' : 'total_limit';
  }

  /** Redis is away: this replica's own counts against the same limits. The heartbeat publishes them once Redis is back. */
  private acquireLocally(userId: string, perUser: number, total: number, why: string): SlotResult {
    if (this.degradedSince === undefined) {
      this.degradedSince = Date.now();
      this.logger.warn(`cluster-wide connection limits unavailable (${why}); enforcing them per replica until Redis is back`);
    }
    if ((this.local.get(userId) ?? 0) >= perUser) return 'user_limit';
    if (this.localTotal >= total) return 'total_limit';
    this.bump(userId, 1);
    this.written.add(userId);
    return 'ok';
  }

  private recovered(): void {
    if (this.degradedSince === undefined) return;
    this.logger.log(`cluster-wide connection limits back after ${Date.now() - this.degradedSince} ms`);
    this.degradedSince = undefined;
  }

  async releaseConnection(userId: string): Promise<void> {
    this.bump(userId, -1);
    // A release that fails here is repaired by the next heartbeat (it rewrites the whole share).
    if (this.redis.status !== 'ready') return;
    await this.redis.registryRelease(this.userKey(userId), this.totalKey, this.config.replicaId).catch(() => undefined);
  }

  async connectionCounts(userId: string): Promise<{ user: number; total: number }> {
    if (this.redis.status !== 'ready') return { user: this.local.get(userId) ?? 0, total: this.localTotal };
    const [user, total] = await this.redis.registryCounts(this.userKey(userId), this.totalKey, this.alivePrefix);
    return { user, total };
  }

  private bump(userId: string, delta: number): void {
    const next = (this.local.get(userId) ?? 0) + delta;
    if (next <= 0) this.local.delete(userId);
    else this.local.set(userId, next);
    this.localTotal = Math.max(0, this.localTotal + delta);
  }

  /** Refreshes this replica's alive key and rewrites its whole share from `local`. */
  async heartbeat(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    const replica = this.config.replicaId;
    const pipeline = this.redis.pipeline();
    pipeline.set(this.alivePrefix + replica, '1', 'PX', this.config.limits.leaseMs);
    const zeroed: string[] = [];
    for (const userId of this.written) {
      const count = this.local.get(userId) ?? 0;
      if (count > 0) {
        pipeline.hset(this.userKey(userId), replica, count);
        pipeline.pexpire(this.userKey(userId), 86_400_000);
      } else {
        pipeline.hdel(this.userKey(userId), replica);
        zeroed.push(userId);
      }
    }
    if (this.localTotal > 0) pipeline.hset(this.totalKey, replica, this.localTotal);
    else pipeline.hdel(this.totalKey, replica);
    try {
      const results = await pipeline.exec();
      if (results?.some(([error]) => error)) return;
      for (const userId of zeroed) if (!this.local.has(userId)) this.written.delete(userId);
      this.recovered();
    } catch {
      // Redis is away; the next heartbeat tries again.
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    // Give our share back at once rather than waiting for the alive key to expire.
    await this.redis.del(this.alivePrefix + this.config.replicaId).catch(() => undefined);
  }
}
