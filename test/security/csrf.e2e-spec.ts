import { Cluster, type Replica } from '../support/replicas.js';
import { loginAs } from '../support/security.js';
import { api, createTestDatabase, redisUrl } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'p', name: 'm' } });

describe('security: CSRF on cookie-authenticated requests', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  let gui: Replica;
  let cookie: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl());
    r = await cluster.start('csrf');
    // A second replica whose GUI is served from another origin.
    gui = await cluster.start('csrf-gui', { ALLOWED_ORIGINS: 'https://admin.example.test, http://localhost:5173' });
    ({ cookie } = await loginAs(r.url, cluster.adminKey, 'gina', 'editor'));
    expect((await api(r.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent('target') })).status).toBe(201);
    const prompt = await api(r.url, 'POST', '/api/v1/agents/target/prompts', { key: cluster.adminKey, body: { template: 'v1' } });
    expect(prompt.status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('refuses a cookie POST from a foreign Origin (403 problem+json naming Origin), and nothing is written', async () => {
    const res = await api(r.url, 'POST', '/api/v1/agents', { headers: { cookie, origin: 'https://evil.example' }, body: agent('forged') });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.errors).toEqual([{ field: 'Origin', message: 'origin https://evil.example is not allowed (ALLOWED_ORIGINS)' }]);
    expect((await api(r.url, 'GET', '/api/v1/agents/forged', { key: cluster.adminKey })).status).toBe(404);
    // A foreign Referer is refused the same way.
    expect((await api(r.url, 'POST', '/api/v1/agents', { headers: { cookie, referer: 'https://evil.example/page' }, body: agent('forged') })).status).toBe(403);
  });

  it('refuses a bodyless "simple" POST without Origin: the prompt is not activated', async () => {
    const res = await fetch(`${r.url}/api/v1/agents/target/prompts/1/activate`, { method: 'POST', headers: { cookie } });
    expect(res.status).toBe(403);
    expect((await api(r.url, 'GET', '/api/v1/agents/target', { key: cluster.adminKey })).body.activePromptVersion).toBeNull();
  });

  it('accepts the own origin (Origin or Referer), safe methods from anywhere, and API keys whatever the Origin', async () => {
    expect((await api(r.url, 'POST', '/api/v1/agents', { headers: { cookie, origin: r.url }, body: agent('own-origin') })).status).toBe(201);
    expect(
      (await api(r.url, 'PATCH', '/api/v1/agents/own-origin', { headers: { cookie, referer: `${r.url}/gui/agents` }, body: { description: 'x' } })).status,
    ).toBe(200);
    expect((await api(r.url, 'GET', '/api/v1/agents', { headers: { cookie, origin: 'https://evil.example' } })).status).toBe(200);
    expect(
      (await api(r.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, headers: { origin: 'https://evil.example' }, body: agent('by-key') })).status,
    ).toBe(201);
  });

  it('with ALLOWED_ORIGINS, exactly the listed origins pass', async () => {
    expect((await api(gui.url, 'POST', '/api/v1/agents', { headers: { cookie, origin: 'https://admin.example.test' }, body: agent('from-gui') })).status).toBe(
      201,
    );
    expect((await api(gui.url, 'POST', '/api/v1/agents', { headers: { cookie, origin: 'http://localhost:5173' }, body: agent('from-dev') })).status).toBe(201);
    expect((await api(gui.url, 'POST', '/api/v1/agents', { headers: { cookie, origin: gui.url }, body: agent('not-listed') })).status).toBe(403);
  });

  it('refuses a login posted from a foreign origin (login CSRF), and sets no cookie', async () => {
    const res = await api(r.url, 'POST', '/api/v1/auth/login', {
      headers: { origin: 'https://evil.example' },
      body: { username: 'gina', password: 'a long enough password' },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('refuses a malformed ALLOWED_ORIGINS at start, naming it', async () => {
    await expect(cluster.start('bad-origins', { ALLOWED_ORIGINS: 'https://admin.example.test/gui' })).rejects.toThrow(/ALLOWED_ORIGINS must list origins/);
  });
});
