import type { EventFilter } from './event-filter.js';
import type { HubEvent } from './event-window.js';

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

/**
 * How one transport encodes what the hub sends: event batches, and the
 * client's position alone. The hub calls it once per group and batch, never
 * per connection.
 */
export interface Codec<P> {
  /** Subscribers of different transports never share a group. */
  readonly transport: string;
  /** A batch of events, in seq order. */
  events(events: HubEvent[]): P;
  /** The client's cursor when no event carries it (on joining; after filtered-out events). */
  cursor(seq: number): P;
}
