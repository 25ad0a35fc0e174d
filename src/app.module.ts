import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AdminUiModule } from './admin-ui/admin-ui.module.js';
import { AuthModule } from './auth/auth.module.js';
import { ProblemDetailsFilter } from './common/problem-details.filter.js';
import type { AppConfig } from './config/app-config.js';
import { ConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { DemoModule } from './demo/demo.module.js';
import { DiscoveryModule } from './discovery/discovery.module.js';
import { GatewayModule } from './gateway/gateway.module.js';
import { McpGatewayModule } from './gateway/mcp/mcp-gateway.module.js';
import { HealthModule } from './health/health.module.js';
import { OpsModule } from './ops/ops.module.js';
import { OutboxModule } from './outbox/outbox.module.js';
import { RealtimeModule } from './realtime/realtime.module.js';
import { RegistryModule } from './registry/registry.module.js';
import { StreamingModule } from './streaming/streaming.module.js';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, databaseUrl: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule.forRoot(databaseUrl),
        OpsModule,
        OutboxModule,
        AuthModule,
        RegistryModule,
        StreamingModule,
        DiscoveryModule,
        AdminUiModule,
        DemoModule,
        HealthModule,
        RealtimeModule,
        McpGatewayModule.forRoot(config),
        GatewayModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: ProblemDetailsFilter }],
    };
  }
}
