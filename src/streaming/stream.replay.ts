import { NO_LIMIT } from '../database/sql.js';
import type { OutboxRepository } from '../outbox/outbox.repository.js';
import { fromOutbox, type HubEvent } from './event-window.js';
import type { StreamFanout } from './stream.fanout.js';
import type { StreamSequence } from './stream.sequence.js';
import type { Codec, Subscriber } from './subscriber.js';

export interface ReplayStats {
  /** Outbox reads for replays (concurrent replays from one cursor share one). */
  readonly replayQueries: number;
  /** Replay pages served from the window, without a query. */
  readonly windowReplays: number;
  /** Subscribers told to refetch state (cursor older than retention, or ahead of the stream). */
  readonly resets: number;
}

/**
 * Replay: brings a subscriber from its cursor up to the sequence's head, then
 * hands it to the fan-out. Pages come from the sequence's window when the
 * cursor is inside it, else from the outbox, where concurrent replays starting
 * at the same cursor share one query (a reconnect storm after a replica dies
 * costs one read per distinct cursor, not one per client). A cursor older than
 * retention, or newer than anything committed, gets `reset` with the cursor to
 * follow from.
 *
 * The hand-over has no gap and no duplicate: the subscriber joins its live
 * group in the same tick as it sees itself caught up (`cursor >= head`), so no
 * live batch can fall between replay and live, and live delivery skips
 * anything `<= cursor`.
 */
export class StreamReplay {
  private readonly inflightReads = new Map<number, Promise<HubEvent[]>>();
  private readonly counters = { replayQueries: 0, windowReplays: 0, resets: 0 };
  private stopped = false;

  constructor(
    private readonly sequence: StreamSequence,
    private readonly fanout: StreamFanout,
    private readonly outbox: OutboxRepository,
    /** Events per page (STREAM_REPLAY_PAGE_SIZE). */
    private readonly pageSize: number,
  ) {}

  get stats(): ReplayStats {
    return { ...this.counters };
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Replays `seq > cursor`, then joins the live group. Without a cursor,
   * follows from the current head.
   */
  async follow<P>(sub: Subscriber<P>, codec: Codec<P>, cursor: number | undefined): Promise<void> {
    if (cursor === undefined) {
      sub.cursor = this.sequence.head;
      this.fanout.join(sub, codec, true);
      return;
    }
    /** The seq the client last saw an id for (the last event written, or a reset). */
    let told = cursor;
    sub.cursor = cursor;
    if (cursor < this.sequence.prunedThrough || cursor > this.sequence.head) {
      const { lastSeq, prunedThrough } = await this.sequence.readHead();
      if (cursor < prunedThrough) told = this.resetToHead(sub, 'cursor is older than the retention window');
      else if (cursor > lastSeq) told = this.resetToHead(sub, 'cursor is ahead of the stream');
    }
    while (!sub.closed && !this.stopped) {
      if (sub.cursor >= this.sequence.head) {
        this.fanout.join(sub, codec, told !== sub.cursor);
        return;
      }
      let events = this.sequence.recent(sub.cursor, this.pageSize);
      if (events) this.counters.windowReplays++;
      else events = await this.readShared(sub.cursor);
      if (events.length === 0 || events[0].seq !== sub.cursor + 1) {
        // The outbox no longer holds cursor+1: pruned (maybe under our feet).
        told = this.resetToHead(sub, 'cursor is older than the retention window');
        continue;
      }
      const matching = sub.filter.all ? events : events.filter((e) => sub.filter.matches(e.type));
      if (matching.length > 0) {
        await sub.writeReplay(matching);
        told = matching[matching.length - 1].seq;
      }
      sub.cursor = Math.max(sub.cursor, events[events.length - 1].seq);
    }
  }

  /** The subscriber must refetch state; it follows on from this replica's head. */
  private resetToHead(sub: Subscriber<any>, reason: string): number {
    const head = this.sequence.head;
    this.counters.resets++;
    sub.cursor = head;
    sub.reset(head, reason);
    return head;
  }

  /** Concurrent replays starting at the same cursor share one outbox query. */
  private readShared(after: number): Promise<HubEvent[]> {
    let read = this.inflightReads.get(after);
    if (!read) {
      this.counters.replayQueries++;
      read = this.outbox
        .readRange(after, NO_LIMIT, this.pageSize)
        .then(fromOutbox)
        .finally(() => this.inflightReads.delete(after));
      this.inflightReads.set(after, read);
    }
    return read;
  }
}
