import { hashPassword } from '../../src/auth/secrets.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { query } from '../support/security.js';
import { api, createTestDatabase, recordFigure, redisUrl, sleep, startTestApp } from '../support/test-env.js';

const PASSWORD = 'the right password';
const attempt = (replica: Replica | string, username: string, password: string, ip?: string) =>
  api(typeof replica === 'string' ? replica : replica.url, 'POST', '/api/v1/auth/login', {
    body: { username, password },
    // The test client connects from 127.0.0.1, a proxy TRUST_PROXY trusts by default: X-Forwarded-For names the client.
    headers: ip ? { 'x-forwarded-for': ip } : {},
  });

describe('security: login throttling shared by replicas, and the hashing cost', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), {
      LOGIN_MAX_FAILURES: '3',
      LOGIN_MAX_FAILURES_PER_IP: '4',
      LOGIN_BACKOFF_MS: '1500',
      PASSWORD_HASH_CONCURRENCY: '1',
    });
    [r1, r2] = await Promise.all([cluster.start('r1'), cluster.start('r2')]);
    for (const username of ['hank', 'ivy']) {
      expect((await api(r1.url, 'POST', '/api/v1/users', { key: cluster.adminKey, body: { username, password: PASSWORD, role: 'viewer' } })).status).toBe(201);
    }
  }, 90_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('locks a username after repeated failures on any replica: 429 + Retry-After everywhere, then backs off exponentially', async () => {
    expect((await attempt(r1, 'hank', 'wrong 1', '198.51.100.1')).status).toBe(401);
    expect((await attempt(r2, 'hank', 'wrong 2', '198.51.100.2')).status).toBe(401);
    expect((await attempt(r1, 'hank', 'wrong 3', '198.51.100.3')).status).toBe(401); // third failure: locked
    for (const replica of [r1, r2]) {
      const locked = await attempt(replica, 'hank', PASSWORD, '198.51.100.4'); // even the right password waits
      expect(locked.status).toBe(429);
      expect(locked.headers.get('content-type')).toContain('application/problem+json');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(2);
    }
    await sleep(1600);
    expect((await attempt(r2, 'hank', 'wrong 4', '198.51.100.5')).status).toBe(401);
    const doubled = await attempt(r1, 'hank', PASSWORD, '198.51.100.6');
    expect(doubled.status).toBe(429);
    expect(Number(doubled.headers.get('retry-after'))).toBe(3); // 2 x 1.5 s
    await sleep(3100);
    expect((await attempt(r2, 'hank', PASSWORD, '198.51.100.7')).status).toBe(200);
  });

  it('locks a client address that fails across many usernames, and no other address', async () => {
    const ip = '203.0.113.9';
    for (let i = 0; i < 4; i++) expect((await attempt(i % 2 ? r1 : r2, `nobody-${i}`, 'guess', ip)).status).toBe(401);
    const locked = await attempt(r1, 'ivy', PASSWORD, ip);
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBeTruthy();
    expect((await attempt(r2, 'ivy', PASSWORD, '203.0.113.10')).status).toBe(200);
  });

  it('keeps the scrypt pool bounded under a flood of logins: the excess is 503 + Retry-After at once', async () => {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(r1, `flood-${i}`, 'guess', `192.0.2.${i + 1}`)));
    const statuses = results.map((r) => r.status);
    const busy = results.filter((r) => r.status === 503);
    // PASSWORD_HASH_CONCURRENCY=1: one hash at a time and 8 waiting; the rest turned away without hashing.
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(9);
    expect(busy.length).toBeGreaterThanOrEqual(21);
    expect(busy[0].headers.get('retry-after')).toBe('1');
    expect(statuses.every((s) => s === 401 || s === 503)).toBe(true);
    const metrics = await fetch(`${r1.url}/metrics`).then((r) => r.text());
    expect(Number(/^registry_password_hash_rejected_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(21);
    recordFigure(`login flood: ${busy.length} of 30 turned away, ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('rehashes a password stored with the old cost at the next successful login', async () => {
    const old = await hashPassword(PASSWORD, { ln: 14, r: 8, p: 1 });
    const [, , salt, hash] = old.split('$');
    await query(db.url, "INSERT INTO users (username, password_hash, role) VALUES ('legacy', $1, 'viewer')", [`scrypt$${salt}$${hash}`]);
    expect((await attempt(r2, 'legacy', PASSWORD, '198.51.100.50')).status).toBe(200);
    const [row] = await query(db.url, "SELECT password_hash FROM users WHERE username = 'legacy'");
    expect(row.password_hash).toMatch(/^scrypt\$ln=17,r=8,p=1\$/);
    expect((await attempt(r1, 'legacy', PASSWORD, '198.51.100.51')).status).toBe(200);
  });
});

describe('security: login throttling without Redis falls back to the replica', () => {
  it('still locks a username when Redis is unreachable', async () => {
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const t = await startTestApp({ redis: deadRedis, env: { LOGIN_MAX_FAILURES: '2', LOGIN_BACKOFF_MS: '5000' } });
    try {
      expect((await api(t.baseUrl, 'POST', '/api/v1/users', { key: t.adminKey, body: { username: 'june', password: PASSWORD, role: 'viewer' } })).status).toBe(
        201,
      );
      expect((await attempt(t.baseUrl, 'june', 'wrong')).status).toBe(401);
      expect((await attempt(t.baseUrl, 'june', 'wrong')).status).toBe(401);
      const locked = await attempt(t.baseUrl, 'june', PASSWORD);
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBe(5);
    } finally {
      await t.close();
    }
  });
});
