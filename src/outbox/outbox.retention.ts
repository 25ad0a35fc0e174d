import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { underSequencerLock } from './sequencer-lock.js';

/**
 * Prunes sequenced outbox rows older than OUTBOX_RETENTION_MS or beyond the
 * newest OUTBOX_RETENTION_EVENTS, and records the highest pruned seq in
 * outbox_head.pruned_through: a cursor below it gets an explicit `reset`.
 * Runs under the sequencer lock, so it never races a sequencing run.
 */
@Injectable()
export class OutboxRetention implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('OutboxRetention');
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      if (!this.running)
        this.running = this.prune()
          .catch((e: Error) => this.logger.warn(`prune failed: ${e.message}`))
          .finally(() => (this.running = undefined));
    }, this.config.retention.intervalMs);
    this.timer.unref();
  }

  /** Returns the number of events removed. */
  async prune(maxAgeMs = this.config.retention.maxAgeMs, maxEvents = this.config.retention.maxEvents): Promise<number> {
    const { removed, through } = await underSequencerLock(this.dataSource, 'READ COMMITTED', async (runner) => {
      const head = (await runner.query('SELECT last_seq, pruned_through FROM outbox_head WHERE id = 1 FOR UPDATE')) as {
        last_seq: string;
        pruned_through: string;
      }[];
      const lastSeq = Number(head[0].last_seq);
      const byCount = maxEvents > 0 ? lastSeq - maxEvents : 0;
      const byAge = (await runner.query(
        `SELECT coalesce(max(seq), 0) AS s FROM outbox WHERE seq IS NOT NULL AND created_at < now() - make_interval(secs => $1::double precision / 1000)`,
        [maxAgeMs],
      )) as { s: string }[];
      const through = Math.max(byCount, maxAgeMs > 0 ? Number(byAge[0].s) : 0, Number(head[0].pruned_through));
      if (through <= Number(head[0].pruned_through)) return { removed: 0, through };
      const result = await runner.query('DELETE FROM outbox WHERE seq <= $1', [through], true);
      await runner.query('UPDATE outbox_head SET pruned_through = $1 WHERE id = 1', [through]);
      return { removed: result.affected ?? 0, through };
    });
    if (removed > 0) this.logger.log(`pruned ${removed} events (through seq ${through})`);
    return removed;
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
