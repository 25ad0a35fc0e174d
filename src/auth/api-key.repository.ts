import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { BOOTSTRAP_LOCK } from '../database/advisory-locks.js';
import { one, rows, sql } from '../database/sql.js';
import type { Role } from './roles.js';

export interface ApiKeyRecord {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  /** The agent whose trust rules limit this key in the MCP gateway; null: not bound. */
  agentId: string | null;
  createdBy: string | null;
  createdAt: string;
  revokedAt: string | null;
  /** Null: the key does not expire. */
  expiresAt: string | null;
  /** Recorded at most once a minute per key. */
  lastUsedAt: string | null;
}

export interface NewApiKey {
  readonly name: string;
  /** Stored as the SHA-256 given here; never the clear key. */
  readonly keyHash: string;
  /** The first characters of the clear key, to recognise it by in listings. */
  readonly prefix: string;
  readonly role: Role;
  readonly createdBy: string | null;
  readonly expiresAt: Date | null;
  readonly agentId?: string | null;
}

interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  agent_id: string | null;
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
    agentId: row.agent_id,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
  };
}

/** Every query on `api_keys`; each takes the caller's EntityManager (and so its transaction). */
@Injectable()
export class ApiKeyRepository {
  async insert(m: EntityManager, key: NewApiKey): Promise<ApiKeyRecord> {
    const row = await one<ApiKeyRow>(
      m,
      `INSERT INTO api_keys (name, prefix, key_hash, role, created_by, expires_at, agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [key.name, key.prefix, key.keyHash, key.role, key.createdBy, key.expiresAt, key.agentId ?? null],
    );
    return toRecord(row!);
  }

  /** Whether the agent exists, locking it against deletion until the caller's transaction ends (as the foreign key would). */
  async agentExists(m: EntityManager, agentId: string): Promise<boolean> {
    return (await one(m, 'SELECT 1 FROM agents WHERE id = $1 FOR KEY SHARE', [agentId])) !== undefined;
  }

  /** The agent a key is bound to (null: none, or no such key). */
  async agentOf(m: EntityManager, id: string): Promise<string | null> {
    return (await one<{ agent_id: string | null }>(m, 'SELECT agent_id FROM api_keys WHERE id = $1', [id]))?.agent_id ?? null;
  }

  async list(m: EntityManager): Promise<ApiKeyRecord[]> {
    return (await rows<ApiKeyRow>(m, 'SELECT * FROM api_keys ORDER BY created_at, id')).map(toRecord);
  }

  /** Returns false when there is no such key, or it was revoked already. */
  async revoke(m: EntityManager, id: string): Promise<boolean> {
    return (await sql(m, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id])).count > 0;
  }

  /** The key with this hash if it may be used now: not revoked, not expired. */
  async findUsable(m: EntityManager, keyHash: string): Promise<ApiKeyRecord | undefined> {
    const row = await one<ApiKeyRow>(m, 'SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [
      keyHash,
    ]);
    return row ? toRecord(row) : undefined;
  }

  /** Whether any key (revoked or not) has this hash. */
  async exists(m: EntityManager, keyHash: string): Promise<boolean> {
    return (await one(m, 'SELECT 1 FROM api_keys WHERE key_hash = $1', [keyHash])) !== undefined;
  }

  async hasActiveAdmin(m: EntityManager): Promise<boolean> {
    return (await one(m, "SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1")) !== undefined;
  }

  /** Records `last_used_at` unless another write (any replica) did within the last minute. */
  async touchLastUsed(m: EntityManager, id: string): Promise<void> {
    await sql(m, "UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", [id]);
  }

  /** Serializes bootstrap-key registration of replicas starting together (until the caller's transaction ends). */
  async lockBootstrap(m: EntityManager): Promise<void> {
    await m.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
  }
}
