import { Inject, Injectable, Logger, type OnApplicationBootstrap, type BeforeApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { Counter, Gauge } from 'prom-client';
import { DataSource, type EntityManager, type QueryRunner } from 'typeorm';
import { EventBus } from '../bus/event-bus.js';
import { toWire, type WireEvent } from '../bus/wire-event.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DATABASE_URL } from '../database/database.module.js';
import { NO_LIMIT } from '../database/sql.js';
import { withTimeout } from '../common/with-timeout.js';
import { MetricsService } from '../ops/metrics.service.js';
import { OUTBOX_COLUMNS, OutboxRepository, type OutboxRow, toChangeEvent } from './outbox.repository.js';
import { underSequencerLock } from './sequencer-lock.js';
import { type LeadershipListener, SequencerLeadership } from './sequencer.leader.js';

const PUBLISH_TIMEOUT_MS = 500;

export interface SequenceResult<T> {
  /** Events numbered by this run, in seq order. */
  readonly events: readonly WireEvent[];
  /** The head after this run: every event with seq <= lastSeq is committed. */
  readonly lastSeq: number;
  readonly snapshot?: T;
}

/** Numbers every visible row in a snapshot run (no batch limit). */
const ALL_ROWS = NO_LIMIT;

/**
 * Gives committed outbox rows their gap-free, commit-ordered `seq` (see
 * docs/sequencing.md). Only the elected replica does this work
 * (`SequencerLeadership`): it LISTENs for commits, and each run
 *
 *   1. takes the session advisory lock SEQUENCER_LOCK (runs are one at a time
 *      cluster-wide, whoever runs them; the previous run has committed before
 *      we get it);
 *   2. in one transaction, reads last_seq and numbers the rows that are
 *      committed and unnumbered as last_seq+1, +2, ... in id order (whole
 *      batches: everything pending, up to SEQUENCER_BATCH_SIZE per run), then
 *      stores the new last_seq;
 *   3. commits, publishes the batch to the bus, releases the lock.
 *
 * Because numbers are handed out only under the lock and become visible in one
 * commit, a reader that sees seq n can never later see a seq <= n appear.
 * Publishing before releasing the lock keeps bus order = seq order. The other
 * replicas do no per-commit work at all; they sequence only for a discovery
 * snapshot (`sequence(snapshot)`), under the same lock.
 */
@Injectable()
export class OutboxSequencer implements OnApplicationBootstrap, BeforeApplicationShutdown, LeadershipListener {
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
  /** Newest seq this replica published to the bus (metrics: numbered vs published). */
  lastPublished = 0;
  private readonly runs: Counter;

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
    private readonly bus: EventBus,
    private readonly leadership: SequencerLeadership,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
    metrics: MetricsService,
  ) {
    const leading = () => this.leadership.isLeader;
    new Gauge({
      name: 'registry_sequencer_leader',
      help: 'Whether this replica is the elected sequencer (1) or not (0)',
      registers: [metrics.registry],
      collect() {
        this.set(leading() ? 1 : 0);
      },
    });
    this.runs = new Counter({
      name: 'registry_sequencer_runs_total',
      help: 'Sequencing runs on this replica that numbered at least one event',
      registers: [metrics.registry],
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.leadership.start(this);
  }

  /** LeadershipListener: this replica sequences from now on. */
  elected(): void {
    if (this.stopped) return;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.kick(), this.config.sequencer.pollMs);
    this.timer.unref();
    void this.listen();
    this.kick(); // whatever the previous leader left unnumbered
  }

  /** LeadershipListener: another replica sequences; stop listening and polling. */
  deposed(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    const listener = this.listener;
    this.listener = undefined;
    void listener?.end().catch(() => undefined);
  }

  /**
   * LISTEN on a dedicated connection while leading: NOTIFY arrives at the
   * writer's commit. A lost connection (or one that could not be made, e.g.
   * while Postgres is down) is retried with backoff until it succeeds or
   * leadership ends; the poll timer numbers rows meanwhile.
   */
  private async listen(): Promise<void> {
    let attempt = 0;
    while (!this.stopped && !this.listener && this.leadership.isLeader) {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'registry-sequencer-listen', keepAlive: true });
      let lost = false;
      const onLost = (why: string) => {
        if (lost) return;
        lost = true;
        if (this.listener === client) this.listener = undefined;
        client.end().catch(() => undefined);
        if (this.stopped || !this.leadership.isLeader) return;
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
      if (this.stopped || !this.leadership.isLeader || this.listener) {
        lost = true;
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

  /** Asks for a run (leader only); coalesces with one in progress. */
  kick(): void {
    if (this.stopped || !this.leadership.isLeader) return;
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
        // One index probe: nothing pending (a duplicate wake-up) costs no lock and no transaction.
        if (!(await this.outbox.head()).pending) continue;
        const { events } = await this.sequence();
        if (events.length >= this.config.sequencer.batchSize) this.again = true;
      } catch (error) {
        this.logger.error(`sequencing failed: ${(error as Error).message}`);
        return;
      }
    } while (this.again && !this.stopped && this.leadership.isLeader);
  }

  /**
   * One sequencing run. With `snapshot`, the run numbers every visible row at
   * REPEATABLE READ and exports its snapshot to a second connection, which
   * imports it before the run commits; the lock is then released and
   * `snapshot` reads there, off the lock (numbering and publishing go on
   * meanwhile). What it reads is consistent with exactly `lastSeq`: every
   * change it sees committed before the run's snapshot and has seq <= lastSeq;
   * every change it does not see commits later and gets seq > lastSeq.
   * (The outbox rows this run numbered look unnumbered there: the importer
   * does not see the exporter's own writes.)
   */
  async sequence<T = never>(snapshot?: (manager: EntityManager, lastSeq: number) => Promise<T>): Promise<SequenceResult<T>> {
    if (!snapshot)
      return underSequencerLock(
        this.dataSource,
        'READ COMMITTED',
        (runner) => this.number(runner, this.config.sequencer.batchSize),
        (r) => this.published(r),
      );
    const reader = this.dataSource.createQueryRunner();
    await reader.connect();
    try {
      const run = await underSequencerLock(
        this.dataSource,
        'REPEATABLE READ',
        async (runner) => {
          const result = await this.number(runner, ALL_ROWS);
          const [{ id }] = (await runner.query('SELECT pg_export_snapshot() AS id')) as { id: string }[];
          if (!/^[0-9A-F-]+$/i.test(id)) throw new Error(`unexpected snapshot id ${id}`);
          await reader.startTransaction('REPEATABLE READ');
          await reader.query(`SET TRANSACTION SNAPSHOT '${id}'`);
          return result;
        },
        (r) => this.published(r),
      );
      const data = await snapshot(reader.manager, run.lastSeq);
      await reader.commitTransaction();
      return { ...run, snapshot: data };
    } catch (error) {
      if (reader.isTransactionActive) await reader.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await reader.release();
    }
  }

  /** Numbers up to `limit` committed, unnumbered rows from the head counter (caller holds the lock, in its transaction). */
  private async number(runner: QueryRunner, limit: number): Promise<SequenceResult<never>> {
    const head = (await runner.query('SELECT last_seq FROM outbox_head WHERE id = 1 FOR UPDATE')) as { last_seq: string }[];
    const base = Number(head[0].last_seq);
    const numbered = await runner.query(
      `UPDATE outbox o SET seq = $1::bigint + r.rn, sequenced_at = clock_timestamp()
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
                 FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $2) r
        WHERE o.id = r.id
    RETURNING ${OUTBOX_COLUMNS.split(', ')
      .map((c) => `o.${c}`)
      .join(', ')}`,
      [base, limit],
      true,
    );
    const found = (numbered.records as OutboxRow[]).sort((a, b) => a.seq - b.seq);
    const lastSeq = base + found.length;
    if (found.length > 0) await runner.query('UPDATE outbox_head SET last_seq = $1 WHERE id = 1', [lastSeq]);
    return { events: found.map((row) => toWire(toChangeEvent(row))), lastSeq };
  }

  /** After commit, before the lock is released: publish, so bus order is seq order. */
  private async published({ events }: SequenceResult<unknown>): Promise<void> {
    if (events.length === 0) return;
    this.sequencedRuns++;
    this.runs.inc();
    await this.publish(events);
    this.lastPublished = events[events.length - 1].seq;
  }

  /** Bounded: a Redis outage must not hold the sequencer lock; replicas back-fill what is lost. */
  private async publish(events: readonly WireEvent[]): Promise<void> {
    try {
      await withTimeout(this.bus.publish(events), PUBLISH_TIMEOUT_MS, 'publish timed out');
    } catch (error) {
      this.logger.warn(`publish of seq ${events[0].seq}..${events.at(-1)!.seq} failed (${(error as Error).message}); replicas will back-fill`);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    // Hand the lease back: another replica sequences at once instead of after it expires.
    await this.leadership.stop();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }
}
