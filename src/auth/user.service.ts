import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { DomainError } from '../common/domain-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { PG, pgCode } from '../database/sql.js';
import { CredentialWatcher } from './credential-watcher.js';
import { LoginThrottle } from './login-throttle.js';
import { PasswordHasher } from './password-hasher.js';
import type { Principal } from './principal.js';
import type { Role } from './roles.js';
import { needsRehash, newToken, sha256 } from './secrets.js';
import { type UserRecord, UserRepository, type UserWithHash } from './user.repository.js';

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
    private readonly users: UserRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly hasher: PasswordHasher,
    private readonly throttle: LoginThrottle,
    private readonly watcher: CredentialWatcher,
  ) {}

  async create(username: string, password: string, role: Role): Promise<UserRecord> {
    try {
      return await this.users.insert(this.dataSource.manager, username, await this.hasher.hash(password), role);
    } catch (error) {
      if (pgCode(error) === PG.uniqueViolation) throw DomainError.conflict(`user "${username}" already exists`);
      throw error;
    }
  }

  async list(): Promise<UserRecord[]> {
    return this.users.list(this.dataSource.manager);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.users.delete(this.dataSource.manager, id))) throw DomainError.notFound('user', id);
    this.watcher.checkSoon();
  }

  /**
   * Changes a user's role and/or password. A new role reaches open streams
   * (they end and reconnect with the new filter); a new password ends every
   * session of the user.
   */
  async update(id: string, patch: { role?: Role; password?: string }): Promise<UserRecord> {
    const hash = patch.password !== undefined ? await this.hasher.hash(patch.password) : undefined;
    const user = await this.dataSource.transaction(async (m) => {
      const updated = await this.users.update(m, id, { role: patch.role, passwordHash: hash });
      if (!updated) throw DomainError.notFound('user', id);
      if (hash !== undefined) await this.users.deleteSessionsOf(m, id);
      return updated;
    });
    this.watcher.checkSoon();
    return user;
  }

  /**
   * Returns a new session token, or undefined when the credentials are wrong.
   * Throws 429 while the username or the client address is locked out (before
   * any hashing), 503 when the replica's hashing queue is full.
   */
  async login(username: string, password: string, clientAddress: string): Promise<{ token: string; user: UserRecord; expiresAt: Date } | undefined> {
    await this.throttle.check(username, clientAddress);
    const user = await this.users.findByUsername(this.dataSource.manager, username);
    this.dummyHash ??= this.hasher.hash('not-a-real-password').catch((error: unknown) => {
      this.dummyHash = undefined;
      throw error;
    });
    const ok = await this.hasher.verify(password, user?.passwordHash ?? (await this.dummyHash));
    if (!user || !ok) {
      await this.throttle.failed(username, clientAddress);
      return undefined;
    }
    await this.throttle.succeeded(username, clientAddress);
    if (needsRehash(user.passwordHash)) await this.rehash(user, password);
    const token = newToken();
    const expiresAt = new Date(Date.now() + this.config.session.ttlMs);
    await this.users.insertSession(this.dataSource.manager, sha256(token), user.id, expiresAt);
    await this.users.deleteExpiredSessions(this.dataSource.manager);
    const { passwordHash: _hash, ...record } = user;
    return { token, user: record, expiresAt };
  }

  /**
   * Upgrades a hash made with weaker settings, now that the password is known.
   * Only if the row still holds the hash just verified; a failure (hashing
   * queue full) leaves it for the next login.
   */
  private async rehash(user: UserWithHash, password: string): Promise<void> {
    try {
      const hash = await this.hasher.hash(password);
      await this.users.replaceHash(this.dataSource.manager, user.id, user.passwordHash, hash);
    } catch {
      // next login
    }
  }

  async logout(token: string): Promise<void> {
    await this.users.deleteSession(this.dataSource.manager, sha256(token));
    this.watcher.checkSoon();
  }

  async authenticateSession(token: string): Promise<Principal | undefined> {
    if (token.length > 200) return undefined;
    const hash = sha256(token);
    const user = await this.users.findBySession(this.dataSource.manager, hash);
    return user ? { kind: 'user', id: `user:${user.id}`, name: user.username, role: user.role, credential: `session:${hash}`, via: 'cookie' } : undefined;
  }
}
