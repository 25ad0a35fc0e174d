import { Cluster, type Replica, replicaMetric } from '../support/replicas.js';
import { loginAs, query } from '../support/security.js';
import { api, createTestDatabase, recordFigure, redisUrl, waitFor } from '../support/test-env.js';

const HITS = 'registry_credential_cache_lookups_total{result="hit"}';
const CLEARS = 'registry_credential_cache_clears_total';

/**
 * The credential cache (CREDENTIAL_CACHE_MS, src/auth/credential-cache.ts) saves a
 * PostgreSQL lookup per request, and must not make credentials less live: a
 * revoked key or ended session is refused on every replica within a second,
 * while that replica's cache holds it.
 */
describe('security: cached credentials are still live (two replicas)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;

  /** Authenticates on `replica` until its cache answers (a hit is counted), so the credential is cached there. */
  const warm = async (replica: Replica, auth: { key?: string; headers?: Record<string, string> }) => {
    const before = await replicaMetric(replica, HITS);
    await waitFor(
      async () => {
        expect((await api(replica.url, 'GET', '/api/v1/agents', auth)).status).toBe(200);
        return (await replicaMetric(replica, HITS)) > (Number.isNaN(before) ? 0 : before);
      },
      10_000,
      'the credential to be served from the cache',
    );
  };

  /**
   * Polls `replica` with `auth` until it answers 401; returns when the first refused request
   * was sent, in milliseconds after `since` (a loaded machine may be slow to answer; what
   * counts is that a request sent then was refused).
   */
  const refusedWithin = async (replica: Replica, auth: { key?: string; headers?: Record<string, string> }, since: number) => {
    let sent = 0;
    await waitFor(
      async () => {
        sent = performance.now();
        return (await api(replica.url, 'GET', '/api/v1/agents', auth)).status === 401;
      },
      5000,
      'the credential to be refused',
    );
    return sent - since;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { CREDENTIAL_CACHE_MS: '1000' });
    [r1, r2] = await Promise.all([cluster.start('c1'), cluster.start('c2')]);
  }, 90_000);
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('a key revoked on one replica is refused at once there, and on the replica that has it cached within 1 s', async () => {
    const made = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'cached-editor', role: 'editor' } });
    expect(made.status).toBe(201);
    const key = made.body.key as string;
    await warm(r2, { key });
    await warm(r1, { key });
    const clears = await replicaMetric(r2, CLEARS);

    const revoked = await api(r1.url, 'DELETE', `/api/v1/api-keys/${made.body.id}`, { key: cluster.adminKey });
    expect(revoked.status).toBe(204);
    const since = performance.now();
    // The replica that revoked emptied its cache before answering: refused on the next request.
    expect((await api(r1.url, 'GET', '/api/v1/agents', { key })).status).toBe(401);
    expect((await api(r1.url, 'POST', '/api/v1/agents', { key, body: { id: 'after-revoke', name: 'x', model: { provider: 'a', name: 'b' } } })).status).toBe(
      401,
    );
    const elapsed = await refusedWithin(r2, { key }, since);
    recordFigure(`credential cache: revoked key refused on the other replica ${elapsed.toFixed(0)} ms after the revocation`);
    expect(elapsed).toBeLessThan(1000);
    // It was the bus message that emptied r2's cache (nothing changed on r2 itself).
    await waitFor(async () => (await replicaMetric(r2, CLEARS)) > (Number.isNaN(clears) ? 0 : clears), 5000, 'r2 to hear the change');
    // And nothing was created with it.
    expect((await api(r1.url, 'GET', '/api/v1/agents/after-revoke', { key: cluster.adminKey })).status).toBe(404);
  });

  it('a key revoked behind the service (no bus message) is still refused within the cache TTL', async () => {
    const made = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'revoked-in-sql', role: 'viewer' } });
    const key = made.body.key as string;
    await warm(r2, { key });
    const since = performance.now();
    await query(db.url, 'UPDATE api_keys SET revoked_at = now() WHERE id = $1', [made.body.id]);
    const elapsed = await refusedWithin(r2, { key }, since);
    recordFigure(`credential cache: key revoked in SQL refused after ${elapsed.toFixed(0)} ms (TTL bound)`);
    // CREDENTIAL_CACHE_MS = 1000, counted from the lookup that filled the cache (before `since`): a request sent
    // after that is refused; the rest is slack for a loaded machine, where the request before it may take long to
    // answer. A cache without a TTL would keep answering 200 until waitFor gives up.
    expect(elapsed).toBeLessThan(3000);
  });

  it("logging out on one replica ends the session's REST access on the replica that has it cached", async () => {
    const { cookie } = await loginAs(r1.url, cluster.adminKey, 'cached-carol', 'viewer');
    await warm(r2, { headers: { cookie } });
    const out = await api(r1.url, 'POST', '/api/v1/auth/logout', { headers: { cookie } });
    expect(out.status).toBe(204);
    const elapsed = await refusedWithin(r2, { headers: { cookie } }, performance.now());
    expect(elapsed).toBeLessThan(1000);
  });

  it('a demoted user loses the editor role on the replica that has the session cached', async () => {
    const { cookie, id } = await loginAs(r1.url, cluster.adminKey, 'cached-dave', 'editor');
    await warm(r2, { headers: { cookie } });
    const demoted = await api(r1.url, 'PATCH', `/api/v1/users/${id}`, { key: cluster.adminKey, body: { role: 'viewer' } });
    expect(demoted.status).toBe(200);
    const since = performance.now();
    const origin = { cookie, origin: r2.url };
    let sent = 0;
    await waitFor(
      async () => {
        sent = performance.now();
        const res = await api(r2.url, 'POST', '/api/v1/agents', { headers: origin, body: { id: 'by-dave', name: 'x', model: { provider: 'a', name: 'b' } } });
        return res.status === 403;
      },
      5000,
      'the viewer role to apply',
    );
    expect(sent - since).toBeLessThan(1000);
  });

  it('never caches a wrong key: each attempt is refused and asked of PostgreSQL', async () => {
    const wrong = `ar_${'x'.repeat(40)}`;
    const hits = await replicaMetric(r2, HITS);
    for (let i = 0; i < 3; i++) expect((await api(r2.url, 'GET', '/api/v1/agents', { key: wrong })).status).toBe(401);
    expect(await replicaMetric(r2, HITS)).toBe(hits);
    const made = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name: 'fresh', role: 'viewer' } });
    // A key used on r2 for the first time right after its creation works at once (no negative entry in the way).
    expect((await api(r2.url, 'GET', '/api/v1/agents', { key: made.body.key })).status).toBe(200);
  });
});
