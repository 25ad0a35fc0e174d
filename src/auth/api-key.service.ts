import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { one, rows, sql } from '../database/sql.js';
import type { Role } from '../events/event-catalog.js';
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
}

interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  created_by: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

const BOOTSTRAP_LOCK = 7_346_110_003;

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger('ApiKeys');

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Creates a key; the clear key is returned here only, never stored. */
  async create(name: string, role: Role, createdBy: string | null, key = newApiKey()): Promise<{ key: string; record: ApiKeyRecord }> {
    return { key, record: toRecord(await this.insert(this.dataSource.manager, name, key, role, createdBy)) };
  }

  /** Stores a key as its hash (plus a short prefix to recognise it by). */
  private async insert(manager: EntityManager, name: string, key: string, role: Role, createdBy: string | null): Promise<ApiKeyRow> {
    const row = await one<ApiKeyRow>(
      manager,
      `INSERT INTO api_keys (name, prefix, key_hash, role, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [name, key.slice(0, 11), sha256(key), role, createdBy],
    );
    return row!;
  }

  async list(): Promise<ApiKeyRecord[]> {
    return (await rows<ApiKeyRow>(this.dataSource.manager, 'SELECT * FROM api_keys ORDER BY created_at, id')).map(toRecord);
  }

  async revoke(id: string): Promise<void> {
    const result = await sql(this.dataSource.manager, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    if (result.count === 0) throw DomainError.notFound('API key', id);
  }

  async authenticate(key: string): Promise<Principal | undefined> {
    if (!key.startsWith('ar_') || key.length > 200) return undefined;
    const row = await one<ApiKeyRow>(
      this.dataSource.manager,
      'SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [sha256(key)],
    );
    return row ? { kind: 'api_key', id: `key:${row.id}`, name: row.name, role: row.role } : undefined;
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
