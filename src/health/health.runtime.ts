import { Inject, Injectable, type OnApplicationShutdown, Optional } from '@nestjs/common';
import { RedisConnections } from '../bus/redis.connections.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { HealthChecksChannel } from './health-checks.channel.js';
import { HealthSamples } from './health-samples.js';
import { LocalOwnership, type ProbeOwnership, RedisOwnership } from './probe-ownership.js';

/**
 * The health module's shared state, Redis-backed when REDIS_URL is set and
 * in-process otherwise (one replica): probe ownership, the last N samples of
 * every server, and the live channel of check results.
 */
@Injectable()
export class HealthRuntime implements OnApplicationShutdown {
  readonly ownership: ProbeOwnership;
  readonly samples: HealthSamples;
  readonly checks: HealthChecksChannel;
  /** Servers with a probe in flight on this replica (kept by the ownership until it is recorded). */
  readonly probing = new Set<string>();

  constructor(@Inject(APP_CONFIG) config: AppConfig, @Optional() @Inject(RedisConnections) redis?: RedisConnections | null) {
    const commands = redis?.commands ?? null;
    this.ownership = commands
      ? new RedisOwnership(commands, config.redisPrefix, config.replicaId, config.health.ownerLeaseMs, (id) => this.probing.has(id))
      : new LocalOwnership(config.replicaId);
    this.samples = new HealthSamples(config.health.samples, commands, config.redisPrefix);
    this.checks = new HealthChecksChannel(commands, config.redisUrl, config.redisPrefix, config.replicaId);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.checks.close();
  }
}
