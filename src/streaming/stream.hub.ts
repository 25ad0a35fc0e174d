import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { type BusListener, EventBus } from '../bus/event-bus.js';
import { toWire, type WireEvent } from '../bus/wire-event.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { ChangeEvent } from '../events/event-catalog.js';
import { NO_LIMIT } from '../database/sql.js';
import { OutboxRepository } from '../outbox/outbox.repository.js';
import type { EventFilter } from './event-filter.js';
import { EventWindow, type HubEvent, toHubEvent } from './event-window.js';

/**
 * One follower of the change stream on this replica: the seam every transport
 * (SSE today, Socket.IO next) implements. The hub writes to it; it never pulls.
 *
 * Contract:
 * - `cursor` is owned by the hub: the last seq this subscriber has accounted
 *   for (delivered, or skipped by its filter). The hub moves it; the transport
 *   reads it to know where the client would resume.
 * - `write(payload)` takes a payload the hub encoded once with the
 *   subscriber's `Codec` for every member of its group (same transport, same
 *   filter): the transport must not re-encode or copy it per connection. It
 *   must not block; a transport whose buffer is over its bound disconnects the
 *   client (the client resumes from its cursor).
 * - `writeReplay(events)` writes already-encoded history pages and resolves
 *   when the transport can take more (back-pressure during replay).
 * - `reset(cursor, reason)`: the client's position is gone (older than
 *   retention, or ahead of the stream); it must refetch state and follow from
 *   `cursor`.
 * - `close(reason)`: the hub cannot serve it any more (e.g. this replica fell
 *   behind retention); the client should reconnect and resume.
 * - `closed` turns true once the transport is gone; the transport then calls
 *   `StreamHub.leave`.
 */
export interface Subscriber<P = unknown> {
  readonly filter: EventFilter;
  /** Last seq accounted for: delivered, or filtered out. Resume point. */
  cursor: number;
  readonly closed: boolean;
  /** Live path: a payload encoded once for every subscriber of the same group. */
  write(payload: P): void;
  /** Replay path: resolves when the transport can take more. */
  writeReplay(events: HubEvent[]): Promise<void>;
  /** The cursor is older than retention (or unknown): refetch state, follow from `cursor`. */
  reset(cursor: number, reason: string): void;
  /** The hub cannot serve this subscriber any more; it should resume elsewhere. */
  close(reason: string): void;
}

/** How one transport encodes what the hub sends: event batches, and the client's position alone. */
export interface Codec<P> {
  /** Subscribers of different transports never share a group. */
  readonly transport: string;
  /** A batch of events, in seq order. */
  events(events: HubEvent[]): P;
  /** The client's cursor when no event carries it (on joining; after filtered-out events). */
  cursor(seq: number): P;
}

/** Subscribers with the same transport and filter: a batch is encoded once for all of them. */
class SubscriberGroup<P> {
  readonly members = new Set<Subscriber<P>>();
  /** A cursor its members reached through filtered-out events, not yet told to them. */
  unadvertised?: number;

  constructor(
    readonly key: string,
    private readonly filter: EventFilter,
    readonly codec: Codec<P>,
  ) {}

  deliver(events: HubEvent[]): void {
    const first = events[0]!.seq;
    const last = events[events.length - 1]!.seq;
    const matching = this.filter.all ? events : events.filter((e) => this.filter.matches(e.type));
    let shared: P | undefined;
    for (const sub of this.members) {
      if (sub.cursor >= last) continue;
      if (matching.length > 0) {
        if (sub.cursor < first) {
          shared ??= this.codec.events(matching);
          sub.write(shared);
        } else {
          const rest = matching.filter((e) => e.seq > sub.cursor);
          if (rest.length > 0) sub.write(this.codec.events(rest));
        }
      }
      sub.cursor = last;
    }
    this.unadvertised = matching.length > 0 && matching[matching.length - 1]!.seq === last ? undefined : last;
  }

  /** Tells members still at the unadvertised cursor where they are (one encoded frame for all). */
  advertise(): void {
    const cursor = this.unadvertised;
    if (cursor === undefined) return;
    this.unadvertised = undefined;
    let frame: P | undefined;
    for (const sub of this.members) {
      if (sub.cursor !== cursor) continue;
      frame ??= this.codec.cursor(cursor);
      sub.write(frame);
    }
  }
}

const LOST_TAIL_GRACE_MS = 100;
/** Upper bound of the wait a flush may add under load (ms). */
const MAX_COALESCE_MS = 10;
/**
 * How often filtered subscribers whose cursor moved past events they did not
 * get are told their position (coalesced: one frame per group per period).
 */
const CURSOR_ADVERTISE_MS = 1000;

/**
 * The fan-out hub of one replica. It holds the replica's only bus
 * subscription, keeps the delivered sequence contiguous (a jump in seq, a bus
 * reconnect or a lagging head marker triggers a back-fill from the outbox
 * before anything newer is delivered), keeps a window of recent events for
 * resumes, and writes each batch once per subscriber group.
 *
 * Writes are coalesced under load, never when idle. Per subscriber a flush
 * costs one socket write whatever the number of events in it, and that write
 * (a syscall, mostly kernel time) is the whole cost of fan-out. An event that
 * finds the hub idle is written at once, synchronously from the bus callback.
 * Events arriving while a flush happened less than its own duration ago wait
 * for the next flush, at most that duration (capped at MAX_COALESCE_MS): a
 * fan-out that costs d ms per flush leaves the event loop min(d, 10 ms) of
 * other work between flushes, and a subscriber waits at most about what the
 * last one of a flush waits anyway. So a replica with a handful of
 * subscribers, or events tens of ms apart, sees no added latency, and a busy
 * one writes several events per syscall.
 */
@Injectable()
export class StreamHub implements BusListener, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('StreamHub');
  private readonly window: EventWindow;
  private readonly groups = new Map<string, SubscriberGroup<any>>();
  private readonly subscriberGroup = new Map<Subscriber<any>, SubscriberGroup<any>>();
  private readonly inflightReads = new Map<number, Promise<HubEvent[]>>();
  private pending: WireEvent[][] = [];
  private processing = false;
  /** Delivered (in head and window) but not yet written to subscribers. */
  private outgoing: HubEvent[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushQueued = false;
  private lastFlushEnd = -Infinity;
  private lastFlushMs = 0;
  private backfillTarget = 0;
  private pollTimer?: NodeJS.Timeout;
  private cursorTimer?: NodeJS.Timeout;
  private stopped = false;
  private started?: Promise<void>;

  /** Last seq delivered on this replica; everything up to it was delivered in order. */
  head = 0;
  prunedThrough = 0;
  /** Counters for /metrics and tests. */
  readonly stats = { delivered: 0, backfills: 0, backfilledEvents: 0, replayQueries: 0, windowReplays: 0, resets: 0, flushes: 0 };

  constructor(
    private readonly bus: EventBus,
    private readonly outbox: OutboxRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.window = new EventWindow(config.stream.windowSize);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.started = this.start();
    await this.started;
  }

  private async start(): Promise<void> {
    // Warm the window so resumes after a restart are served from memory.
    const { lastSeq, prunedThrough } = await this.outbox.head();
    this.prunedThrough = prunedThrough;
    const latest = this.config.stream.windowSize > 0 ? await this.outbox.readLatest(this.config.stream.windowSize) : [];
    for (const event of fromOutbox(latest)) this.window.push(event);
    this.head = latest.length > 0 ? latest[latest.length - 1]!.seq : lastSeq;
    if (lastSeq > this.head) this.requestBackfill(lastSeq);
    this.bus.subscribe(this);
    this.pollTimer = setInterval(() => void this.pollHead(), this.config.stream.headPollMs);
    this.pollTimer.unref();
    this.cursorTimer = setInterval(this.advertiseCursors, CURSOR_ADVERTISE_MS);
    this.cursorTimer.unref();
  }

  private readonly advertiseCursors = (): void => {
    for (const group of this.groups.values()) {
      try {
        group.advertise();
      } catch (error) {
        this.logger.error(`cursor advertisement to ${group.key} failed: ${(error as Error).message}`);
      }
    }
  };

  get subscriberCount(): number {
    return this.subscriberGroup.size;
  }

  // ---- ingest: bus → contiguous sequence ----------------------------------

  onEvents(events: WireEvent[]): void {
    if (this.stopped || events.length === 0) return;
    if (!this.processing && this.backfillTarget <= this.head && events[0]!.seq === this.head + 1 && contiguous(events)) {
      // The common case: the next events, nothing in front of them. No hop through the loop.
      const fresh: HubEvent[] = new Array(events.length);
      for (let i = 0; i < events.length; i++) fresh[i] = toHubEvent(events[i]!);
      this.deliver(fresh);
      return;
    }
    this.pending.push(events);
    this.schedule();
  }

  onResync(): void {
    void this.outbox
      .head()
      .then(({ lastSeq }) => this.requestBackfill(lastSeq))
      .catch((e: Error) => this.logger.warn(`resync head read failed: ${e.message}`));
  }

  /** Catches a lost tail: the newest events were published but never arrived. */
  private async pollHead(): Promise<void> {
    if (this.stopped) return;
    try {
      const { lastSeq, prunedThrough } = await this.outbox.head();
      this.prunedThrough = prunedThrough;
      if (lastSeq > this.head) {
        // Give pub/sub a moment: the event is usually already on its way.
        setTimeout(() => {
          if (lastSeq > this.head) this.requestBackfill(lastSeq);
        }, LOST_TAIL_GRACE_MS).unref();
      }
    } catch (e) {
      this.logger.warn(`head poll failed: ${(e as Error).message}`);
    }
  }

  requestBackfill(upTo: number): void {
    if (upTo <= this.backfillTarget && upTo <= this.head) return;
    this.backfillTarget = Math.max(this.backfillTarget, upTo);
    this.schedule();
  }

  private schedule(): void {
    if (this.processing || this.stopped) return;
    this.processing = true;
    setImmediate(() => void this.process());
  }

  private async process(): Promise<void> {
    /** Newest seq taken off `pending` by this run: if the run fails, it is back-filled later, not dropped. */
    let taken = 0;
    try {
      while (!this.stopped && (this.pending.length > 0 || this.backfillTarget > this.head)) {
        const batches = this.pending;
        this.pending = [];
        for (const batch of batches) if (batch.length > 0) taken = Math.max(taken, batch[batch.length - 1]!.seq);
        let fresh: HubEvent[] = [];
        let expected = this.head + 1;
        for (const batch of batches) {
          for (const event of batch) {
            if (event.seq < expected) continue; // duplicate (already delivered or back-filled)
            if (event.seq > expected) {
              // A jump: deliver what we have, back-fill the gap, then go on.
              this.deliver(fresh);
              fresh = [];
              await this.backfill(event.seq - 1);
              expected = this.head + 1;
              if (event.seq < expected) continue;
            }
            fresh.push(toHubEvent(event));
            expected = event.seq + 1;
          }
        }
        this.deliver(fresh);
        if (this.backfillTarget > this.head) await this.backfill(this.backfillTarget);
      }
    } catch (error) {
      // The outbox is unreachable: keep the target (including the batch this
      // run was processing), drop bus copies (they are re-read from the
      // outbox) and try again shortly.
      this.logger.warn(`back-fill failed (${(error as Error).message}); retrying`);
      this.backfillTarget = Math.max(this.backfillTarget, taken);
      for (const batch of this.pending) for (const e of batch) this.backfillTarget = Math.max(this.backfillTarget, e.seq);
      this.pending = [];
      setTimeout(() => {
        this.processing = false;
        this.schedule();
      }, 250).unref();
      return;
    }
    this.processing = false;
    if (this.pending.length > 0 || this.backfillTarget > this.head) this.schedule();
  }

  private async backfill(upTo: number): Promise<void> {
    this.stats.backfills++;
    while (this.head < upTo && !this.stopped) {
      const page = await this.outbox.readRange(this.head, upTo, this.config.stream.replayPageSize);
      if (page.length === 0 || page[0]!.seq !== this.head + 1) {
        const { prunedThrough } = await this.outbox.head();
        this.prunedThrough = prunedThrough;
        if (prunedThrough > this.head) {
          // This replica fell behind retention: its subscribers must resume (and be reset).
          this.logger.warn(`fell behind retention (head ${this.head} < pruned ${prunedThrough}); dropping subscribers`);
          for (const sub of [...this.subscriberGroup.keys()]) sub.close('replica fell behind retention');
          this.head = prunedThrough;
          continue;
        }
        if (page.length === 0) throw new Error(`outbox has no events after ${this.head} up to ${upTo}`);
      }
      const events = fromOutbox(page);
      this.stats.backfilledEvents += events.length;
      this.deliver(events);
    }
  }

  /** Takes events into the sequence (head, window) and has them written to subscribers: now if idle, else at the next flush. */
  private deliver(events: HubEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) this.window.push(event);
    this.head = events[events.length - 1]!.seq;
    this.stats.delivered += events.length;
    if (this.groups.size === 0) return;
    this.outgoing = this.outgoing.length === 0 ? events : this.outgoing.concat(events);
    if (this.flushQueued) return;
    const wait = this.lastFlushEnd + Math.min(this.lastFlushMs, MAX_COALESCE_MS) - performance.now();
    if (wait <= 0) {
      this.flush();
    } else {
      this.flushQueued = true;
      this.flushTimer = setTimeout(this.flushLater, wait);
    }
  }

  private readonly flushLater = (): void => {
    this.flushQueued = false;
    this.flushTimer = undefined;
    this.flush();
  };

  /** One write per subscriber for everything delivered since the last flush. */
  private flush(): void {
    const events = this.outgoing;
    if (events.length === 0 || this.stopped) return;
    this.outgoing = [];
    const start = performance.now();
    for (const group of this.groups.values()) {
      if (group.members.size === 0) continue;
      try {
        group.deliver(events);
      } catch (error) {
        this.logger.error(`fan-out to ${group.key} failed: ${(error as Error).message}`);
      }
    }
    this.stats.flushes++;
    this.lastFlushEnd = performance.now();
    this.lastFlushMs = this.lastFlushEnd - start;
  }

  // ---- subscribers: replay, then live --------------------------------------

  /**
   * Replays `seq > cursor` (from the window, else from the outbox with shared
   * queries), then joins the live group in the same tick as it sees itself
   * caught up, so nothing falls between replay and live. Without a cursor,
   * follows from the current head. A cursor older than retention, or newer
   * than anything committed, gets `reset` with the cursor to follow from.
   */
  async follow<P>(sub: Subscriber<P>, codec: Codec<P>, cursor: number | undefined): Promise<void> {
    await this.started;
    if (cursor === undefined) {
      sub.cursor = this.head;
      this.join(sub, codec, true);
      return;
    }
    /** The seq the client last saw an id for (the last event written, or a reset). */
    let told = cursor;
    sub.cursor = cursor;
    if (cursor < this.prunedThrough || cursor > this.head) {
      const { lastSeq, prunedThrough } = await this.outbox.head();
      this.prunedThrough = prunedThrough;
      if (cursor < prunedThrough) told = this.resetToHead(sub, 'cursor is older than the retention window');
      else if (cursor > lastSeq) told = this.resetToHead(sub, 'cursor is ahead of the stream');
    }
    while (!sub.closed && !this.stopped) {
      if (sub.cursor >= this.head) {
        this.join(sub, codec, told !== sub.cursor);
        return;
      }
      let events = this.window.after(sub.cursor, this.config.stream.replayPageSize);
      if (events) this.stats.windowReplays++;
      else events = await this.readShared(sub.cursor);
      if (events.length === 0 || events[0]!.seq !== sub.cursor + 1) {
        // The outbox no longer holds cursor+1: pruned (maybe under our feet).
        told = this.resetToHead(sub, 'cursor is older than the retention window');
        continue;
      }
      const matching = sub.filter.all ? events : events.filter((e) => sub.filter.matches(e.type));
      if (matching.length > 0) {
        await sub.writeReplay(matching);
        told = matching[matching.length - 1]!.seq;
      }
      sub.cursor = Math.max(sub.cursor, events[events.length - 1]!.seq);
    }
  }

  /** The subscriber must refetch state; it follows on from this replica's head. */
  private resetToHead(sub: Subscriber<any>, reason: string): number {
    this.stats.resets++;
    sub.cursor = this.head;
    sub.reset(this.head, reason);
    return this.head;
  }

  /** Concurrent replays starting at the same cursor share one outbox query. */
  private readShared(after: number): Promise<HubEvent[]> {
    let read = this.inflightReads.get(after);
    if (!read) {
      this.stats.replayQueries++;
      read = this.outbox
        .readRange(after, NO_LIMIT, this.config.stream.replayPageSize)
        .then(fromOutbox)
        .finally(() => this.inflightReads.delete(after));
      this.inflightReads.set(after, read);
    }
    return read;
  }

  /**
   * Live from here on. With `tell`, the client learns its cursor now (it joined
   * without one, or its last event seen is older than the cursor), so a
   * connection that drops before its next matching event resumes from here.
   */
  private join<P>(sub: Subscriber<P>, codec: Codec<P>, tell: boolean): void {
    if (sub.closed) return;
    const key = `${codec.transport}|${sub.filter.key}`;
    let group = this.groups.get(key);
    if (!group) {
      group = new SubscriberGroup<P>(key, sub.filter, codec);
      this.groups.set(key, group);
    }
    group.members.add(sub);
    this.subscriberGroup.set(sub, group);
    if (tell) sub.write(codec.cursor(sub.cursor));
  }

  leave(sub: Subscriber<any>): void {
    const group = this.subscriberGroup.get(sub);
    if (!group) return;
    group.members.delete(sub);
    this.subscriberGroup.delete(sub);
    if (group.members.size === 0) this.groups.delete(group.key);
  }

  beforeApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearInterval(this.cursorTimer);
    clearTimeout(this.flushTimer);
  }
}

/** Events read from the outbox, in the same form as those from the bus. */
function fromOutbox(events: ChangeEvent[]): HubEvent[] {
  return events.map((e) => toHubEvent(toWire(e)));
}

function contiguous(events: WireEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i]!.seq !== events[i - 1]!.seq + 1) return false;
  return true;
}
