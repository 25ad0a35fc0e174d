import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '@nestjs/common';
import { ApiKeyService } from './auth/api-key.service.js';
import { createApp } from './app.factory.js';
import { loadConfigOrExit } from './config/app-config.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './database/embedded-postgres.js';
import { JsonLogger } from './ops/json-logger.js';
import { LifecycleService } from './ops/lifecycle.service.js';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  // Everything goes through the JSON logger from here on, start-up messages included.
  const jsonLogger = new JsonLogger(config);
  Logger.overrideLogger(jsonLogger);
  const logger = new Logger('Main');

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir);
    databaseUrl = embedded.url;
    logger.log(`embedded PostgreSQL running, data in ${config.dataDir}/postgres`);
  }
  if (!config.redisUrl) logger.log('REDIS_URL not set: in-process event bus (run one replica only)');

  const app = await createApp(config, databaseUrl, jsonLogger);
  // The signal handlers go in as soon as the app exists: a SIGTERM during the rest of the start-up
  // drains the replica instead of killing it (Node's default action).
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.log(`${signal}: draining`);
    const hardStop = setTimeout(() => {
      logger.error('shutdown grace period exceeded; exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    hardStop.unref();
    try {
      // 1. unready (/readyz 503), idle keep-alive connections closed, answers carry
      //    Connection: close; everything that still arrives is served normally for
      //    SHUTDOWN_DELAY_MS (load balancers stop sending meanwhile);
      // 2. stream clients told to reconnect elsewhere (bounded, see SseStreamService.drain);
      // 3. the listener closes, in-flight requests finish, providers shut down.
      await app.get(LifecycleService).drain(config.shutdownDelayMs);
      await app.close();
      await embedded?.stop();
      process.exit(0);
    } catch (error) {
      logger.error(`shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // Before the listener opens, so a replica that answers /readyz already has its bootstrap admin
  // key. A database blip while starting (a restarted PostgreSQL, a killed backend) must not kill
  // the replica: the bootstrap is idempotent, try it again.
  const bootstrapKey = await retrying(() => app.get(ApiKeyService).bootstrap(), logger);
  if (bootstrapKey) {
    // Printed once, on the first start; only its hash is stored in the database.
    console.log(`\n  Bootstrap admin API key (shown once, store it now):\n\n    ${bootstrapKey}\n`);
    if (embedded) {
      // Local embedded mode only: also kept beside the database it unlocks, for the README walkthrough.
      const file = path.join(config.dataDir, 'bootstrap-admin-key');
      writeFileSync(file, `${bootstrapKey}\n`, { mode: 0o600 });
      console.log(`  (embedded mode: also written to ${file})\n`);
    }
  }
  await app.listen({ port: config.port, host: config.host });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.log(`Agentic Registry listening on http://${shownHost}:${port} (replica ${config.replicaId})`);
}

/** Runs `work` until it succeeds, up to 6 attempts with backoff (0.2 s … 3.2 s). */
async function retrying<T>(work: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 6) throw error;
      const delay = 100 * 2 ** attempt;
      logger.warn(`start-up step failed (${(error as Error).message}); retrying in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
