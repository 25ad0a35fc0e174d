import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../support/ports.mjs';
import { MIGRATIONS } from '../../src/database/migration-list.js';
import { api, createTestDatabase, sleep } from '../support/test-env.js';

describe('the service process', () => {
  it('npm run migrate: replicas migrating at once apply each migration once', async () => {
    const db = await createTestDatabase();
    try {
      const run = () =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const child = spawn(process.execPath, [path.resolve('dist/migrate.js')], { env: { ...process.env, DATABASE_URL: db.url } });
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (out += d));
          child.on('exit', (code) => resolve({ code, out }));
        });
      const results = await Promise.all([run(), run(), run()]);
      expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
      expect(results.filter((r) => r.out.includes('applied:'))).toHaveLength(1);
      expect(results.filter((r) => r.out.includes('schema is up to date'))).toHaveLength(2);
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      expect((await c.query('SELECT count(*)::int AS n FROM schema_migrations')).rows[0].n).toBe(MIGRATIONS.length);
      await c.end();
    } finally {
      await db.drop();
    }
  });

  it('fails fast naming a bad variable', () => {
    const result = spawnSync(process.execPath, [path.resolve('dist/main.js')], { env: { ...process.env, PORT: 'eighty' }, encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('PORT must be an integer');
  });

  it('starts with embedded PostgreSQL and no Redis, prints the bootstrap key, and keeps data between runs', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'registry-embedded-'));
    chmodSync(dir, 0o755);
    const dataDir = path.join(dir, 'data');
    const start = async () => {
      const port = await freePort();
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
      const child = spawn(process.execPath, [path.resolve('dist/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; ; i++) {
        try {
          if ((await fetch(`${url}/readyz`)).status === 200) break;
        } catch {
          // starting
        }
        if (i > 300) throw new Error(`not ready:\n${out}`);
        await sleep(100);
      }
      return { child, url, output: () => out, exited };
    };
    try {
      const first = await start();
      const keyFile = path.join(dataDir, 'bootstrap-admin-key');
      expect(existsSync(keyFile)).toBe(true);
      const key = readFileSync(keyFile, 'utf8').trim();
      // Printed just before the file is written: wait for the pipe to deliver it.
      for (let i = 0; i < 100 && !first.output().includes(key); i++) await sleep(20);
      expect(first.output()).toContain(key);
      expect((await api(first.url, 'GET', '/readyz')).body).toEqual({ status: 'ready', bus: 'memory', busConnected: true });
      const created = await api(first.url, 'POST', '/api/v1/agents', { key, body: { id: 'kept', name: 'kept', model: { provider: 'p', name: 'm' } } });
      expect(created.status).toBe(201);
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      const second = await start();
      expect(second.output()).not.toContain('Bootstrap admin API key');
      expect((await api(second.url, 'GET', '/api/v1/agents/kept', { key })).status).toBe(200);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
