import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { BusModule } from '../bus/bus.module.js';
import { HealthModule } from '../health/health.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { OpsModule } from '../ops/ops.module.js';
import { RegistryModule } from '../registry/registry.module.js';
import { StreamingModule } from '../streaming/streaming.module.js';
import { AdminConnectionsController } from './admin-connections.controller.js';
import { ConnectionRegistry } from './connection-registry.js';
import { NoticesController, NoticeService } from './notices.js';
import { SocketGateway } from './socket.gateway.js';

/** The GUI's live channel: Socket.IO on the stream hub, presence, admin notices, the cluster's connections. */
@Module({
  imports: [AuthModule, BusModule, HealthModule, MetricsModule, OpsModule, RegistryModule, StreamingModule],
  controllers: [NoticesController, AdminConnectionsController],
  providers: [ConnectionRegistry, SocketGateway, NoticeService],
  exports: [SocketGateway, ConnectionRegistry],
})
export class RealtimeModule {}
