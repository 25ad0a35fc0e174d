import { Module } from '@nestjs/common';
import { BusModule } from '../bus/bus.module.js';
import { MetricsModule } from '../ops/metrics.module.js';
import { RegistryModule } from '../registry/registry.module.js';
import { StreamingModule } from '../streaming/streaming.module.js';
import { CircuitBreakers } from './circuit-breakers.js';
import { HealthController } from './health.controller.js';
import { HealthProber } from './health.prober.js';
import { HealthRepository } from './health.repository.js';
import { HealthMetrics } from './health.metrics.js';
import { HealthRuntime } from './health.runtime.js';
import { HealthService } from './health.service.js';
import { HealthStreamController } from './health-stream.controller.js';
import { HealthStream } from './health-stream.service.js';
import { ServerDirectory } from './server-directory.js';

/**
 * MCP server health: probes over MCP (one owning replica per server), the
 * status and circuit breaker of each server with their outbox events, the
 * health REST reads and the health stream. `CircuitBreakers` is the API the
 * gateway uses around its calls. See docs/health.md.
 */
@Module({
  imports: [BusModule, MetricsModule, RegistryModule, StreamingModule],
  controllers: [HealthController, HealthStreamController],
  providers: [ServerDirectory, HealthRepository, HealthRuntime, CircuitBreakers, HealthProber, HealthService, HealthStream, HealthMetrics],
  exports: [CircuitBreakers, HealthService, HealthStream, HealthRuntime, ServerDirectory],
})
export class HealthModule {}
