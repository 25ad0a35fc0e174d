import { Inject, Injectable, Logger, type OnModuleDestroy, Optional } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RedisConnections } from '../bus/redis.connections.js';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { sha256 } from './secrets.js';

export interface ThrottleRule {
  /** Failures (within the window) after which the key is locked. */
  readonly threshold: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
  readonly windowMs: number;
}

/** Lock time after the `failures`-th failure: none below the threshold, then base, 2×base, 4×base… up to the cap. */
export function lockoutMs(failures: number, rule: ThrottleRule): number {
  if (failures < rule.threshold) return 0;
  return Math.min(rule.backoffMs * 2 ** Math.min(failures - rule.threshold, 40), rule.backoffMaxMs);
}

interface Entry {
  failures: number;
  windowEnd: number;
  lockedUntil: number;
}

/**
 * The per-replica store: used while Redis is down (or absent), and always kept
 * up to date with this replica's own failures so that a Redis outage does not
 * start everyone from zero. Bounded: expired entries are swept, and the map
 * never grows past MAX_ENTRIES (oldest dropped first).
 */
export class MemoryThrottleStore {
  private static readonly MAX_ENTRIES = 100_000;
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  lockedForMs(keys: string[]): number {
    const now = this.now();
    let ms = 0;
    for (const key of keys) {
      const e = this.entries.get(key);
      if (e && e.lockedUntil > now) ms = Math.max(ms, e.lockedUntil - now);
    }
    return ms;
  }

  fail(key: string, rule: ThrottleRule): number {
    const now = this.now();
    let e = this.entries.get(key);
    if (!e || (e.windowEnd <= now && e.lockedUntil <= now)) {
      e = { failures: 0, windowEnd: 0, lockedUntil: 0 };
    }
    this.entries.delete(key); // re-insert: the map stays in last-touched order for eviction
    e.failures++;
    e.windowEnd = now + rule.windowMs;
    const ms = lockoutMs(e.failures, rule);
    if (ms > 0) e.lockedUntil = now + ms;
    this.entries.set(key, e);
    if (this.entries.size > MemoryThrottleStore.MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    return ms;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  sweep(): void {
    const now = this.now();
    for (const [key, e] of this.entries) if (e.windowEnd <= now && e.lockedUntil <= now) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

// KEYS: counter, lock. ARGV: threshold, backoff ms, backoff max ms, window ms. Returns the lock set (ms), or 0.
const FAIL = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local t = tonumber(ARGV[1])
if n < t then return 0 end
local ms = tonumber(ARGV[2]) * (2 ^ math.min(n - t, 40))
if ms > tonumber(ARGV[3]) then ms = tonumber(ARGV[3]) end
ms = math.floor(ms)
redis.call('SET', KEYS[2], '1', 'PX', ms)
return ms
`;

type ScriptedRedis = Redis & { registryLoginFail(counter: string, lock: string, t: number, b: number, max: number, w: number): Promise<number> };

/** How long a Redis call may take before this replica decides on its own. */
const REDIS_TIMEOUT_MS = 250;

/**
 * Login throttling, per username and per client address, shared by all
 * replicas through Redis (per-replica while Redis is down or absent):
 * LOGIN_MAX_FAILURES failures for one username, or LOGIN_MAX_FAILURES_PER_IP
 * from one address, lock it for LOGIN_BACKOFF_MS, doubling with every further
 * failure up to LOGIN_BACKOFF_MAX_MS. A locked caller gets 429 + Retry-After
 * before any password is hashed, so it cannot keep the scrypt pool busy.
 * A successful login clears its username's count (not the address's).
 */
@Injectable()
export class LoginThrottle implements OnModuleDestroy {
  private readonly logger = new Logger('LoginThrottle');
  private readonly local = new MemoryThrottleStore();
  private readonly redis?: ScriptedRedis;
  private readonly prefix: string;
  private readonly userRule: ThrottleRule;
  private readonly ipRule: ThrottleRule;
  private readonly sweeper: NodeJS.Timeout;
  private lastWarning = 0;

  constructor(@Inject(APP_CONFIG) config: AppConfig, @Optional() connections?: RedisConnections) {
    const login = config.security.login;
    const common = { backoffMs: login.backoffMs, backoffMaxMs: login.backoffMaxMs, windowMs: login.failureWindowMs };
    this.userRule = { threshold: login.maxFailuresPerUser, ...common };
    this.ipRule = { threshold: login.maxFailuresPerIp, ...common };
    this.prefix = `${config.redisPrefix}:login`;
    if (connections) {
      // The replica's command connection (no connection of our own); absent without REDIS_URL.
      this.redis = connections.commands as ScriptedRedis;
      this.redis.defineCommand('registryLoginFail', { numberOfKeys: 2, lua: FAIL });
    }
    this.sweeper = setInterval(() => this.local.sweep(), 60_000);
    this.sweeper.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  private keys(username: string, ip: string): { user: string; ip: string } {
    // Hashed: usernames are arbitrary text, and Redis keys need not show them.
    return { user: `u:${sha256(username.toLowerCase()).slice(0, 32)}`, ip: `ip:${ip}` };
  }

  /** Throws 429 + Retry-After while the username or the address is locked. */
  async check(username: string, ip: string): Promise<void> {
    const k = this.keys(username, ip);
    let ms: number;
    const shared = await this.shared(async (redis) => {
      const [user, addr] = await Promise.all([redis.pttl(`${this.prefix}:${k.user}:lock`), redis.pttl(`${this.prefix}:${k.ip}:lock`)]);
      return Math.max(user, addr, 0);
    });
    if (shared !== undefined) ms = shared;
    else ms = this.local.lockedForMs([k.user, k.ip]);
    if (ms > 0) {
      const seconds = Math.max(1, Math.ceil(ms / 1000));
      throw new DomainError('too_many_requests', `too many failed logins; retry in ${seconds} s`, { headers: { 'retry-after': String(seconds) } });
    }
  }

  async failed(username: string, ip: string): Promise<void> {
    const k = this.keys(username, ip);
    this.local.fail(k.user, this.userRule);
    this.local.fail(k.ip, this.ipRule);
    await this.shared(async (redis) => {
      const fail = (key: string, rule: ThrottleRule) =>
        redis.registryLoginFail(`${this.prefix}:${key}:n`, `${this.prefix}:${key}:lock`, rule.threshold, rule.backoffMs, rule.backoffMaxMs, rule.windowMs);
      await Promise.all([fail(k.user, this.userRule), fail(k.ip, this.ipRule)]);
      return true;
    });
  }

  async succeeded(username: string, ip: string): Promise<void> {
    const k = this.keys(username, ip);
    this.local.reset(k.user);
    await this.shared(async (redis) => redis.del(`${this.prefix}:${k.user}:n`));
  }

  /** Runs `op` on Redis when it is connected, within REDIS_TIMEOUT_MS; undefined means "decide locally". */
  private async shared<T>(op: (redis: ScriptedRedis) => Promise<T>): Promise<T | undefined> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        op(redis),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS);
        }),
      ]);
    } catch (error) {
      if (Date.now() - this.lastWarning > 10_000) {
        this.lastWarning = Date.now();
        this.logger.warn(`redis unavailable, throttling logins per replica: ${(error as Error).message}`);
      }
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}
