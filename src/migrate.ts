import 'reflect-metadata';
import { loadConfigOrExit } from './config/app-config.js';
import { createDataSource, migrate } from './database/data-source.js';
import { startEmbeddedPostgres } from './database/embedded-postgres.js';

/** `npm run migrate`: applies pending migrations (to DATABASE_URL, or the embedded database). */
async function run(): Promise<void> {
  const config = loadConfigOrExit();
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres(config.dataDir);
  const dataSource = createDataSource(config.databaseUrl ?? embedded!.url, 2, 'registry-migrate');
  await dataSource.initialize();
  try {
    const applied = await migrate(dataSource);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
