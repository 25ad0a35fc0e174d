import pg from 'pg';
import { HEALTH_CHECK_DEFAULTS } from '../../src/registry/mcp-servers/mcp-server.schemas.js';
import { McpServerService } from '../../src/registry/mcp-servers/mcp-server.service.js';
import { SecretBox } from '../../src/registry/mcp-servers/secret-box.js';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';
import { outboxProbe } from '../support/outbox-probe.js';

const TOKEN = 'Bearer sup3r-s3cret-t0ken-value';
const TEAM = 'team-blue-42';

const server = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: `Server ${id}`, url: `https://mcp.example.com/${id}/mcp`, ...extra });

describe('MCP servers REST', () => {
  let t: TestApp;
  let db: pg.Client;
  let editor: string;
  let viewer: string;

  const { mark, eventsSince } = outboxProbe(() => db);
  const create = (body: unknown, key = editor) => api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key, body });
  const patch = (id: string, body: unknown, headers: Record<string, string> = {}, key = editor) =>
    api(t.baseUrl, 'PATCH', `/api/v1/mcp-servers/${id}`, { key, body, headers });

  beforeAll(async () => {
    // The registry REST is under test, not probing: no health events between the marks below.
    t = await startTestApp({ env: { HEALTH_PROBES: 'false' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  describe('one server, with ETags and one event per mutation', () => {
    const path = '/api/v1/mcp-servers/github';
    /** Server github at version 1, with two secret headers (removed after each test). */
    const setup = () => create(server('github', { headers: { Authorization: TOKEN, 'X-Team': TEAM } }));
    /** Version 2: name, transport and one health-check setting changed. */
    const update = () => patch('github', { name: 'GitHub', healthCheck: { timeoutMs: 2000 }, transport: 'sse' }, { 'if-match': '"1"' });
    afterEach(() => api(t.baseUrl, 'DELETE', path, { key: editor }));

    it('is created at version 1 with its Location, headers masked, and mcp_server.created', async () => {
      const before = await mark();
      const created = await setup();
      expect(created.status).toBe(201);
      expect(created.headers.get('etag')).toBe('"1"');
      expect(created.headers.get('location')).toBe('/api/v1/mcp-servers/github');
      expect(created.body).toEqual({
        id: 'github',
        name: 'Server github',
        url: 'https://mcp.example.com/github/mcp',
        transport: 'streamable-http',
        headers: { Authorization: '***', 'X-Team': '***' },
        healthCheck: { ...HEALTH_CHECK_DEFAULTS },
        enabled: true,
        version: 1,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(await eventsSince(before)).toEqual([
        { type: 'mcp_server.created', resource_id: 'github', version: 1, actor: expect.stringMatching(/^api_key:editor-/), data: null },
      ]);
    });

    it('reads back as created, with its ETag', async () => {
      const created = await setup();
      const got = await api(t.baseUrl, 'GET', path, { key: viewer });
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe('"1"');
      expect(got.body).toEqual(created.body);
    });

    it('updates with the current If-Match: healthCheck merges, and mcp_server.updated names what changed', async () => {
      await setup();
      const before = await mark();
      const updated = await update();
      expect(updated.status).toBe(200);
      expect(updated.headers.get('etag')).toBe('"2"');
      // healthCheck merges: only timeoutMs changes.
      expect(updated.body).toMatchObject({
        name: 'GitHub',
        transport: 'sse',
        version: 2,
        healthCheck: { ...HEALTH_CHECK_DEFAULTS, timeoutMs: 2000 },
        headers: { Authorization: '***', 'X-Team': '***' },
      });
      expect(await eventsSince(before)).toEqual([
        { type: 'mcp_server.updated', resource_id: 'github', version: 2, actor: expect.any(String), data: { changed: ['name', 'transport', 'healthCheck'] } },
      ]);
    });

    it('writes nothing for a patch that changes nothing', async () => {
      await setup();
      expect((await update()).status).toBe(200);
      const before = await mark();
      const same = await patch('github', { name: 'GitHub', enabled: true, headers: { 'X-Team': TEAM, Authorization: TOKEN } });
      expect(same.status).toBe(200);
      expect(same.body.version).toBe(2);
      expect(await eventsSince(before)).toEqual([]);
    });

    it('refuses a stale version (If-Match or body: 412) and a body version that contradicts If-Match (400), with no event', async () => {
      await setup();
      expect((await update()).status).toBe(200);
      const before = await mark();
      const stale = await patch('github', { enabled: false }, { 'if-match': '"1"' });
      expect(stale.status).toBe(412);
      expect(stale.headers.get('content-type')).toContain('application/problem+json');
      expect((await patch('github', { enabled: false, version: 1 })).status).toBe(412);
      expect((await patch('github', { enabled: false, version: 1 }, { 'if-match': '"2"' })).body.errors[0].field).toBe('version');
      expect(await eventsSince(before)).toEqual([]);
    });

    it('deletes with the current If-Match (a stale one is 412), writes mcp_server.deleted, then 404', async () => {
      await setup();
      expect((await update()).status).toBe(200);
      const staleDelete = await api(t.baseUrl, 'DELETE', path, { key: editor, headers: { 'if-match': '"1"' } });
      expect(staleDelete.status).toBe(412);
      const before = await mark();
      const deleted = await api(t.baseUrl, 'DELETE', path, { key: editor, headers: { 'if-match': '"2"' } });
      expect(deleted.status).toBe(204);
      expect(await eventsSince(before)).toEqual([{ type: 'mcp_server.deleted', resource_id: 'github', version: 2, actor: expect.any(String), data: null }]);
      expect((await api(t.baseUrl, 'GET', path, { key: viewer })).status).toBe(404);
    });
  });

  it('stores header values encrypted, never returns them, and decrypts them for the gateway', async () => {
    const before = await mark();
    const created = await create(server('secret', { headers: { Authorization: TOKEN, 'X-Team': TEAM } }));
    expect(created.status).toBe(201);
    expect(created.text).not.toContain('sup3r');
    expect(created.text).not.toContain(TEAM);

    const row = (await db.query("SELECT headers_secret, header_names FROM mcp_servers WHERE id = 'secret'")).rows[0];
    expect(row.header_names).toEqual(['Authorization', 'X-Team']);
    expect(row.headers_secret).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(row.headers_secret).not.toContain('sup3r');
    expect(row.headers_secret).not.toContain(TEAM);
    expect(Buffer.from(row.headers_secret.split('.')[3], 'base64url').toString('latin1')).not.toContain('sup3r');

    // Without SECRET_KEY, the key is generated once and kept in settings.
    const key = (await db.query("SELECT value FROM settings WHERE key = 'mcp_header_key'")).rows[0].value;
    expect(key).toMatch(/^[\w-]{43}$/);
    expect(JSON.parse(SecretBox.fromSecret(key).decrypt(row.headers_secret, 'mcp_server:secret'))).toEqual({ Authorization: TOKEN, 'X-Team': TEAM });

    const service = t.app.get(McpServerService);
    await expect(service.getHeaders('secret')).resolves.toEqual({ Authorization: TOKEN, 'X-Team': TEAM });

    for (const path of ['/api/v1/mcp-servers/secret', '/api/v1/mcp-servers', '/api/v1/mcp-servers?enabled=true']) {
      const res = await api(t.baseUrl, 'GET', path, { key: viewer });
      expect(res.status).toBe(200);
      expect(res.text).not.toContain('sup3r');
      expect(res.text).not.toContain(TEAM);
      expect(res.text).not.toContain(row.headers_secret);
      expect(res.text).toContain('"Authorization":"***"');
    }

    // headers replace the whole set; the event names the field, never the values.
    const replaced = await patch('secret', { headers: { 'x-api-key': 'k3y-two' } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.headers).toEqual({ 'x-api-key': '***' });
    expect(replaced.text).not.toContain('k3y-two');
    await expect(service.getHeaders('secret')).resolves.toEqual({ 'x-api-key': 'k3y-two' });
    const events = await eventsSince(before);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['mcp_server.created', null],
      ['mcp_server.updated', { changed: ['headers'] }],
    ]);
    const outboxText = JSON.stringify((await db.query("SELECT * FROM outbox WHERE type LIKE 'mcp_server.%'")).rows);
    for (const value of ['sup3r', TEAM, 'k3y-two']) expect(outboxText).not.toContain(value);

    // {} clears the headers.
    const cleared = await patch('secret', { headers: {} });
    expect(cleared.body.headers).toEqual({});
    expect((await db.query("SELECT headers_secret, header_names FROM mcp_servers WHERE id = 'secret'")).rows[0]).toEqual({
      headers_secret: null,
      header_names: [],
    });
    await expect(service.getHeaders('secret')).resolves.toEqual({});
    await expect(service.getHeaders('nope')).rejects.toMatchObject({ code: 'not_found' });

    // A ciphertext moved to another row does not decrypt there (bound to its server id).
    expect((await create(server('victim', { headers: { Authorization: 'x' } }))).status).toBe(201);
    expect((await create(server('thief', { headers: { Authorization: 'y' } }))).status).toBe(201);
    await db.query("UPDATE mcp_servers SET headers_secret = (SELECT headers_secret FROM mcp_servers WHERE id = 'victim') WHERE id = 'thief'");
    await expect(service.getHeaders('thief')).rejects.toThrow(/cannot decrypt/);
  });

  it('shares the stored key with another replica, and uses SECRET_KEY when configured', async () => {
    expect((await create(server('shared', { headers: { Authorization: TOKEN } }))).status).toBe(201);
    const replica = await startTestApp({ databaseUrl: t.databaseUrl, adminKey: t.adminKey, env: { HEALTH_PROBES: 'false' } });
    try {
      await expect(replica.app.get(McpServerService).getHeaders('shared')).resolves.toEqual({ Authorization: TOKEN });
    } finally {
      await replica.close();
    }

    const secretKey = 'k'.repeat(40);
    const configured = await startTestApp({ env: { SECRET_KEY: secretKey } });
    try {
      const admin = configured.adminKey;
      const res = await api(configured.baseUrl, 'POST', '/api/v1/mcp-servers', { key: admin, body: server('cfg', { headers: { Authorization: TOKEN } }) });
      expect(res.status).toBe(201);
      const c = new pg.Client({ connectionString: configured.databaseUrl });
      await c.connect();
      try {
        expect((await c.query("SELECT count(*) FROM settings WHERE key = 'mcp_header_key'")).rows[0].count).toBe(0);
        const sealed = (await c.query("SELECT headers_secret FROM mcp_servers WHERE id = 'cfg'")).rows[0].headers_secret;
        expect(JSON.parse(SecretBox.fromSecret(secretKey).decrypt(sealed, 'mcp_server:cfg'))).toEqual({ Authorization: TOKEN });
      } finally {
        await c.end();
      }
      await expect(configured.app.get(McpServerService).getHeaders('cfg')).resolves.toEqual({ Authorization: TOKEN });
    } finally {
      await configured.close();
    }
  });

  it('paginates and filters by enabled', async () => {
    for (const id of ['p1', 'p2', 'p3', 'p4']) {
      expect((await create(server(id, { enabled: id !== 'p2' && id !== 'p4' }))).status).toBe(201);
    }
    const ids = (res: { body: { items: { id: string }[] } }) => res.body.items.map((s) => s.id);
    const first = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers?limit=2', { key: viewer });
    expect(first.body.nextCursor).not.toBeNull();
    const seen = [...ids(first)];
    let cursor = first.body.nextCursor;
    while (cursor) {
      const next = await api(t.baseUrl, 'GET', `/api/v1/mcp-servers?limit=2&cursor=${cursor}`, { key: viewer });
      seen.push(...ids(next));
      cursor = next.body.nextCursor;
    }
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(['p1', 'p2', 'p3', 'p4']));
    const disabled = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers?enabled=false', { key: viewer });
    expect(ids(disabled)).toEqual(['p2', 'p4']);
    const enabled = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers?enabled=true', { key: viewer });
    expect(ids(enabled)).toEqual(expect.arrayContaining(['p1', 'p3']));
    expect(ids(enabled)).not.toContain('p2');
    const bad = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers?enabled=yes', { key: viewer });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('query.enabled');
  });

  it('answers bad input with problem+json naming the field, and writes no event', async () => {
    const before = await mark();
    const fields = async (body: unknown) => {
      const res = await create(body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return res.body.errors.map((e: { field: string }) => e.field).sort();
    };
    expect(await fields(server('v1', { url: 'ftp://mcp.example.com/' }))).toEqual(['url']);
    expect(await fields(server('v1', { url: 'not a url' }))).toEqual(['url']);
    expect(await fields(server('v1', { url: 'https://user:pw@mcp.example.com/' }))).toEqual(['url']);
    expect(await fields(server('v1', { transport: 'websocket' }))).toEqual(['transport']);
    expect(await fields(server('v1', { headers: { 'Bad Header': 'x' } }))).toEqual(['headers.Bad Header']);
    expect(await fields(server('v1', { headers: { 'X-Inject': 'a\r\nHost: evil' } }))).toEqual(['headers.X-Inject']);
    expect(await fields(server('v1', { headers: { 'X-Num': 5 } }))).toEqual(['headers.X-Num']);
    expect(await fields(server('v1', { headers: { 'X-A': '1', 'x-a': '2' } }))).toEqual(['headers']);
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v']));
    expect(await fields(server('v1', { headers: many }))).toEqual(['headers']);
    expect(await fields(server('v1', { healthCheck: { intervalMs: 10, timeoutMs: 60_001, unhealthyThreshold: 0, healthyThreshold: 21 } }))).toEqual([
      'healthCheck.healthyThreshold',
      'healthCheck.intervalMs',
      'healthCheck.timeoutMs',
      'healthCheck.unhealthyThreshold',
    ]);
    expect(await fields({ id: 'Bad_Id', url: 'https://x' })).toEqual(['id', 'name']);
    expect(await fields(server('v1', { enabled: 'yes' }))).toEqual(['enabled']);
    const unknown = await create(server('v1', { colour: 'red', healthCheck: { jitter: 1 } }));
    expect(unknown.body.errors).toEqual(
      expect.arrayContaining([
        { field: 'colour', message: 'unknown field' },
        { field: 'healthCheck.jitter', message: 'unknown field' },
      ]),
    );
    // Exactly 20 headers is fine.
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-H${i}`, 'v']));
    expect((await create(server('twenty', { headers: twenty }))).status).toBe(201);

    const afterCreate = await mark();
    expect((await patch('twenty', {})).body.errors[0].field).toBe('(body)');
    expect((await patch('twenty', { version: 1 })).status).toBe(400);
    expect((await patch('twenty', { id: 'renamed' })).body.errors).toContainEqual({ field: 'id', message: 'unknown field' });
    expect((await patch('twenty', { healthCheck: { intervalMs: 5 } })).body.errors[0].field).toBe('healthCheck.intervalMs');
    expect((await patch('twenty', { url: 'file:///etc/passwd' })).body.errors[0].field).toBe('url');
    expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/Not%20A%20Slug', { key: viewer })).body.errors[0].field).toBe('id');
    expect((await eventsSince(before)).map((e) => e.resource_id)).toEqual(['twenty']);
    expect(await eventsSince(afterCreate)).toEqual([]);
  });

  it('answers 404 and 409', async () => {
    const before = await mark();
    expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/missing', { key: viewer })).status).toBe(404);
    expect((await patch('missing', { name: 'x' })).status).toBe(404);
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/mcp-servers/missing', { key: editor })).status).toBe(404);

    expect((await create(server('dup'))).status).toBe(201);
    const dup = await create(server('dup'));
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('conflict');

    // Referenced by a trust rule: 409, nothing deleted, no event.
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: { id: 'ref-agent', name: 'A', model: { provider: 'p', name: 'm' } } })).status,
    ).toBe(201);
    const rule = await api(t.baseUrl, 'POST', '/api/v1/trust-rules', {
      key: t.adminKey,
      body: { agentId: 'ref-agent', mcpServerId: 'dup', toolPattern: '*', effect: 'allow' },
    });
    expect(rule.status).toBe(201);
    const mid = await mark();
    const referenced = await api(t.baseUrl, 'DELETE', '/api/v1/mcp-servers/dup', { key: editor });
    expect(referenced.status).toBe(409);
    expect(referenced.body.detail).toContain('trust rules');
    expect(await eventsSince(mid)).toEqual([]);
    expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/dup', { key: viewer })).status).toBe(200);
    expect((await eventsSince(before)).map((e) => e.type)).toEqual(['mcp_server.created', 'agent.created', 'trust_rule.created']);
  });

  it('lets viewers read but not write', async () => {
    expect((await create(server('roles'))).status).toBe(201);
    const before = await mark();
    const write = await create(server('nope'), viewer);
    expect(write.status).toBe(403);
    expect(write.body.code).toBe('forbidden');
    expect((await patch('roles', { name: 'x' }, {}, viewer)).status).toBe(403);
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/mcp-servers/roles', { key: viewer })).status).toBe(403);
    expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/roles', { key: viewer })).status).toBe(200);
    expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers')).status).toBe(401);
    expect(await eventsSince(before)).toEqual([]);
  });
});
