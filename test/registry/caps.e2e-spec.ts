import pg from 'pg';
import { api, startTestApp, type TestApp } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

/** Registry caps hold exactly under concurrent creates, without a table-wide lock (the counter row of registry_counts). */
describe('registry caps under concurrency', () => {
  let t: TestApp;
  let db: pg.Client;
  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_AGENTS: '10', DATABASE_POOL_SIZE: '20' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const counted = async () => Number((await db.query(`SELECT n FROM registry_counts WHERE table_name = 'agents'`)).rows[0].n);
  const actual = async () => Number((await db.query('SELECT count(*) AS n FROM agents')).rows[0].n);

  it('lets exactly MAX_AGENTS of 30 concurrent creates through, and the counter matches the table', async () => {
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: agent(`cap-${i}`) })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(20);
    expect(results.find((r) => r.status === 409)!.body).toMatchObject({ code: 'quota_exceeded', setting: 'MAX_AGENTS' });
    expect(await actual()).toBe(10);
    expect(await counted()).toBe(10);
    // Refused creates left no event behind (they rolled back with their row).
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM outbox WHERE type = 'agent.created'`);
    expect(rows[0].n).toBe(10);
  });

  it('frees room on delete and keeps counting exactly', async () => {
    const created = (await db.query('SELECT id FROM agents ORDER BY id LIMIT 3')).rows.map((r) => r.id as string);
    for (const id of created) expect((await api(t.baseUrl, 'DELETE', `/api/v1/agents/${id}`, { key: t.adminKey })).status).toBe(204);
    expect(await counted()).toBe(7);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: agent(`again-${i}`) })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    expect(await actual()).toBe(10);
    expect(await counted()).toBe(10);
  });
});
