import { Injectable, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsService } from '../ops/metrics.service.js';
import { HealthRuntime } from './health.runtime.js';

const STATUSES = ['healthy', 'degraded', 'unhealthy', 'unknown'] as const;
const CIRCUITS = ['closed', 'open', 'half_open'] as const;

/**
 * Probe results and breaker states. Probes are counted by the replica that
 * heard their result (every replica hears every probe, so each one's figures
 * are the cluster's: do not sum them over replicas); statuses and circuits are
 * read from the durable health table when Prometheus scrapes.
 */
@Injectable()
export class HealthMetrics implements OnModuleInit {
  constructor(
    private readonly runtime: HealthRuntime,
    private readonly dataSource: DataSource,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const registers = [this.metrics.registry];
    const probes = new Counter({
      name: 'registry_health_probes_total',
      help: 'MCP server probes by result quality (good, slow, partial, failed), cluster-wide',
      labelNames: ['quality'],
      registers,
    });
    const duration = new Histogram({
      name: 'registry_health_probe_duration_seconds',
      help: 'MCP probe latency (initialize + ping [+ tools/list]), cluster-wide',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.runtime.checks.onCheck((result) => {
      probes.inc({ quality: result.quality });
      duration.observe(result.latencyMs / 1000);
    });
    const dataSource = this.dataSource;
    let cached: { at: number; rows: Promise<{ status: string; circuit: string; n: number }[]> } | undefined;
    const counts = () => {
      if (!cached || Date.now() - cached.at > 1000) {
        const query = dataSource.query<{ status: string; circuit: string; n: number }[]>(
          'SELECT status, circuit, count(*)::int AS n FROM mcp_server_health GROUP BY status, circuit',
        );
        const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref());
        cached = { at: Date.now(), rows: Promise.race([query, timeout]) };
      }
      return cached.rows;
    };
    new Gauge({
      name: 'registry_mcp_servers',
      help: 'Registered MCP servers by health status (from the health table)',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = await counts().catch(() => undefined);
        if (!rows) return;
        for (const status of STATUSES)
          this.set(
            { status },
            rows.filter((r) => r.status === status).reduce((a, r) => a + r.n, 0),
          );
      },
    });
    new Gauge({
      name: 'registry_mcp_circuits',
      help: 'MCP server circuit breakers by state (from the health table)',
      labelNames: ['state'],
      registers,
      async collect() {
        const rows = await counts().catch(() => undefined);
        if (!rows) return;
        for (const state of CIRCUITS)
          this.set(
            { state },
            rows.filter((r) => r.circuit === state).reduce((a, r) => a + r.n, 0),
          );
      },
    });
  }
}
