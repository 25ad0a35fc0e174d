import { Controller, Get, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { MetricsEndpoint, Public } from '../auth/principal.js';
import { EventBus } from '../bus/event-bus.js';
import { DomainError } from '../common/domain-error.js';
import { LifecycleService } from './lifecycle.service.js';
import { MetricsService } from './metrics.service.js';

@Controller()
@Public()
export class OpsController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly bus: EventBus,
    private readonly lifecycle: LifecycleService,
    private readonly metrics: MetricsService,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  healthz() {
    return { status: 'ok' };
  }

  /**
   * Readiness: not draining and PostgreSQL (the source of truth) answers.
   * The bus is reported but does not fail it: without Redis, writes still
   * commit and streams follow the outbox, so REST must stay in rotation.
   */
  @Get('readyz')
  async readyz() {
    if (this.lifecycle.isDraining) throw new DomainError('service_unavailable', 'draining');
    try {
      await this.dataSource.query('SELECT 1');
    } catch {
      throw new DomainError('service_unavailable', 'database unreachable');
    }
    return { status: 'ready', bus: this.bus.kind, busConnected: this.bus.isHealthy() };
  }

  /** Open by default; METRICS_TOKEN / METRICS_PORT protect it (see MetricsAccess, checked before the handler). */
  @Get('metrics')
  @MetricsEndpoint()
  async metricsText(@Res({ passthrough: true }) reply: FastifyReply) {
    reply.header('content-type', this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }
}
