import { Inject, Injectable, Logger } from '@nestjs/common';
import pg from 'pg';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DATABASE_URL } from '../database/database.module.js';
import { withTimeout } from '../common/with-timeout.js';

export interface LeadershipListener {
  /** This replica is the sequencer now (term increases with every change of holder). */
  elected(term: number): void;
  /** It is not any more (lost the lease, or could not renew it). */
  deposed(reason: string): void;
}

// Takes the lease if it is ours or has expired; renews it if ours. PostgreSQL's clock decides.
const CLAIM = `
UPDATE sequencer_lease
   SET holder = $1,
       term = term + CASE WHEN holder IS DISTINCT FROM $1 THEN 1 ELSE 0 END,
       expires_at = clock_timestamp() + make_interval(secs => $2::double precision / 1000)
 WHERE id = 1 AND (holder = $1 OR expires_at < clock_timestamp())
RETURNING term`;
const RELEASE = `UPDATE sequencer_lease SET expires_at = '-infinity' WHERE id = 1 AND holder = $1`;

/**
 * Elects the one replica that sequences (numbers, publishes) outbox events,
 * with a lease in PostgreSQL: the holder renews it every lease/4; any other
 * replica takes it once it has expired. So a leader that dies, or that can no
 * longer reach PostgreSQL, is replaced within about one lease
 * (SEQUENCER_LEASE_MS, default 1 s), and a leader that cannot renew steps
 * down at once, before its lease could have been taken. The lease is for
 * efficiency only: numbering still happens under the SEQUENCER_LOCK advisory
 * lock, so even two replicas that both believed they lead could never number
 * at the same time.
 *
 * Each replica keeps one dedicated connection for this (not the pool: a busy
 * pool must not delay renewals) and pays one short UPDATE per lease/4,
 * whatever the write rate.
 */
@Injectable()
export class SequencerLeadership {
  private readonly logger = new Logger('SequencerLeader');
  private client?: pg.Client;
  private connecting?: Promise<pg.Client>;
  private timer?: NodeJS.Timeout;
  private listener?: LeadershipListener;
  private leading = false;
  private stopped = false;
  private ticking = false;
  /** Term of the current holder as this replica last saw it. */
  term = 0;
  /** Times this replica became leader (metrics, tests). */
  elections = 0;
  /** Times the lease connection was lost or could not be made (metrics). */
  connectionsLost = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DATABASE_URL) private readonly databaseUrl: string,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; resolves after the first attempt (a lone replica leads from its start). */
  async start(listener: LeadershipListener): Promise<void> {
    this.listener = listener;
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.config.sequencer.leaseMs / 4)));
    this.timer.unref();
  }

  private async connection(): Promise<pg.Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'registry-sequencer-lease', keepAlive: true });
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      try {
        await client.connect();
      } catch (error) {
        client.end().catch(() => undefined);
        throw error;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.connectionsLost++;
    }
    client.end().catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.ticking) return;
    this.ticking = true;
    const leaseMs = this.config.sequencer.leaseMs;
    let client: pg.Client | undefined;
    try {
      client = await this.connection();
      const result = await withTimeout(client.query<{ term: string }>(CLAIM, [this.config.replicaId, leaseMs]), leaseMs / 2);
      if (this.stopped) return;
      if (result.rowCount === 1) {
        const term = Number(result.rows[0].term);
        if (!this.leading || term !== this.term) {
          this.term = term;
          this.leading = true;
          this.elections++;
          this.logger.log(`sequencing on this replica (term ${term})`);
          this.listener?.elected(term);
        }
      } else if (this.leading) {
        this.stepDown('another replica holds the lease');
      }
    } catch (error) {
      // Not renewed: we can no longer be sure nobody else took over. Step down now.
      if (client) this.drop(client);
      if (this.leading) this.stepDown(`lease not renewed: ${(error as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.logger.warn(`no longer sequencing (${reason})`);
    this.listener?.deposed(reason);
  }

  /** Stops campaigning and hands the lease back, so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const wasLeading = this.leading;
    this.stepDown('shutting down');
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (wasLeading) await withTimeout(client.query(RELEASE, [this.config.replicaId]), 1000).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
