import { Inject, Injectable } from '@nestjs/common';
import { hash } from 'node:crypto';
import { Counter } from 'prom-client';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../ops/metrics.service.js';
import type { Principal } from './principal.js';

/** Entries a replica keeps at most; past it the cache starts afresh (a flood of distinct valid credentials). */
const MAX_ENTRIES = 10_000;

interface Entry {
  readonly principal: Principal;
  readonly until: number;
}

/**
 * The principals of recently seen API keys and session tokens, for at most
 * CREDENTIAL_CACHE_MS (≤ 1 s), so a busy client is looked up in PostgreSQL
 * once a second per replica rather than once a request. Only credentials
 * that were valid are kept (a new key works at once; a wrong one is always
 * asked for). Credentials stay live (DESIGN invariant 11): a revocation,
 * logout, user deletion or role change empties the cache of every replica at
 * once through the CredentialWatcher (bus control message `credentials`), and
 * the TTL bounds it when that message is lost. A lookup that began before an
 * emptying does not refill the cache (`generation`), so a replica never keeps
 * an answer read before the change it was told about.
 */
@Injectable()
export class CredentialCache {
  private readonly ttlMs: number;
  private readonly entries = new Map<string, Entry>();
  /** Lookups in progress, shared by concurrent requests with the same credential. */
  private readonly loading = new Map<string, Promise<Principal | undefined>>();
  private generation = 0;
  private readonly lookups: Counter<'result'>;
  private readonly clears: Counter;

  constructor(@Inject(APP_CONFIG) config: AppConfig, metrics: MetricsService) {
    this.ttlMs = config.security.credentialCacheMs;
    this.lookups = new Counter({
      name: 'registry_credential_cache_lookups_total',
      help: 'API key and session authentications by whether the credential cache answered (hit) or PostgreSQL was asked (miss)',
      labelNames: ['result'],
      registers: [metrics.registry],
    });
    this.clears = new Counter({
      name: 'registry_credential_cache_clears_total',
      help: 'Times the credential cache was emptied because a credential was revoked or changed (here or on another replica)',
      registers: [metrics.registry],
    });
  }

  /** The principal `secret` stands for: cached, or `load`ed (and kept for the TTL when it is valid). */
  async get(kind: 'key' | 'session', secret: string, load: () => Promise<Principal | undefined>): Promise<Principal | undefined> {
    if (this.ttlMs === 0) {
      this.lookups.inc({ result: 'miss' });
      return load();
    }
    // Keyed by the secret's SHA-256 (the one-shot hash: a quarter of createHash's cost), never the secret itself.
    const id = `${kind}:${hash('sha256', secret)}`;
    const entry = this.entries.get(id);
    if (entry) {
      if (performance.now() < entry.until) {
        this.lookups.inc({ result: 'hit' });
        return entry.principal;
      }
      this.entries.delete(id);
    }
    this.lookups.inc({ result: 'miss' });
    const pending = this.loading.get(id);
    if (pending) return pending;
    const generation = this.generation;
    const started = performance.now();
    const lookup = load().finally(() => {
      if (this.loading.get(id) === lookup) this.loading.delete(id);
    });
    this.loading.set(id, lookup);
    const principal = await lookup;
    if (principal && generation === this.generation) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      // The TTL counts from the lookup's start: the answer is no older than that.
      this.entries.set(id, { principal, until: started + this.ttlMs });
    }
    return principal;
  }

  /** Forgets every credential (something changed: ask PostgreSQL again). */
  clear(): void {
    this.clears.inc();
    this.generation++;
    this.entries.clear();
    this.loading.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
