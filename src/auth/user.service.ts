import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { one, PG, pgCode, rows, sql } from '../database/sql.js';
import type { Role } from '../events/event-catalog.js';
import type { Principal } from './principal.js';
import { hashPassword, newToken, sha256, verifyPassword } from './secrets.js';

export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  createdAt: string;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  created_at: Date;
}

const toRecord = (row: UserRow): UserRecord => ({ id: row.id, username: row.username, role: row.role, createdAt: row.created_at.toISOString() });

// Verifying against a dummy hash when the user does not exist keeps timing uniform.
const DUMMY_HASH = hashPassword('not-a-real-password');

/** GUI users and their sessions (kept in Postgres so any replica can read them). */
@Injectable()
export class UserService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(username: string, password: string, role: Role): Promise<UserRecord> {
    try {
      const row = await one<UserRow>(
        this.dataSource.manager,
        'INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING *',
        [username, await hashPassword(password), role],
      );
      return toRecord(row!);
    } catch (error) {
      if (pgCode(error) === PG.uniqueViolation) throw DomainError.conflict(`user "${username}" already exists`);
      throw error;
    }
  }

  async list(): Promise<UserRecord[]> {
    return (await rows<UserRow>(this.dataSource.manager, 'SELECT * FROM users ORDER BY username')).map(toRecord);
  }

  async delete(id: string): Promise<void> {
    const result = await sql(this.dataSource.manager, 'DELETE FROM users WHERE id = $1', [id]);
    if (result.count === 0) throw DomainError.notFound('user', id);
  }

  /** Returns a new session token, or undefined when the credentials are wrong. */
  async login(username: string, password: string): Promise<{ token: string; user: UserRecord; expiresAt: Date } | undefined> {
    const row = await one<UserRow>(this.dataSource.manager, 'SELECT * FROM users WHERE username = $1', [username]);
    const ok = await verifyPassword(password, row?.password_hash ?? (await DUMMY_HASH));
    if (!row || !ok) return undefined;
    const token = newToken();
    const expiresAt = new Date(Date.now() + this.config.session.ttlMs);
    await this.dataSource.query('INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)', [sha256(token), row.id, expiresAt]);
    await this.dataSource.query('DELETE FROM sessions WHERE expires_at < now()');
    return { token, user: toRecord(row), expiresAt };
  }

  async logout(token: string): Promise<void> {
    await this.dataSource.query('DELETE FROM sessions WHERE token_hash = $1', [sha256(token)]);
  }

  async authenticateSession(token: string): Promise<Principal | undefined> {
    if (token.length > 200) return undefined;
    const row = await one<UserRow>(
      this.dataSource.manager,
      `SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()`,
      [sha256(token)],
    );
    return row ? { kind: 'user', id: `user:${row.id}`, name: row.username, role: row.role } : undefined;
  }
}
