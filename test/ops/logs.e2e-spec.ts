import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, redisUrl, sleep } from '../support/test-env.js';

/**
 * The logs of a real replica: one JSON object per line, with the replica id,
 * the request id on every line written while handling a request, and no
 * secret — API keys, passwords, session cookies, MCP server headers and URL
 * credentials — whatever the request did with them.
 */
describe('structured logs (real process)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { LOG_LEVEL: 'debug', MCP_ALLOW_PRIVATE_NETWORKS: 'true' });
    r = await cluster.start('logs');
    secrets.admin = cluster.adminKey;
    const key = await api(r.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'logged', role: 'editor' } });
    secrets.editor = key.body.key;
    await api(r.url, 'GET', '/api/v1/agents', { headers: { 'x-api-key': secrets.editor, 'x-request-id': 'req-with-key' } });
    secrets.wrongKey = `ar_${'w'.repeat(40)}`;
    await api(r.url, 'GET', '/api/v1/agents', { key: secrets.wrongKey, headers: { 'x-request-id': 'req-bad-key' } });
    secrets.password = 'correct horse battery staple 42';
    await api(r.url, 'POST', '/api/v1/users', { key: cluster.adminKey, body: { username: 'loggy', password: secrets.password, role: 'viewer' } });
    await api(r.url, 'POST', '/api/v1/auth/login', {
      body: { username: 'loggy', password: 'not the password at all' },
      headers: { 'x-request-id': 'req-bad-login' },
    });
    const login = await api(r.url, 'POST', '/api/v1/auth/login', { body: { username: 'loggy', password: secrets.password } });
    secrets.session = /ar_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1] ?? '';
    expect(secrets.session.length).toBeGreaterThan(10);
    await api(r.url, 'GET', '/api/v1/agents', { headers: { cookie: `ar_session=${secrets.session}`, 'x-request-id': 'req-with-cookie' } });
    secrets.header = 'mcp-header-secret-7f3a9c';
    secrets.urlCredential = 'url-credential-41b2e8';
    await api(r.url, 'POST', '/api/v1/mcp-servers', {
      key: cluster.adminKey,
      body: {
        id: 'logged-mcp',
        name: 'logged',
        url: `http://127.0.0.1:9/mcp?api_key=${secrets.urlCredential}`,
        headers: { authorization: `Bearer ${secrets.header}` },
      },
    });
    await sleep(300);
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  const lines = () => r.output.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('(node:') && !l.startsWith('(Use `node --trace-warnings'));

  it('writes one JSON object per line, each with the replica id, level and time', () => {
    const all = lines();
    expect(all.length).toBeGreaterThan(10);
    for (const line of all) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(entry.replica).toBe(r.id);
      expect(typeof entry.level).toBe('string');
      expect(typeof entry.time).toBe('string');
    }
  });

  it('stamps the request id on every line written while handling that request', () => {
    const entries = lines().map((l) => JSON.parse(l) as Record<string, any>);
    const access = entries.find((e) => e.msg === 'request' && e.requestId === 'req-with-key');
    expect(access).toMatchObject({ method: 'GET', path: '/api/v1/agents', status: 200 });
    // A line from deep inside the request (the error filter), not only the access line.
    const rejected = entries.filter((e) => e.requestId === 'req-bad-key');
    expect(rejected.some((e) => e.msg !== 'request' && String(e.msg).startsWith('401'))).toBe(true);
    expect(entries.some((e) => e.requestId === 'req-bad-login' && e.status === 401)).toBe(true);
  });

  it('never contains a secret', () => {
    const text = r.output;
    for (const [what, value] of Object.entries(secrets)) {
      if (text.includes(value)) throw new Error(`the log contains the ${what} secret`);
    }
  });
});
