import 'reflect-metadata';
import { loadConfigOrExit } from './config/app-config.js';
import { createDataSource, migrate } from './database/data-source.js';
import { startEmbeddedPostgres } from './database/embedded-postgres.js';
import { rotateSecrets } from './registry/mcp-servers/rotate-secrets.js';

/**
 * `npm run rotate-secrets`: re-encrypts every stored secret with SECRET_KEY.
 * Rotation: (1) run the replicas with SECRET_KEY=<new> and
 * SECRET_KEY_PREVIOUS=<old> (they read both); (2) run this once with the same
 * two variables; (3) drop SECRET_KEY_PREVIOUS. Also moves a developer-mode
 * database (key generated in `settings`) onto a configured SECRET_KEY.
 */
async function run(): Promise<void> {
  const config = loadConfigOrExit();
  if (config.secretKey === undefined) {
    console.error('rotate-secrets: set SECRET_KEY to the new key (and SECRET_KEY_PREVIOUS to the old one, if there was one)');
    process.exit(2);
  }
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir);
  const dataSource = createDataSource(config.databaseUrl ?? embedded!.url, 2, 'registry-rotate-secrets');
  await dataSource.initialize();
  try {
    await migrate(dataSource);
    const result = await rotateSecrets(dataSource, config);
    console.log(
      `rotate-secrets: ${result.servers} MCP server(s), ${result.reencrypted} secret(s) re-encrypted with SECRET_KEY, ` +
        `${result.alreadyCurrent} already current${result.droppedStoredKey ? '; the key generated in the database was removed' : ''}`,
    );
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

run().catch((error: unknown) => {
  console.error(`rotate-secrets failed: ${(error as Error).message ?? String(error)}`);
  process.exit(1);
});
