import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import pg from 'pg';
import { createApp } from '../../src/app.factory.js';
import { ApiKeyService } from '../../src/auth/api-key.service.js';
import { type AppConfig, loadConfig } from '../../src/config/app-config.js';

export function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL is not set: run the tests with `npm test` (jest global setup)');
  return url;
}

export function redisUrl(): string {
  return process.env.TEST_REDIS_URL!;
}

/** A fresh, empty database for one suite (migrations run when the app starts). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = adminUrl().replace(/\/postgres$/, `/${name}`);
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestApp {
  readonly app: NestFastifyApplication;
  readonly baseUrl: string;
  readonly adminKey: string;
  readonly config: AppConfig;
  readonly databaseUrl: string;
  close(): Promise<void>;
}

export function testAdminKey(): string {
  return `ar_test_${randomBytes(24).toString('base64url')}`;
}

/**
 * Starts the real application in-process on a free port, against a database
 * of the suite's (created fresh when not given) and, with `redis`, the shared
 * test Redis under a key prefix of its own.
 */
export async function startTestApp(
  options: { env?: Record<string, string>; databaseUrl?: string; redis?: boolean | string; adminKey?: string } = {},
): Promise<TestApp> {
  const db = options.databaseUrl ? undefined : await createTestDatabase();
  const databaseUrl = options.databaseUrl ?? db!.url;
  const adminKey = options.adminKey ?? testAdminKey();
  const env: Record<string, string> = {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    DATABASE_URL: databaseUrl,
    BOOTSTRAP_ADMIN_KEY: adminKey,
    SEQUENCER_POLL_MS: '200',
    STREAM_HEAD_POLL_MS: '200',
    ...options.env,
  };
  if (options.redis) {
    env.REDIS_URL = typeof options.redis === 'string' ? options.redis : redisUrl();
    env.REDIS_PREFIX ??= `t${randomBytes(4).toString('hex')}`;
  }
  const config = loadConfig(env);
  const app = await createApp(config, databaseUrl);
  await app.listen({ port: 0, host: '127.0.0.1' });
  await app.get(ApiKeyService).bootstrap();
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    baseUrl: `http://127.0.0.1:${address.port}`,
    adminKey,
    config,
    databaseUrl,
    close: async () => {
      await app.close();
      await db?.drop();
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** One HTTP call; the body is parsed when it is JSON (problem+json included). */
export async function api<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  const parsed = type.includes('json') && text !== '' ? JSON.parse(text) : text;
  return { status: response.status, headers: response.headers, body: parsed as T, text };
}

export async function createKey(t: TestApp, role: 'viewer' | 'editor' | 'admin', name = `${role}-${randomBytes(3).toString('hex')}`): Promise<string> {
  const res = await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: t.adminKey, body: { name, role } });
  if (res.status !== 200 && res.status !== 201) throw new Error(`creating key failed: ${res.status} ${res.text}`);
  return res.body.key;
}

// One implementation of waiting for every test tool (timing.ts imports nothing from src/).
export { sleep, waitFor } from './timing.js';

/** Where tests write the figures they measure (latencies, counts): one line per figure, with the test's name. */
export const FIGURES_FILE = '.cache/test-figures.log';

/**
 * Records a figure a test measured (a latency, a count) in FIGURES_FILE
 * instead of the console, next to the name of the test that measured it.
 */
export function recordFigure(text: string): void {
  const test = expect.getState().currentTestName ?? 'outside a test';
  mkdirSync('.cache', { recursive: true });
  appendFileSync(FIGURES_FILE, `${new Date().toISOString()} ${test}: ${text}\n`);
}
