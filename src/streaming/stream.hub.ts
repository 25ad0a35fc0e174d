import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { EventBus } from '../bus/event-bus.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import type { HubEvent } from './event-window.js';
import { StreamFanout } from './stream.fanout.js';
import { StreamReplay, type ReplayStats } from './stream.replay.js';
import { type SequenceStats, StreamSequence } from './stream.sequence.js';
import type { Codec, Subscriber } from './subscriber.js';

/** Counters of a replica's stream core, for /metrics and tests (a snapshot). */
export interface StreamStats extends SequenceStats, ReplayStats {
  /** Fan-out flushes: each is one write per subscriber that had something to get. */
  readonly flushes: number;
  /** Events written to subscribers, summed over subscribers. */
  readonly deliveries: number;
}

/**
 * The stream core of one replica, what every transport (SSE today, Socket.IO
 * next) follows the change stream through: `follow` a subscriber from a
 * cursor, `leave` when its transport closes. It composes three parts:
 *
 * - `StreamSequence` (stream.sequence.ts) keeps the delivered sequence
 *   contiguous: bus ingest, back-fill from the outbox, lost-tail poll, and
 *   the window of recent events;
 * - `StreamFanout` (stream.fanout.ts) writes each batch once per group of
 *   subscribers, coalesced under load, and tells filtered subscribers their
 *   cursor;
 * - `StreamReplay` (stream.replay.ts) brings a resuming subscriber from its
 *   cursor to the head (window, shared outbox reads, reset) and hands it over
 *   to the fan-out with no gap and no duplicate.
 *
 * Subscribers implement `Subscriber` and encode with a `Codec` (subscriber.ts).
 */
@Injectable()
export class StreamHub implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly sequence: StreamSequence;
  private readonly fanout = new StreamFanout();
  private readonly replay: StreamReplay;
  private started?: Promise<void>;

  constructor(bus: EventBus, outbox: OutboxRepository, @Inject(APP_CONFIG) config: AppConfig) {
    this.sequence = new StreamSequence(bus, outbox, config.stream, this.fanout);
    this.replay = new StreamReplay(this.sequence, this.fanout, outbox, config.stream.replayPageSize);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.started = this.sequence.start().then(() => this.fanout.start());
    await this.started;
  }

  /**
   * Follows the change stream from `cursor` (the last seq the client saw;
   * undefined: from now): replay, then live. Resolves once the subscriber is
   * live (or closed).
   */
  async follow<P>(sub: Subscriber<P>, codec: Codec<P>, cursor: number | undefined): Promise<void> {
    await this.started;
    await this.replay.follow(sub, codec, cursor);
  }

  /** The subscriber's transport closed. */
  leave(sub: Subscriber<any>): void {
    this.fanout.leave(sub);
  }

  get subscriberCount(): number {
    return this.fanout.subscriberCount;
  }

  /** Last seq delivered on this replica; everything up to it was delivered in order. */
  get head(): number {
    return this.sequence.head;
  }

  get stats(): StreamStats {
    return { ...this.sequence.stats, ...this.replay.stats, flushes: this.fanout.flushCount, deliveries: this.fanout.deliveries };
  }

  /** Calls `observer` after every fan-out flush with the events it wrote (for latency metrics; keep it cheap). */
  observeFlushes(observer: (events: readonly HubEvent[]) => void): void {
    this.fanout.onFlushed = observer;
  }

  beforeApplicationShutdown(): void {
    this.sequence.stop();
    this.replay.stop();
    this.fanout.stop();
  }
}
