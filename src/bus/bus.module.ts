import { Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { MetricsService } from '../ops/metrics.service.js';
import { ClusterState, EventBus } from './event-bus.js';
import { MemoryBus, MemoryClusterState } from './memory.bus.js';
import { RedisClusterState } from './redis-cluster-state.js';
import { RedisBus } from './redis.bus.js';
import { RedisConnections } from './redis.connections.js';

/**
 * The bus and cluster state: Redis when REDIS_URL is set, else the in-process
 * implementations (one replica). RedisConnections is null without Redis
 * (inject it with @Optional()).
 */
@Module({
  imports: [MetricsModule],
  providers: [
    {
      provide: RedisConnections,
      inject: [APP_CONFIG, MetricsService],
      useFactory: (config: AppConfig, metrics: MetricsService) => (config.redisUrl === undefined ? null : new RedisConnections(config, metrics)),
    },
    {
      provide: EventBus,
      inject: [APP_CONFIG, RedisConnections],
      useFactory: (config: AppConfig, redis: RedisConnections | null): EventBus => (redis ? new RedisBus(config, redis) : new MemoryBus()),
    },
    {
      provide: ClusterState,
      inject: [APP_CONFIG, RedisConnections, MetricsService],
      useFactory: (config: AppConfig, redis: RedisConnections | null, metrics: MetricsService): ClusterState =>
        redis ? new RedisClusterState(config, redis, metrics) : new MemoryClusterState(),
    },
  ],
  exports: [EventBus, ClusterState, RedisConnections],
})
export class BusModule {}
