import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../../config/app-config.js';
import { one, sql } from '../../database/sql.js';
import { SecretBox } from './secret-box.js';

/** The `settings` row holding the generated key when SECRET_KEY is not configured. */
export const HEADER_KEY_SETTING = 'mcp_header_key';

/**
 * The SecretBox for MCP server headers. Its key comes from the `secretKey`
 * configuration; without one, a random key is generated once and kept in the
 * `settings` table (insert-if-absent, then read back, so replicas that start
 * together all use the first one written). Resolved lazily, outside any
 * mutation transaction, so the stored key commits on its own.
 */
@Injectable()
export class HeaderSecrets {
  private box?: Promise<SecretBox>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  get(): Promise<SecretBox> {
    this.box ??= this.resolve().catch((error: unknown) => {
      this.box = undefined;
      throw error;
    });
    return this.box;
  }

  private async resolve(): Promise<SecretBox> {
    if (this.config.secretKey !== undefined) return SecretBox.fromSecret(this.config.secretKey);
    const m = this.dataSource.manager;
    await sql(m, 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [HEADER_KEY_SETTING, SecretBox.generateSecret()]);
    const row = await one<{ value: string }>(m, 'SELECT value FROM settings WHERE key = $1', [HEADER_KEY_SETTING]);
    if (!row) throw new Error(`settings row "${HEADER_KEY_SETTING}" vanished right after it was written`);
    return SecretBox.fromSecret(row.value);
  }
}
