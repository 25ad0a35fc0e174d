import { type DynamicModule, Global, Module, type Provider } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { ClusterState, EventBus } from './event-bus.js';
import { MemoryBus, MemoryClusterState } from './memory.bus.js';
import { RedisClusterState } from './redis-cluster-state.js';
import { RedisBus } from './redis.bus.js';
import { RedisConnections } from './redis.connections.js';

@Global()
@Module({})
export class BusModule {
  /** Redis when REDIS_URL is set, else the in-process bus (one replica). */
  static forRoot(config: AppConfig): DynamicModule {
    const redis = config.redisUrl !== undefined;
    const providers: Provider[] = [
      { provide: EventBus, useClass: redis ? RedisBus : MemoryBus },
      { provide: ClusterState, useClass: redis ? RedisClusterState : MemoryClusterState },
    ];
    if (redis) providers.push(RedisConnections);
    return {
      module: BusModule,
      providers,
      exports: redis ? [EventBus, ClusterState, RedisConnections] : [EventBus, ClusterState],
    };
  }
}
