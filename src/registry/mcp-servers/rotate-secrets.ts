import type { DataSource } from 'typeorm';
import type { AppConfig } from '../../config/app-config.js';
import { rows, sql } from '../../database/sql.js';
import { HEADER_KEY_SETTING, resolveSecretRing } from './header-secrets.js';
import { SecretBoxError } from './secret-box.js';
import { sealUrl } from './url-secret.js';

export interface RotationResult {
  servers: number;
  reencrypted: number;
  alreadyCurrent: number;
  /** The key generated in the database by developer mode was dropped (everything now uses SECRET_KEY). */
  droppedStoredKey: boolean;
}

/**
 * `npm run rotate-secrets`: re-encrypts every MCP server secret (header
 * values, URL query strings) with SECRET_KEY, reading them with any key of
 * the ring (SECRET_KEY, SECRET_KEY_PREVIOUS, a key generated in the database).
 * One transaction with the rows locked: all or nothing, and safe while
 * replicas run (they decrypt with either key meanwhile). A secret no key opens
 * aborts the run, naming the server.
 */
export async function rotateSecrets(dataSource: DataSource, config: Pick<AppConfig, 'secretKey' | 'secretKeyPrevious'>): Promise<RotationResult> {
  if (config.secretKey === undefined) throw new Error('SECRET_KEY must be set: it is the key secrets are re-encrypted with');
  return dataSource.transaction(async (m) => {
    const ring = await resolveSecretRing(config, m);
    const servers = await rows<{ id: string; url: string; url_secret: string | null; headers_secret: string | null }>(
      m,
      'SELECT id, url, url_secret, headers_secret FROM mcp_servers ORDER BY id FOR UPDATE',
    );
    let reencrypted = 0;
    let alreadyCurrent = 0;
    const reseal = (id: string, ciphertext: string, context: string): string => {
      if (ring.isCurrent(ciphertext, context)) {
        alreadyCurrent++;
        return ciphertext;
      }
      try {
        const sealed = ring.encrypt(ring.decrypt(ciphertext, context), context);
        reencrypted++;
        return sealed;
      } catch (error) {
        if (error instanceof SecretBoxError) {
          throw new Error(`MCP server "${id}": no configured key decrypts its secret; set SECRET_KEY_PREVIOUS to the key it was sealed with`, {
            cause: error,
          });
        }
        throw error;
      }
    };
    for (const s of servers) {
      const headers = s.headers_secret === null ? null : reseal(s.id, s.headers_secret, `mcp_server:${s.id}`);
      let url = s.url;
      let urlSecret = s.url_secret === null ? null : reseal(s.id, s.url_secret, `mcp_server_url:${s.id}`);
      if (urlSecret === null && s.url.includes('?')) {
        const sealed = sealUrl(ring, s.id, s.url);
        if (sealed.secret !== null) reencrypted++;
        url = sealed.masked;
        urlSecret = sealed.secret;
      }
      await sql(m, 'UPDATE mcp_servers SET headers_secret = $2, url = $3, url_secret = $4 WHERE id = $1', [s.id, headers, url, urlSecret]);
    }
    const dropped = await sql(m, 'DELETE FROM settings WHERE key = $1', [HEADER_KEY_SETTING]);
    return { servers: servers.length, reencrypted, alreadyCurrent, droppedStoredKey: dropped.count > 0 };
  });
}
