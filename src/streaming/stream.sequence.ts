import { Logger } from '@nestjs/common';
import type { BusListener, EventBus } from '../bus/event-bus.js';
import type { WireEvent } from '../bus/wire-event.js';
import type { OutboxHead, OutboxRepository } from '../outbox/outbox.repository.js';
import { EventWindow, fromOutbox, type HubEvent, toHubEvent } from './event-window.js';

/** Give pub/sub this long before a head the poll saw ahead of us counts as a lost tail. */
const LOST_TAIL_GRACE_MS = 100;
/** Wait before a failed back-fill is tried again. */
const BACKFILL_RETRY_MS = 250;

/** Where the contiguous sequence goes: the replica's fan-out. */
export interface SequenceOutput {
  /** Events taken into the sequence, in seq order, contiguous with everything before. */
  publish(events: HubEvent[]): void;
  /** The sequence jumped (this replica fell behind retention): whoever follows it must resume and be reset. */
  closeAll(reason: string): void;
}

export interface SequenceSettings {
  /** Recent events kept in memory for resumes (STREAM_WINDOW_SIZE). */
  readonly windowSize: number;
  /** How often the outbox head is read to catch a lost tail (STREAM_HEAD_POLL_MS). */
  readonly headPollMs: number;
  /** Events per outbox read when back-filling (STREAM_REPLAY_PAGE_SIZE). */
  readonly replayPageSize: number;
}

export interface SequenceStats {
  /** Events taken into the sequence. */
  readonly delivered: number;
  /** Back-fill runs (a jump, a bus reconnect, a lost tail). */
  readonly backfills: number;
  /** Events those runs read from the outbox. */
  readonly backfilledEvents: number;
}

function contiguous(events: WireEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i].seq !== events[i - 1].seq + 1) return false;
  return true;
}

/**
 * Contiguity: the sequence of events this replica delivers is exactly
 * 1, 2, 3, … with nothing missing, repeated or reordered, whatever pub/sub
 * does. It holds the replica's only bus subscription and `head`, the last seq
 * delivered. A batch from the bus that continues at head+1 goes straight out;
 * anything else is queued: duplicates (`seq <= head`) are dropped, and a jump
 * (`seq > head+1`) is first back-filled from the outbox. A bus reconnect
 * (anything published meanwhile is lost to pub/sub) and a head poll that finds
 * the outbox ahead for longer than LOST_TAIL_GRACE_MS (a lost tail) back-fill
 * too. Back-fill failures keep their target and are retried.
 *
 * It also keeps the window of recent events resumes are served from.
 */
export class StreamSequence implements BusListener {
  private readonly logger = new Logger('StreamSequence');
  private readonly window: EventWindow;
  private pending: WireEvent[][] = [];
  private processing = false;
  private backfillTarget = 0;
  private pollTimer?: NodeJS.Timeout;
  private stopped = false;
  private lastSeq = 0;
  private pruned = 0;
  private readonly counters = { delivered: 0, backfills: 0, backfilledEvents: 0 };

  constructor(
    private readonly bus: EventBus,
    private readonly outbox: OutboxRepository,
    private readonly settings: SequenceSettings,
    private readonly output: SequenceOutput,
  ) {
    this.window = new EventWindow(settings.windowSize);
  }

  /** Last seq delivered on this replica; everything up to it was delivered in order. */
  get head(): number {
    return this.lastSeq;
  }

  /** Events with seq <= prunedThrough were removed by retention (as last read from the outbox). */
  get prunedThrough(): number {
    return this.pruned;
  }

  get stats(): SequenceStats {
    return { ...this.counters };
  }

  /** Events with seq > after from the window, at most `limit`; undefined when `after` is older than the window. */
  recent(after: number, limit: number): HubEvent[] | undefined {
    return this.window.after(after, limit);
  }

  /** Reads the outbox head (noting how far retention pruned). */
  async readHead(): Promise<OutboxHead> {
    const head = await this.outbox.head();
    this.pruned = head.prunedThrough;
    return head;
  }

  /** Warms the window from the outbox (resumes after a restart are served from memory), then subscribes. */
  async start(): Promise<void> {
    const { lastSeq } = await this.readHead();
    const latest = this.settings.windowSize > 0 ? await this.outbox.readLatest(this.settings.windowSize) : [];
    for (const event of fromOutbox(latest)) this.window.push(event);
    this.lastSeq = latest.length > 0 ? latest[latest.length - 1].seq : lastSeq;
    if (lastSeq > this.lastSeq) this.requestBackfill(lastSeq);
    this.bus.subscribe(this);
    this.pollTimer = setInterval(() => void this.pollHead(), this.settings.headPollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.pollTimer);
  }

  // ---- from the bus ---------------------------------------------------------

  onEvents(events: WireEvent[]): void {
    if (this.stopped || events.length === 0) return;
    if (!this.processing && this.backfillTarget <= this.lastSeq && events[0].seq === this.lastSeq + 1 && contiguous(events)) {
      // The common case: the next events, nothing in front of them. No hop through the loop.
      const fresh = new Array<HubEvent>(events.length);
      for (let i = 0; i < events.length; i++) fresh[i] = toHubEvent(events[i]);
      this.deliver(fresh);
      return;
    }
    this.pending.push(events);
    this.schedule();
  }

  onResync(): void {
    void this.readHead()
      .then(({ lastSeq }) => this.requestBackfill(lastSeq))
      .catch((e: Error) => this.logger.warn(`resync head read failed: ${e.message}`));
  }

  // ---- from the outbox ------------------------------------------------------

  /** Catches a lost tail: the newest events were published but never arrived. */
  private async pollHead(): Promise<void> {
    if (this.stopped) return;
    try {
      const { lastSeq } = await this.readHead();
      if (lastSeq > this.lastSeq) {
        // Give pub/sub a moment: the event is usually already on its way.
        setTimeout(() => {
          if (lastSeq > this.lastSeq) this.requestBackfill(lastSeq);
        }, LOST_TAIL_GRACE_MS).unref();
      }
    } catch (e) {
      this.logger.warn(`head poll failed: ${(e as Error).message}`);
    }
  }

  private requestBackfill(upTo: number): void {
    if (upTo <= this.backfillTarget && upTo <= this.lastSeq) return;
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
      while (!this.stopped && (this.pending.length > 0 || this.backfillTarget > this.lastSeq)) {
        const batches = this.pending;
        this.pending = [];
        for (const batch of batches) if (batch.length > 0) taken = Math.max(taken, batch[batch.length - 1].seq);
        let fresh: HubEvent[] = [];
        let expected = this.lastSeq + 1;
        for (const batch of batches) {
          for (const event of batch) {
            if (event.seq < expected) continue; // duplicate (already delivered or back-filled)
            if (event.seq > expected) {
              // A jump: deliver what we have, back-fill the gap, then go on.
              this.deliver(fresh);
              fresh = [];
              await this.backfill(event.seq - 1);
              expected = this.lastSeq + 1;
              if (event.seq < expected) continue;
            }
            fresh.push(toHubEvent(event));
            expected = event.seq + 1;
          }
        }
        this.deliver(fresh);
        if (this.backfillTarget > this.lastSeq) await this.backfill(this.backfillTarget);
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
      }, BACKFILL_RETRY_MS).unref();
      return;
    }
    this.processing = false;
    if (this.pending.length > 0 || this.backfillTarget > this.lastSeq) this.schedule();
  }

  private async backfill(upTo: number): Promise<void> {
    this.counters.backfills++;
    while (this.lastSeq < upTo && !this.stopped) {
      const page = await this.outbox.readRange(this.lastSeq, upTo, this.settings.replayPageSize);
      if (page.length === 0 || page[0].seq !== this.lastSeq + 1) {
        const { prunedThrough } = await this.readHead();
        if (prunedThrough > this.lastSeq) {
          // This replica fell behind retention: its subscribers must resume (and be reset).
          this.logger.warn(`fell behind retention (head ${this.lastSeq} < pruned ${prunedThrough}); dropping subscribers`);
          this.output.closeAll('replica fell behind retention');
          this.lastSeq = prunedThrough;
          continue;
        }
        if (page.length === 0) throw new Error(`outbox has no events after ${this.lastSeq} up to ${upTo}`);
      }
      const events = fromOutbox(page);
      this.counters.backfilledEvents += events.length;
      this.deliver(events);
    }
  }

  /** Takes events into the sequence (head, window) and hands them to the fan-out. */
  private deliver(events: HubEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) this.window.push(event);
    this.lastSeq = events[events.length - 1].seq;
    this.counters.delivered += events.length;
    this.output.publish(events);
  }
}
