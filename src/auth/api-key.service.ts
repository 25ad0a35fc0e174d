import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { BOOTSTRAP_LOCK } from '../database/advisory-locks.js';
import { one, rows, sql } from '../database/sql.js';
import type { Role } from './roles.js';
import { CredentialWatcher } from './credential-watcher.js';
import type { Principal } from './principal.js';
import { newApiKey, sha256 } from './secrets.js';

export interface ApiKeyRecord {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
  /** Null: the key does not expire. */
  expiresAt: string | null;
  /** Recorded at most once a minute per key. */
  lastUsedAt: string | null;
}

interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
  expires_at: Date | null;
  last_used_at: Date | null;
}

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
  };
}

/** `last_used_at` is written at most this often per key (and replica). */
const LAST_USED_EVERY_MS = 60_000;

@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger('ApiKeys');
  /** When this replica last wrote `last_used_at` for a key. */
  private readonly lastUsedWrites = new Map<string, number>();

  constructor(
    private readonly dataSource: DataSource,
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
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    return { key, record: toRecord(await this.insert(this.dataSource.manager, name, key, role, createdBy, expiresAt)) };
  }

  /** Stores a key as its hash (plus a short prefix to recognise it by). */
  private async insert(
    manager: EntityManager,
    name: string,
    key: string,
    role: Role,
    createdBy: string | null,
    expiresAt: Date | null = null,
  ): Promise<ApiKeyRow> {
    const row = await one<ApiKeyRow>(
      manager,
      `INSERT INTO api_keys (name, prefix, key_hash, role, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [name, key.slice(0, 11), sha256(key), role, createdBy, expiresAt],
    );
    return row!;
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await rows<ApiKeyRow>(this.dataSource.manager, 'SELECT * FROM api_keys ORDER BY created_at, id')).map(toRecord);
  }

  async revoke(id: string): Promise<void> {
    const result = await sql(this.dataSource.manager, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    if (result.count === 0) throw DomainError.notFound('API key', id);
    // This replica's streams end now; the others' at their next credential check.
    this.watcher.checkSoon();
  }

  async authenticate(key: string): Promise<Principal | undefined> {
    if (!key.startsWith('ar_') || key.length > 200) return undefined;
    const row = await one<ApiKeyRow>(
      this.dataSource.manager,
      'SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())',
      [sha256(key)],
    );
    if (!row) return undefined;
    this.touch(row.id);
    const id = `key:${row.id}`;
    return { kind: 'api_key', id, name: row.name, role: row.role, credential: id, via: 'api_key' };
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
    void sql(
      this.dataSource.manager,
      "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
      [id],
    ).catch((error: Error) => this.logger.warn(`last_used_at not recorded: ${error.message}`));
  }

  /**
   * First start: make sure an admin key exists. BOOTSTRAP_ADMIN_KEY (e.g. from
   * a Kubernetes Secret) is registered if it is not yet; without it, a key is
   * generated only when there is no active admin key, and printed once.
   * Replicas starting together serialize on an advisory lock.
   */
  async bootstrap(): Promise<string | undefined> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
      const wanted = this.config.bootstrapAdminKey;
      if (wanted) {
        const found = await one(manager, 'SELECT 1 FROM api_keys WHERE key_hash = $1', [sha256(wanted)]);
        if (!found) {
          await this.insert(manager, 'bootstrap-admin', wanted, 'admin', 'bootstrap');
          this.logger.log('registered the admin key from BOOTSTRAP_ADMIN_KEY');
        }
        return undefined;
      }
      const admin = await one(manager, "SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1");
      if (admin) return undefined;
      const key = newApiKey();
      await this.insert(manager, 'bootstrap-admin', key, 'admin', 'bootstrap');
      return key;
    });
  }
}
