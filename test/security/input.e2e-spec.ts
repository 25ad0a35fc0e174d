import { Cluster, type Replica } from '../support/replicas.js';
import { parseRaw, rawRequest } from '../support/security.js';
import { api, createTestDatabase, redisUrl } from '../support/test-env.js';

const agent = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, model: { provider: 'p', name: 'm' }, ...extra });

/** problem+json with the given status; returns the problem. */
function expectProblem(res: { status: number; headers: Headers | Record<string, string>; body: any }, status: number): any {
  expect(res.status).toBe(status);
  const type = res.headers instanceof Headers ? res.headers.get('content-type') : res.headers['content-type'];
  expect(type).toContain('application/problem+json');
  expect(res.body).toMatchObject({ status, type: expect.stringMatching(/^https:\/\//), title: expect.any(String), code: expect.any(String) });
  return res.body;
}

describe('security: hostile input gets a 4xx problem+json, never a 500', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r: Replica;
  let key: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl());
    r = await cluster.start('input');
    key = cluster.adminKey;
    expect((await api(r.url, 'POST', '/api/v1/agents', { key, body: agent('base') })).status).toBe(201);
  }, 60_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('NUL characters in the body, the query or a cursor: 400 naming the field', async () => {
    const body = expectProblem(
      await api(r.url, 'POST', '/api/v1/agents', {
        key,
        rawBody: JSON.stringify(agent('nul', { name: 'a\u0000b' })),
        headers: { 'content-type': 'application/json' },
      }),
      400,
    );
    expect(body.errors).toEqual([{ field: 'name', message: expect.stringContaining('NUL') }]);
    const nested = expectProblem(await api(r.url, 'POST', '/api/v1/agents', { key, body: agent('nul2', { metadata: { notes: ['ok', 'x\u0000'] } }) }), 400);
    expect(nested.errors[0].field).toBe('metadata.notes.1');
    expect(expectProblem(await api(r.url, 'GET', '/api/v1/agents?tag=%00', { key }), 400).errors[0].field).toBe('query.tag');
    expect(expectProblem(await api(r.url, 'GET', `/api/v1/agents?cursor=${Buffer.from('\0').toString('base64url')}`, { key }), 400).errors[0].field).toBe(
      'cursor',
    );
    expect(
      expectProblem(await api(r.url, 'GET', `/api/v1/mcp-servers?cursor=${Buffer.from('Not A Slug!').toString('base64url')}`, { key }), 400).errors[0].field,
    ).toBe('cursor');
    expect(expectProblem(await api(r.url, 'GET', '/api/v1/agents?cursor=%E2%82%AC', { key }), 400).errors[0].field).toBe('cursor');
    expect((await api(r.url, 'GET', '/api/v1/agents/base', { key })).status).toBe(200);
  });

  it('JSON nested 5,000 levels deep: 400 on the body, checked without recursion', async () => {
    const deep = `{"id":"deep","name":"x","model":{"provider":"p","name":"m"},"metadata":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    const res = await api(r.url, 'POST', '/api/v1/agents', { key, rawBody: deep, headers: { 'content-type': 'application/json' } });
    expect(expectProblem(res, 400).errors[0].field).toBe('(body)');
    expect((await api(r.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('an over-long path segment (414) and bad percent-encoding (400) are problem+json and do not echo the URL', async () => {
    const long = 'a'.repeat(5000);
    const tooLong = await api(r.url, 'GET', `/api/v1/agents/${long}`, { key });
    expectProblem(tooLong, 414);
    expect(tooLong.text).not.toContain(long.slice(0, 200));
    const badEncoding = await api(r.url, 'GET', '/api/v1/agents/%ZZ', { key });
    expect(expectProblem(badEncoding, 400).errors[0].field).toBe('(url)');
    expect(badEncoding.text).not.toContain('%ZZ');
  });

  it('Node parser errors: headers too large (431) and a malformed request (400) are problem+json', async () => {
    const huge = await rawRequest(r.url, [`GET /api/v1/agents?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expectProblem(parseRaw(huge.text), 431);
    const bigHeader = await rawRequest(r.url, [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`]);
    expectProblem(parseRaw(bigHeader.text), 431);
    const garbage = await rawRequest(r.url, ['GARBAGE\r\n\r\n']);
    expectProblem(parseRaw(garbage.text), 400);
    const badHeader = await rawRequest(r.url, ['GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n']);
    expectProblem(parseRaw(badHeader.text), 400);
  });

  it('authenticates before reading the body: 401 arrives while a 256 KiB upload is still unsent', async () => {
    const head = 'POST /api/v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' + `Content-Length: ${256 * 1024}\r\n\r\n`;
    // Only the head and 10 bytes of the body are sent; a server that parsed first would wait for the rest.
    const started = performance.now();
    const res = await rawRequest(r.url, [head, '{"id":"x",'], 3000);
    expect(performance.now() - started).toBeLessThan(2000);
    const parsed = parseRaw(res.text);
    expectProblem(parsed, 401);
    // A role too low is refused before the body too.
    const viewer = (await api(r.url, 'POST', '/api/v1/api-keys', { key, body: { name: 'v', role: 'viewer' } })).body.key;
    const forbidden = await rawRequest(r.url, [head.replace('Host: x\r\n', `Host: x\r\nAuthorization: Bearer ${viewer}\r\n`), '{"id":"x",'], 3000);
    expectProblem(parseRaw(forbidden.text), 403);
  });

  it('accepts a bodyless action sent with Content-Type: application/json and an empty body', async () => {
    expect((await api(r.url, 'POST', '/api/v1/agents/base/prompts', { key, body: { template: 'hello' } })).status).toBe(201);
    const res = await fetch(`${r.url}/api/v1/agents/base/prompts/1/activate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: '',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { active: boolean }).active).toBe(true);
    // A body that is required is still required.
    expect(
      expectProblem(await api(r.url, 'POST', '/api/v1/agents', { key, rawBody: '', headers: { 'content-type': 'application/json' } }), 400).errors[0].field,
    ).toBe('(body)');
  });

  it('logged nothing at error level (no 500 on any of the above)', () => {
    expect(r.output).not.toMatch(/ERROR/);
  });
});
