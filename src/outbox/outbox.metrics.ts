import { Injectable, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsService } from '../ops/metrics.service.js';
import { OutboxSequencer } from './outbox.sequencer.js';
import { SequencerLeadership } from './sequencer.leader.js';

/**
 * Outbox lag and sequencer health. The lag figures are read from PostgreSQL
 * when Prometheus scrapes (one small query, with a timeout; absent while the
 * database does not answer), so they cost nothing between scrapes:
 * newest committed but unnumbered → `registry_outbox_unnumbered` and the age
 * of the oldest of them; newest numbered → `registry_outbox_last_seq`; newest
 * published by this replica → `registry_sequencer_published_seq`; newest
 * delivered here → `registry_stream_head_seq` (stream metrics).
 */
@Injectable()
export class OutboxMetrics implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly sequencer: OutboxSequencer,
    private readonly leadership: SequencerLeadership,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const registers = [this.metrics.registry];
    const { dataSource, sequencer, leadership } = this;
    let cached: { at: number; value: Promise<{ lastSeq: number; unnumbered: number; oldest: number } | undefined> } | undefined;
    const lag = () => {
      // One query per scrape, shared by the three gauges below.
      if (!cached || Date.now() - cached.at > 1000) {
        const query = dataSource
          .query(
            `SELECT (SELECT last_seq FROM outbox_head WHERE id = 1)::float8 AS last_seq,
                    count(*)::float8 AS unnumbered,
                    coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS oldest
               FROM outbox WHERE seq IS NULL`,
          )
          .then((rows: { last_seq: number; unnumbered: number; oldest: number }[]) => ({
            lastSeq: rows[0].last_seq,
            unnumbered: rows[0].unnumbered,
            oldest: rows[0].oldest,
          }));
        const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2000).unref());
        cached = { at: Date.now(), value: Promise.race([query, timeout]).catch(() => undefined) };
      }
      return cached.value;
    };
    new Gauge({
      name: 'registry_outbox_last_seq',
      help: 'Newest seq numbered (committed and sequenced)',
      registers,
      async collect() {
        const l = await lag();
        if (l) this.set(l.lastSeq);
      },
    });
    new Gauge({
      name: 'registry_outbox_unnumbered',
      help: 'Committed outbox events still waiting for their seq',
      registers,
      async collect() {
        const l = await lag();
        if (l) this.set(l.unnumbered);
      },
    });
    new Gauge({
      name: 'registry_outbox_oldest_unnumbered_seconds',
      help: 'Age of the oldest committed event still waiting for its seq (0: none)',
      registers,
      async collect() {
        const l = await lag();
        if (l) this.set(l.oldest);
      },
    });
    new Gauge({
      name: 'registry_sequencer_published_seq',
      help: 'Newest seq this replica published to the bus (0 unless it sequenced)',
      registers,
      collect() {
        this.set(sequencer.lastPublished);
      },
    });
    new Counter({
      name: 'registry_sequencer_elections_total',
      help: 'Times this replica became the sequencing leader',
      registers,
      collect() {
        this.reset();
        this.inc(leadership.elections);
      },
    });
    new Counter({
      name: 'registry_postgres_reconnects_total',
      help: 'Losses of this replica’s dedicated PostgreSQL connections (sequencer LISTEN, leader lease)',
      labelNames: ['connection'],
      registers,
      collect() {
        this.reset();
        this.inc({ connection: 'listen' }, sequencer.listenersLost);
        this.inc({ connection: 'lease' }, leadership.connectionsLost);
      },
    });
  }
}
