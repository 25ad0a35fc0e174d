import type { Redis } from 'ioredis';

/** What a streaming session is, as every replica sees it (the Redis record is the truth). */
export interface SessionRecord {
  readonly id: string;
  /** The principal id (`key:<uuid>` / `user:<uuid>`) that created it; only it may use it. */
  readonly owner: string;
  /** The servers the session was opened with (those the owner could reach then). */
  readonly servers: string[];
  readonly deferred: boolean;
  readonly createdAt: number;
  /** Last event number appended (0: none yet). */
  readonly seq: number;
}

/** One stored event: its number (the SSE id), type and JSON data. */
export interface StoredEvent {
  readonly seq: number;
  readonly type: string;
  readonly data: string;
}

export interface PendingRequest {
  readonly requestId: string;
  /** The client's JSON-RPC id. */
  readonly id: string | number;
  readonly deadline: number;
}

export interface SessionLimits {
  /** Events kept per session for resumption; older ones are evicted (reported, never silently). */
  readonly maxEvents: number;
  /** A session without requests or an open stream expires after this. */
  readonly idleMs: number;
  readonly maxPerOwner: number;
}

// KEYS: session hash, events stream; ARGV: type, data, maxEvents, ttlMs. Returns the event's number, 0 if the session is gone.
const APPEND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. n, 't', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n`;

// KEYS: session hash, events stream; ARGV: maxEvents, ttlMs, then type, data pairs. Returns the last number, 0 if the session is gone.
const APPEND_MANY = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = 0
for i = 3, #ARGV, 2 do
  n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], '0-' .. n, 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return n`;

// KEYS: session hash, events stream, pending hash; ARGV: requestId, type, data, maxEvents, ttlMs.
// The one answer of a request: appended only if the request is still pending (a response and its timeout never both).
const ANSWER = `
if redis.call('HDEL', KEYS[3], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '0-' .. n, 't', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return n`;

// KEYS: session hash, owner set, events stream; ARGV: sessionId, owner, now, expiresAt, maxPerOwner, meta, ttlMs.
const CREATE = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'seq', 0, 'meta', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1`;

// What keeps a session alive another ttlMs, after its hash's own PEXPIRE (TOUCH and REQUEST). KEYS: session hash,
// owner set, events stream, pending hash, activated set; ARGV: sessionId, expiresAt, ttlMs, then the script's own.
const KEEP_ALIVE = `
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[5], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end`;

// KEYS and ARGV as KEEP_ALIVE's.
const TOUCH = `
if redis.call('PEXPIRE', KEYS[1], ARGV[3]) == 0 then return 0 end
${KEEP_ALIVE}
return 1`;

// KEYS as KEEP_ALIVE's; ARGV: sessionId, expiresAt, ttlMs, owner, requestId, value, maxPending.
// A request in one round trip: the session's record if `owner` owns it, with the request recorded as pending and the
// session kept alive as TOUCH does ({'full'} when maxPending wait already, {} when there is no such session or
// another owns it).
const REQUEST = `
local h = redis.call('HMGET', KEYS[1], 'owner', 'meta', 'seq')
if not h[1] or h[1] ~= ARGV[4] then return {} end
if redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[7]) then return {'full'} end
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
${KEEP_ALIVE}
return {h[1], h[2], h[3]}`;

// KEYS: events stream; ARGV: exclusive start id ('(0-<n>'), count, maxBytes. At most `count` entries after the start whose
// field values add up to at most maxBytes (the first is returned whatever its size), read one at a time so that no more
// than one entry past the budget is ever read; {1, entries} when more may follow (a bound was hit), {0, entries} otherwise.
const PAGE = `
local start = ARGV[1]
local count = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local out = {}
local size = 0
while #out < count do
  local e = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)[1]
  if not e then return {0, out} end
  local n = 0
  for j = 2, #e[2], 2 do n = n + #e[2][j] end
  if #out > 0 and size + n > budget then return {1, out} end
  size = size + n
  out[#out + 1] = e
  start = '(' .. e[1]
end
return {1, out}`;

type ScriptedRedis = Redis & {
  gwPage(k1: string, start: string, count: number, maxBytes: number): Promise<[number, [string, string[]][]]>;
  gwAppend(k1: string, k2: string, type: string, data: string, max: number, ttl: number): Promise<number>;
  gwAppendMany(k1: string, k2: string, max: number, ttl: number, ...pairs: string[]): Promise<number>;
  gwRequest(
    k1: string,
    k2: string,
    k3: string,
    k4: string,
    k5: string,
    id: string,
    expiresAt: number,
    ttl: number,
    owner: string,
    requestId: string,
    value: string,
    max: number,
  ): Promise<string[]>;
  gwAnswer(k1: string, k2: string, k3: string, requestId: string, type: string, data: string, max: number, ttl: number): Promise<number>;
  gwCreate(
    k1: string,
    k2: string,
    k3: string,
    id: string,
    owner: string,
    now: number,
    expiresAt: number,
    max: number,
    meta: string,
    ttl: number,
  ): Promise<number>;
  gwTouch(k1: string, k2: string, k3: string, k4: string, k5: string, id: string, expiresAt: number, ttl: number): Promise<number>;
};

function defineScripts(redis: Redis): ScriptedRedis {
  const r = redis as ScriptedRedis;
  if (typeof r.gwAppend !== 'function') {
    redis.defineCommand('gwAppend', { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand('gwAppendMany', { numberOfKeys: 2, lua: APPEND_MANY });
    redis.defineCommand('gwRequest', { numberOfKeys: 5, lua: REQUEST });
    redis.defineCommand('gwAnswer', { numberOfKeys: 3, lua: ANSWER });
    redis.defineCommand('gwCreate', { numberOfKeys: 3, lua: CREATE });
    redis.defineCommand('gwTouch', { numberOfKeys: 5, lua: TOUCH });
    redis.defineCommand('gwPage', { numberOfKeys: 1, lua: PAGE });
  }
  return r;
}

/** Parses XRANGE/XREAD entries (`[id, [field, value, …]]`) into events. */
export function toEvents(entries: [string, string[]][]): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [id, fields] of entries) {
    let type = '';
    let data = '';
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 't') type = fields[i + 1]!;
      else if (fields[i] === 'd') data = fields[i + 1]!;
    }
    out.push({ seq: Number(id.slice(id.indexOf('-') + 1)), type, data });
  }
  return out;
}

/**
 * Where streaming sessions live: the record (owner, servers, options, last
 * event number), its numbered events (capped at `maxEvents`, oldest evicted
 * first, which a reader notices as a jump and reports), the requests awaiting
 * their answer (so a response and a timeout can never both be sent), the
 * activated tools, and each owner's sessions (the per-client limit).
 * Everything expires after `idleMs` without a request or an open stream.
 * RedisSessionStore is shared by the replicas; MemorySessionStore serves one
 * replica without Redis.
 */
export abstract class SessionStore {
  constructor(readonly limits: SessionLimits) {}

  /** Creates the session; false when the owner is at its limit. */
  abstract create(id: string, owner: string, servers: string[], deferred: boolean): Promise<boolean>;
  abstract get(id: string): Promise<SessionRecord | undefined>;
  /** Keeps the session alive another `idleMs`; false when it is gone. */
  abstract touch(id: string, owner: string): Promise<boolean>;
  abstract delete(id: string, owner: string): Promise<void>;
  /** Whether each session still exists (a store that cannot tell says it does). */
  abstract exists(ids: string[]): Promise<boolean[]>;
  /** Appends an event; its number, or 0 when the session is gone. */
  abstract append(id: string, type: string, data: string): Promise<number>;
  /** Appends events at once, in order; the last one's number, or 0 when the session is gone. */
  abstract appendMany(id: string, events: readonly { type: string; data: string }[]): Promise<number>;
  /**
   * A request of `owner`: the session (undefined when there is none or another principal owns it), the
   * request recorded as pending and the session kept alive — or 'full' when `maxPending` wait already.
   */
  abstract request(id: string, owner: string, request: PendingRequest, maxPending: number): Promise<SessionRecord | 'full' | undefined>;
  /** Appends the request's answer unless it was answered already (or timed out); its number, or 0. */
  abstract answer(id: string, requestId: string, type: 'response' | 'error', data: string): Promise<number>;
  abstract pending(id: string): Promise<PendingRequest[]>;
  /**
   * Events after `after`, oldest first: at most `count`, and no more than `maxBytes` of data
   * (the first one whatever its size), so a reader holds about `maxBytes` however large the
   * events are. `more` is false when the page ended with the stored events (nothing newer then).
   */
  abstract page(id: string, after: number, count: number, maxBytes: number): Promise<{ events: StoredEvent[]; more: boolean }>;
  /** The activated tools of a deferred session, sorted. */
  abstract activated(id: string): Promise<string[]>;
  abstract activate(id: string, names: string[]): Promise<void>;
}

/**
 * Streaming sessions in Redis, so any replica can serve any part of one: the
 * record (owner, servers, options, last event number) in a hash; the events
 * in a Redis Stream with ids `0-<n>` (n = the SSE id), capped at `maxEvents`
 * (oldest evicted first, which a reader notices as a jump and reports);
 * requests awaiting their answer in a hash (so a response and a timeout can
 * never both be sent); each owner's sessions in a sorted set scored by expiry
 * (the per-client limit). Everything expires after `idleMs` without a request
 * or an open stream.
 */
export class RedisSessionStore extends SessionStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    limits: SessionLimits,
  ) {
    super(limits);
    this.redis = defineScripts(redis);
  }

  key(kind: 's' | 'e' | 'p' | 'a', id: string): string {
    return `${this.prefix}:gw:${kind}:${id}`;
  }

  private ownerKey(owner: string): string {
    return `${this.prefix}:gw:o:${owner}`;
  }

  /** The keys KEEP_ALIVE extends (TOUCH's and REQUEST's KEYS). */
  private lifeKeys(id: string, owner: string): [string, string, string, string, string] {
    return [this.key('s', id), this.ownerKey(owner), this.key('e', id), this.key('p', id), this.key('a', id)];
  }

  async create(id: string, owner: string, servers: string[], deferred: boolean): Promise<boolean> {
    const now = Date.now();
    const meta = JSON.stringify({ servers, deferred, createdAt: now });
    const created = await this.redis.gwCreate(
      this.key('s', id),
      this.ownerKey(owner),
      this.key('e', id),
      id,
      owner,
      now,
      now + this.limits.idleMs,
      this.limits.maxPerOwner,
      meta,
      this.limits.idleMs,
    );
    return created === 1;
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const h = await this.redis.hgetall(this.key('s', id));
    if (!h.owner || !h.meta) return undefined;
    const meta = JSON.parse(h.meta) as { servers: string[]; deferred: boolean; createdAt: number };
    return { id, owner: h.owner, servers: meta.servers, deferred: meta.deferred, createdAt: meta.createdAt, seq: Number(h.seq ?? 0) };
  }

  async touch(id: string, owner: string): Promise<boolean> {
    return (await this.redis.gwTouch(...this.lifeKeys(id, owner), id, Date.now() + this.limits.idleMs, this.limits.idleMs)) === 1;
  }

  async delete(id: string, owner: string): Promise<void> {
    await this.redis.multi().del(this.key('s', id), this.key('e', id), this.key('p', id), this.key('a', id)).zrem(this.ownerKey(owner), id).exec();
  }

  async exists(ids: string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.exists(this.key('s', id));
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, n]) => error !== null || n === 1);
  }

  append(id: string, type: string, data: string): Promise<number> {
    return this.redis.gwAppend(this.key('s', id), this.key('e', id), type, data, this.limits.maxEvents, this.limits.idleMs);
  }

  /** One round trip (APPEND_MANY). */
  appendMany(id: string, events: readonly { type: string; data: string }[]): Promise<number> {
    const pairs: string[] = [];
    for (const e of events) pairs.push(e.type, e.data);
    return this.redis.gwAppendMany(this.key('s', id), this.key('e', id), this.limits.maxEvents, this.limits.idleMs, ...pairs);
  }

  /** One round trip (REQUEST). */
  async request(id: string, owner: string, request: PendingRequest, maxPending: number): Promise<SessionRecord | 'full' | undefined> {
    const value = JSON.stringify({ id: request.id, deadline: request.deadline });
    const { idleMs } = this.limits;
    const r = await this.redis.gwRequest(...this.lifeKeys(id, owner), id, Date.now() + idleMs, idleMs, owner, request.requestId, value, maxPending);
    if (r.length === 0) return undefined;
    if (r[0] === 'full') return 'full';
    const meta = JSON.parse(r[1]) as { servers: string[]; deferred: boolean; createdAt: number };
    return { id, owner: r[0], servers: meta.servers, deferred: meta.deferred, createdAt: meta.createdAt, seq: Number(r[2] ?? 0) };
  }

  answer(id: string, requestId: string, type: 'response' | 'error', data: string): Promise<number> {
    return this.redis.gwAnswer(this.key('s', id), this.key('e', id), this.key('p', id), requestId, type, data, this.limits.maxEvents, this.limits.idleMs);
  }

  async pending(id: string): Promise<PendingRequest[]> {
    const all = await this.redis.hgetall(this.key('p', id));
    return Object.entries(all).map(([requestId, v]) => {
      const parsed = JSON.parse(v) as { id: string | number; deadline: number };
      return { requestId, id: parsed.id, deadline: parsed.deadline };
    });
  }

  /** One round trip (PAGE): the budget is applied in Redis, so a page of large events is never read whole. */
  async page(id: string, after: number, count: number, maxBytes: number): Promise<{ events: StoredEvent[]; more: boolean }> {
    const [more, entries] = await this.redis.gwPage(this.key('e', id), `(0-${after}`, count, maxBytes);
    return { events: toEvents(entries), more: more === 1 };
  }

  async activated(id: string): Promise<string[]> {
    return (await this.redis.smembers(this.key('a', id))).sort();
  }

  async activate(id: string, names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.redis
      .multi()
      .sadd(this.key('a', id), ...names)
      .pexpire(this.key('a', id), this.limits.idleMs)
      .exec();
  }
}
