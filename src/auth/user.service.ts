import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { one, PG, pgCode, rows, sql } from '../database/sql.js';
import type { Role } from './roles.js';
import { CredentialWatcher } from './credential-watcher.js';
import { LoginThrottle } from './login-throttle.js';
import { PasswordHasher } from './password-hasher.js';
import type { Principal } from './principal.js';
import { needsRehash, newToken, sha256 } from './secrets.js';

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

/**
 * GUI users and their sessions (kept in Postgres so any replica can read them).
 * Every password hash goes through the PasswordHasher (bounded concurrency);
 * logins are throttled per username and per client address first.
 */
@Injectable()
export class UserService {
  /** Verifying against a dummy hash when the user does not exist keeps timing uniform. */
  private dummyHash?: Promise<string>;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly hasher: PasswordHasher,
    private readonly throttle: LoginThrottle,
    private readonly watcher: CredentialWatcher,
  ) {}

  async create(username: string, password: string, role: Role): Promise<UserRecord> {
    try {
      const row = await one<UserRow>(
        this.dataSource.manager,
        'INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING *',
        [username, await this.hasher.hash(password), role],
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
    this.watcher.checkSoon();
  }

  /**
   * Changes a user's role and/or password. A new role reaches open streams
   * (they end and reconnect with the new filter); a new password ends every
   * session of the user.
   */
  async update(id: string, patch: { role?: Role; password?: string }): Promise<UserRecord> {
    const hash = patch.password !== undefined ? await this.hasher.hash(patch.password) : undefined;
    const row = await this.dataSource.transaction(async (m) => {
      const updated = await one<UserRow>(
        m,
        'UPDATE users SET role = coalesce($2, role), password_hash = coalesce($3, password_hash) WHERE id = $1 RETURNING *',
        [id, patch.role ?? null, hash ?? null],
      );
      if (!updated) throw DomainError.notFound('user', id);
      if (hash !== undefined) await sql(m, 'DELETE FROM sessions WHERE user_id = $1', [id]);
      return updated;
    });
    this.watcher.checkSoon();
    return toRecord(row);
  }

  /**
   * Returns a new session token, or undefined when the credentials are wrong.
   * Throws 429 while the username or the client address is locked out (before
   * any hashing), 503 when the replica's hashing queue is full.
   */
  async login(username: string, password: string, clientAddress: string): Promise<{ token: string; user: UserRecord; expiresAt: Date } | undefined> {
    await this.throttle.check(username, clientAddress);
    const row = await one<UserRow>(this.dataSource.manager, 'SELECT * FROM users WHERE username = $1', [username]);
    this.dummyHash ??= this.hasher.hash('not-a-real-password').catch((error: unknown) => {
      this.dummyHash = undefined;
      throw error;
    });
    const ok = await this.hasher.verify(password, row?.password_hash ?? (await this.dummyHash));
    if (!row || !ok) {
      await this.throttle.failed(username, clientAddress);
      return undefined;
    }
    await this.throttle.succeeded(username, clientAddress);
    if (needsRehash(row.password_hash)) await this.rehash(row, password);
    const token = newToken();
    const expiresAt = new Date(Date.now() + this.config.session.ttlMs);
    await this.dataSource.query('INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)', [sha256(token), row.id, expiresAt]);
    await this.dataSource.query('DELETE FROM sessions WHERE expires_at < now()');
    return { token, user: toRecord(row), expiresAt };
  }

  /**
   * Upgrades a hash made with weaker settings, now that the password is known.
   * Only if the row still holds the hash just verified; a failure (hashing
   * queue full) leaves it for the next login.
   */
  private async rehash(row: UserRow, password: string): Promise<void> {
    try {
      const hash = await this.hasher.hash(password);
      await sql(this.dataSource.manager, 'UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3', [hash, row.id, row.password_hash]);
    } catch {
      // next login
    }
  }

  async logout(token: string): Promise<void> {
    await this.dataSource.query('DELETE FROM sessions WHERE token_hash = $1', [sha256(token)]);
    this.watcher.checkSoon();
  }

  async authenticateSession(token: string): Promise<Principal | undefined> {
    if (token.length > 200) return undefined;
    const hash = sha256(token);
    const row = await one<UserRow>(
      this.dataSource.manager,
      `SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()`,
      [hash],
    );
    return row ? { kind: 'user', id: `user:${row.id}`, name: row.username, role: row.role, credential: `session:${hash}`, via: 'cookie' } : undefined;
  }
}
