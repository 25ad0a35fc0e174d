import pg from 'pg';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';
import { outboxProbe } from '../support/outbox-probe.js';

const agent = (id: string) => ({ id, name: `Agent ${id}`, model: { provider: 'openai', name: 'gpt-5' } });

describe('prompts REST', () => {
  let t: TestApp;
  let db: pg.Client;
  let editor: string;
  let viewer: string;

  const { mark, eventsSince } = outboxProbe(() => db);
  const base = (agentId: string) => `/api/v1/agents/${agentId}/prompts`;
  const post = (agentId: string, body: unknown, key = editor) => api(t.baseUrl, 'POST', base(agentId), { key, body });

  const createAgent = async (id: string) => expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent(id) })).status).toBe(201);
  const activate = (agentId: string, version: number) => api(t.baseUrl, 'POST', `${base(agentId)}/${version}/activate`, { key: editor });

  /** A fresh agent with three versions: 1 ('Hello {{name}}'), 2 (created with activate: true, so active) and 3. */
  async function setup(agentId: string) {
    await createAgent(agentId);
    const v1 = await post(agentId, { template: 'Hello {{name}}', variables: ['name'] });
    const v2 = await post(agentId, { template: 'Hi {{name}}, today is {{day}}', description: 'friendlier', variables: ['name', 'day'], activate: true });
    const v3 = await post(agentId, { template: 'Third' });
    return { v1, v2, v3 };
  }

  beforeAll(async () => {
    t = await startTestApp();
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
    for (const id of ['race', 'flip', 'other']) await createAgent(id);
    // The shared fixture the tests below read: agent pmo with versions 1, 2 (active) and 3.
    await setup('pmo');
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  it('numbers the first version 1, answers with its Location, and records prompt.created', async () => {
    await createAgent('first');
    const before = await mark();
    const v1 = await post('first', { template: 'Hello {{name}}', variables: ['name'] });
    expect(v1.status).toBe(201);
    expect(v1.headers.get('location')).toBe('/api/v1/agents/first/prompts/1');
    expect(v1.body).toEqual({
      agentId: 'first',
      version: 1,
      template: 'Hello {{name}}',
      description: '',
      variables: ['name'],
      active: false,
      createdBy: expect.stringMatching(/^api_key:editor-/),
      createdAt: expect.any(String),
    });
    expect(await eventsSince(before)).toEqual([
      { type: 'prompt.created', resource_id: 'first/1', version: 1, actor: v1.body.createdBy, data: { agentId: 'first', version: 1 } },
    ]);
  });

  it('activates a new version in the same transaction with activate: true', async () => {
    await createAgent('at-once');
    expect((await post('at-once', { template: 'Hello {{name}}', variables: ['name'] })).status).toBe(201);
    const before = await mark();
    const v2 = await post('at-once', { template: 'Hi {{name}}, today is {{day}}', description: 'friendlier', variables: ['name', 'day'], activate: true });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ version: 2, active: true, description: 'friendlier' });
    expect((await eventsSince(before)).map((e) => [e.type, e.resource_id, e.version, e.data])).toEqual([
      ['prompt.created', 'at-once/2', 2, { agentId: 'at-once', version: 2 }],
      ['prompt.activated', 'at-once/2', 2, { agentId: 'at-once', version: 2, previous: null }],
    ]);
  });

  it('lists versions newest first, in pages', async () => {
    const { v3 } = await setup('listed');
    expect(v3.body).toMatchObject({ version: 3, active: false, variables: [] });
    const list = await api(t.baseUrl, 'GET', base('listed'), { key: viewer });
    expect(list.status).toBe(200);
    expect(list.body.items.map((p: { version: number; active: boolean }) => [p.version, p.active])).toEqual([
      [3, false],
      [2, true],
      [1, false],
    ]);
    expect(list.body.nextCursor).toBeNull();

    const page1 = await api(t.baseUrl, 'GET', `${base('listed')}?limit=2`, { key: viewer });
    expect(page1.body.items.map((p: { version: number }) => p.version)).toEqual([3, 2]);
    const page2 = await api(t.baseUrl, 'GET', `${base('listed')}?limit=2&cursor=${page1.body.nextCursor}`, { key: viewer });
    expect(page2.body.items.map((p: { version: number }) => p.version)).toEqual([1]);
    expect(page2.body.nextCursor).toBeNull();
  });

  it('reads one version as it was created', async () => {
    const { v1 } = await setup('read-one');
    const got = await api(t.baseUrl, 'GET', `${base('read-one')}/1`, { key: viewer });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(v1.body);
  });

  it('activates another version: prompt.activated names the previous one, and the agent shows it', async () => {
    await setup('switch');
    const before = await mark();
    const activated = await activate('switch', 1);
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ version: 1, active: true });
    expect(await eventsSince(before)).toEqual([
      {
        type: 'prompt.activated',
        resource_id: 'switch/1',
        version: 1,
        actor: expect.stringMatching(/^api_key:editor-/),
        data: { agentId: 'switch', version: 1, previous: 2 },
      },
    ]);
    expect((await api(t.baseUrl, 'GET', `${base('switch')}/2`, { key: viewer })).body.active).toBe(false);
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents/switch', { key: viewer })).body.activePromptVersion).toBe(1);
  });

  it('treats activating the active version again as a no-op: 200, no event', async () => {
    await setup('again');
    expect((await activate('again', 1)).status).toBe(200);
    const before = await mark();
    const again = await activate('again', 1);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ version: 1, active: true });
    expect(await eventsSince(before)).toEqual([]);
  });

  it('refuses to delete the active version: 409 problem+json, no event', async () => {
    await setup('keep-active');
    expect((await activate('keep-active', 1)).status).toBe(200);
    const before = await mark();
    const deleteActive = await api(t.baseUrl, 'DELETE', `${base('keep-active')}/1`, { key: editor });
    expect(deleteActive.status).toBe(409);
    expect(deleteActive.headers.get('content-type')).toContain('application/problem+json');
    expect(deleteActive.body.code).toBe('conflict');
    expect(await eventsSince(before)).toEqual([]);
  });

  it('deletes an inactive version: 204, prompt.deleted, gone from reads and from the list', async () => {
    await setup('drop');
    expect((await activate('drop', 1)).status).toBe(200);
    const before = await mark();
    const deleted = await api(t.baseUrl, 'DELETE', `${base('drop')}/2`, { key: editor });
    expect(deleted.status).toBe(204);
    expect(await eventsSince(before)).toEqual([
      { type: 'prompt.deleted', resource_id: 'drop/2', version: 2, actor: expect.stringMatching(/^api_key:editor-/), data: { agentId: 'drop', version: 2 } },
    ]);
    expect((await api(t.baseUrl, 'GET', `${base('drop')}/2`, { key: viewer })).status).toBe(404);
    expect((await api(t.baseUrl, 'GET', base('drop'), { key: viewer })).body.items.map((p: { version: number }) => p.version)).toEqual([3, 1]);
  });

  it('never reuses a number: after deleting the newest version, the next one is still new', async () => {
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: { id: 'reuse', name: 'r', model: { provider: 'p', name: 'm' } } })).status,
    ).toBe(201);
    for (const template of ['one', 'two']) expect((await api(t.baseUrl, 'POST', base('reuse'), { key: editor, body: { template } })).status).toBe(201);
    expect((await api(t.baseUrl, 'DELETE', `${base('reuse')}/2`, { key: editor })).status).toBe(204);
    const next = await api(t.baseUrl, 'POST', base('reuse'), { key: editor, body: { template: 'fresh' } });
    expect(next.status).toBe(201);
    expect(next.body.version).toBe(3);
  });

  it('answers 404 for an unknown agent or version, with no event', async () => {
    const before = await mark();
    for (const [method, path, body] of [
      ['POST', base('ghost'), { template: 'x' }],
      ['GET', base('ghost'), undefined],
      ['GET', `${base('ghost')}/1`, undefined],
      ['POST', `${base('ghost')}/1/activate`, undefined],
      ['DELETE', `${base('ghost')}/1`, undefined],
      ['GET', `${base('pmo')}/99`, undefined],
      ['POST', `${base('pmo')}/99/activate`, undefined],
      ['DELETE', `${base('pmo')}/99`, undefined],
    ] as const) {
      const res = await api(t.baseUrl, method, path, { key: editor, body });
      expect([method, path, res.status, res.body.code]).toEqual([method, path, 404, 'not_found']);
    }
    // An existing agent without prompts lists as empty, not 404.
    expect((await api(t.baseUrl, 'GET', base('other'), { key: viewer })).body).toEqual({ items: [], nextCursor: null });
    expect(await eventsSince(before)).toEqual([]);
  });

  it('validates bodies and path parameters naming the field', async () => {
    const before = await mark();
    for (const bad of ['abc', '0', '-1', '1.5', '01', '99999999999']) {
      const res = await api(t.baseUrl, 'GET', `${base('pmo')}/${bad}`, { key: viewer });
      expect([bad, res.status, res.body.errors?.[0]?.field]).toEqual([bad, 400, 'version']);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    expect((await api(t.baseUrl, 'POST', `${base('pmo')}/x/activate`, { key: editor })).body.errors[0].field).toBe('version');
    expect((await api(t.baseUrl, 'DELETE', `${base('pmo')}/0`, { key: editor })).body.errors[0].field).toBe('version');
    expect((await api(t.baseUrl, 'GET', `/api/v1/agents/Bad%20Id/prompts`, { key: viewer })).body.errors[0].field).toBe('id');

    const fields = async (body: unknown) => {
      const res = await post('pmo', body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      return res.body.errors.map((e: { field: string }) => e.field).sort();
    };
    expect(await fields({})).toEqual(['template']);
    expect(await fields({ template: '' })).toEqual(['template']);
    expect(await fields({ template: 'x'.repeat(100_001) })).toEqual(['template']);
    expect(await fields({ template: 'x', variables: ['ok', 'not ok', 'ok'] })).toEqual(['variables', 'variables.1']);
    expect(await fields({ template: 'x', activate: 'yes', description: 7 })).toEqual(['activate', 'description']);
    const unknown = await post('pmo', { template: 'x', colour: 'red' });
    expect(unknown.body.errors).toEqual([{ field: 'colour', message: 'unknown field' }]);
    expect((await api(t.baseUrl, 'GET', `${base('pmo')}?cursor=bogus`, { key: viewer })).status).toBe(400);
    expect(await eventsSince(before)).toEqual([]);

    // The largest template fits.
    expect((await post('other', { template: 'y'.repeat(100_000) })).status).toBe(201);
  });

  it('lets viewers read but not write', async () => {
    const before = await mark();
    expect((await post('pmo', { template: 'x' }, viewer)).status).toBe(403);
    expect((await api(t.baseUrl, 'POST', `${base('pmo')}/3/activate`, { key: viewer })).status).toBe(403);
    const del = await api(t.baseUrl, 'DELETE', `${base('pmo')}/3`, { key: viewer });
    expect(del.status).toBe(403);
    expect(del.body.code).toBe('forbidden');
    expect((await api(t.baseUrl, 'GET', `${base('pmo')}/3`, { key: viewer })).status).toBe(200);
    expect((await api(t.baseUrl, 'GET', base('pmo'))).status).toBe(401);
    expect(await eventsSince(before)).toEqual([]);
  });

  it('numbers 20 concurrent creates 1..20 without an error', async () => {
    const before = await mark();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post('race', { template: `prompt ${i}` })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const versions = results.map((r) => r.body.version as number).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const events = await eventsSince(before);
    expect(events).toHaveLength(20);
    expect(new Set(events.map((e) => e.resource_id)).size).toBe(20);
    expect(events.every((e) => e.type === 'prompt.created')).toBe(true);
  });

  it('leaves exactly one version active under concurrent activations', async () => {
    for (let i = 1; i <= 5; i++) expect((await post('flip', { template: `v${i}` })).status).toBe(201);
    const before = await mark();
    const calls = Array.from({ length: 25 }, (_, i) => api(t.baseUrl, 'POST', `${base('flip')}/${(i % 5) + 1}/activate`, { key: editor }));
    const results = await Promise.all(calls);
    expect(results.map((r) => r.status)).toEqual(Array(25).fill(200));
    const active = (await db.query("SELECT version FROM prompts WHERE agent_id = 'flip' AND active")).rows;
    expect(active).toHaveLength(1);

    // The events form one consistent chain: each names the version active before it.
    const events = await eventsSince(before);
    expect(events.length).toBeGreaterThanOrEqual(1);
    let previous: number | null = null;
    for (const e of events) {
      expect(e.type).toBe('prompt.activated');
      expect(e.data!.previous).toBe(previous);
      previous = e.data!.version as number;
    }
    expect(previous).toBe(active[0].version);
    const listed = await api(t.baseUrl, 'GET', base('flip'), { key: viewer });
    expect(listed.body.items.filter((p: { active: boolean }) => p.active).map((p: { version: number }) => p.version)).toEqual([previous]);
  });

  it('removes an agent’s prompts with the agent', async () => {
    expect((await post('other', { template: 'z', activate: true })).status).toBe(201);
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/agents/other', { key: editor })).status).toBe(204);
    expect(Number((await db.query("SELECT count(*) FROM prompts WHERE agent_id = 'other'")).rows[0].count)).toBe(0);
    expect((await api(t.baseUrl, 'GET', base('other'), { key: viewer })).status).toBe(404);
  });
});
