import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RedisConnections } from '../bus/redis.connections.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { HEALTH_CHECK_DEFAULTS } from '../registry/mcp-servers/mcp-server.schemas.js';
import { type BreakerOp, type BreakerOutcome, type BreakerStore, FallbackBreakerStore, MemoryBreakerStore, RedisBreakerStore } from './breaker.store.js';
import { HealthRepository } from './health.repository.js';
import type { BreakerSettings, BreakerState } from './health.types.js';
import { ServerDirectory } from './server-directory.js';

/**
 * One circuit breaker per MCP server, shared by every replica (Redis; this
 * replica's memory without Redis or while Redis is away). The API the MCP
 * gateway uses around each call to a server, and the health probes use too:
 *
 * ```ts
 * if (!(await breakers.allow(serverId))) throw unavailable;   // open: fail fast
 * try { await call(); await breakers.recordSuccess(serverId); }
 * catch (e) { await breakers.recordFailure(serverId, e.message); throw e; }
 * ```
 *
 * A failed gateway call counts like a failed probe. Thresholds are the
 * server's (`healthCheck.failureThreshold`, `coolDownMs`, `maxCoolDownMs`).
 * Every transition is recorded with its `mcp_server.circuit_changed` event
 * (health.repository.ts), in order, by whichever replica made it.
 */
@Injectable()
export class CircuitBreakers {
  private readonly logger = new Logger('CircuitBreakers');
  readonly store: BreakerStore;
  private readonly actor: string;
  /** Per-server chain of recordings, so one replica never records a server twice at once. */
  private readonly syncing = new Map<string, Promise<unknown>>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly directory: ServerDirectory,
    private readonly repository: HealthRepository,
    @Optional() @Inject(RedisConnections) redis?: RedisConnections | null,
  ) {
    this.actor = `health:${config.replicaId}`;
    const memory = new MemoryBreakerStore();
    this.store = redis
      ? new FallbackBreakerStore(
          new RedisBreakerStore(redis.commands, config.redisPrefix),
          memory,
          () => redis.commands.status === 'ready',
          (degraded, why) =>
            degraded
              ? this.logger.warn(`circuit breakers fall back to this replica's memory: ${why}`)
              : this.logger.log('circuit breakers shared through Redis again'),
        )
      : memory;
  }

  private settings(serverId: string): BreakerSettings {
    const h = this.directory.get(serverId)?.healthCheck ?? HEALTH_CHECK_DEFAULTS;
    return { failureThreshold: h.failureThreshold, coolDownMs: h.coolDownMs, maxCoolDownMs: h.maxCoolDownMs, timeoutMs: h.timeoutMs };
  }

  /**
   * Whether a call to the server may go ahead: closed yes; open no, until its
   * cool-down is over, when this call becomes the half-open trial; half_open
   * only for the one trial in flight.
   */
  async allow(serverId: string): Promise<boolean> {
    return (await this.apply(serverId, 'allow')).allowed;
  }

  async recordSuccess(serverId: string): Promise<void> {
    await this.apply(serverId, 'success');
  }

  async recordFailure(serverId: string, reason = 'call failed'): Promise<void> {
    await this.apply(serverId, 'failure', reason);
  }

  async state(serverId: string): Promise<BreakerState> {
    return (await this.store.read([serverId])).get(serverId)!;
  }

  async states(serverIds: readonly string[]): Promise<Map<string, BreakerState>> {
    return this.store.read(serverIds);
  }

  /**
   * Applies one operation; a transition is recorded (row + event) before this
   * resolves, so the half-open trial a probe makes cannot overtake the event
   * that announces it.
   */
  async apply(serverId: string, op: BreakerOp, reason?: string): Promise<BreakerOutcome> {
    const outcome = await this.store.apply(serverId, op, this.settings(serverId), reason);
    if (outcome.transitioned) await this.sync(serverId);
    return outcome;
  }

  /** Records every transition not yet in the durable record (also the reconciliation after an outage). */
  sync(serverId: string): Promise<void> {
    const previous = this.syncing.get(serverId) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() =>
        this.repository.syncCircuit(
          serverId,
          async () => {
            const [log, current] = await Promise.all([this.store.log(serverId), this.store.read([serverId])]);
            return { log, current: current.get(serverId)! };
          },
          this.actor,
        ),
      )
      .then(
        () => undefined,
        (error: Error) =>
          this.logger.warn(`recording the circuit of ${serverId} failed (${error.message}); it is recorded at the next transition or ownership change`),
      );
    this.syncing.set(serverId, next);
    void next.finally(() => {
      if (this.syncing.get(serverId) === next) this.syncing.delete(serverId);
    });
    return next;
  }

  async remove(serverId: string): Promise<void> {
    await this.store.remove(serverId).catch(() => undefined);
  }
}
