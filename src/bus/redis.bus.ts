import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { channels } from '../events/event-catalog.js';
import { type BusListener, ClusterState, EventBus, type SlotResult } from './event-bus.js';
import { decodeBatch, encodeBatch, type WireEvent } from './wire-event.js';

export function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
  });
}

/**
 * Redis pub/sub backbone: one publisher connection and one subscriber
 * connection per replica, whatever the number of clients.
 */
@Injectable()
export class RedisBus extends EventBus implements OnApplicationShutdown {
  readonly kind = 'redis' as const;
  private readonly logger = new Logger('RedisBus');
  readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly channel: string;
  private listener?: BusListener;
  private readyOnce = false;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super();
    this.channel = channels.events(config.redisPrefix);
    this.publisher = createRedis(config.redisUrl!, `registry-pub-${config.replicaId}`);
    this.subscriber = createRedis(config.redisUrl!, `registry-sub-${config.replicaId}`);
    for (const client of [this.publisher, this.subscriber]) {
      client.on('error', (error: Error) => this.logger.warn(`redis: ${error.message}`));
    }
    this.subscriber.on('message', (_channel: string, message: string) => this.listener?.onEvents(decodeBatch(message)));
    this.subscriber.on('ready', () => {
      // ioredis re-subscribes by itself on reconnect; anything published while
      // we were away is lost to pub/sub, so the hub back-fills from the outbox.
      if (this.readyOnce) {
        this.logger.log('subscriber reconnected; back-filling from the outbox');
        this.listener?.onResync();
      }
      this.readyOnce = true;
    });
    void this.subscriber.subscribe(this.channel).catch((error: Error) => this.logger.error(`subscribe failed: ${error.message}`));
  }

  async publish(events: readonly WireEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.publisher.publish(this.channel, encodeBatch(events));
  }

  subscribe(listener: BusListener): void {
    this.listener = listener;
  }

  isHealthy(): boolean {
    return this.publisher.status === 'ready' && this.subscriber.status === 'ready';
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.subscriber.quit(), this.publisher.quit()]);
  }
}

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

/**
 * Connection counts shared by all replicas. Each replica owns one field in
 * each hash and an "alive" key it refreshes; when a replica dies its key
 * expires and the next reader drops its share, so the counts heal by
 * themselves. The heartbeat also rewrites this replica's exact counts, which
 * repairs drift after a Redis restart.
 */
@Injectable()
export class RedisClusterState extends ClusterState implements OnApplicationShutdown {
  private readonly redis: Scripted;
  private readonly alivePrefix: string;
  private readonly totalKey: string;
  private readonly local = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    bus: EventBus,
  ) {
    super();
    this.alivePrefix = `${config.redisPrefix}:replica:`;
    this.totalKey = `${config.redisPrefix}:conn:total`;
    this.redis = (bus as RedisBus).publisher as Scripted;
    this.redis.defineCommand('registryAcquire', { numberOfKeys: 2, lua: ACQUIRE });
    this.redis.defineCommand('registryRelease', { numberOfKeys: 2, lua: RELEASE });
    this.redis.defineCommand('registryCounts', { numberOfKeys: 2, lua: COUNTS });
    this.timer = setInterval(() => void this.heartbeat().catch(() => undefined), config.limits.leaseMs / 3);
    this.timer.unref();
    void this.heartbeat().catch(() => undefined);
  }

  private userKey(userId: string): string {
    return `${this.config.redisPrefix}:conn:user:${userId}`;
  }

  async acquireConnection(userId: string, perUser: number, total: number): Promise<SlotResult> {
    this.bump(userId, 1);
    let result: number;
    try {
      result = await this.redis.registryAcquire(
        this.userKey(userId), this.totalKey, this.config.replicaId, perUser, total, this.alivePrefix, this.config.limits.leaseMs,
      );
    } catch (error) {
      this.bump(userId, -1);
      throw error;
    }
    if (result === 0) return 'ok';
    this.bump(userId, -1);
    return result === 1 ? 'user_limit' : 'total_limit';
  }

  async releaseConnection(userId: string): Promise<void> {
    this.bump(userId, -1);
    await this.redis.registryRelease(this.userKey(userId), this.totalKey, this.config.replicaId).catch(() => undefined);
  }

  async connectionCounts(userId: string): Promise<{ user: number; total: number }> {
    const [user, total] = await this.redis.registryCounts(this.userKey(userId), this.totalKey, this.alivePrefix);
    return { user, total };
  }

  private bump(userId: string, delta: number): void {
    const next = (this.local.get(userId) ?? 0) + delta;
    if (next <= 0) this.local.delete(userId);
    else this.local.set(userId, next);
  }

  private async heartbeat(): Promise<void> {
    const replica = this.config.replicaId;
    const pipeline = this.redis.pipeline();
    pipeline.set(this.alivePrefix + replica, '1', 'PX', this.config.limits.leaseMs);
    let total = 0;
    for (const [userId, count] of this.local) {
      total += count;
      pipeline.hset(this.userKey(userId), replica, count);
    }
    if (total > 0) pipeline.hset(this.totalKey, replica, total);
    else pipeline.hdel(this.totalKey, replica);
    await pipeline.exec();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    // Give our share back at once rather than waiting for the alive key to expire.
    await this.redis.del(this.alivePrefix + this.config.replicaId).catch(() => undefined);
  }
}
