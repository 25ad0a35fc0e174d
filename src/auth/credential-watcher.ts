import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { EventBus } from '../bus/event-bus.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import { CredentialCache } from './credential-cache.js';
import type { Principal } from './principal.js';
import type { Role } from './roles.js';
import { UserRepository } from './user.repository.js';

/** Anything a credential holds open: an SSE stream, a Socket.IO socket, a gateway session. */
export interface CredentialHolder {
  close(reason: string): void;
}

interface Group {
  readonly credential: string;
  readonly role: Role;
  readonly holders: Set<CredentialHolder>;
}

export const CLOSE_REVOKED = 'credential revoked';
export const CLOSE_ROLE_CHANGED = 'credential role changed';

/**
 * Credentials are live (DESIGN invariant 11): whatever a credential holds open
 * ends, on every replica, within about a second of the key being revoked or
 * expiring, the session ending (logout, expiry) or its user being deleted or
 * getting another role. A role change ends the holder too: the client
 * reconnects and is filtered by its new role.
 *
 * Holders register with `track`. Every CREDENTIAL_CHECK_MS each replica runs
 * ONE query for all the distinct credentials it tracks (nothing when it tracks
 * none), so the cost is per replica and per distinct credential, never per
 * connection. The replica that makes the change calls `checkSoon`: every
 * replica (bus control message `credentials`) then empties its
 * CredentialCache, which REST authentication reads, and checks at once. When PostgreSQL cannot be asked, nothing is closed (streams
 * keep their connections while the database is down, DESIGN invariant 9); the
 * check runs again when it answers.
 */
@Injectable()
export class CredentialWatcher implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('CredentialWatcher');
  private readonly groups = new Map<string, Group>();
  private readonly holders = new Map<CredentialHolder, Group>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;
  private pending = false;
  private lastFailure = 0;
  private readonly closed: Counter<'reason'>;
  private readonly checks: Counter<'result'>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly users: UserRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: MetricsService,
    private readonly cache: CredentialCache,
    private readonly bus: EventBus,
  ) {
    const groups = this.groups;
    new Gauge({
      name: 'registry_tracked_credentials',
      help: 'Distinct credentials (and roles) that open streams hold on this replica',
      registers: [metrics.registry],
      collect() {
        this.set(groups.size);
      },
    });
    this.closed = new Counter({
      name: 'registry_credential_closes_total',
      help: 'Holders (streams, sockets) closed because their credential was revoked, expired or changed role',
      labelNames: ['reason'],
      registers: [metrics.registry],
    });
    this.checks = new Counter({
      name: 'registry_credential_checks_total',
      help: 'Credential checks by result',
      labelNames: ['result'],
      registers: [metrics.registry],
    });
  }

  onModuleInit(): void {
    this.timer = setInterval(() => this.recheck(), this.config.security.credentialCheckMs);
    this.timer.unref();
    this.bus.onControl((message) => {
      if (message.op !== 'credentials') return;
      this.cache.clear();
      this.recheck();
    });
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Watches `principal`'s credential for as long as `holder` is open; returns the untrack function. */
  track(principal: Principal, holder: CredentialHolder): () => void {
    this.untrack(holder);
    const key = `${principal.credential}|${principal.role}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { credential: principal.credential, role: principal.role, holders: new Set() };
      this.groups.set(key, group);
    }
    group.holders.add(holder);
    this.holders.set(holder, group);
    return () => this.untrack(holder);
  }

  /** Stops watching for `holder` (idempotent; call it when the holder closes for any reason). */
  untrack(holder: CredentialHolder): void {
    const group = this.holders.get(holder);
    if (!group) return;
    this.holders.delete(holder);
    group.holders.delete(holder);
    if (group.holders.size === 0) this.groups.delete(`${group.credential}|${group.role}`);
  }

  get trackedHolders(): number {
    return this.holders.size;
  }

  /**
   * A credential was revoked or changed on this replica (key revoked, logout,
   * user deleted, new role or password), after its change committed: this
   * replica forgets its cached credentials and checks its holders now, and
   * tells every other replica to do the same (bus control message; should it
   * be lost, the cache's TTL and the periodic check still bound the delay).
   */
  checkSoon(): void {
    this.cache.clear();
    this.recheck();
    void this.bus
      .publishControl({ op: 'credentials', from: this.config.replicaId })
      .catch((error: Error) => this.logger.warn(`credential change not announced on the bus: ${error.message}`));
  }

  /** Runs a check now, or right after the one in progress (coalesced). */
  private recheck(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = this.check().finally(() => {
      this.running = undefined;
      if (this.pending) {
        this.pending = false;
        this.recheck();
      }
    });
  }

  /** One query for every tracked credential; closes the holders of those no longer valid. Returns how many were closed. */
  async check(): Promise<number> {
    if (this.groups.size === 0) return 0;
    const keys = new Set<string>();
    const sessions = new Set<string>();
    for (const group of this.groups.values()) {
      const [kind, id] = splitCredential(group.credential);
      if (kind === 'key') keys.add(id);
      else if (kind === 'session') sessions.add(id);
    }
    let valid: Map<string, Role>;
    try {
      valid = await this.users.validCredentials(this.dataSource.manager, [...keys], [...sessions]);
      this.checks.inc({ result: 'ok' });
    } catch (error) {
      // Database unreachable: keep everything open, ask again next tick.
      this.checks.inc({ result: 'failed' });
      if (Date.now() - this.lastFailure > 10_000) {
        this.lastFailure = Date.now();
        this.logger.warn(`credential check failed, streams kept open: ${(error as Error).message}`);
      }
      return 0;
    }
    let closed = 0;
    for (const group of [...this.groups.values()]) {
      // A credential first tracked while the query ran was not asked about: the next check judges it.
      const [kind, id] = splitCredential(group.credential);
      if ((kind === 'key' && !keys.has(id)) || (kind === 'session' && !sessions.has(id))) continue;
      const role = valid.get(group.credential);
      if (role === group.role) continue;
      const reason = role === undefined ? CLOSE_REVOKED : CLOSE_ROLE_CHANGED;
      for (const holder of [...group.holders]) {
        this.untrack(holder);
        try {
          holder.close(reason);
        } catch (error) {
          this.logger.warn(`closing a holder failed: ${(error as Error).message}`);
        }
        closed++;
        this.closed.inc({ reason: role === undefined ? 'revoked' : 'role_changed' });
      }
    }
    return closed;
  }
}

function splitCredential(credential: string): [string, string] {
  const colon = credential.indexOf(':');
  return [credential.slice(0, colon), credential.slice(colon + 1)];
}
