import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { StreamingModule } from '../streaming/streaming.module.js';
import { GatewayCoreModule } from './core/gateway-core.module.js';
import { GatewaySessionsController, ToolStreamsController } from './gateway.controller.js';
import { GatewaySessions } from './sessions/gateway-sessions.service.js';
import { ToolStreams } from './tool-streams/tool-streams.service.js';

/** The gateway's streaming sessions (`/api/v1/gateway/stream`) and tool streams (`/api/v1/mcp/stream`, `/api/v1/stream/tools`). */
@Module({
  imports: [AuthModule, GatewayCoreModule, BusModule, MetricsModule, StreamingModule],
  controllers: [GatewaySessionsController, ToolStreamsController],
  providers: [GatewaySessions, ToolStreams],
})
export class GatewayModule {}
