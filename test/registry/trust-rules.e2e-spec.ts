import pg from 'pg';
import { evaluateTrust } from '../../src/registry/trust-rules/trust-evaluator.js';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';
import { outboxProbe } from '../support/outbox-probe.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('trust rules REST', () => {
  let t: TestApp;
  let db: pg.Client;
  let admin: string;
  let editor: string;
  let viewer: string;

  const { mark, eventsSince } = outboxProbe(() => db);
  const create = (body: Record<string, unknown>, key = admin) =>
    api(t.baseUrl, 'POST', '/api/v1/trust-rules', { key, body: { agentId: 'pmo', mcpServerId: 'github', toolPattern: 'github.*', effect: 'allow', ...body } });
  const patch = (id: string, body: unknown, headers: Record<string, string> = {}, key = admin) =>
    api(t.baseUrl, 'PATCH', `/api/v1/trust-rules/${id}`, { key, body, headers });

  beforeAll(async () => {
    // Not about probing: no health events among the changes this suite counts.
    t = await startTestApp({ env: { HEALTH_PROBES: 'false' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    admin = await createKey(t, 'admin');
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
    for (const id of ['pmo', 'ops', 'list-a', 'list-b']) {
      const res = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: { id, name: id, model: { provider: 'p', name: 'm' } } });
      expect(res.status).toBe(201);
    }
    for (const id of ['github', 'slack']) {
      const res = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: editor, body: { id, name: id, url: `https://${id}.example.com/mcp` } });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  describe('one rule, with ETags and one event per mutation', () => {
    const path = (id: string) => `/api/v1/trust-rules/${id}`;
    let made: string[] = [];
    /** A rule pmo → github at version 1 (removed after each test). */
    const setup = async () => {
      const created = await create({ description: 'read GitHub' });
      if (created.status === 201) made.push(created.body.id as string);
      return created;
    };
    /** Version 2: another server, effect and priority. */
    const update = (id: string) => patch(id, { effect: 'require_approval', priority: 10, mcpServerId: 'slack' }, { 'if-match': '"1"' });
    afterEach(async () => {
      for (const id of made) await api(t.baseUrl, 'DELETE', path(id), { key: admin });
      made = [];
    });

    it('is created at version 1 with its Location and trust_rule.created', async () => {
      const before = await mark();
      const created = await setup();
      expect(created.status).toBe(201);
      expect(created.headers.get('etag')).toBe('"1"');
      expect(created.body).toEqual({
        id: expect.stringMatching(UUID),
        agentId: 'pmo',
        mcpServerId: 'github',
        toolPattern: 'github.*',
        effect: 'allow',
        priority: 0,
        description: 'read GitHub',
        version: 1,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      const id = created.body.id as string;
      expect(created.headers.get('location')).toBe(`/api/v1/trust-rules/${id}`);
      expect(await eventsSince(before)).toEqual([
        {
          type: 'trust_rule.created',
          resource_id: id,
          version: 1,
          actor: expect.stringMatching(/^api_key:admin-/),
          data: { agentId: 'pmo', mcpServerId: 'github' },
        },
      ]);
    });

    it('reads back as created, with its ETag', async () => {
      const created = await setup();
      const got = await api(t.baseUrl, 'GET', path(created.body.id), { key: editor });
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe('"1"');
      expect(got.body).toEqual(created.body);
    });

    it('updates with the current If-Match; trust_rule.updated names what changed', async () => {
      const id = (await setup()).body.id as string;
      const before = await mark();
      const updated = await update(id);
      expect(updated.status).toBe(200);
      expect(updated.headers.get('etag')).toBe('"2"');
      expect(updated.body).toMatchObject({ effect: 'require_approval', priority: 10, mcpServerId: 'slack', version: 2 });
      expect(await eventsSince(before)).toEqual([
        {
          type: 'trust_rule.updated',
          resource_id: id,
          version: 2,
          actor: expect.any(String),
          data: { changed: ['mcpServerId', 'effect', 'priority'], agentId: 'pmo', mcpServerId: 'slack' },
        },
      ]);
    });

    it('writes nothing for a patch that changes nothing, nor for a stale If-Match (412 on PATCH and DELETE)', async () => {
      const id = (await setup()).body.id as string;
      expect((await update(id)).status).toBe(200);
      const before = await mark();
      const unchanged = await patch(id, { effect: 'require_approval' });
      expect(unchanged.status).toBe(200);
      expect(unchanged.body.version).toBe(2);
      const stale = await patch(id, { effect: 'deny' }, { 'if-match': '"1"' });
      expect(stale.status).toBe(412);
      expect(stale.headers.get('content-type')).toContain('application/problem+json');
      expect((await api(t.baseUrl, 'DELETE', path(id), { key: admin, headers: { 'if-match': '"1"' } })).status).toBe(412);
      expect(await eventsSince(before)).toEqual([]);
    });

    it('deletes with the current If-Match: trust_rule.deleted, then 404 for reads, patches and deletes', async () => {
      const id = (await setup()).body.id as string;
      expect((await update(id)).status).toBe(200);
      const before = await mark();
      const deleted = await api(t.baseUrl, 'DELETE', path(id), { key: admin, headers: { 'if-match': '"2"' } });
      expect(deleted.status).toBe(204);
      expect(await eventsSince(before)).toEqual([
        { type: 'trust_rule.deleted', resource_id: id, version: 2, actor: expect.any(String), data: { agentId: 'pmo', mcpServerId: 'slack' } },
      ]);
      expect((await api(t.baseUrl, 'GET', path(id), { key: editor })).status).toBe(404);
      expect((await patch(id, { effect: 'deny' })).status).toBe(404);
      expect((await api(t.baseUrl, 'DELETE', path(id), { key: admin })).status).toBe(404);
    });
  });

  it('rejects unknown agents and servers with 400 naming the field', async () => {
    const before = await mark();
    const agent = await create({ agentId: 'ghost' });
    expect(agent.status).toBe(400);
    expect(agent.headers.get('content-type')).toContain('application/problem+json');
    expect(agent.body.errors).toEqual([{ field: 'agentId', message: expect.any(String) }]);
    expect((await create({ mcpServerId: 'ghost' })).body.errors).toEqual([{ field: 'mcpServerId', message: expect.any(String) }]);
    expect((await create({ agentId: 'ghost', mcpServerId: 'ghost' })).body.errors.map((e: { field: string }) => e.field)).toEqual(['agentId', 'mcpServerId']);

    const rule = await create({});
    expect(rule.status).toBe(201);
    const mid = await mark();
    const badPatch = await patch(rule.body.id, { mcpServerId: 'ghost' });
    expect(badPatch.status).toBe(400);
    expect(badPatch.body.errors).toEqual([{ field: 'mcpServerId', message: expect.any(String) }]);
    expect((await patch(rule.body.id, { agentId: 'ghost' })).body.errors[0].field).toBe('agentId');
    expect((await api(t.baseUrl, 'GET', `/api/v1/trust-rules/${rule.body.id}`, { key: editor })).body.version).toBe(1);
    expect(await eventsSince(mid)).toEqual([]);
    expect((await eventsSince(before)).map((e) => e.type)).toEqual(['trust_rule.created']);

    // A referenced agent or server cannot be deleted.
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/mcp-servers/github', { key: editor })).status).toBe(409);
    const agentDelete = await api(t.baseUrl, 'DELETE', `/api/v1/agents/${rule.body.agentId}`, { key: editor });
    expect(agentDelete.status).toBe(409);
    expect(agentDelete.body.code).toBe('conflict');
    expect(await eventsSince(mid)).toEqual([]);
  });

  it('validates bodies and ids naming the field', async () => {
    const before = await mark();
    const fields = async (body: Record<string, unknown>) => {
      const res = await create(body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return res.body.errors.map((e: { field: string }) => e.field).sort();
    };
    expect(await fields({ toolPattern: 'git hub' })).toEqual(['toolPattern']);
    expect(await fields({ toolPattern: '' })).toEqual(['toolPattern']);
    expect(await fields({ toolPattern: 'x'.repeat(201) })).toEqual(['toolPattern']);
    expect(await fields({ toolPattern: 'github.[a-z]' })).toEqual(['toolPattern']);
    expect(await fields({ effect: 'maybe' })).toEqual(['effect']);
    expect(await fields({ priority: 1.5 })).toEqual(['priority']);
    expect(await fields({ priority: 1_000_001 })).toEqual(['priority']);
    expect(await fields({ priority: '5' })).toEqual(['priority']);
    expect(await fields({ agentId: 'Not A Slug', mcpServerId: 7 })).toEqual(['agentId', 'mcpServerId']);
    expect(await fields({ id: '00000000-0000-4000-8000-000000000000' })).toEqual(['id']);
    const unknown = await create({ colour: 'red' });
    expect(unknown.body.errors).toEqual([{ field: 'colour', message: 'unknown field' }]);
    expect((await create({ toolPattern: 'repo/*/read-only_v2.x', priority: -1_000_000 })).status).toBe(201);

    const badId = await api(t.baseUrl, 'GET', '/api/v1/trust-rules/not-a-uuid', { key: editor });
    expect(badId.status).toBe(400);
    expect(badId.body.errors[0].field).toBe('id');
    expect((await patch('not-a-uuid', { effect: 'deny' })).body.errors[0].field).toBe('id');
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/trust-rules/123', { key: admin })).body.errors[0].field).toBe('id');
    expect((await api(t.baseUrl, 'GET', '/api/v1/trust-rules/00000000-0000-4000-8000-000000000000', { key: editor })).status).toBe(404);
    expect((await api(t.baseUrl, 'GET', '/api/v1/trust-rules?agentId=Bad!', { key: editor })).body.errors[0].field).toBe('query.agentId');
    expect((await api(t.baseUrl, 'GET', '/api/v1/trust-rules?cursor=abc', { key: editor })).status).toBe(400);
    expect((await eventsSince(before)).map((e) => e.type)).toEqual(['trust_rule.created']);
  });

  it('lists by priority (highest first, then id) with filters and pagination', async () => {
    const priorities = [5, -3, 100, 5, 0, 5];
    const made: { id: string; priority: number; agentId: string }[] = [];
    for (const [i, priority] of priorities.entries()) {
      const agentId = i % 2 === 0 ? 'list-a' : 'list-b';
      const res = await create({ agentId, mcpServerId: i < 4 ? 'github' : 'slack', priority, toolPattern: `tool${i}.*` });
      expect(res.status).toBe(201);
      made.push(res.body);
    }
    const expected = [...made].sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : 1)).map((r) => r.id);

    const all: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { items: { id: string; agentId: string }[]; nextCursor: string | null } } = await api(
        t.baseUrl,
        'GET',
        `/api/v1/trust-rules?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { key: editor },
      );
      expect(res.status).toBe(200);
      all.push(...res.body.items.filter((r) => r.agentId.startsWith('list-')).map((r) => r.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(all).toEqual(expected);

    const byAgent = await api(t.baseUrl, 'GET', '/api/v1/trust-rules?agentId=list-b', { key: editor });
    expect(byAgent.body.items.map((r: { id: string }) => r.id)).toEqual(expected.filter((id) => made.find((r) => r.id === id)!.agentId === 'list-b'));
    const both = await api(t.baseUrl, 'GET', '/api/v1/trust-rules?agentId=list-a&mcpServerId=slack', { key: editor });
    expect(both.body.items.map((r: { toolPattern: string }) => r.toolPattern)).toEqual(['tool4.*']);
    const server = await api(t.baseUrl, 'GET', '/api/v1/trust-rules?mcpServerId=slack&limit=500', { key: editor });
    expect(server.body.items.every((r: { mcpServerId: string }) => r.mcpServerId === 'slack')).toBe(true);

    // The listed rules feed the evaluator.
    const rules = (await api(t.baseUrl, 'GET', '/api/v1/trust-rules?agentId=list-a&limit=500', { key: editor })).body.items;
    expect(evaluateTrust(rules, 'list-a', 'github', 'tool2.read')).toBe('allow');
    expect(evaluateTrust(rules, 'list-a', 'github', 'unlisted')).toBe('deny');
  });

  it('lets editors read and only admins write; viewers cannot even read', async () => {
    const rule = await create({ toolPattern: '*', effect: 'deny' });
    expect(rule.status).toBe(201);
    const id = rule.body.id as string;
    const before = await mark();

    for (const [method, path] of [
      ['GET', '/api/v1/trust-rules'],
      ['GET', `/api/v1/trust-rules/${id}`],
    ] as const) {
      const res = await api(t.baseUrl, method, path, { key: viewer });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('forbidden');
      expect((await api(t.baseUrl, method, path, { key: editor })).status).toBe(200);
      expect((await api(t.baseUrl, method, path)).status).toBe(401);
    }
    for (const key of [editor, viewer]) {
      expect((await create({}, key)).status).toBe(403);
      expect((await patch(id, { effect: 'allow' }, {}, key)).status).toBe(403);
      expect((await api(t.baseUrl, 'DELETE', `/api/v1/trust-rules/${id}`, { key })).status).toBe(403);
    }
    // The bootstrap admin key writes too.
    expect((await patch(id, { priority: 1 }, {}, t.adminKey)).status).toBe(200);
    expect((await eventsSince(before)).map((e) => e.type)).toEqual(['trust_rule.updated']);
  });
});
