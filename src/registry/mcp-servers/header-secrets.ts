import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { one, sql } from '../../database/sql.js';
import { SecretBox, SecretRing } from './secret-box.js';

/** The `settings` row holding the generated key when SECRET_KEY is not configured. */
export const HEADER_KEY_SETTING = 'mcp_header_key';

/**
 * The keys for MCP server secrets (header values, URL query strings), as a
 * SecretRing: SECRET_KEY encrypts; SECRET_KEY_PREVIOUS — and a key generated
 * in the database by an earlier developer-mode run — still decrypt, until
 * `npm run rotate-secrets` has re-encrypted everything. Without SECRET_KEY
 * (developer mode only: production refuses to start), a random key is
 * generated once and kept in the `settings` table (insert-if-absent, then
 * read back, so replicas that start together all use the first one written).
 */
export async function resolveSecretRing(config: Pick<AppConfig, 'secretKey' | 'secretKeyPrevious'>, m: EntityManager): Promise<SecretRing> {
  if (config.secretKey !== undefined) {
    const previous: SecretBox[] = [];
    if (config.secretKeyPrevious !== undefined) previous.push(SecretBox.fromSecret(config.secretKeyPrevious));
    const stored = await one<{ value: string }>(m, 'SELECT value FROM settings WHERE key = $1', [HEADER_KEY_SETTING]);
    if (stored) previous.push(SecretBox.fromSecret(stored.value));
    return new SecretRing(SecretBox.fromSecret(config.secretKey), previous);
  }
  await sql(m, 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [HEADER_KEY_SETTING, SecretBox.generateSecret()]);
  const row = await one<{ value: string }>(m, 'SELECT value FROM settings WHERE key = $1', [HEADER_KEY_SETTING]);
  if (!row) throw new Error(`settings row "${HEADER_KEY_SETTING}" vanished right after it was written`);
  return new SecretRing(SecretBox.fromSecret(row.value));
}

/** Resolved lazily, outside any mutation transaction, so a generated key commits on its own. */
@Injectable()
export class HeaderSecrets {
  private box?: Promise<SecretRing>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  get(): Promise<SecretRing> {
    this.box ??= resolveSecretRing(this.config, this.dataSource.manager).catch((error: unknown) => {
      this.box = undefined;
      throw error;
    });
    return this.box;
  }
}
