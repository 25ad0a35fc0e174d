import pg from 'pg';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: `Agent ${id}`, model: { provider: 'openai', name: 'gpt-5', temperature: 0.2 }, tags: ['ops'] });

describe('agents REST', () => {
  let t: TestApp;
  let editor: string;
  let viewer: string;

  beforeAll(async () => {
    t = await startTestApp();
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
  });
  afterAll(() => t.close());

  describe('one agent, with ETags', () => {
    const path = '/api/v1/agents/pmo';
    const patch = (body: unknown, ifMatch: string) => api(t.baseUrl, 'PATCH', path, { key: editor, body, headers: { 'if-match': ifMatch } });

    /** Agent pmo at version 1 (removed after each test, so the listing tests below start empty). */
    const setup = () => api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('pmo') });
    afterEach(() => api(t.baseUrl, 'DELETE', path, { key: editor }));

    it('is created at version 1 with its ETag', async () => {
      const created = await setup();
      expect(created.status).toBe(201);
      expect(created.headers.get('etag')).toBe('"1"');
      expect(created.body).toMatchObject({ id: 'pmo', version: 1, tags: ['ops'], description: '', metadata: {} });
    });

    it('reads back with its model settings', async () => {
      await setup();
      const got = await api(t.baseUrl, 'GET', path, { key: viewer });
      expect(got.status).toBe(200);
      expect(got.body.model).toEqual({ provider: 'openai', name: 'gpt-5', temperature: 0.2 });
    });

    it('updates with the current If-Match, moving the ETag', async () => {
      await setup();
      const updated = await patch({ name: 'PMO' }, '"1"');
      expect(updated.status).toBe(200);
      expect(updated.headers.get('etag')).toBe('"2"');
    });

    it('refuses a stale If-Match with 412 problem+json, for PATCH and DELETE', async () => {
      await setup();
      expect((await patch({ name: 'PMO' }, '"1"')).status).toBe(200);
      const stale = await patch({ name: 'Again' }, '"1"');
      expect(stale.status).toBe(412);
      expect(stale.headers.get('content-type')).toContain('application/problem+json');
      const staleDelete = await api(t.baseUrl, 'DELETE', path, { key: editor, headers: { 'if-match': '"1"' } });
      expect(staleDelete.status).toBe(412);
    });

    it('deletes with the current If-Match; then it is gone', async () => {
      await setup();
      expect((await patch({ name: 'PMO' }, '"1"')).status).toBe(200);
      const deleted = await api(t.baseUrl, 'DELETE', path, { key: editor, headers: { 'if-match': '"2"' } });
      expect(deleted.status).toBe(204);
      expect((await api(t.baseUrl, 'GET', path, { key: viewer })).status).toBe(404);
    });
  });

  it('paginates and filters by tag', async () => {
    for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) {
      const body = { ...agent(id), tags: id === 'a2' || id === 'a4' ? ['even'] : ['odd'] };
      expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body })).status).toBe(201);
    }
    const first = await api(t.baseUrl, 'GET', '/api/v1/agents?limit=2', { key: viewer });
    expect(first.body.items.map((a: { id: string }) => a.id)).toEqual(['a1', 'a2']);
    const second = await api(t.baseUrl, 'GET', `/api/v1/agents?limit=2&cursor=${first.body.nextCursor}`, { key: viewer });
    expect(second.body.items.map((a: { id: string }) => a.id)).toEqual(['a3', 'a4']);
    const third = await api(t.baseUrl, 'GET', `/api/v1/agents?limit=2&cursor=${second.body.nextCursor}`, { key: viewer });
    expect(third.body.items.map((a: { id: string }) => a.id)).toEqual(['a5']);
    expect(third.body.nextCursor).toBeNull();
    const even = await api(t.baseUrl, 'GET', '/api/v1/agents?tag=even', { key: viewer });
    expect(even.body.items.map((a: { id: string }) => a.id)).toEqual(['a2', 'a4']);
  });

  it('answers bad input with problem+json naming the field, and never crashes', async () => {
    const malformed = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, rawBody: '{"id": "x",', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toContain('application/problem+json');
    expect(malformed.body.errors).toEqual([{ field: '(body)', message: 'malformed JSON' }]);

    const wrong = await api(t.baseUrl, 'POST', '/api/v1/agents', {
      key: editor,
      body: { ...agent('typed'), name: 42, model: { provider: 'x', name: 'y', temperature: 9 } },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['model.temperature', 'name']);

    const unknown = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: { ...agent('unk'), colour: 'red' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([{ field: 'colour', message: 'unknown field' }]);

    const big = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: { ...agent('big'), description: 'x'.repeat(300_000) } });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('payload_too_large');

    const text = await api(t.baseUrl, 'POST', '/api/v1/agents', {
      key: editor,
      rawBody: 'id=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(text.status).toBe(415);

    const badId = await api(t.baseUrl, 'GET', '/api/v1/agents/Not%20A%20Slug', { key: viewer });
    expect(badId.status).toBe(400);
    expect(badId.body.errors[0].field).toBe('id');

    const dup = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('a1') });
    expect(dup.status).toBe(409);

    expect((await api(t.baseUrl, 'GET', '/healthz')).status).toBe(200);
  });

  it('distinguishes 401 from 403', async () => {
    const none = await api(t.baseUrl, 'GET', '/api/v1/agents');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const bad = await api(t.baseUrl, 'GET', '/api/v1/agents', { key: 'ar_not-a-real-key-at-all-000000' });
    expect(bad.status).toBe(401);
    const viewerWrites = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: viewer, body: agent('nope') });
    expect(viewerWrites.status).toBe(403);
    expect(viewerWrites.body.code).toBe('forbidden');
    const editorAdmin = await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: editor, body: { name: 'x', role: 'viewer' } });
    expect(editorAdmin.status).toBe(403);
  });

  it('writes exactly one outbox event per successful mutation and none for a failed one', async () => {
    const db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    try {
      const count = async () => Number((await db.query('SELECT count(*) FROM outbox')).rows[0].count);
      const before = await count();
      expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('atomic') })).status).toBe(201);
      expect(await count()).toBe(before + 1);
      const last = (await db.query('SELECT type, resource_id, actor, version FROM outbox ORDER BY id DESC LIMIT 1')).rows[0];
      expect(last).toEqual({ type: 'agent.created', resource_id: 'atomic', actor: expect.stringMatching(/^api_key:editor-/), version: 1 });

      // A conflicting create fails inside the transaction: neither row nor event remains.
      expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('atomic') })).status).toBe(409);
      expect(await count()).toBe(before + 1);

      // Force a failure after the row was written, at the outbox insert: the change rolls back too.
      await db.query(`CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox down'; END $$`);
      await db.query('CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox()');
      const failed = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('ghost') });
      expect(failed.status).toBe(500);
      expect(failed.text).not.toContain('outbox down');
      const patchFailed = await api(t.baseUrl, 'PATCH', '/api/v1/agents/atomic', { key: editor, body: { name: 'changed' } });
      expect(patchFailed.status).toBe(500);
      await db.query('DROP TRIGGER fail_outbox ON outbox');
      expect((await db.query("SELECT count(*) FROM agents WHERE id = 'ghost'")).rows[0].count).toBe(0);
      expect((await db.query("SELECT name, version FROM agents WHERE id = 'atomic'")).rows[0]).toEqual({ name: 'Agent atomic', version: 1 });
      expect(await count()).toBe(before + 1);
    } finally {
      await db.end();
    }
  });
});
