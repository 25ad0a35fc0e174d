import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { DomainError } from '../common/domain-error.js';
import { PROBLEM_CONTENT_TYPE, toProblem } from '../common/problem-details.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import { sha256 } from './secrets.js';

/**
 * Who may read `/metrics`. Open by default (a cluster-internal scrape);
 * `METRICS_TOKEN` requires `Authorization: Bearer <token>`; `METRICS_PORT`
 * serves it on a separate listener only (not on the public port), which a
 * Kubernetes NetworkPolicy or a firewall can keep internal. Both may be set.
 */
@Injectable()
export class MetricsAccess implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private server?: Server;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /** For `/metrics` on the main port (the auth hook calls it): 404 when METRICS_PORT moves it, 401 without the token. */
  assertMainPort(headers: IncomingHttpHeaders): void {
    if (this.config.security.metricsPort !== undefined) {
      throw new DomainError('not_found', `metrics are served on port ${this.config.security.metricsPort} only (METRICS_PORT)`);
    }
    this.assertToken(headers);
  }

  private assertToken(headers: IncomingHttpHeaders): void {
    const token = this.config.security.metricsToken;
    if (token === undefined) return;
    const m = /^Bearer\s+(\S+)$/i.exec(headers.authorization?.trim() ?? '');
    // Hashes have equal length, so the comparison is constant-time whatever was sent.
    if (!m || !timingSafeEqual(Buffer.from(sha256(m[1])), Buffer.from(sha256(token)))) {
      throw new DomainError('unauthorized', 'metrics need Authorization: Bearer <METRICS_TOKEN>', {
        headers: { 'www-authenticate': 'Bearer realm="metrics"' },
      });
    }
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.security.metricsPort;
    if (port === undefined) return;
    const server = createServer((req, res) => {
      void (async () => {
        try {
          if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') throw new DomainError('not_found', 'only GET /metrics is served here');
          this.assertToken(req.headers);
          const body = await this.metrics.registry.metrics();
          res.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'cache-control': 'no-store' }).end(body);
        } catch (error) {
          const problem = error instanceof DomainError ? error : new DomainError('internal', 'An unexpected error occurred');
          res.writeHead(problem.status, { 'content-type': PROBLEM_CONTENT_TYPE, ...problem.headers }).end(JSON.stringify(toProblem(problem, '/metrics')));
        }
      })();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.host, () => resolve());
    });
    this.server = server;
    this.logger.log(`metrics on http://${this.config.host}:${port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
