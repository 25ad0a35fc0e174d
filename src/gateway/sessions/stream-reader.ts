import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { type StoredEvent, toEvents } from './session-store.js';

/** Someone on this replica following a session's events live. */
export interface LiveListener {
  /** Events in number order, newer than anything given before. */
  deliver(events: StoredEvent[]): void;
}

/** How a replica's session streams get the events appended to their sessions, as they are appended. */
export interface SessionFeed {
  /** Follows the session from event `after` on; the listener gets every event after it (plus what others of the session get). */
  join(sessionId: string, after: number, listener: LiveListener): void;
  leave(sessionId: string, listener: LiveListener): void;
  /** An event this replica has just stored, numbered: a feed that learns of appends later may give it at once. */
  offer(sessionId: string, event: StoredEvent): void;
  stop(): void;
}

interface Followed {
  /** Last event number read from Redis for this key. */
  last: number;
  readonly listeners: Set<LiveListener>;
}

const BLOCK_MS = 5000;
const BATCH = 1000;

/**
 * The replica's one live reader of session event streams: a dedicated Redis
 * connection blocked in `XREAD` on every session stream some client follows
 * here, so an event appended by any replica (a response computed on replica
 * B) reaches the SSE stream held on this one (replica A) as soon as it is
 * written. When the set of streams changes the blocked read is interrupted
 * (`CLIENT UNBLOCK`) and issued again with the new set. One connection per
 * replica, whatever the number of sessions.
 */
export class SessionStreamReader implements SessionFeed {
  private readonly logger = new Logger('GatewayStreamReader');
  private readonly followed = new Map<string, Followed>();
  private clientId?: number;
  private running = false;
  private stopped = false;
  private blocked = false;
  private wakeup?: () => void;

  constructor(
    private readonly reader: Redis,
    private readonly commands: Redis,
    /** The Redis key of a session's events. */
    private readonly keyOf: (sessionId: string) => string,
  ) {}

  join(sessionId: string, after: number, listener: LiveListener): void {
    const key = this.keyOf(sessionId);
    let f = this.followed.get(key);
    // Reads of a key already followed may be ahead of this listener: it catches up by its own replay.
    if (!f) {
      f = { last: after, listeners: new Set() };
      this.followed.set(key, f);
    }
    f.listeners.add(listener);
    this.changed();
  }

  leave(sessionId: string, listener: LiveListener): void {
    const key = this.keyOf(sessionId);
    const f = this.followed.get(key);
    if (!f) return;
    f.listeners.delete(listener);
    if (f.listeners.size === 0) {
      this.followed.delete(key);
      this.changed();
    }
  }

  /**
   * An event this replica has just stored, numbered by the append's reply: given to the key's
   * listeners at once when it is the next one after what they were given, rather than when the
   * blocked read wakes (which then skips it as already read). After a gap (an event of another
   * replica not read yet) it is left to the read, so the order is never broken.
   */
  offer(sessionId: string, event: StoredEvent): void {
    const f = this.followed.get(this.keyOf(sessionId));
    if (!f || event.seq !== f.last + 1) return;
    f.last = event.seq;
    this.dispatch(f, [event]);
  }

  get size(): number {
    return this.followed.size;
  }

  private changed(): void {
    if (!this.running) {
      this.running = true;
      void this.loop();
      return;
    }
    if (this.wakeup) {
      const w = this.wakeup;
      this.wakeup = undefined;
      w();
    }
    if (this.blocked) void this.unblock();
  }

  private async unblock(): Promise<void> {
    try {
      this.clientId ??= Number(await this.reader.client('ID'));
      if (this.blocked) await this.commands.client('UNBLOCK', this.clientId);
    } catch {
      // the read ends by its own timeout
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (this.followed.size === 0) {
        await new Promise<void>((resolve) => (this.wakeup = resolve));
        continue;
      }
      const keys = [...this.followed.keys()];
      const ids = keys.map((k) => `0-${this.followed.get(k)!.last}`);
      let result: [string, [string, string[]][]][] | null;
      try {
        this.blocked = true;
        result = await this.reader.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids);
      } catch (error) {
        if (this.stopped) return;
        this.logger.warn(`reading session streams failed (${(error as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      } finally {
        this.blocked = false;
      }
      for (const [key, entries] of result ?? []) {
        const f = this.followed.get(key);
        if (!f || entries.length === 0) continue;
        const events = toEvents(entries).filter((e) => e.seq > f.last);
        if (events.length === 0) continue;
        f.last = events[events.length - 1].seq;
        this.dispatch(f, events);
      }
    }
  }

  private dispatch(f: Followed, events: StoredEvent[]): void {
    for (const l of [...f.listeners]) {
      try {
        l.deliver(events);
      } catch (error) {
        this.logger.warn(`a session stream listener failed: ${(error as Error).message}`);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.wakeup?.();
    this.reader.disconnect();
  }
}
