import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { OpsModule } from '../ops/ops.module.js';
import { ChangesController } from './changes.controller.js';
import { EventsController } from './events.controller.js';
import { SseStreamService } from './sse-stream.service.js';
import { StreamHub } from './stream.hub.js';
import { StreamMetrics } from './stream.metrics.js';

@Module({
  imports: [AuthModule, BusModule, MetricsModule, OpsModule],
  controllers: [ChangesController, EventsController],
  providers: [StreamHub, SseStreamService, StreamMetrics],
  exports: [StreamHub, SseStreamService],
})
export class StreamingModule {}
