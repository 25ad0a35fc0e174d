import { Module } from '@nestjs/common';
import { AuthModule } from '../../auth/auth.module.js';
import { BusModule } from '../../bus/bus.module.js';
import { RedisConnections } from '../../bus/redis.connections.js';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { MetricsModule } from '../../ops/metrics.module.js';
import { OpsModule } from '../../ops/ops.module.js';
import { GatewayCoreModule } from '../core/gateway-core.module.js';
import { McpGatewayService } from './mcp-gateway.service.js';
import { McpSessionStore, MemorySessionStore, RedisSessionStore } from './mcp-session-store.js';
import { McpController } from './mcp.controller.js';

/**
 * `/mcp`: one MCP server per client session aggregating the backends the
 * caller may reach (src/gateway/core), sessions and resumable streams kept
 * in Redis so any replica serves any session. GATEWAY_MCP_ENABLED=false
 * leaves the route out.
 */
@Module({})
export class McpGatewayModule {
  static forRoot(config: AppConfig) {
    if (!config.gatewayMcp.enabled) return { module: McpGatewayModule };
    return {
      module: McpGatewayModule,
      imports: [AuthModule, BusModule, MetricsModule, OpsModule, GatewayCoreModule],
      controllers: [McpController],
      providers: [
        {
          provide: McpSessionStore,
          inject: [APP_CONFIG, RedisConnections],
          useFactory: (c: AppConfig, redis: RedisConnections | null): McpSessionStore => {
            const limits = { eventsPerStream: c.gatewayMcp.eventsPerStream, ttlMs: c.gatewayMcp.sessionTtlMs };
            return redis ? new RedisSessionStore(redis.commands, c.redisUrl!, c.redisPrefix, c.replicaId, limits) : new MemorySessionStore(limits);
          },
        },
        McpGatewayService,
      ],
    };
  }
}
