import { Injectable, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { MetricsService } from '../ops/metrics.service.js';
import type { HubEvent } from './event-window.js';
import { StreamHub } from './stream.hub.js';

/** Buckets of commit→delivery latency (seconds): a few ms on an idle cluster, up to seconds under faults. */
const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `"ts":"<ISO time>"` of an event's JSON, without parsing the rest. */
function commitTime(e: HubEvent): number {
  const at = e.json.indexOf('"ts":"');
  return at === -1 ? Number.NaN : Date.parse(e.json.slice(at + 6, e.json.indexOf('"', at + 6)));
}

/**
 * The stream core's metrics. Counters are read from the hub's own stats when
 * Prometheus scrapes (nothing on the hot path); commit→delivery latency is
 * observed once per event per replica, when its fan-out round has written it to every subscriber
 * (from the event's `ts`, the time its outbox row was written in the
 * committing transaction). Labels are bounded: no per-user or per-event labels.
 */
@Injectable()
export class StreamMetrics implements OnModuleInit {
  constructor(
    private readonly hub: StreamHub,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const hub = this.hub;
    const registers = [this.metrics.registry];
    const counterFrom = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counterFrom(
      'registry_stream_events_total',
      'Events taken into this replica’s stream (from the bus or back-filled), in seq order',
      () => hub.stats.delivered,
    );
    counterFrom('registry_stream_deliveries_total', 'Events written to subscribers, summed over subscribers', () => hub.stats.deliveries);
    counterFrom(
      'registry_stream_flushes_total',
      'Fan-out rounds (a pass over the subscribers: one write per subscriber with something to get)',
      () => hub.stats.flushes,
    );
    counterFrom('registry_stream_backfills_total', 'Back-fills from the outbox (a gap, a bus reconnect, a lost tail)', () => hub.stats.backfills);
    counterFrom('registry_stream_backfilled_events_total', 'Events read from the outbox by back-fills', () => hub.stats.backfilledEvents);
    counterFrom('registry_stream_resets_total', 'Subscribers told to refetch state (cursor older than retention, or ahead)', () => hub.stats.resets);
    new Counter({
      name: 'registry_stream_replays_total',
      help: 'Replay pages served to resuming subscribers, by source (window: memory; outbox: a shared query)',
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        this.inc({ source: 'window' }, hub.stats.windowReplays);
        this.inc({ source: 'outbox' }, hub.stats.replayQueries);
      },
    });
    new Gauge({
      name: 'registry_stream_head_seq',
      help: 'Last seq delivered in order on this replica',
      registers,
      collect() {
        this.set(hub.head);
      },
    });
    new Gauge({
      name: 'registry_stream_subscribers',
      help: 'Live subscribers of the hub (SSE connections and Socket.IO subscriptions)',
      registers,
      collect() {
        this.set(hub.subscriberCount);
      },
    });
    const latency = new Histogram({
      name: 'registry_stream_delivery_latency_seconds',
      help: 'From the event’s commit (its outbox row) to the end of the fan-out round after which every subscriber on this replica has it',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    hub.observeFlushes((events) => {
      const now = Date.now();
      for (const e of events) {
        const at = commitTime(e);
        if (Number.isFinite(at)) latency.observe(Math.max(0, (now - at) / 1000));
      }
    });
  }
}
