import { Logger } from '@nestjs/common';
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { dropExpired, sweepEvery, unexpired } from '../core/memory-expiry.js';

/**
 * What `/mcp` keeps of a session outside any one replica, so a request that
 * the load balancer sends to another replica finds its session there (the SDK
 * transport keeps sessions in process memory only).
 */
export interface McpSessionRecord {
  readonly id: string;
  /** The principal that initialized it: anyone else gets 404 for this id. */
  readonly principalId: string;
  protocolVersion: string;
  clientInfo?: { name: string; version: string };
  clientCapabilities?: Record<string, unknown>;
  /** Deferred tool loading: only search_tools / activate_tools until tools are activated. */
  deferred: boolean;
  activated: string[];
  readonly createdAt: number;
  lastSeenAt: number;
}

/** The standalone GET stream's id in the SDK transport. */
export const STANDALONE_STREAM = '_GET_stream';
const EVENT_ID = /^(_GET_stream|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@(\d{1,20}-\d{1,20})$/;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isSessionId(value: string): boolean {
  return SESSION_ID.test(value);
}

/** `Last-Event-ID` → the stream it belongs to and the position in it; null when this service did not issue it. */
export function parseEventId(eventId: string): { streamId: string; entry: string } | null {
  const m = EVENT_ID.exec(eventId);
  // Both parts of an entry are unsigned 64-bit numbers (Redis stream ids): a larger one was never issued.
  if (!m || m[2].split('-').some((part) => BigInt(part) > MAX_ENTRY_PART)) return null;
  return { streamId: m[1], entry: m[2] };
}
const MAX_ENTRY_PART = 2n ** 64n - 1n;

export function eventIdOf(streamId: string, entry: string): string {
  return `${streamId}@${entry}`;
}

export interface StoredEvent {
  readonly entry: string;
  readonly message: JSONRPCMessage | Record<string, never>;
}

/** Cluster-wide signals: an event appended (wakes resumed streams), a session ended, a request cancelled, a standalone stream opened. */
export type StoreSignal =
  | { kind: 'appended'; sessionId: string; streamId: string }
  | { kind: 'ended'; sessionId: string }
  | { kind: 'cancelled'; sessionId: string; requestId: string | number; reason?: string }
  /** A standalone stream opened: the session's older ones (ordered by `at`, then `token`) end, on every replica. */
  | { kind: 'standalone'; sessionId: string; at: number; token: string };

export interface StoreLimits {
  /** Events kept per stream (older ones are trimmed; a resume from before them replays what is left). */
  readonly eventsPerStream: number;
  /** Session records and their events expire this long after the last use. */
  readonly ttlMs: number;
}

/**
 * Session records and the per-stream event log that `Last-Event-ID`
 * resumption replays. Redis (shared by the replicas) or, without Redis, in
 * process memory (one replica).
 */
export abstract class McpSessionStore {
  private readonly listeners = new Set<(signal: StoreSignal) => void>();

  constructor(protected readonly limits: StoreLimits) {}

  abstract get(sessionId: string): Promise<McpSessionRecord | null>;
  abstract put(record: McpSessionRecord): Promise<void>;
  /** Keeps the record (and its events) alive, and marks it used by its principal now; false when it is gone. */
  abstract touch(sessionId: string, principalId: string): Promise<boolean>;
  /**
   * Counts a new session among its principal's: the ids of the least recently used ones beyond `max` are
   * returned, taken off the principal's list (the caller ends them). Sessions unused for the TTL are not counted.
   */
  abstract admit(sessionId: string, principalId: string, max: number): Promise<string[]>;
  /** Ends the session everywhere: the record and its events are deleted, every replica is told. */
  abstract delete(sessionId: string, principalId?: string): Promise<void>;
  abstract append(sessionId: string, streamId: string, message: JSONRPCMessage | Record<string, never>): Promise<string>;
  /** Events of one stream after `entry` (exclusive), oldest first, at most `count`. */
  abstract readAfter(sessionId: string, streamId: string, entry: string, count: number): Promise<StoredEvent[]>;
  /** The newest entry of a stream ('0-0' when empty). */
  abstract lastEntry(sessionId: string, streamId: string): Promise<string>;
  /**
   * A request stream is read from a connection of its own (a GET resuming it, on any replica): its appends wake
   * readers from now on, for WATCH_TTL_MS after the last call. (A request stream nobody resumes is written to the
   * store only: its `appended` signal would go to every replica for every event, for nothing.) Call it before
   * reading the stream, so an event is either read or signalled.
   */
  abstract watch(sessionId: string, streamId: string): Promise<void>;
  /** Sent to every replica (this one included). */
  abstract signal(signal: StoreSignal): Promise<void>;
  abstract close(): Promise<void>;

  onSignal(listener: (signal: StoreSignal) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected deliver(signal: StoreSignal): void {
    for (const l of [...this.listeners]) {
      try {
        l(signal);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /**
   * The SDK's EventStore for one session: events are stored per stream under
   * the session, ids are `<streamId>@<entry>`; a replay never crosses into
   * another session (the id only names a stream within this one).
   */
  eventStore(sessionId: string): EventStore {
    return {
      storeEvent: (streamId: StreamId, message: JSONRPCMessage) => this.append(sessionId, streamId, message),
      getStreamIdForEventId: (eventId: EventId) => Promise.resolve(parseEventId(eventId)?.streamId),
      replayEventsAfter: async (lastEventId: EventId, { send }) => {
        const at = parseEventId(lastEventId);
        if (!at) throw new Error('unknown event id');
        let entry = at.entry;
        for (;;) {
          const events = await this.readAfter(sessionId, at.streamId, entry, 500);
          for (const e of events) if (Object.keys(e.message).length > 0) await send(eventIdOf(at.streamId, e.entry), e.message as JSONRPCMessage);
          if (events.length < 500) break;
          entry = events[events.length - 1].entry;
        }
        return at.streamId;
      },
    };
  }
}

interface MemoryStream {
  seq: number;
  events: StoredEvent[];
  /** Dropped after this (the session's TTL from its last event), as Redis expires a stream's key. */
  until: number;
}

/** One replica, no Redis: the same behaviour in process memory (expiry by TTL on access, and a sweep every 30 s for what is never looked up again). */
export class MemorySessionStore extends McpSessionStore {
  private readonly records = new Map<string, { record: McpSessionRecord; until: number }>();
  private readonly streams = new Map<string, Map<string, MemoryStream>>();
  /** Each principal's sessions and when each was last used (insertion order is not relied on). */
  private readonly owners = new Map<string, Map<string, number>>();
  private lastMs = 0;
  private readonly sweeper = sweepEvery(this.limits.ttlMs, () => this.sweep());

  async get(sessionId: string): Promise<McpSessionRecord | null> {
    const found = unexpired(this.records, sessionId, Date.now(), (id) => this.streams.delete(id));
    return found ? structuredClone(found.record) : null;
  }

  async put(record: McpSessionRecord): Promise<void> {
    this.records.set(record.id, { record: structuredClone(record), until: Date.now() + this.limits.ttlMs });
  }

  async touch(sessionId: string, principalId: string): Promise<boolean> {
    const found = this.records.get(sessionId);
    if (!found || found.until < Date.now()) return false;
    found.until = Date.now() + this.limits.ttlMs;
    found.record.lastSeenAt = Date.now();
    const owned = this.owners.get(principalId);
    if (owned?.has(sessionId)) owned.set(sessionId, Date.now());
    return true;
  }

  async admit(sessionId: string, principalId: string, max: number): Promise<string[]> {
    const now = Date.now();
    let owned = this.owners.get(principalId);
    if (!owned) this.owners.set(principalId, (owned = new Map<string, number>()));
    owned.set(sessionId, now);
    for (const [id, used] of owned) if (used < now - this.limits.ttlMs) owned.delete(id);
    const evicted = [...owned]
      .sort((a, b) => a[1] - b[1])
      .slice(0, Math.max(0, owned.size - max))
      .map(([id]) => id);
    for (const id of evicted) owned.delete(id);
    return evicted;
  }

  async delete(sessionId: string, principalId?: string): Promise<void> {
    this.records.delete(sessionId);
    this.streams.delete(sessionId);
    if (principalId !== undefined) this.owners.get(principalId)?.delete(sessionId);
    await this.signal({ kind: 'ended', sessionId });
  }

  async append(sessionId: string, streamId: string, message: JSONRPCMessage | Record<string, never>): Promise<string> {
    let session = this.streams.get(sessionId);
    if (!session) this.streams.set(sessionId, (session = new Map<string, MemoryStream>()));
    let stream = session.get(streamId);
    if (!stream) session.set(streamId, (stream = { seq: 0, events: [], until: 0 }));
    stream.until = Date.now() + this.limits.ttlMs;
    const now = Math.max(Date.now(), this.lastMs);
    this.lastMs = now;
    const entry = `${now}-${stream.seq++}`;
    stream.events.push({ entry, message });
    if (stream.events.length > this.limits.eventsPerStream) stream.events.splice(0, stream.events.length - this.limits.eventsPerStream);
    await this.signal({ kind: 'appended', sessionId, streamId });
    return eventIdOf(streamId, entry);
  }

  async readAfter(sessionId: string, streamId: string, entry: string, count: number): Promise<StoredEvent[]> {
    const events = this.streams.get(sessionId)?.get(streamId)?.events ?? [];
    return events.filter((e) => compareEntries(e.entry, entry) > 0).slice(0, count);
  }

  async lastEntry(sessionId: string, streamId: string): Promise<string> {
    const events = this.streams.get(sessionId)?.get(streamId)?.events ?? [];
    return events.length > 0 ? events[events.length - 1].entry : '0-0';
  }

  /** In one process every append is signalled (no other replica to spare). */
  async watch(): Promise<void> {}

  async signal(signal: StoreSignal): Promise<void> {
    setImmediate(() => this.deliver(signal));
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.records.clear();
    this.streams.clear();
  }

  /** @internal Drops expired records with their streams, and streams with no event for the TTL. */
  sweep(now = Date.now()): void {
    dropExpired(this.records, now, (id) => this.streams.delete(id));
    for (const [id, session] of this.streams) {
      dropExpired(session, now);
      if (session.size === 0 || !this.records.has(id)) this.streams.delete(id);
    }
    for (const [principalId, owned] of this.owners) {
      for (const id of owned.keys()) if (!this.records.has(id)) owned.delete(id);
      if (owned.size === 0) this.owners.delete(principalId);
    }
  }
}

export function compareEntries(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}

/**
 * Appends an event to a stream (exact MAXLEN bound), renews the stream's and the session's
 * stream-name set's TTL, records the stream's name, and publishes the `appended` signal (always,
 * or only while the stream is watched): one round trip. KEYS: events, stream names, signal
 * channel, watch key. ARGV: entry id (or `*`), message JSON, stream id, max events, ttl ms,
 * signal JSON, '1' to publish whether watched or not.
 */
const STORE = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], ARGV[1], 'm', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if ARGV[7] == '1' or redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PUBLISH', KEYS[3], ARGV[6]) end
return id
`;

/** How long a `watch` of a request stream lasts after its last renewal. */
export const WATCH_TTL_MS = 30_000;

/** KEYS: the principal's sessions (a sorted set scored by last use). ARGV: id, now, max, ttl. The evicted ids. */
const ADMIT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local evicted = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
return evicted
`;

type ScriptedRedis = Redis & {
  mcpAdmit(owner: string, id: string, now: number, max: number, ttl: number): Promise<string[]>;
  mcpStore(
    events: string,
    streams: string,
    channel: string,
    watch: string,
    entry: string,
    message: string,
    streamId: string,
    max: number,
    ttl: number,
    signal: string,
    always: '1' | '0',
  ): Promise<string>;
};

/**
 * Redis: the record is one JSON string with a TTL; each stream is a Redis
 * stream (XADD with an exact MAXLEN bound and the same TTL, renewed by every
 * append); the session's stream names are kept in a set so DELETE removes
 * them all. Signals go over one pub/sub channel, with one subscriber
 * connection per replica of its own.
 */
export class RedisSessionStore extends McpSessionStore {
  private readonly logger = new Logger('McpSessionStore');
  private readonly subscriber: Redis;
  private readonly channel: string;
  /** The last entry id this replica made for a request stream (`<lastMs>-<lastSeq>`). */
  private lastMs = 0;
  private lastSeq = 0;

  constructor(
    private readonly redis: Redis,
    redisUrl: string,
    private readonly prefix: string,
    replicaId: string,
    limits: StoreLimits,
  ) {
    super(limits);
    if (typeof (redis as ScriptedRedis).mcpStore !== 'function') redis.defineCommand('mcpStore', { numberOfKeys: 4, lua: STORE });
    if (typeof (redis as ScriptedRedis).mcpAdmit !== 'function') redis.defineCommand('mcpAdmit', { numberOfKeys: 1, lua: ADMIT });
    this.channel = `${prefix}:mcp:signals`;
    this.subscriber = new Redis(redisUrl, {
      connectionName: `registry-mcp-${replicaId}`,
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      keepAlive: 10_000,
      connectTimeout: 5000,
    });
    this.subscriber.on('error', (error: Error) => this.logger.debug(`redis: ${error.message}`));
    this.subscriber.on('message', (_channel: string, json: string) => {
      try {
        this.deliver(JSON.parse(json) as StoreSignal);
      } catch {
        // not ours
      }
    });
    void this.subscriber.subscribe(this.channel).catch((error: Error) => this.logger.warn(`subscribe failed: ${error.message}`));
  }

  private recordKey(id: string): string {
    return `${this.prefix}:mcp:session:${id}`;
  }

  private streamsKey(id: string): string {
    return `${this.prefix}:mcp:streams:${id}`;
  }

  private streamKey(id: string, streamId: string): string {
    return `${this.prefix}:mcp:events:${id}:${streamId}`;
  }

  private watchKey(id: string, streamId: string): string {
    return `${this.prefix}:mcp:watch:${id}:${streamId}`;
  }

  private ownerKey(principalId: string): string {
    return `${this.prefix}:mcp:owner:${principalId}`;
  }

  async get(sessionId: string): Promise<McpSessionRecord | null> {
    const json = await this.redis.get(this.recordKey(sessionId));
    return json ? (JSON.parse(json) as McpSessionRecord) : null;
  }

  async put(record: McpSessionRecord): Promise<void> {
    await this.redis.set(this.recordKey(record.id), JSON.stringify(record), 'PX', this.limits.ttlMs);
  }

  async touch(sessionId: string, principalId: string): Promise<boolean> {
    const [[, renewed] = [null, 0]] = (await this.redis
      .multi()
      .pexpire(this.recordKey(sessionId), this.limits.ttlMs)
      .pexpire(this.streamsKey(sessionId), this.limits.ttlMs)
      .zadd(this.ownerKey(principalId), 'XX', Date.now(), sessionId)
      .pexpire(this.ownerKey(principalId), this.limits.ttlMs)
      .exec()) as [Error | null, number][];
    return renewed === 1;
  }

  async admit(sessionId: string, principalId: string, max: number): Promise<string[]> {
    return (this.redis as ScriptedRedis).mcpAdmit(this.ownerKey(principalId), sessionId, Date.now(), max, this.limits.ttlMs);
  }

  async delete(sessionId: string, principalId?: string): Promise<void> {
    const streams = await this.redis.smembers(this.streamsKey(sessionId));
    await this.redis.del(this.recordKey(sessionId), this.streamsKey(sessionId), ...streams.map((s) => this.streamKey(sessionId, s)));
    if (principalId !== undefined) await this.redis.zrem(this.ownerKey(principalId), sessionId);
    await this.signal({ kind: 'ended', sessionId });
  }

  /**
   * Stores an event and returns its id. The standalone stream may be written
   * by any replica, so Redis numbers its entries (a round trip before the
   * event goes out). A request's stream has one writer, the replica running
   * the POST it answers: its entry ids are made here (increasing in this
   * process) and the event goes out at once while Redis stores it, in order on
   * this connection; the `appended` signal follows the store, so a stream
   * resumed on another replica reads it from Redis. A request stream's
   * priming event (no message, only an id to resume from) is not stored: a
   * replay reads what comes after an entry whether or not the entry itself
   * was kept, and there is nothing in it to replay.
   */
  async append(sessionId: string, streamId: string, message: JSONRPCMessage | Record<string, never>): Promise<string> {
    if (streamId === STANDALONE_STREAM) return eventIdOf(streamId, await this.store(sessionId, streamId, '*', message));
    const now = Date.now();
    this.lastSeq = now > this.lastMs ? 0 : this.lastSeq + 1;
    this.lastMs = Math.max(now, this.lastMs);
    const entry = `${this.lastMs}-${this.lastSeq}`;
    if (!('jsonrpc' in message)) return eventIdOf(streamId, entry);
    void this.store(sessionId, streamId, entry, message).catch((error: Error) =>
      this.logger.warn(`session ${sessionId}: storing event ${entry} of stream ${streamId} failed (${error.message}); a resume would miss it`),
    );
    return eventIdOf(streamId, entry);
  }

  /** XADD (with `entry` as its id, `*` for Redis's) and the `appended` signal in one script; the stored entry id. */
  private async store(sessionId: string, streamId: string, entry: string, message: JSONRPCMessage | Record<string, never>): Promise<string> {
    const signal = JSON.stringify({ kind: 'appended', sessionId, streamId } satisfies StoreSignal);
    return (this.redis as ScriptedRedis).mcpStore(
      this.streamKey(sessionId, streamId),
      this.streamsKey(sessionId),
      this.channel,
      this.watchKey(sessionId, streamId),
      entry,
      JSON.stringify(message),
      streamId,
      this.limits.eventsPerStream,
      this.limits.ttlMs,
      signal,
      streamId === STANDALONE_STREAM ? '1' : '0',
    );
  }

  async watch(sessionId: string, streamId: string): Promise<void> {
    await this.redis.set(this.watchKey(sessionId, streamId), '1', 'PX', WATCH_TTL_MS);
  }

  async readAfter(sessionId: string, streamId: string, entry: string, count: number): Promise<StoredEvent[]> {
    const found = await this.redis.xrange(this.streamKey(sessionId, streamId), `(${entry}`, '+', 'COUNT', count);
    return found.map(([id, fields]) => ({ entry: id, message: JSON.parse(fields[1] ?? '{}') as JSONRPCMessage }));
  }

  async lastEntry(sessionId: string, streamId: string): Promise<string> {
    const found = await this.redis.xrevrange(this.streamKey(sessionId, streamId), '+', '-', 'COUNT', 1);
    return found[0]?.[0] ?? '0-0';
  }

  async signal(signal: StoreSignal): Promise<void> {
    await this.redis.publish(this.channel, JSON.stringify(signal));
  }

  /** Never waits on an unreachable Redis. */
  async close(): Promise<void> {
    if (this.subscriber.status !== 'ready') {
      this.subscriber.disconnect();
      return;
    }
    await Promise.race([this.subscriber.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    this.subscriber.disconnect();
  }
}
