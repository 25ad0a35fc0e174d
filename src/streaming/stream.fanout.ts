import { Logger } from '@nestjs/common';
import type { EventFilter } from './event-filter.js';
import type { HubEvent } from './event-window.js';
import type { Codec, Subscriber } from './subscriber.js';

/** Upper bound of the wait a flush may add under load (ms). */
const MAX_COALESCE_MS = 10;
/**
 * How often filtered subscribers whose cursor moved past events they did not
 * get are told their position (coalesced: one frame per group per period).
 */
const CURSOR_ADVERTISE_MS = 1000;

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

  /** Returns how many events were written, summed over subscribers (metrics). */
  deliver(events: HubEvent[]): number {
    let written = 0;
    const first = events[0].seq;
    const last = events[events.length - 1].seq;
    const matching = this.filter.all ? events : events.filter((e) => this.filter.matches(e.type));
    let shared: P | undefined;
    for (const sub of this.members) {
      if (sub.cursor >= last) continue;
      if (matching.length > 0) {
        if (sub.cursor < first) {
          shared ??= this.codec.events(matching);
          sub.write(shared);
          written += matching.length;
        } else {
          const rest = matching.filter((e) => e.seq > sub.cursor);
          if (rest.length > 0) {
            sub.write(this.codec.events(rest));
            written += rest.length;
          }
        }
      }
      sub.cursor = last;
    }
    this.unadvertised = matching.length > 0 && matching[matching.length - 1].seq === last ? undefined : last;
    return written;
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

/**
 * Fan-out: the live subscribers of one replica, in groups of the same
 * transport and filter, and the writes to them. Each batch the sequence
 * delivers is encoded once per group and the same payload is written to every
 * member; a member's cursor moves past events its filter skips, and those
 * cursors are told in one coalesced frame per group (CURSOR_ADVERTISE_MS).
 *
 * Writes are coalesced under load, never when idle. Per subscriber a flush
 * costs one socket write whatever the number of events in it, and that write
 * (a syscall, mostly kernel time) is the whole cost of fan-out. An event that
 * finds the fan-out idle is written at once, synchronously from the bus
 * callback. Events arriving while a flush happened less than its own duration
 * ago wait for the next flush, at most that duration (capped at
 * MAX_COALESCE_MS): a fan-out that costs d ms per flush leaves the event loop
 * min(d, 10 ms) of other work between flushes, and a subscriber waits at most
 * about what the last one of a flush waits anyway. So a replica with a handful
 * of subscribers, or events tens of ms apart, sees no added latency, and a
 * busy one writes several events per syscall.
 */
export class StreamFanout {
  private readonly logger = new Logger('StreamFanout');
  private readonly groups = new Map<string, SubscriberGroup<any>>();
  private readonly subscriberGroup = new Map<Subscriber<any>, SubscriberGroup<any>>();
  /** Delivered (in the sequence and its window) but not yet written to subscribers. */
  private outgoing: HubEvent[] = [];
  private flushTimer?: NodeJS.Timeout;
  private flushQueued = false;
  private lastFlushEnd = -Infinity;
  private lastFlushMs = 0;
  private cursorTimer?: NodeJS.Timeout;
  private stopped = false;
  private flushes = 0;
  /** Events written to subscribers, summed over subscribers (metrics). */
  deliveries = 0;
  /** Called after each flush with its events (metrics: commit→delivery latency). */
  onFlushed?: (events: HubEvent[]) => void;

  get subscriberCount(): number {
    return this.subscriberGroup.size;
  }

  /** Flushes so far (each is one write per subscriber that had something to get). */
  get flushCount(): number {
    return this.flushes;
  }

  start(): void {
    this.cursorTimer = setInterval(this.advertiseCursors, CURSOR_ADVERTISE_MS);
    this.cursorTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.cursorTimer);
    clearTimeout(this.flushTimer);
  }

  /**
   * Live from here on. With `tell`, the client learns its cursor now (it joined
   * without one, or its last event seen is older than the cursor), so a
   * connection that drops before its next matching event resumes from here.
   */
  join<P>(sub: Subscriber<P>, codec: Codec<P>, tell: boolean): void {
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

  /** Asks every subscriber to go (they leave as their transports close). */
  closeAll(reason: string): void {
    for (const sub of [...this.subscriberGroup.keys()]) sub.close(reason);
  }

  /** Has events (contiguous, newer than anything published before) written to subscribers: now if idle, else at the next flush. */
  publish(events: HubEvent[]): void {
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

  /** One write per subscriber for everything published since the last flush. */
  private flush(): void {
    const events = this.outgoing;
    if (events.length === 0 || this.stopped) return;
    this.outgoing = [];
    const start = performance.now();
    for (const group of this.groups.values()) {
      if (group.members.size === 0) continue;
      try {
        this.deliveries += group.deliver(events);
      } catch (error) {
        this.logger.error(`fan-out to ${group.key} failed: ${(error as Error).message}`);
      }
    }
    this.flushes++;
    this.lastFlushEnd = performance.now();
    this.lastFlushMs = this.lastFlushEnd - start;
    this.onFlushed?.(events);
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
}
