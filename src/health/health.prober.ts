import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { EgressClient } from '../egress/egress.module.js';
import { CircuitBreakers } from './circuit-breakers.js';
import { HealthRuntime } from './health.runtime.js';
import { applyCheck, type StatusTracker } from './health-status.js';
import { HealthRepository } from './health.repository.js';
import type { BreakerState, CheckResult, HealthRecord, ProbeTarget } from './health.types.js';
import { probeMcpServer, type ProbeOutcome } from './mcp-probe.js';
import { ServerDirectory } from './server-directory.js';

interface Owned {
  tracker?: StatusTracker;
  toolsHash?: string | null;
  timer?: NodeJS.Timeout;
  running: boolean;
  /** Interval the timer was set with (a changed setting reschedules). */
  intervalMs: number;
}

/** Longest wait before the first probe of a server never checked (spreads a large registry's first round). */
const FIRST_PROBE_SPREAD_MS = 30_000;

/**
 * Probes the servers this replica owns, each on its own interval: breaker
 * first (an open circuit's cool-down ends with this probe as its trial), then
 * the probe itself (mcp-probe.ts, bounded by HEALTH_MAX_CONCURRENT_PROBES per
 * replica), then the status (health-status.ts) and — only when it changed —
 * the durable record with its event; every result becomes a sample and a live
 * `health.check`. Ownership (probe-ownership.ts) is refreshed every lease/3.
 */
@Injectable()
export class HealthProber implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('HealthProber');
  private readonly owned = new Map<string, Owned>();
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private refreshing = false;
  private readonly actor: string;
  /** Probes run by this replica (tests, metrics). */
  probesRun = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly runtime: HealthRuntime,
    private readonly directory: ServerDirectory,
    private readonly breakers: CircuitBreakers,
    private readonly repository: HealthRepository,
    private readonly egress: EgressClient,
  ) {
    this.actor = `health:${config.replicaId}`;
  }

  onApplicationBootstrap(): void {
    if (!this.config.health.probes) return;
    this.runtime.ownership.onChange((gained, lost) => this.ownershipChanged(gained, lost));
    this.directory.onChange((id, target) => this.serverChanged(id, target));
    void this.directory.ready().then(() => this.refresh());
    this.heartbeat = setInterval(() => void this.refresh(), Math.max(100, Math.floor(this.config.health.ownerLeaseMs / 3)));
    this.heartbeat.unref();
  }

  private candidates(): string[] {
    return this.directory
      .all()
      .filter((s) => s.enabled)
      .map((s) => s.id);
  }

  private async refresh(): Promise<void> {
    if (this.stopped || this.refreshing) return;
    this.refreshing = true;
    try {
      await this.runtime.ownership.refresh(this.candidates());
    } finally {
      this.refreshing = false;
    }
  }

  private serverChanged(id: string, target: ProbeTarget | undefined): void {
    if (!target) {
      // Deleted: its row went with it (ON DELETE CASCADE); its Redis keys go too.
      void this.breakers.remove(id);
      void this.runtime.samples.remove(id);
    }
    if (!target || !target.enabled) {
      this.stop(id);
      void this.refresh();
      return;
    }
    const owned = this.owned.get(id);
    if (owned && owned.intervalMs !== target.healthCheck.intervalMs && !owned.running) this.schedule(id, 0);
    else if (!owned) void this.refresh();
  }

  private ownershipChanged(gained: readonly string[], lost: readonly string[]): void {
    for (const id of lost) this.stop(id);
    if (gained.length > 0) void this.adopt(gained);
  }

  private stop(id: string): void {
    const owned = this.owned.get(id);
    if (!owned) return;
    clearTimeout(owned.timer);
    this.owned.delete(id);
    this.runtime.samples.forget(id);
  }

  /** Newly owned servers: their recorded status, when they were last checked, their circuit reconciled; then scheduled. */
  private async adopt(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.owned.set(id, { running: false, intervalMs: this.directory.get(id)?.healthCheck.intervalMs ?? 0 });
    let records = new Map<string, HealthRecord>();
    let last = new Map<string, CheckResult[]>();
    let live = new Map<string, BreakerState>();
    try {
      [records, last, live] = await Promise.all([this.repository.find(ids), this.runtime.samples.recent(ids, 1), this.breakers.states(ids)]);
    } catch (error) {
      this.logger.warn(`reading the health of adopted servers failed: ${(error as Error).message}`);
    }
    const now = Date.now();
    for (const id of ids) {
      const owned = this.owned.get(id);
      const target = this.directory.get(id);
      if (!owned || !target) continue;
      const record = records.get(id);
      owned.tracker = { status: record?.status ?? 'unknown', reason: record?.statusReason ?? null, failures: 0, successes: 0 };
      owned.toolsHash = record?.toolsHash ?? null;
      // A circuit whose recorded state differs from the live one (a recording lost to an outage) is caught up.
      const breaker = live.get(id);
      if (breaker && breaker.state !== (record?.circuit ?? 'closed')) void this.breakers.sync(id);
      const interval = target.healthCheck.intervalMs;
      const lastAt = last.get(id)?.[0]?.at;
      const due = lastAt !== undefined ? Date.parse(lastAt) + interval - now : Math.random() * Math.min(interval, FIRST_PROBE_SPREAD_MS);
      this.schedule(id, Math.max(0, Math.min(due, interval)));
    }
  }

  private schedule(id: string, delayMs: number): void {
    const owned = this.owned.get(id);
    if (!owned || this.stopped) return;
    clearTimeout(owned.timer);
    owned.intervalMs = this.directory.get(id)?.healthCheck.intervalMs ?? owned.intervalMs;
    owned.timer = setTimeout(() => void this.run(id), delayMs);
    owned.timer.unref();
  }

  private async slot(): Promise<void> {
    if (this.active < this.config.health.maxConcurrentProbes) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.active--;
  }

  private async run(id: string): Promise<void> {
    const owned = this.owned.get(id);
    const target = this.directory.get(id);
    if (!owned || !target || !target.enabled || owned.running || this.stopped) return;
    owned.running = true;
    // The period is measured from probe start to probe start, so a server
    // going down is seen within one interval plus its timeout.
    const started = Date.now();
    let dueAt = started + target.healthCheck.intervalMs;
    try {
      await this.slot();
      try {
        // Ownership may have moved while the probe waited for a slot.
        if (this.owned.get(id) !== owned || this.stopped) return;
        this.runtime.probing.add(id);
        dueAt = await this.probeOnce(id, target, owned, started);
      } finally {
        this.runtime.probing.delete(id);
        this.release();
      }
    } catch (error) {
      this.logger.warn(`probing ${id} failed: ${(error as Error).message}`);
    } finally {
      owned.running = false;
      if (this.owned.get(id) === owned) this.schedule(id, Math.max(0, dueAt - Date.now()));
    }
  }

  /** One probe of one owned server; returns when the next is due (epoch ms). */
  private async probeOnce(id: string, target: ProbeTarget, owned: Owned, started: number): Promise<number> {
    const settings = target.healthCheck;
    // An open circuit refuses (the probe still runs for the status, but does not count);
    // once its cool-down is over, this probe is the half-open trial.
    const gate = await this.breakers.apply(id, 'allow');
    const at = new Date().toISOString();
    let outcome: ProbeOutcome;
    try {
      const endpoint = await this.directory.endpoint(id);
      outcome = await probeMcpServer({ url: endpoint.url, transport: target.transport, headers: endpoint.headers, settings }, this.egress.fetch);
    } catch (error) {
      outcome = { ok: false, quality: 'failed', latencyMs: 0, step: 'configuration', error: (error as Error).message };
    }
    this.probesRun++;
    const dueAt = started + settings.intervalMs;
    if (!this.owned.has(id)) return dueAt; // ownership moved while probing: the new owner records
    let breaker = gate.state;
    if (gate.allowed) {
      const after = await this.breakers.apply(id, outcome.ok ? 'success' : 'failure', outcome.error ?? 'probe failed');
      breaker = after.state;
    }
    const tracker = owned.tracker ?? { status: 'unknown', reason: null, failures: 0, successes: 0 };
    owned.tracker = tracker;
    const change = applyCheck(tracker, outcome.quality, outcome.error ?? '', settings);
    const toolsChanged = outcome.toolsHash !== undefined && outcome.toolsHash !== owned.toolsHash;
    if (change || toolsChanged) {
      try {
        await this.repository.recordStatus(id, {
          from: change?.from ?? tracker.status,
          to: tracker.status,
          reason: change?.reason ?? (owned.toolsHash ? 'tool list changed' : (tracker.reason ?? 'tool list recorded')),
          latencyMs: outcome.latencyMs,
          toolCount: outcome.toolCount,
          toolsHash: outcome.toolsHash,
          actor: this.actor,
        });
        if (outcome.toolsHash !== undefined) owned.toolsHash = outcome.toolsHash;
      } catch (error) {
        // Not recorded (PostgreSQL away): the tracker goes back, so the next check records it.
        if (change) tracker.status = change.from;
        this.logger.warn(`recording the health of ${id} failed: ${(error as Error).message}`);
      }
    }
    const result: CheckResult = {
      serverId: id,
      ok: outcome.ok,
      quality: outcome.quality,
      latencyMs: outcome.latencyMs,
      at,
      ...(outcome.step ? { step: outcome.step } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
      ...(outcome.toolCount !== undefined ? { toolCount: outcome.toolCount, toolsHash: outcome.toolsHash } : {}),
      replica: this.config.replicaId,
      status: tracker.status,
    };
    await this.runtime.samples.push(result);
    this.runtime.checks.publish(result);
    // An open circuit is tried again as soon as its cool-down is over.
    if (breaker.state === 'open' && breaker.retryAt !== undefined) return Math.min(dueAt, breaker.retryAt + 20);
    return dueAt;
  }

  /** Servers this replica is probing now. */
  get ownedIds(): string[] {
    return [...this.owned.keys()];
  }

  /** Before the Redis connections close: the leases are given back, so others take over at once. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    for (const owned of this.owned.values()) clearTimeout(owned.timer);
    this.owned.clear();
    await this.runtime.ownership.stop();
  }
}
