import { type DynamicModule, Global, Module } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { ClusterState, EventBus } from './event-bus.js';
import { MemoryBus, MemoryClusterState } from './memory.bus.js';
import { RedisBus, RedisClusterState } from './redis.bus.js';

@Global()
@Module({})
export class BusModule {
  /** Redis when REDIS_URL is set, else the in-process bus (one replica). */
  static forRoot(config: AppConfig): DynamicModule {
    const redis = config.redisUrl !== undefined;
    return {
      module: BusModule,
      providers: [
        { provide: EventBus, useClass: redis ? RedisBus : MemoryBus },
        { provide: ClusterState, useClass: redis ? RedisClusterState : MemoryClusterState },
      ],
      exports: [EventBus, ClusterState],
    };
  }
}
