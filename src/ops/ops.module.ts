import { Global, Module } from '@nestjs/common';
import { LifecycleService } from './lifecycle.service.js';
import { MetricsService } from './metrics.service.js';
import { OpsController } from './ops.controller.js';

@Global()
@Module({
  controllers: [OpsController],
  providers: [LifecycleService, MetricsService],
  exports: [LifecycleService, MetricsService],
})
export class OpsModule {}
