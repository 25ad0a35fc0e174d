import { dropExpired, sweepEvery, unexpired } from '../core/memory-expiry.js';
import type { PendingRequest, SessionLimits, SessionRecord, StoredEvent } from './session-store.js';
import { SessionStore } from './session-store.js';
import type { LiveListener, SessionFeed } from './stream-reader.js';

interface Held {
  readonly owner: string;
  readonly servers: string[];
  readonly deferred: boolean;
  readonly createdAt: number;
  seq: number;
  /** Expires at (ms). */
  until: number;
  /** The latest `maxEvents` events, oldest first. */
  readonly events: StoredEvent[];
  /** Requests awaiting their answer: request id → the client's id and the deadline. */
  readonly pending: Map<string, { id: string | number; deadline: number }>;
  readonly activated: Set<string>;
}

/**
 * Streaming sessions in this process, for one replica without Redis (the
 * default `npm start`): the same records, numbering, caps, pending requests
 * and expiry as RedisSessionStore, and its own live feed (an append is given
 * to the session's streams here as it happens). Sessions do not outlive the
 * process; with several replicas, REDIS_URL is required (see the README).
 * An expired session is dropped, with its events and pending requests, when
 * it is looked up or by a sweep every 30 s (as Redis expires its keys), so
 * one nobody asks for again is freed too; the service then frees what it
 * holds for it (its sweep finds the session gone).
 */
export class MemorySessionStore extends SessionStore implements SessionFeed {
  private readonly sessions = new Map<string, Held>();
  /** Each owner's sessions (the per-client limit counts these, not every session). */
  private readonly owners = new Map<string, Set<string>>();
  private readonly listeners = new Map<string, Set<LiveListener>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(limits: SessionLimits) {
    super(limits);
    this.sweeper = sweepEvery(limits.idleMs, () => this.sweep());
  }

  /** The session unless it is gone or expired (an expired one is dropped). */
  private held(id: string, now = Date.now()): Held | undefined {
    return unexpired(this.sessions, id, now, (sid, s) => this.disown(sid, s.owner));
  }

  private disown(id: string, owner: string): void {
    const owned = this.owners.get(owner);
    owned?.delete(id);
    if (owned?.size === 0) this.owners.delete(owner);
  }

  private record(id: string, s: Held): SessionRecord {
    return { id, owner: s.owner, servers: s.servers, deferred: s.deferred, createdAt: s.createdAt, seq: s.seq };
  }

  async create(id: string, owner: string, servers: string[], deferred: boolean): Promise<boolean> {
    const now = Date.now();
    let owned = 0;
    // The owner's sessions only (an expired one is dropped, not counted, as Redis's CREATE does); the sweep drops the rest.
    for (const sid of this.owners.get(owner) ?? []) if (this.held(sid, now)) owned++;
    if (owned >= this.limits.maxPerOwner) return false;
    let mine = this.owners.get(owner);
    if (!mine) this.owners.set(owner, (mine = new Set()));
    mine.add(id);
    this.sessions.set(id, {
      owner,
      servers: [...servers],
      deferred,
      createdAt: now,
      seq: 0,
      until: now + this.limits.idleMs,
      events: [],
      pending: new Map(),
      activated: new Set(),
    });
    return true;
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const s = this.held(id);
    return s ? this.record(id, s) : undefined;
  }

  async touch(id: string): Promise<boolean> {
    const s = this.held(id);
    if (!s) return false;
    s.until = Date.now() + this.limits.idleMs;
    return true;
  }

  async delete(id: string): Promise<void> {
    const s = this.sessions.get(id);
    this.sessions.delete(id);
    if (s) this.disown(id, s.owner);
  }

  async exists(ids: string[]): Promise<boolean[]> {
    return ids.map((id) => this.held(id) !== undefined);
  }

  async append(id: string, type: string, data: string): Promise<number> {
    const s = this.held(id);
    return s ? this.add(id, s, type, data) : 0;
  }

  async appendMany(id: string, events: readonly { type: string; data: string }[]): Promise<number> {
    const s = this.held(id);
    if (!s) return 0;
    let n = 0;
    for (const e of events) n = this.add(id, s, e.type, e.data);
    return n;
  }

  async request(id: string, owner: string, request: PendingRequest, maxPending: number): Promise<SessionRecord | 'full' | undefined> {
    const s = this.held(id);
    if (!s || s.owner !== owner) return undefined;
    if (s.pending.size >= maxPending) return 'full';
    s.pending.set(request.requestId, { id: request.id, deadline: request.deadline });
    s.until = Date.now() + this.limits.idleMs;
    return this.record(id, s);
  }

  async answer(id: string, requestId: string, type: 'response' | 'error', data: string): Promise<number> {
    const s = this.held(id);
    if (!s || !s.pending.delete(requestId)) return 0;
    return this.add(id, s, type, data);
  }

  async pending(id: string): Promise<PendingRequest[]> {
    const s = this.held(id);
    return s ? [...s.pending].map(([requestId, p]) => ({ requestId, ...p })) : [];
  }

  async page(id: string, after: number, count: number, maxBytes: number): Promise<{ events: StoredEvent[]; more: boolean }> {
    const events = this.held(id)?.events ?? [];
    // Numbers are consecutive from the oldest kept one.
    const from = events.length === 0 ? 0 : Math.max(0, after + 1 - events[0].seq);
    let end = from;
    let size = 0;
    while (end < events.length && end - from < count) {
      const n = events[end].type.length + events[end].data.length;
      if (end > from && size + n > maxBytes) break;
      size += n;
      end++;
    }
    return { events: events.slice(from, end), more: end < events.length };
  }

  async activated(id: string): Promise<string[]> {
    return [...(this.held(id)?.activated ?? [])].sort();
  }

  async activate(id: string, names: string[]): Promise<void> {
    const s = this.held(id);
    if (s) for (const n of names) s.activated.add(n);
  }

  // ---- the live feed ----------------------------------------------------------------

  join(sessionId: string, _after: number, listener: LiveListener): void {
    let set = this.listeners.get(sessionId);
    if (!set) this.listeners.set(sessionId, (set = new Set()));
    set.add(listener);
  }

  leave(sessionId: string, listener: LiveListener): void {
    const set = this.listeners.get(sessionId);
    set?.delete(listener);
    if (set?.size === 0) this.listeners.delete(sessionId);
  }

  /** Appends are given to the streams as they happen: nothing to add. */
  offer(): void {}

  /** Ends the live feed and the sweep (the service's shutdown). */
  stop(): void {
    clearInterval(this.sweeper);
    this.listeners.clear();
  }

  /** @internal Drops the sessions that expired before `now`, with their events and pending requests. */
  sweep(now = Date.now()): void {
    dropExpired(this.sessions, now, (id, s) => this.disown(id, s.owner));
  }

  /** Numbers and keeps an event (the oldest beyond `maxEvents` evicted) and gives it to the session's streams. */
  private add(id: string, s: Held, type: string, data: string): number {
    const event = { seq: ++s.seq, type, data };
    s.events.push(event);
    if (s.events.length > this.limits.maxEvents) s.events.splice(0, s.events.length - this.limits.maxEvents);
    for (const l of [...(this.listeners.get(id) ?? [])]) {
      try {
        l.deliver([event]);
      } catch {
        // a listener's failure is its own (the Redis reader logs the same and goes on)
      }
    }
    return event.seq;
  }
}
