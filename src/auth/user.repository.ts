import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { one, rows, sql } from '../database/sql.js';
import type { Role } from './roles.js';

export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  createdAt: string;
}

/** A user with the hash its password is checked against (never leaves the auth services). */
export interface UserWithHash extends UserRecord {
  passwordHash: string;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  created_at: Date;
}

const toRecord = (row: UserRow): UserRecord => ({ id: row.id, username: row.username, role: row.role, createdAt: row.created_at.toISOString() });

/**
 * Every query on `users` and their `sessions`; each takes the caller's
 * EntityManager (and so its transaction). Sessions are stored as the hash of
 * their token.
 */
@Injectable()
export class UserRepository {
  /** Throws PostgreSQL's unique violation when the username is taken. */
  async insert(m: EntityManager, username: string, passwordHash: string, role: Role): Promise<UserRecord> {
    const row = await one<UserRow>(m, 'INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING *', [username, passwordHash, role]);
    return toRecord(row!);
  }

  async list(m: EntityManager): Promise<UserRecord[]> {
    return (await rows<UserRow>(m, 'SELECT * FROM users ORDER BY username')).map(toRecord);
  }

  /** Returns false when there is no such user. */
  async delete(m: EntityManager, id: string): Promise<boolean> {
    return (await sql(m, 'DELETE FROM users WHERE id = $1', [id])).count > 0;
  }

  /** Sets what is given (role, password hash); undefined when there is no such user. */
  async update(m: EntityManager, id: string, patch: { role?: Role; passwordHash?: string }): Promise<UserRecord | undefined> {
    const row = await one<UserRow>(m, 'UPDATE users SET role = coalesce($2, role), password_hash = coalesce($3, password_hash) WHERE id = $1 RETURNING *', [
      id,
      patch.role ?? null,
      patch.passwordHash ?? null,
    ]);
    return row ? toRecord(row) : undefined;
  }

  async findByUsername(m: EntityManager, username: string): Promise<UserWithHash | undefined> {
    const row = await one<UserRow>(m, 'SELECT * FROM users WHERE username = $1', [username]);
    return row ? { ...toRecord(row), passwordHash: row.password_hash } : undefined;
  }

  /** Replaces the password hash only if the row still holds `previous` (a concurrent change wins). */
  async replaceHash(m: EntityManager, id: string, previous: string, next: string): Promise<void> {
    await sql(m, 'UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3', [next, id, previous]);
  }

  async insertSession(m: EntityManager, tokenHash: string, userId: string, expiresAt: Date): Promise<void> {
    await sql(m, 'INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)', [tokenHash, userId, expiresAt]);
  }

  async deleteExpiredSessions(m: EntityManager): Promise<void> {
    await sql(m, 'DELETE FROM sessions WHERE expires_at < now()');
  }

  async deleteSession(m: EntityManager, tokenHash: string): Promise<void> {
    await sql(m, 'DELETE FROM sessions WHERE token_hash = $1', [tokenHash]);
  }

  async deleteSessionsOf(m: EntityManager, userId: string): Promise<void> {
    await sql(m, 'DELETE FROM sessions WHERE user_id = $1', [userId]);
  }

  /** The user a session token (by hash) belongs to, if the session has not expired. */
  async findBySession(m: EntityManager, tokenHash: string): Promise<UserRecord | undefined> {
    const row = await one<UserRow>(m, `SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()`, [
      tokenHash,
    ]);
    return row ? toRecord(row) : undefined;
  }

  /**
   * Of the given API key ids and session token hashes, those still valid, as
   * `key:<id>` / `session:<hash>` with their current role: one query for
   * every credential a replica's open streams hold (CredentialWatcher).
   */
  async validCredentials(m: EntityManager, keyIds: string[], sessionHashes: string[]): Promise<Map<string, Role>> {
    const found = await rows<{ credential: string; role: Role }>(
      m,
      `SELECT 'key:' || k.id::text AS credential, k.role FROM api_keys k
        WHERE k.id = ANY($1::uuid[]) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
       UNION ALL
       SELECT 'session:' || s.token_hash, u.role FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = ANY($2::text[]) AND s.expires_at > now()`,
      [keyIds, sessionHashes],
    );
    return new Map(found.map((r) => [r.credential, r.role]));
  }
}
