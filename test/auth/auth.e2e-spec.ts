import { SseClient } from '../support/sse-client.js';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';

describe('auth: API keys, users, sessions', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('shows a key once, stores only its hash, and stops accepting it when revoked', async () => {
    const created = await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: t.adminKey, body: { name: 'bff', role: 'viewer' } });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(/^ar_/);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const listed = await api(t.baseUrl, 'GET', '/api/v1/api-keys', { key: t.adminKey });
    expect(listed.text).not.toContain(key);
    expect(listed.body.items.find((k: { id: string }) => k.id === created.body.id)).toMatchObject({ name: 'bff', role: 'viewer', prefix: key.slice(0, 11) });

    expect((await api(t.baseUrl, 'GET', '/api/v1/agents', { key })).status).toBe(200);
    expect((await api(t.baseUrl, 'GET', '/api/v1/auth/me', { headers: { 'x-api-key': key } })).body).toEqual({ kind: 'api_key', name: 'bff', role: 'viewer' });
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: t.adminKey })).status).toBe(204);
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents', { key })).status).toBe(401);
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/api-keys/${created.body.id}`, { key: t.adminKey })).status).toBe(404);
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/api-keys/not-a-uuid', { key: t.adminKey })).status).toBe(400);
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it('logs a user in with an HttpOnly SameSite cookie that works for REST and streams, and logs out', async () => {
    const user = await api(t.baseUrl, 'POST', '/api/v1/users', {
      key: t.adminKey,
      body: { username: 'alice', password: 'correct horse battery', role: 'editor' },
    });
    expect(user.status).toBe(201);
    expect(user.text).not.toContain('correct horse');
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/users', { key: t.adminKey, body: { username: 'alice', password: 'another password', role: 'viewer' } })).status,
    ).toBe(409);
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/users', { key: t.adminKey, body: { username: 'bob', password: 'short', role: 'viewer' } })).body.errors[0].field,
    ).toBe('password');

    const wrong = await api(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'wrong password!' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const unknown = await api(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { username: 'nobody', password: 'whatever123' } });
    expect(unknown.status).toBe(401);

    const login = await api(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'correct horse battery' } });
    expect(login.status).toBe(200);
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^ar_session=[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(login.headers.get('cache-control')).toBe('no-store');
    const cookie = setCookie.split(';')[0];

    expect((await api(t.baseUrl, 'GET', '/api/v1/auth/me', { headers: { cookie } })).body).toEqual({ kind: 'user', name: 'alice', role: 'editor' });
    // Unsafe cookie requests name their origin (browsers always do): here the service's own.
    const origin = t.baseUrl;
    const created = await api(t.baseUrl, 'POST', '/api/v1/agents', {
      headers: { cookie, origin },
      body: { id: 'by-cookie', name: 'x', model: { provider: 'p', name: 'm' } },
    });
    expect(created.status).toBe(201);
    expect((await api(t.baseUrl, 'POST', '/api/v1/api-keys', { headers: { cookie, origin }, body: { name: 'x', role: 'viewer' } })).status).toBe(403);

    const stream = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes?lastEventId=0`, { cookie });
    expect(stream.status).toBe(200);
    await stream.waitFor((c) => c.events.some((e) => e.data.actor === 'user:alice'), 5000, 'own event');
    stream.close();

    const logout = await api(t.baseUrl, 'POST', '/api/v1/auth/logout', { headers: { cookie } });
    expect(logout.status).toBe(204);
    expect(logout.headers.get('cache-control')).toBe('no-store');
    expect(logout.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents', { headers: { cookie } })).status).toBe(401);
  });

  it('lets only admins manage users and keys', async () => {
    const editor = await createKey(t, 'editor');
    expect((await api(t.baseUrl, 'GET', '/api/v1/users', { key: editor })).status).toBe(403);
    expect((await api(t.baseUrl, 'GET', '/api/v1/api-keys', { key: editor })).status).toBe(403);
    const users = await api(t.baseUrl, 'GET', '/api/v1/users', { key: t.adminKey });
    expect(users.body.items.map((u: { username: string }) => u.username)).toContain('alice');
    expect(users.text).not.toContain('scrypt');
  });

  it('changes a user role and password (a new password ends every session)', async () => {
    const made = await api(t.baseUrl, 'POST', '/api/v1/users', { key: t.adminKey, body: { username: 'erin', password: 'first password 1', role: 'viewer' } });
    expect(made.status).toBe(201);
    const login = await api(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'first password 1' } });
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    const promoted = await api(t.baseUrl, 'PATCH', `/api/v1/users/${made.body.id}`, { key: t.adminKey, body: { role: 'editor' } });
    expect(promoted.status).toBe(200);
    expect(promoted.body).toMatchObject({ username: 'erin', role: 'editor' });
    expect((await api(t.baseUrl, 'GET', '/api/v1/auth/me', { headers: { cookie } })).body.role).toBe('editor');
    expect((await api(t.baseUrl, 'PATCH', `/api/v1/users/${made.body.id}`, { key: t.adminKey, body: {} })).status).toBe(400);
    expect((await api(t.baseUrl, 'PATCH', `/api/v1/users/${made.body.id}`, { key: t.adminKey, body: { password: 'second password 2' } })).status).toBe(200);
    expect((await api(t.baseUrl, 'GET', '/api/v1/auth/me', { headers: { cookie } })).status).toBe(401);
    expect((await api(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'second password 2' } })).status).toBe(200);
    expect((await api(t.baseUrl, 'PATCH', '/api/v1/users/00000000-0000-4000-8000-000000000000', { key: t.adminKey, body: { role: 'viewer' } })).status).toBe(
      404,
    );
  });
});
