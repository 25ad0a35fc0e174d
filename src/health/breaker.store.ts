import type { Redis } from 'ioredis';
import type { BreakerSettings, BreakerState, BreakerTransition, CircuitState } from './health.types.js';

/** What one breaker operation did. */
export interface BreakerOutcome {
  readonly state: BreakerState;
  /** `allow`: whether the call may go ahead (closed, or the one trial call of half_open). */
  readonly allowed: boolean;
  /** This operation moved the breaker (a transition was logged). */
  readonly transitioned: boolean;
  /** `at` of the newest logged transition (0: none). */
  readonly lastAt: number;
}

export type BreakerOp = 'allow' | 'success' | 'failure' | 'read';

/** Transitions kept per server, for the durable record to catch up from. */
export const BREAKER_LOG_SIZE = 32;

/**
 * Where breakers live. Every operation is atomic per server: replicas (the
 * probe owner, every gateway) share one breaker per server.
 *
 * - closed → open after `failureThreshold` failures in a row (cool-down = `coolDownMs`);
 * - open: calls refused until the cool-down is over; the first `allow` after
 *   it moves to half_open and is the trial call;
 * - half_open: one trial call at a time (a trial that never reports back
 *   frees its slot after `timeoutMs`); success → closed (cool-down reset),
 *   failure → open again with the cool-down doubled, up to `maxCoolDownMs`.
 */
export interface BreakerStore {
  apply(serverId: string, op: BreakerOp, settings: BreakerSettings, reason?: string): Promise<BreakerOutcome>;
  read(serverIds: readonly string[]): Promise<Map<string, BreakerState>>;
  /** The logged transitions, oldest first. */
  log(serverId: string): Promise<BreakerTransition[]>;
  remove(serverId: string): Promise<void>;
}

interface Rec {
  s: CircuitState;
  f: number;
  cd: number;
  until: number;
  trial: number;
  at: number;
}

const CLOSED: BreakerState = { state: 'closed', failures: 0, coolDownMs: 0 };

function view(r: Rec): BreakerState {
  return r.s === 'open' ? { state: r.s, failures: r.f, coolDownMs: r.cd, retryAt: r.until } : { state: r.s, failures: r.f, coolDownMs: r.cd };
}

/**
 * One replica's breakers in memory: without REDIS_URL (one replica), and the
 * fallback while Redis is unreachable. The same rules as the Lua script below.
 */
export class MemoryBreakerStore implements BreakerStore {
  private readonly recs = new Map<string, Rec>();
  private readonly logs = new Map<string, BreakerTransition[]>();

  constructor(private readonly clockUs: () => number = () => Math.floor((performance.timeOrigin + performance.now()) * 1000)) {}

  async apply(serverId: string, op: BreakerOp, settings: BreakerSettings, reason = 'failed'): Promise<BreakerOutcome> {
    const nowUs = this.clockUs();
    const now = Math.floor(nowUs / 1000);
    const rec = this.recs.get(serverId) ?? { s: 'closed', f: 0, cd: settings.coolDownMs, until: 0, trial: 0, at: 0 };
    let allowed = true;
    let moved = false;
    const go = (to: CircuitState, why: string) => {
      const at = Math.max(nowUs, rec.at + 1);
      const log = this.logs.get(serverId) ?? [];
      log.push({ at, from: rec.s, to, reason: why, failures: rec.f, coolDownMs: rec.cd });
      if (log.length > BREAKER_LOG_SIZE) log.shift();
      this.logs.set(serverId, log);
      rec.s = to;
      rec.at = at;
      moved = true;
    };
    if (op === 'allow') {
      if (rec.s === 'open') {
        if (now >= rec.until) {
          go('half_open', `cool-down of ${rec.cd} ms over: trial call`);
          rec.trial = now + settings.timeoutMs;
        } else allowed = false;
      } else if (rec.s === 'half_open') {
        if (now >= rec.trial) rec.trial = now + settings.timeoutMs;
        else allowed = false;
      }
    } else if (op === 'success') {
      if (rec.s === 'half_open') {
        rec.f = 0;
        rec.cd = settings.coolDownMs;
        rec.trial = 0;
        go('closed', 'trial call succeeded');
      } else if (rec.s === 'closed') rec.f = 0;
    } else if (op === 'failure') {
      if (rec.s === 'closed') {
        rec.f++;
        if (rec.f >= settings.failureThreshold) {
          rec.cd = settings.coolDownMs;
          rec.until = now + rec.cd;
          go('open', `${rec.f} consecutive failures: ${reason}`);
        }
      } else if (rec.s === 'half_open') {
        rec.f++;
        rec.cd = Math.min(rec.cd * 2, Math.max(settings.maxCoolDownMs, settings.coolDownMs));
        rec.until = now + rec.cd;
        rec.trial = 0;
        go('open', `trial call failed: ${reason}`);
      }
    }
    if (op !== 'read') this.recs.set(serverId, rec);
    return { state: view(rec), allowed, transitioned: moved, lastAt: rec.at };
  }

  async read(serverIds: readonly string[]): Promise<Map<string, BreakerState>> {
    return new Map(serverIds.map((id) => [id, this.recs.has(id) ? view(this.recs.get(id)!) : CLOSED]));
  }

  async log(serverId: string): Promise<BreakerTransition[]> {
    return [...(this.logs.get(serverId) ?? [])];
  }

  async remove(serverId: string): Promise<void> {
    this.recs.delete(serverId);
    this.logs.delete(serverId);
  }
}

// KEYS: state hash, log list. ARGV: op, failureThreshold, coolDownMs, maxCoolDownMs, trialMs, reason, log size, ttl ms.
// The clock is Redis's (TIME), so replicas' clocks never have to agree. Numbers
// that exceed Lua's 14-digit formatting go through string.format('%.0f').
const BREAKER_LUA = `
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local h = redis.call('HMGET', KEYS[1], 's', 'f', 'cd', 'until', 'trial', 'at')
local s = h[1] or 'closed'
local f = tonumber(h[2]) or 0
local base = tonumber(ARGV[3])
local cd = tonumber(h[3]) or base
local untl = tonumber(h[4]) or 0
local trial = tonumber(h[5]) or 0
local last = tonumber(h[6]) or 0
local op = ARGV[1]
local allowed = 1
local moved = 0
local function num(x) return string.format('%.0f', x) end
local function go(to, why)
  local at = now_us
  if at <= last then at = last + 1 end
  redis.call('LPUSH', KEYS[2], num(at) .. '|' .. s .. '|' .. to .. '|' .. f .. '|' .. num(cd) .. '|' .. why)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
  s = to
  last = at
  moved = 1
end
if op == 'allow' then
  if s == 'open' then
    if now >= untl then
      go('half_open', 'cool-down of ' .. num(cd) .. ' ms over: trial call')
      trial = now + tonumber(ARGV[5])
    else
      allowed = 0
    end
  elseif s == 'half_open' then
    if now >= trial then trial = now + tonumber(ARGV[5]) else allowed = 0 end
  end
elseif op == 'success' then
  if s == 'half_open' then
    f = 0
    cd = base
    trial = 0
    go('closed', 'trial call succeeded')
  elseif s == 'closed' then
    if f == 0 then op = 'read' end
    f = 0
  end
elseif op == 'failure' then
  if s == 'closed' then
    f = f + 1
    if f >= tonumber(ARGV[2]) then
      cd = base
      untl = now + cd
      go('open', f .. ' consecutive failures: ' .. ARGV[6])
    end
  elseif s == 'half_open' then
    f = f + 1
    cd = math.min(cd * 2, math.max(tonumber(ARGV[4]), base))
    untl = now + cd
    trial = 0
    go('open', 'trial call failed: ' .. ARGV[6])
  end
end
if op ~= 'read' then
  redis.call('HSET', KEYS[1], 's', s, 'f', f, 'cd', num(cd), 'until', num(untl), 'trial', num(trial), 'at', num(last))
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
return { s, allowed, moved, num(untl), num(last), f, num(cd) }
`;

type Scripted = Redis & {
  healthBreaker(state: string, log: string, ...args: (string | number)[]): Promise<[string, number, number, string, string, number, string]>;
};

/** How long an idle breaker's keys stay in Redis (refreshed by every write). */
const BREAKER_TTL_MS = 7 * 24 * 3600 * 1000;

export function parseTransition(line: string): BreakerTransition | undefined {
  const parts = line.split('|');
  if (parts.length < 6) return undefined;
  const [at, from, to, failures, coolDownMs] = parts;
  return {
    at: Number(at),
    from: from as CircuitState,
    to: to as CircuitState,
    failures: Number(failures),
    coolDownMs: Number(coolDownMs),
    reason: parts.slice(5).join('|'),
  };
}

/** Breakers shared by every replica: one hash and one transition log per server, changed by one Lua script (atomic). */
export class RedisBreakerStore implements BreakerStore {
  private readonly redis: Scripted;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.redis = redis as Scripted;
    this.redis.defineCommand('healthBreaker', { numberOfKeys: 2, lua: BREAKER_LUA });
  }

  private keys(serverId: string): [string, string] {
    return [`${this.prefix}:health:cb:${serverId}`, `${this.prefix}:health:cb:${serverId}:log`];
  }

  async apply(serverId: string, op: BreakerOp, settings: BreakerSettings, reason = 'failed'): Promise<BreakerOutcome> {
    const [state, log] = this.keys(serverId);
    const [s, allowed, moved, until, last, f, cd] = await this.redis.healthBreaker(
      state,
      log,
      op,
      settings.failureThreshold,
      settings.coolDownMs,
      settings.maxCoolDownMs,
      settings.timeoutMs,
      reason.replace(/\s+/g, ' ').slice(0, 300),
      BREAKER_LOG_SIZE,
      BREAKER_TTL_MS,
    );
    const st = s as CircuitState;
    const view: BreakerState =
      st === 'open' ? { state: st, failures: f, coolDownMs: Number(cd), retryAt: Number(until) } : { state: st, failures: f, coolDownMs: Number(cd) };
    return { state: view, allowed: allowed === 1, transitioned: moved === 1, lastAt: Number(last) };
  }

  async read(serverIds: readonly string[]): Promise<Map<string, BreakerState>> {
    const out = new Map<string, BreakerState>();
    if (serverIds.length === 0) return out;
    const pipeline = this.redis.pipeline();
    for (const id of serverIds) pipeline.hmget(this.keys(id)[0], 's', 'f', 'cd', 'until');
    const results = (await pipeline.exec()) ?? [];
    serverIds.forEach((id, i) => {
      const [error, value] = results[i] ?? [new Error('no reply')];
      if (error) throw error;
      const [s, f, cd, until] = value as (string | null)[];
      const state = (s ?? 'closed') as CircuitState;
      const base = { state, failures: Number(f ?? 0), coolDownMs: Number(cd ?? 0) };
      out.set(id, state === 'open' ? { ...base, retryAt: Number(until ?? 0) } : base);
    });
    return out;
  }

  async log(serverId: string): Promise<BreakerTransition[]> {
    const lines = await this.redis.lrange(this.keys(serverId)[1], 0, -1);
    return lines
      .map(parseTransition)
      .filter((t): t is BreakerTransition => t !== undefined)
      .reverse();
  }

  async remove(serverId: string): Promise<void> {
    await this.redis.del(...this.keys(serverId));
  }
}

/**
 * Redis while it answers, this replica's memory while it does not (DESIGN
 * invariant 9: a gateway keeps breaking circuits per replica rather than
 * failing). The memory copy starts closed; Redis's state is used again as soon
 * as it answers.
 */
export class FallbackBreakerStore implements BreakerStore {
  private degraded = false;

  constructor(
    private readonly primary: RedisBreakerStore,
    private readonly fallback: MemoryBreakerStore,
    private readonly usable: () => boolean,
    private readonly onDegraded: (degraded: boolean, why: string) => void,
  ) {}

  get isDegraded(): boolean {
    return this.degraded;
  }

  private async run<T>(primary: () => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    if (!this.usable()) return this.fall('redis is not connected', fallback);
    try {
      const value = await primary();
      if (this.degraded) {
        this.degraded = false;
        this.onDegraded(false, 'redis answers again');
      }
      return value;
    } catch (error) {
      return this.fall((error as Error).message, fallback);
    }
  }

  private fall<T>(why: string, fallback: () => Promise<T>): Promise<T> {
    if (!this.degraded) {
      this.degraded = true;
      this.onDegraded(true, why);
    }
    return fallback();
  }

  apply(serverId: string, op: BreakerOp, settings: BreakerSettings, reason?: string): Promise<BreakerOutcome> {
    return this.run(
      () => this.primary.apply(serverId, op, settings, reason),
      () => this.fallback.apply(serverId, op, settings, reason),
    );
  }

  read(serverIds: readonly string[]): Promise<Map<string, BreakerState>> {
    return this.run(
      () => this.primary.read(serverIds),
      () => this.fallback.read(serverIds),
    );
  }

  log(serverId: string): Promise<BreakerTransition[]> {
    return this.run(
      () => this.primary.log(serverId),
      () => this.fallback.log(serverId),
    );
  }

  async remove(serverId: string): Promise<void> {
    await this.fallback.remove(serverId);
    await this.run(
      () => this.primary.remove(serverId),
      async () => undefined,
    );
  }
}
