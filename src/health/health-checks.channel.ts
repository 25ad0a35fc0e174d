import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { CheckResult } from './health.types.js';

export type CheckListener = (result: CheckResult, json: string) => void;

/**
 * Live check results between replicas: each probe's result is published once
 * by the replica that ran it and heard by every replica, which hands it to its
 * own health-stream clients. Live only: nothing is stored or replayed, and a
 * replica that misses some while its link is down simply misses them.
 *
 * With Redis: one PUBLISH per check, and one subscriber connection per replica
 * of its own (the bus's subscriber connection decodes every message it gets
 * as an event batch, so it is not shared). Without Redis: in-process.
 */
export class HealthChecksChannel {
  private readonly logger = new Logger('HealthChecks');
  private readonly listeners: CheckListener[] = [];
  private readonly subscriber?: Redis;
  private readonly channel: string;

  constructor(
    private readonly publisher: Redis | null,
    redisUrl: string | undefined,
    prefix: string,
    replicaId: string,
  ) {
    this.channel = `${prefix}:health:checks`;
    if (publisher && redisUrl) {
      this.subscriber = new Redis(redisUrl, {
        connectionName: `registry-health-${replicaId}`,
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
        keepAlive: 10_000,
        connectTimeout: 5000,
      });
      this.subscriber.on('error', (error: Error) => this.logger.debug(`redis: ${error.message}`));
      this.subscriber.on('message', (_channel: string, json: string) => this.deliver(json));
      void this.subscriber.subscribe(this.channel).catch((error: Error) => this.logger.warn(`subscribe failed: ${error.message}`));
    }
  }

  onCheck(listener: CheckListener): void {
    this.listeners.push(listener);
  }

  publish(result: CheckResult): void {
    const json = JSON.stringify(result);
    if (this.publisher && this.publisher.status === 'ready' && this.subscriber?.status === 'ready') {
      this.publisher.publish(this.channel, json).catch(() => this.deliver(json));
      return;
    }
    // No Redis, or it is away: at least this replica's clients see it.
    setImmediate(() => this.deliver(json));
  }

  private deliver(json: string): void {
    let result: CheckResult;
    try {
      result = JSON.parse(json) as CheckResult;
    } catch {
      return;
    }
    for (const l of this.listeners) {
      try {
        l(result, json);
      } catch (error) {
        this.logger.warn(`check listener failed: ${(error as Error).message}`);
      }
    }
  }

  /** Never waits on an unreachable Redis (a QUIT would queue until it answers). */
  async close(): Promise<void> {
    const sub = this.subscriber;
    if (!sub) return;
    if (sub.status !== 'ready') {
      sub.disconnect();
      return;
    }
    const timer = setTimeout(() => sub.disconnect(), 1000);
    await sub.quit().catch(() => sub.disconnect());
    clearTimeout(timer);
  }
}
