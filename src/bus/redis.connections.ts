import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Counter, Gauge } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';

/** How often each connection is pinged, and how long a ping may take before the link counts as dead. */
export const REDIS_PING_MS = 1000;
export const REDIS_PING_TIMEOUT_MS = 2000;

function createRedis(url: string, name: string): Redis {
  return new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    // The kernel notices a dead peer too late for us (minutes); the ping
    // watchdog below is what detects a half-open link. This only helps NATs.
    keepAlive: 10_000,
    connectTimeout: 5000,
    lazyConnect: false,
  });
}

/**
 * The replica's two Redis connections, whatever the number of clients: one
 * for commands and publishing, one in subscriber mode. Features get them
 * injected here (never by reaching into the bus).
 *
 * A link that stops answering without closing (a stalled NAT entry, a peer
 * that vanished) is never reported by TCP in useful time, so each connection
 * is pinged every REDIS_PING_MS; one that has not answered within
 * REDIS_PING_TIMEOUT_MS is dropped and reconnected (and the subscriber's
 * reconnect makes the hub back-fill from the outbox).
 */
@Injectable()
export class RedisConnections implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly commands: Redis;
  readonly subscriber: Redis;
  private readonly watchdog: NodeJS.Timeout;
  private readonly pinging = new Set<Redis>();
  /** Links dropped by the watchdog (metrics, tests). */
  staleLinksDropped = 0;

  constructor(@Inject(APP_CONFIG) config: AppConfig, metrics: MetricsService) {
    this.commands = createRedis(config.redisUrl!, `registry-pub-${config.replicaId}`);
    this.subscriber = createRedis(config.redisUrl!, `registry-sub-${config.replicaId}`);
    const reconnects = new Counter({
      name: 'registry_redis_reconnects_total',
      help: 'Reconnections of this replica’s Redis connections',
      labelNames: ['connection'],
      registers: [metrics.registry],
    });
    for (const [client, name] of [
      [this.commands, 'commands'],
      [this.subscriber, 'subscriber'],
    ] as const) {
      client.on('error', (error: Error) => this.logger.warn(`redis: ${error.message}`));
      client.on('reconnecting', () => reconnects.inc({ connection: name }));
    }
    this.watchdog = setInterval(() => {
      this.ping(this.commands);
      this.ping(this.subscriber);
    }, REDIS_PING_MS);
    this.watchdog.unref();
    const ready = () => this.ready;
    new Gauge({
      name: 'registry_redis_connected',
      help: 'Whether both Redis connections of this replica are ready (1) or not (0)',
      registers: [metrics.registry],
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
  }

  get ready(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  private ping(client: Redis): void {
    if (client.status !== 'ready' || this.pinging.has(client)) return;
    this.pinging.add(client);
    const timer = setTimeout(() => {
      this.staleLinksDropped++;
      this.logger.warn(`${client.options.connectionName}: no answer to PING in ${REDIS_PING_TIMEOUT_MS} ms; reconnecting`);
      client.disconnect(true);
    }, REDIS_PING_TIMEOUT_MS);
    client
      .ping()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        this.pinging.delete(client);
      });
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.watchdog);
    await Promise.allSettled([this.subscriber.quit(), this.commands.quit()]);
  }
}
