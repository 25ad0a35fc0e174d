import { Module } from '@nestjs/common';
import { MetricsService } from './metrics.service.js';

/** The replica's Prometheus registry; imported by every module that registers metrics. */
@Module({ providers: [MetricsService], exports: [MetricsService] })
export class MetricsModule {}
