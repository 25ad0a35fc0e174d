import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest random weight) hashing: the replica with the highest
 * weight for a server owns it. Every replica computes the same answer from the
 * same member list; when a replica joins or leaves, only the servers it wins
 * or held move (about 1/N of them), and the spread is even.
 */
export function rendezvousOwner(serverId: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const member of members) {
    const weight = createHash('md5').update(member).update('\0').update(serverId).digest().readUIntBE(0, 6);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}

/** Which servers this replica probes, as it changes. */
export interface OwnershipListener {
  (gained: readonly string[], lost: readonly string[]): void;
}

/**
 * Who probes which server. Each server is probed by exactly one live replica
 * at a time; a replica that dies has its servers taken over by the others by
 * themselves.
 */
export abstract class ProbeOwnership {
  protected held = new Set<string>();
  private listeners: OwnershipListener[] = [];

  /** Servers this replica may probe now. */
  owns(serverId: string): boolean {
    return this.held.has(serverId);
  }

  get ownedCount(): number {
    return this.held.size;
  }

  onChange(listener: OwnershipListener): void {
    this.listeners.push(listener);
  }

  protected setHeld(next: Set<string>): void {
    const gained = [...next].filter((id) => !this.held.has(id));
    const lost = [...this.held].filter((id) => !next.has(id));
    this.held = next;
    if (gained.length > 0 || lost.length > 0) for (const l of this.listeners) l(gained, lost);
  }

  /** The servers that should be probed (enabled ones) changed, or it is time to look again. */
  abstract refresh(candidates: readonly string[]): Promise<void>;
  /** Live replicas taking part in probing. */
  abstract members(): Promise<string[]>;
  /** Current owner of each server (null: none yet). */
  abstract owners(serverIds: readonly string[]): Promise<Map<string, string | null>>;
  /** Gives every server back (shutdown): the others take over at their next heartbeat, not after a lease. */
  abstract stop(): Promise<void>;
}

/** One replica (no REDIS_URL): it owns every server. */
export class LocalOwnership extends ProbeOwnership {
  constructor(private readonly replicaId: string) {
    super();
  }

  async refresh(candidates: readonly string[]): Promise<void> {
    this.setHeld(new Set(candidates));
  }

  async members(): Promise<string[]> {
    return [this.replicaId];
  }

  async owners(serverIds: readonly string[]): Promise<Map<string, string | null>> {
    return new Map(serverIds.map((id) => [id, this.held.has(id) ? this.replicaId : null]));
  }

  async stop(): Promise<void> {
    this.setHeld(new Set());
  }
}

// KEYS: members zset. ARGV: replica, lease ms. Joins (or stays in) the member
// set until now + lease, drops expired members, returns the live ones. Redis's clock.
const MEMBERS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], 86400000)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;

// KEYS: owner keys to claim or renew. ARGV: replica, lease ms. A key that is
// free or ours is (re)set to us for one lease; returns 1/0 per key.
const CLAIM_LUA = `
local out = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == false or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

// KEYS: owner keys to give back. ARGV: replica. Deletes only keys we hold.
const RELEASE_LUA = `
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
`;

type Scripted = Redis & {
  healthMembers(key: string, replica: string, leaseMs: number): Promise<string[]>;
  healthClaim(...args: (string | number)[]): Promise<number[]>;
  healthRelease(...args: (string | number)[]): Promise<number>;
};

/** Keys per claim/release script call (bounds the time one script blocks Redis). */
const KEYS_PER_CALL = 500;

/**
 * Ownership shared through Redis: replicas keep a membership entry alive
 * (a sorted set scored by expiry), each server goes to the member that wins
 * it by rendezvous hashing, and the winner holds a per-server lease key
 * (`<prefix>:health:owner:<id>`, PX = lease) that it renews every heartbeat
 * (lease/3). A server changes hands only through its lease: the old owner
 * releases it when it sees it is no longer the winner (or dies and its lease
 * expires), and the new one claims it only once it is free — so two replicas
 * never hold it at once. A killed replica's servers are claimed by the
 * others within one lease plus one heartbeat.
 *
 * While Redis is unreachable the replica keeps probing what it held (degrade,
 * DESIGN invariant 9): in a full outage nobody else can claim those servers;
 * in a partition of this replica alone, others may claim them after the lease
 * and both probe until the link is back (the durable record dedupes the
 * status events under a row lock; see docs/health.md).
 */
export class RedisOwnership extends ProbeOwnership {
  private readonly logger = new Logger('ProbeOwnership');
  private readonly redis: Scripted;
  private readonly membersKey: string;
  private degradedSince?: number;
  private lastMembers: string[] = [];
  private stopped = false;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly replicaId: string,
    private readonly leaseMs: number,
    /** A server with a probe in flight is kept (renewed) one more heartbeat rather than handed over mid-probe. */
    private readonly busy: (serverId: string) => boolean = () => false,
  ) {
    super();
    this.redis = redis as Scripted;
    this.redis.defineCommand('healthMembers', { numberOfKeys: 1, lua: MEMBERS_LUA });
    this.redis.defineCommand('healthClaim', { lua: CLAIM_LUA });
    this.redis.defineCommand('healthRelease', { lua: RELEASE_LUA });
    this.membersKey = `${prefix}:health:members`;
  }

  private ownerKey(serverId: string): string {
    return `${this.prefix}:health:owner:${serverId}`;
  }

  async refresh(candidates: readonly string[]): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.redis.status !== 'ready') throw new Error(`redis is ${this.redis.status}`);
      const members = await this.redis.healthMembers(this.membersKey, this.replicaId, this.leaseMs);
      this.lastMembers = members;
      const winner = new Set(candidates.filter((id) => rendezvousOwner(id, members) === this.replicaId));
      // Kept while probing: the next owner can claim it only once this probe's result is recorded.
      const kept = [...this.held].filter((id) => !winner.has(id) && this.busy(id) && candidates.includes(id));
      const wanted = [...winner, ...kept];
      const wantedSet = new Set(wanted);
      const next = new Set<string>();
      for (let i = 0; i < wanted.length; i += KEYS_PER_CALL) {
        const batch = wanted.slice(i, i + KEYS_PER_CALL);
        const claimed = await this.redis.healthClaim(batch.length, ...batch.map((id) => this.ownerKey(id)), this.replicaId, this.leaseMs);
        batch.forEach((id, k) => {
          if (claimed[k] === 1) next.add(id);
        });
      }
      const giveBack = [...this.held].filter((id) => !wantedSet.has(id));
      for (let i = 0; i < giveBack.length; i += KEYS_PER_CALL) {
        const batch = giveBack.slice(i, i + KEYS_PER_CALL);
        await this.redis.healthRelease(batch.length, ...batch.map((id) => this.ownerKey(id)), this.replicaId);
      }
      if (this.degradedSince !== undefined) {
        this.logger.log(`probe ownership shared through Redis again after ${Date.now() - this.degradedSince} ms`);
        this.degradedSince = undefined;
      }
      if (!this.stopped) this.setHeld(next);
    } catch (error) {
      if (this.degradedSince === undefined) {
        this.degradedSince = Date.now();
        this.logger.warn(`probe ownership cannot be renewed (${(error as Error).message}); probing the ${this.held.size} server(s) held until Redis is back`);
      }
    }
  }

  get degraded(): boolean {
    return this.degradedSince !== undefined;
  }

  async members(): Promise<string[]> {
    return this.lastMembers;
  }

  async owners(serverIds: readonly string[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    for (let i = 0; i < serverIds.length; i += KEYS_PER_CALL) {
      const batch = serverIds.slice(i, i + KEYS_PER_CALL);
      const values = await this.redis.mget(...batch.map((id) => this.ownerKey(id)));
      batch.forEach((id, k) => out.set(id, values[k] ?? null));
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const held = [...this.held];
    this.setHeld(new Set());
    if (this.redis.status !== 'ready') return;
    try {
      await this.redis.zrem(this.membersKey, this.replicaId);
      for (let i = 0; i < held.length; i += KEYS_PER_CALL) {
        const batch = held.slice(i, i + KEYS_PER_CALL);
        await this.redis.healthRelease(batch.length, ...batch.map((id) => this.ownerKey(id)), this.replicaId);
      }
    } catch {
      // the leases expire by themselves
    }
  }
}
