import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { type ApiKeyRecord, ApiKeyRepository } from './api-key.repository.js';
import { CredentialWatcher } from './credential-watcher.js';
import type { Principal } from './principal.js';
import type { Role } from './roles.js';
import { newApiKey, sha256 } from './secrets.js';

/** `last_used_at` is written at most this often per key (and replica). */
const LAST_USED_EVERY_MS = 60_000;

/** API keys for services and BFFs: created, listed, revoked, authenticated; the bootstrap admin key. */
@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger('ApiKeys');
  /** When this replica last wrote `last_used_at` for a key. */
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly keys: ApiKeyRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly watcher: CredentialWatcher,
  ) {}

  /** Creates a key; the clear key is returned here only, never stored. */
  async create(
    name: string,
    role: Role,
    createdBy: string | null,
    key = newApiKey(),
    expiresAt: Date | null = null,
    agentId: string | null = null,
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    if (agentId === null) return { key, record: await this.insert(this.dataSource.manager, name, key, role, createdBy, expiresAt) };
    const record = await this.dataSource.transaction(async (m) => {
      if (!(await this.keys.agentExists(m, agentId))) {
        throw new DomainError('validation_failed', `no agent ${agentId}`, { errors: [{ field: 'agentId', message: `no agent with id ${agentId}` }] });
      }
      return this.insert(m, name, key, role, createdBy, expiresAt, agentId);
    });
    return { key, record };
  }

  /** The agent an API key is bound to (the MCP gateway limits the key to its trust rules); null when none. */
  async agentOf(keyId: string): Promise<string | null> {
    return this.keys.agentOf(this.dataSource.manager, keyId);
  }

  /** Stores a key as its hash (plus a short prefix to recognise it by). */
  private insert(
    manager: EntityManager,
    name: string,
    key: string,
    role: Role,
    createdBy: string | null,
    expiresAt: Date | null = null,
    agentId: string | null = null,
  ): Promise<ApiKeyRecord> {
    return this.keys.insert(manager, { name, keyHash: sha256(key), prefix: key.slice(0, 11), role, createdBy, expiresAt, agentId });
  }

  async list(): Promise<ApiKeyRecord[]> {
    return this.keys.list(this.dataSource.manager);
  }

  async revoke(id: string): Promise<void> {
    if (!(await this.keys.revoke(this.dataSource.manager, id))) throw DomainError.notFound('API key', id);
    // This replica's streams end now; the others' at their next credential check.
    this.watcher.checkSoon();
  }

  async authenticate(key: string): Promise<Principal | undefined> {
    if (!key.startsWith('ar_') || key.length > 200) return undefined;
    const found = await this.keys.findUsable(this.dataSource.manager, sha256(key));
    if (!found) return undefined;
    this.touch(found.id);
    const id = `key:${found.id}`;
    return { kind: 'api_key', id, name: found.name, role: found.role, credential: id, via: 'api_key' };
  }

  /**
   * Records `last_used_at`, at most once a minute per key: this replica skips
   * the write inside the minute, and the UPDATE's condition skips it when
   * another replica wrote within the minute. Never delays or fails the request.
   */
  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWrites.get(id) ?? 0) < LAST_USED_EVERY_MS) return;
    if (this.lastUsedWrites.size >= 10_000) this.lastUsedWrites.clear();
    this.lastUsedWrites.set(id, now);
    void this.keys.touchLastUsed(this.dataSource.manager, id).catch((error: Error) => this.logger.warn(`last_used_at not recorded: ${error.message}`));
  }

  /**
   * First start: make sure an admin key exists. BOOTSTRAP_ADMIN_KEY (e.g. from
   * a Kubernetes Secret) is registered if it is not yet; without it, a key is
   * generated only when there is no active admin key, and printed once.
   * Replicas starting together serialize on an advisory lock.
   */
  async bootstrap(): Promise<string | undefined> {
    return this.dataSource.transaction(async (manager) => {
      await this.keys.lockBootstrap(manager);
      const wanted = this.config.bootstrapAdminKey;
      if (wanted) {
        if (!(await this.keys.exists(manager, sha256(wanted)))) {
          await this.insert(manager, 'bootstrap-admin', wanted, 'admin', 'bootstrap');
          this.logger.log('registered the admin key from BOOTSTRAP_ADMIN_KEY');
        }
        return undefined;
      }
      if (await this.keys.hasActiveAdmin(manager)) return undefined;
      const key = newApiKey();
      await this.insert(manager, 'bootstrap-admin', key, 'admin', 'bootstrap');
      return key;
    });
  }
}
