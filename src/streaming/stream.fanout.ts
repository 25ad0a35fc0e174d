import { Logger } from '@nestjs/common';
import type { EventFilter } from './event-filter.js';
import type { HubEvent } from './event-window.js';
import type { Codec, Subscriber } from './subscriber.js';

/** Upper bound of the wait a round may add under load (ms). */
const MAX_COALESCE_MS = 10;
/** A round writes for at most this long (ms) before it yields to the event loop and goes on in the next slice. */
const SLICE_MS = 5;
/** Subscribers written between two looks at the clock. */
export const CLOCK_EVERY = 16;
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
  /** The pending list the caches below were made for, its events that pass the filter, and payloads by first index. */
  private cachedFor?: readonly HubEvent[];
  private matching: readonly HubEvent[] = [];
  private readonly payloads = new Map<number, P>();

  constructor(
    readonly key: string,
    private readonly filter: EventFilter,
    readonly codec: Codec<P>,
  ) {}

  /**
   * Writes to `sub`, in one write, every event of `pending` (contiguous, in seq
   * order) that is newer than its cursor and passes the filter, and moves its
   * cursor to the last of `pending`. The payload is encoded once per group and
   * pending list for all members at the same position. Returns the events
   * written (metrics).
   */
  catchUp(sub: Subscriber<P>, pending: readonly HubEvent[]): number {
    const last = pending[pending.length - 1].seq;
    if (sub.cursor >= last) return 0;
    if (this.cachedFor !== pending) {
      this.cachedFor = pending;
      this.matching = this.filter.all ? pending : pending.filter((e) => this.filter.matches(e.type));
      this.payloads.clear();
    }
    const matching = this.matching;
    let from = 0;
    while (from < matching.length && matching[from].seq <= sub.cursor) from++;
    let written = 0;
    if (from < matching.length) {
      let payload = this.payloads.get(from);
      if (payload === undefined) {
        payload = this.codec.events(matching.slice(from));
        this.payloads.set(from, payload);
      }
      sub.write(payload);
      written = matching.length - from;
    }
    sub.cursor = last;
    if (matching.length === 0 || matching[matching.length - 1].seq !== last) this.unadvertised = last;
    return written;
  }

  /** Drops the caches of a finished round. */
  forget(): void {
    this.cachedFor = undefined;
    this.matching = [];
    this.payloads.clear();
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

/** Where a round is: the groups still to visit, and the members of the current one. */
interface Round {
  readonly groups: Iterator<SubscriberGroup<any>>;
  group?: SubscriberGroup<any>;
  members?: Iterator<Subscriber<any>>;
  /** The last seq pending when the round began: every subscriber has it once the round ends. */
  readonly through: number;
  readonly start: number;
}

/**
 * Fan-out: the live subscribers of one replica, in groups of the same
 * transport and filter, and the writes to them. Events are encoded once per
 * group and the same payload is written to every member at the same position;
 * a member's cursor moves past events its filter skips, and those cursors are
 * told in one coalesced frame per group (CURSOR_ADVERTISE_MS).
 *
 * Writes go out in rounds: one pass over every subscriber, each getting in one
 * write everything pending that is newer than its own cursor. Per subscriber a
 * round costs one socket write whatever the number of events in it, and that
 * write (a syscall, mostly kernel time) is the whole cost of fan-out. A round
 * is sliced: after SLICE_MS of writing it yields to the event loop
 * (setImmediate) and goes on where it was, so the bus, REST requests and
 * timers run between slices, and an event that arrives meanwhile joins the
 * round under way for the subscribers it has not reached yet (the others get
 * it in the next round): an event waits at most one round, not the rest of a
 * flush and then the next one. Per subscriber, events stay in seq order, each
 * once (everything `<= cursor` is skipped).
 *
 * Rounds are coalesced under load, never when idle. An event that finds the
 * fan-out idle starts a round at once, its first slice synchronously from the
 * bus callback. Events still pending when a round ends start the next one
 * after a pause of the round's own duration, capped at MAX_COALESCE_MS, so a
 * busy replica writes several events per syscall, and a replica with a
 * handful of subscribers, or events tens of ms apart, sees no added latency.
 */
export class StreamFanout {
  private readonly logger = new Logger('StreamFanout');
  private readonly groups = new Map<string, SubscriberGroup<any>>();
  private readonly subscriberGroup = new Map<Subscriber<any>, SubscriberGroup<any>>();
  /**
   * Events published and not yet written to every subscriber (contiguous, in
   * seq order). A new list on every publish, so a group's caches can key on it.
   */
  private pending: readonly HubEvent[] = [];
  private round?: Round;
  private nextSlice?: NodeJS.Immediate;
  private roundTimer?: NodeJS.Timeout;
  private lastRoundEnd = -Infinity;
  private lastRoundMs = 0;
  private cursorTimer?: NodeJS.Timeout;
  private stopped = false;
  private rounds = 0;
  private slices = 0;
  /** Events written to subscribers, summed over subscribers (metrics). */
  deliveries = 0;
  /** Called after each round with the events every subscriber now has (metrics: commit→delivery latency). */
  onFlushed?: (events: HubEvent[]) => void;

  get subscriberCount(): number {
    return this.subscriberGroup.size;
  }

  /** Rounds so far (each is one write per subscriber that had something to get). */
  get flushCount(): number {
    return this.rounds;
  }

  /** Slices so far (a round over a few subscribers is one slice; a long one yields between its slices). */
  get sliceCount(): number {
    return this.slices;
  }

  /** Whether a round is under way (in one of its slices, or between two). */
  get writing(): boolean {
    return this.round !== undefined;
  }

  start(): void {
    this.cursorTimer = setInterval(this.advertiseCursors, CURSOR_ADVERTISE_MS);
    this.cursorTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.round = undefined;
    clearInterval(this.cursorTimer);
    clearTimeout(this.roundTimer);
    if (this.nextSlice) clearImmediate(this.nextSlice);
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

  /**
   * Has events (contiguous, newer than anything published before) written to
   * subscribers: a round now if idle; else they join the round under way (for
   * the subscribers it has not reached) or the next one.
   */
  publish(events: HubEvent[]): void {
    if (this.groups.size === 0 && !this.round) return;
    this.pending = this.pending.length === 0 ? events : this.pending.concat(events);
    if (this.round || this.roundTimer) return;
    this.startRound();
  }

  /** Starts a round now, or after the coalescing pause when the last one ended recently. */
  private startRound(): void {
    const wait = this.lastRoundEnd + Math.min(this.lastRoundMs, MAX_COALESCE_MS) - performance.now();
    if (wait > 0) {
      this.roundTimer = setTimeout(this.roundLater, wait);
      return;
    }
    if (this.stopped || this.pending.length === 0) return;
    this.round = { groups: this.groups.values(), through: this.pending[this.pending.length - 1].seq, start: performance.now() };
    this.slice();
  }

  private readonly roundLater = (): void => {
    this.roundTimer = undefined;
    this.startRound();
  };

  private readonly sliceLater = (): void => {
    this.nextSlice = undefined;
    this.slice();
  };

  /** Writes to subscribers for up to SLICE_MS, then yields to the event loop, or ends the round. */
  private slice(): void {
    const round = this.round;
    if (!round || this.stopped) return;
    this.slices++;
    const until = performance.now() + SLICE_MS;
    let n = 0;
    for (;;) {
      if (!round.group || !round.members) {
        const next = round.groups.next();
        if (next.done) break;
        round.group = next.value;
        round.members = next.value.members.values();
      }
      const member = round.members.next();
      if (member.done) {
        round.members = undefined;
        continue;
      }
      try {
        this.deliveries += round.group.catchUp(member.value, this.pending);
      } catch (error) {
        this.logger.error(`fan-out to ${round.group.key} failed: ${(error as Error).message}`);
      }
      if (++n % CLOCK_EVERY === 0 && performance.now() >= until) {
        this.nextSlice = setImmediate(this.sliceLater);
        return;
      }
    }
    this.endRound(round);
  }

  /** Every subscriber has everything up to `round.through`: those events leave `pending`; newer ones start the next round. */
  private endRound(round: Round): void {
    this.round = undefined;
    this.rounds++;
    this.lastRoundEnd = performance.now();
    this.lastRoundMs = this.lastRoundEnd - round.start;
    const done = this.pending.filter((e) => e.seq <= round.through);
    this.pending = done.length === this.pending.length ? [] : this.pending.filter((e) => e.seq > round.through);
    for (const group of this.groups.values()) group.forget();
    this.onFlushed?.(done);
    if (this.pending.length > 0) this.startRound();
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
