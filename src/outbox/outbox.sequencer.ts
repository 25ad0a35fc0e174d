import { Inject, Injectable, Logger, type OnApplicationBootstrap, type BeforeApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { EventBus } from '../bus/event-bus.js';
import { toWire, type WireEvent } from '../bus/wire-event.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DATABASE_URL } from '../database/database.module.js';
import { OUTBOX_COLUMNS, OutboxRepository, type OutboxRow, toChangeEvent } from './outbox.repository.js';
import { underSequencerLock } from './sequencer-lock.js';

const PUBLISH_TIMEOUT_MS = 500;

export interface SequenceResult<T> {
  /** Events numbered by this run, in seq order. */
  readonly events: readonly WireEvent[];
  /** The head after this run: every event with seq <= lastSeq is committed. */
  readonly lastSeq: number;
  readonly snapshot?: T;
}

/**
 * Gives committed outbox rows their gap-free, commit-ordered `seq` (see
 * docs/sequencing.md). One run, on any replica:
 *
 *   1. take the session advisory lock SEQUENCER_LOCK (runs are one at a time
 *      cluster-wide; the previous run has committed before we get it);
 *   2. in one transaction, read last_seq and number the rows that are
 *      committed and unnumbered as last_seq+1, +2, ... in id order, then
 *      store the new last_seq;
 *   3. commit, publish the batch to the bus, release the lock.
 *
 * Because numbers are handed out only under the lock and become visible in one
 * commit, a reader that sees seq n can never later see a seq <= n appear.
 * Publishing before releasing the lock keeps bus order = seq order.
 */
@Injectable()
export class OutboxSequencer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('OutboxSequencer');
  private listener?: pg.Client;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** Number of runs that numbered at least one row (metrics). */
  sequencedRuns = 0;
  /** Times the LISTEN connection was lost (metrics, tests). */
  listenersLost = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
    private readonly bus: EventBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Usually connected at once; start-up does not wait on it for long (the poll covers the gap).
    const listening = this.listen();
    await Promise.race([listening, new Promise((r) => setTimeout(r, 5000).unref())]);
    this.timer = setInterval(() => this.kick(), this.config.sequencer.pollMs);
    this.timer.unref();
    this.kick();
  }

  /**
   * LISTEN on a dedicated connection: NOTIFY arrives at the writer's commit.
   * Kept for the life of the replica: a lost connection (or one that could
   * not be made, e.g. while Postgres is down) is retried with backoff until it
   * succeeds; the poll timer numbers rows meanwhile.
   */
  private async listen(): Promise<void> {
    let attempt = 0;
    while (!this.stopped && !this.listener) {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'registry-sequencer-listen', keepAlive: true });
      let lost = false;
      const onLost = (why: string) => {
        if (lost) return;
        lost = true;
        if (this.listener === client) this.listener = undefined;
        client.end().catch(() => undefined);
        if (this.stopped) return;
        this.logger.warn(`listener connection lost (${why}); reconnecting`);
        this.listenersLost++;
        setTimeout(() => void this.listen(), 100).unref();
      };
      client.on('notification', () => this.kick());
      try {
        await client.connect();
        await client.query('LISTEN outbox_pending');
      } catch (error) {
        client.end().catch(() => undefined);
        const delay = Math.min(100 * 2 ** attempt++, 2000);
        if (attempt === 1) this.logger.warn(`cannot LISTEN (${(error as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, delay).unref());
        continue;
      }
      client.on('error', (error) => onLost(error.message));
      client.on('end', () => onLost('connection ended'));
      if (this.stopped) {
        await client.end().catch(() => undefined);
        return;
      }
      this.listener = client;
      this.kick(); // anything committed while we were not listening
    }
  }

  /** Whether the LISTEN connection is up (metrics, tests). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Asks for a run; coalesces with one in progress. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        // Every replica is woken by each commit; the first one numbers the rows.
        // The others see nothing pending here (one index probe) and skip the
        // lock and the transaction. NOTIFY is sent at commit, so a woken
        // replica's probe always sees the row that woke it unless it is numbered.
        if (!(await this.outbox.head()).pending) continue;
        const { events } = await this.sequence();
        if (events.length >= this.config.sequencer.batchSize) this.again = true;
      } catch (error) {
        this.logger.error(`sequencing failed: ${(error as Error).message}`);
        return;
      }
    } while (this.again && !this.stopped);
  }

  /**
   * One sequencing run. With `snapshot`, the run is REPEATABLE READ and numbers
   * every visible row, then calls `snapshot` in the same snapshot: the data it
   * reads is consistent with exactly `lastSeq` (every change it sees has
   * seq <= lastSeq, every change it does not see will get seq > lastSeq).
   */
  async sequence<T = never>(snapshot?: (manager: EntityManager, lastSeq: number) => Promise<T>): Promise<SequenceResult<T>> {
    return underSequencerLock(
      this.dataSource,
      snapshot ? 'REPEATABLE READ' : 'READ COMMITTED',
      async (runner) => {
        const head = await runner.query('SELECT last_seq FROM outbox_head WHERE id = 1 FOR UPDATE');
        const base = Number(head[0].last_seq);
        const limit = snapshot ? 2_147_483_647 : this.config.sequencer.batchSize;
        const numbered = await runner.query(
          `UPDATE outbox o SET seq = $1::bigint + r.rn, sequenced_at = clock_timestamp()
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
                     FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $2) r
            WHERE o.id = r.id
        RETURNING ${OUTBOX_COLUMNS.split(', ').map((c) => `o.${c}`).join(', ')}`,
          [base, limit],
          true,
        );
        const found = (numbered.records as OutboxRow[]).sort((a, b) => a.seq - b.seq);
        const lastSeq = base + found.length;
        if (found.length > 0) await runner.query('UPDATE outbox_head SET last_seq = $1 WHERE id = 1', [lastSeq]);
        const result = snapshot ? await snapshot(runner.manager, lastSeq) : undefined;
        return { events: found.map((row) => toWire(toChangeEvent(row))), lastSeq, snapshot: result };
      },
      async ({ events }) => {
        if (events.length === 0) return;
        this.sequencedRuns++;
        await this.publish(events);
      },
    );
  }

  /** Bounded: a Redis outage must not hold the sequencer lock; replicas back-fill what is lost. */
  private async publish(events: WireEvent[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.bus.publish(events),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('publish timed out')), PUBLISH_TIMEOUT_MS);
        }),
      ]);
    } catch (error) {
      this.logger.warn(`publish of seq ${events[0]!.seq}..${events.at(-1)!.seq} failed (${(error as Error).message}); replicas will back-fill`);
    } finally {
      clearTimeout(timer);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }
}
