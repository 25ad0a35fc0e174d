import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { LifecycleService } from './lifecycle.service.js';
import { MetricsModule } from './metrics.module.js';
import { OpsController } from './ops.controller.js';

/** Health, readiness and metrics endpoints; the replica's lifecycle (drain), for the modules whose work it ends. */
@Module({
  imports: [BusModule, MetricsModule],
  controllers: [OpsController],
  providers: [LifecycleService],
  exports: [LifecycleService],
})
export class OpsModule {}
