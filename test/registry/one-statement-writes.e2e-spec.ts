import pg from 'pg';
import { AgentRepository, type Created } from '../../src/registry/agents/agent.repository.js';
import { RegistryWriter } from '../../src/registry/registry.writer.js';
import { api, createKey, startTestApp, type TestApp } from '../support/test-env.js';

const agent = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: `Agent ${id} — ünïcode ✓`,
  description: 'd',
  model: { provider: 'anthropic', name: 'claude', temperature: 0.2, parameters: { z: [1, 'two', null], 'ü ✓': { deep: 'quote " and \\ backslash' } } },
  tags: ['a', 'b.c', 'x:1'],
  metadata: { nested: { deep: true }, n: 1 },
  ...extra,
});

/** What a create came to: the agent's id, `exists`/`cap`, or the error's message. */
const outcome = (c: Created | Error) => (c instanceof Error ? c.message : 'agent' in c ? c.agent.id : c.refused);

/**
 * Creates that arrive together go as one statement (WriteBatcher + AgentRepository.createMany).
 * The batch statement must give what the one-create statement gives, row for row and event
 * for event, hold the cap exactly, and commit nothing when it fails.
 */
describe('agent writes in one statement (creates batched)', () => {
  let t: TestApp;
  let db: pg.Client;
  let repo: AgentRepository;
  let writer: RegistryWriter;
  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_AGENTS: '1000', DATABASE_POOL_SIZE: '20' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    repo = t.app.get(AgentRepository);
    writer = t.app.get(RegistryWriter);
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  const counted = async () => Number((await db.query(`SELECT n FROM registry_counts WHERE table_name = 'agents'`)).rows[0].n);
  const events = async (ids: string[]) =>
    (await db.query(`SELECT type, resource_id, version, actor, data FROM outbox WHERE resource_id = ANY($1) ORDER BY id`, [ids])).rows;

  it('creates each agent and its one event, as the one-create statement does', async () => {
    const alone = await repo.create(writer.statement, agent('one-alone'), 'api_key:solo', 1000);
    const batch = await repo.createMany(
      writer.statement,
      [
        { agent: agent('batch-1'), actor: 'api_key:first' },
        { agent: agent('batch-2', { tags: [] }), actor: 'user:second' },
        { agent: agent('batch-3', { metadata: {} }), actor: 'api_key:third' },
      ],
      1000,
    );
    expect(batch.map(outcome)).toEqual(['batch-1', 'batch-2', 'batch-3']);
    // Same shape and values as the single statement's result, and as a later read.
    const strip = (a: Record<string, unknown>) => ({ ...a, id: undefined, name: undefined, createdAt: undefined, updatedAt: undefined });
    const first = batch[0];
    if (!('agent' in alone) || first instanceof Error || !('agent' in first)) throw new Error('not created');
    expect(strip(first.agent as never)).toEqual(strip(alone.agent as never));
    expect(Object.keys(first.agent)).toEqual(Object.keys(alone.agent));
    for (const c of batch) {
      if (c instanceof Error || !('agent' in c)) throw new Error('not created');
      const read = await api(t.baseUrl, 'GET', `/api/v1/agents/${c.agent.id}`, { key: t.adminKey });
      expect(read.body).toEqual(JSON.parse(JSON.stringify(c.agent)));
    }
    expect((await api(t.baseUrl, 'GET', '/api/v1/agents/batch-2', { key: t.adminKey })).body.tags).toEqual([]);
    // Tags keep the order they were sent in.
    const ordered = await repo.createMany(
      writer.statement,
      [
        { agent: agent('order-1', { tags: ['zz', 'aa', 'mm', 'b.1', '0'] }), actor: 'a' },
        { agent: agent('order-2', { tags: ['x'] }), actor: 'a' },
      ],
      1000,
    );
    expect(ordered.map((c) => (c instanceof Error || !('agent' in c) ? outcome(c) : c.agent.tags))).toEqual([['zz', 'aa', 'mm', 'b.1', '0'], ['x']]);
    expect(await events(['one-alone', 'batch-1', 'batch-2', 'batch-3'])).toEqual([
      { type: 'agent.created', resource_id: 'one-alone', version: 1, actor: 'api_key:solo', data: null },
      { type: 'agent.created', resource_id: 'batch-1', version: 1, actor: 'api_key:first', data: null },
      { type: 'agent.created', resource_id: 'batch-2', version: 1, actor: 'user:second', data: null },
      { type: 'agent.created', resource_id: 'batch-3', version: 1, actor: 'api_key:third', data: null },
    ]);
  });

  it('commits nothing when one id of the batch is taken, or repeated in it', async () => {
    const before = await counted();
    await expect(
      repo.createMany(
        writer.statement,
        [
          { agent: agent('dup-new'), actor: 'a' },
          { agent: agent('batch-1'), actor: 'a' },
        ],
        1000,
      ),
    ).rejects.toMatchObject({ code: '23505' });
    await expect(
      repo.createMany(
        writer.statement,
        [
          { agent: agent('twice'), actor: 'a' },
          { agent: agent('twice'), actor: 'a' },
        ],
        1000,
      ),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await counted()).toBe(before);
    expect(await events(['dup-new', 'twice'])).toEqual([]);
    expect((await db.query(`SELECT count(*)::int AS n FROM agents WHERE id IN ('dup-new', 'twice')`)).rows[0].n).toBe(0);
  });

  it('fills the cap exactly and refuses the rest of the batch', async () => {
    const now = await counted();
    const batch = await repo.createMany(
      writer.statement,
      ['cap-a', 'cap-b', 'cap-c', 'cap-d'].map((id) => ({ agent: agent(id), actor: 'a' })),
      now + 2,
    );
    expect(batch.map(outcome)).toEqual(['cap-a', 'cap-b', 'cap', 'cap']);
    expect(await counted()).toBe(now + 2);
    expect((await events(['cap-a', 'cap-b', 'cap-c', 'cap-d'])).map((e) => e.resource_id)).toEqual(['cap-a', 'cap-b']);
  });

  it('deletes in one statement: 404, 412 naming the current version, 409 while referenced, one event with the version it had', async () => {
    const key = t.adminKey;
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/agents/no-such-agent', { key })).status).toBe(404);
    expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key, body: agent('del-1') })).status).toBe(201);
    expect((await api(t.baseUrl, 'PATCH', '/api/v1/agents/del-1', { key, body: { description: 'v2' } })).status).toBe(200);
    const stale = await api(t.baseUrl, 'DELETE', '/api/v1/agents/del-1', { key, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toContain('application/problem+json');
    expect(stale.body).toMatchObject({ code: 'precondition_failed', detail: 'agent "del-1" is at version 2; the If-Match version is stale' });
    // Referenced by a trust rule: refused, nothing deleted, no event.
    expect((await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key, body: { id: 'del-srv', name: 's', url: 'https://mcp.example.test/mcp' } })).status).toBe(
      201,
    );
    const rule = await api(t.baseUrl, 'POST', '/api/v1/trust-rules', {
      key,
      body: { agentId: 'del-1', mcpServerId: 'del-srv', toolPattern: '*', effect: 'allow' },
    });
    expect(rule.status).toBe(201);
    const before = await counted();
    const referenced = await api(t.baseUrl, 'DELETE', '/api/v1/agents/del-1', { key });
    expect(referenced.status).toBe(409);
    expect(referenced.body.detail).toContain('referenced by trust rules');
    expect(await counted()).toBe(before);
    expect((await events(['del-1'])).map((e) => e.type)).toEqual(['agent.created', 'agent.updated']);
    expect((await api(t.baseUrl, 'DELETE', `/api/v1/trust-rules/${rule.body.id}`, { key })).status).toBe(204);
    // Two deletes at once: one 204, the other 404; one event, with the version the agent had.
    const both = await Promise.all([1, 2].map(() => api(t.baseUrl, 'DELETE', '/api/v1/agents/del-1', { key, headers: { 'if-match': '"2"' } })));
    expect(both.map((r) => r.status).sort()).toEqual([204, 404]);
    expect(await counted()).toBe(before - 1);
    expect((await events(['del-1'])).slice(2)).toEqual([
      { type: 'agent.deleted', resource_id: 'del-1', version: 2, actor: 'api_key:bootstrap-admin', data: null },
    ]);
  });

  it('updates optimistically: concurrent PATCHes each get their own version and event; with one If-Match only one wins', async () => {
    const key = t.adminKey;
    expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key, body: agent('upd-1') })).status).toBe(201);
    const patches = await Promise.all(
      Array.from({ length: 8 }, (_, i) => api(t.baseUrl, 'PATCH', '/api/v1/agents/upd-1', { key, body: { description: `d${i}` } })),
    );
    expect(patches.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(patches.map((r) => r.body.version as number).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    for (const r of patches) expect(r.headers.get('etag')).toBe(`"${r.body.version}"`);
    const ev = (await events(['upd-1'])).slice(1);
    expect(ev.map((e) => [e.type, e.version, e.data])).toEqual([2, 3, 4, 5, 6, 7, 8, 9].map((v) => ['agent.updated', v, { changed: ['description'] }]));
    // The same If-Match from several callers at once: one 200, the others 412.
    const racing = await Promise.all(
      Array.from({ length: 5 }, (_, i) => api(t.baseUrl, 'PATCH', '/api/v1/agents/upd-1', { key, body: { name: `n${i}` }, headers: { 'if-match': '"9"' } })),
    );
    expect(racing.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412]);
    expect((await events(['upd-1'])).length).toBe(1 + 8 + 1);
    // A patch that changes nothing writes nothing.
    const same = await api(t.baseUrl, 'PATCH', '/api/v1/agents/upd-1', { key, body: { description: 'd-final' } });
    expect(same.status).toBe(200);
    const again = await api(t.baseUrl, 'PATCH', '/api/v1/agents/upd-1', { key, body: { description: 'd-final' } });
    expect(again.body.version).toBe(same.body.version);
    expect((await events(['upd-1'])).length).toBe(1 + 8 + 1 + 1);
  });

  it('answers every one of many concurrent REST creates as if it ran alone (duplicates, two callers)', async () => {
    const editor = await createKey(t, 'editor', 'batch-editor');
    const ids = Array.from({ length: 30 }, (_, i) => `rest-${i % 20}`); // 10 ids sent twice
    const results = await Promise.all(
      ids.map((id, i) => api(t.baseUrl, 'POST', '/api/v1/agents', { key: i % 2 ? editor : t.adminKey, body: agent(id) }).then((r) => ({ id, i, r }))),
    );
    for (let n = 0; n < 20; n++) {
      const mine = results.filter((x) => x.id === `rest-${n}`);
      const statuses = mine.map((x) => x.r.status).sort();
      expect(statuses).toEqual(mine.length === 2 ? [201, 409] : [201]);
      const conflict = mine.find((x) => x.r.status === 409);
      if (conflict) expect(conflict.r.body).toMatchObject({ code: 'conflict', detail: `agent "rest-${n}" already exists` });
      const made = mine.find((x) => x.r.status === 201)!;
      expect(made.r.headers.get('etag')).toBe('"1"');
      expect(made.r.headers.get('location')).toBe(`/api/v1/agents/rest-${n}`);
      // Its one event names the caller whose create won.
      const ev = await events([`rest-${n}`]);
      expect(ev).toHaveLength(1);
      expect(ev[0].actor).toBe(made.i % 2 ? 'api_key:batch-editor' : 'api_key:bootstrap-admin');
    }
    expect(await counted()).toBe(Number((await db.query('SELECT count(*) AS n FROM agents')).rows[0].n));
  });
});

/** A trust-rule create is one statement too: references, cap and event checked in it. */
describe('trust-rule creates in one statement', () => {
  let t: TestApp;
  let db: pg.Client;
  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_TRUST_RULES: '6', DATABASE_POOL_SIZE: '20' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    for (const id of ['tr-a', 'tr-b']) expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: agent(id) })).status).toBe(201);
    const srv = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: t.adminKey,
      body: { id: 'tr-srv', name: 's', url: 'https://mcp.example.test/mcp' },
    });
    expect(srv.status).toBe(201);
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });
  const rule = (agentId: string, mcpServerId = 'tr-srv') => ({ agentId, mcpServerId, toolPattern: 'search_*', effect: 'deny', priority: 5 });
  const post = (body: unknown) => api(t.baseUrl, 'POST', '/api/v1/trust-rules', { key: t.adminKey, body });
  const counted = async () => Number((await db.query(`SELECT n FROM registry_counts WHERE table_name = 'trust_rules'`)).rows[0].n);

  it('names each missing reference in one 400 and writes nothing', async () => {
    const both = await post(rule('no-agent', 'no-server'));
    expect(both.status).toBe(400);
    expect(both.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['agentId', 'mcpServerId']);
    expect((await post(rule('tr-a', 'no-server'))).body.errors.map((e: { field: string }) => e.field)).toEqual(['mcpServerId']);
    expect(await counted()).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM outbox WHERE type = 'trust_rule.created'`)).rows[0].n).toBe(0);
  });

  it("writes the rule and its event with the references in the event's data", async () => {
    const made = await post(rule('tr-a'));
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({
      agentId: 'tr-a',
      mcpServerId: 'tr-srv',
      toolPattern: 'search_*',
      effect: 'deny',
      priority: 5,
      description: '',
      version: 1,
    });
    const { rows } = await db.query(`SELECT type, resource_id, version, actor, data FROM outbox WHERE resource_id = $1`, [made.body.id]);
    expect(rows).toEqual([
      { type: 'trust_rule.created', resource_id: made.body.id, version: 1, actor: 'api_key:bootstrap-admin', data: { agentId: 'tr-a', mcpServerId: 'tr-srv' } },
    ]);
    const read = await api(t.baseUrl, 'GET', `/api/v1/trust-rules/${made.body.id}`, { key: t.adminKey });
    expect(read.body).toEqual(made.body);
  });

  it('holds MAX_TRUST_RULES exactly under concurrent creates', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => post(rule(i % 2 ? 'tr-a' : 'tr-b'))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(5); // 1 made before, cap 6
    const refused = results.filter((r) => r.status === 409);
    expect(refused).toHaveLength(7);
    expect(refused[0].body).toMatchObject({ code: 'quota_exceeded', setting: 'MAX_TRUST_RULES' });
    expect(await counted()).toBe(6);
    expect((await db.query(`SELECT count(*)::int AS n FROM outbox WHERE type = 'trust_rule.created'`)).rows[0].n).toBe(6);
  });

  it('an agent deleted while rules for it are created: the delete is refused or the creates are', async () => {
    await db.query('DELETE FROM trust_rules');
    const outcomes = await Promise.all([post(rule('tr-b')), api(t.baseUrl, 'DELETE', '/api/v1/agents/tr-b', { key: t.adminKey }), post(rule('tr-b'))]);
    const [c1, del, c2] = outcomes.map((r) => r.status);
    const rules = (await db.query(`SELECT count(*)::int AS n FROM trust_rules WHERE agent_id = 'tr-b'`)).rows[0].n as number;
    if (del === 204) {
      // The delete went first: no rule may reference the deleted agent.
      expect(rules).toBe(0);
      for (const c of [c1, c2]) expect(c === 400 || c === 409).toBe(true);
    } else {
      expect(del).toBe(409);
      expect(rules).toBeGreaterThan(0);
    }
    expect(await counted()).toBe(Number((await db.query('SELECT count(*) AS n FROM trust_rules')).rows[0].n));
  });
});

/** An MCP server create is one statement too: duplicate id, cap and event checked in it. */
describe('MCP server creates in one statement', () => {
  let t: TestApp;
  let db: pg.Client;
  beforeAll(async () => {
    t = await startTestApp({ env: { MAX_MCP_SERVERS: '5', DATABASE_POOL_SIZE: '20' } });
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });
  const server = (id: string) => ({ id, name: id, url: 'https://mcp.example.test/mcp?token=s3cret', headers: { authorization: 'Bearer hidden' } });
  const post = (body: unknown) => api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body });
  const counted = async () => Number((await db.query(`SELECT n FROM registry_counts WHERE table_name = 'mcp_servers'`)).rows[0].n);

  it('writes the server, sealed, and its one event; a second create of the id is a 409 with nothing written', async () => {
    const made = await post(server('one-srv'));
    expect(made.status).toBe(201);
    expect(made.text).not.toContain('s3cret');
    expect(made.text).not.toContain('hidden');
    const stored = (await db.query(`SELECT url, url_secret, headers_secret, header_names FROM mcp_servers WHERE id = 'one-srv'`)).rows[0];
    expect(stored.url).not.toContain('s3cret');
    expect(stored.url_secret).not.toBeNull();
    expect(stored.headers_secret).not.toContain('hidden');
    expect(stored.header_names).toEqual(['authorization']);
    const again = await post(server('one-srv'));
    expect(again.status).toBe(409);
    expect(again.body.detail).toBe('MCP server "one-srv" already exists');
    const { rows } = await db.query(`SELECT type, resource_id, version, actor, data FROM outbox WHERE resource_id = 'one-srv'`);
    expect(rows).toEqual([{ type: 'mcp_server.created', resource_id: 'one-srv', version: 1, actor: 'api_key:bootstrap-admin', data: null }]);
    expect(await counted()).toBe(1);
  });

  it('holds MAX_MCP_SERVERS exactly under concurrent creates', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => post(server(`cap-srv-${i}`))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(4);
    const refused = results.filter((r) => r.status === 409);
    expect(refused).toHaveLength(6);
    expect(refused[0].body).toMatchObject({ code: 'quota_exceeded', setting: 'MAX_MCP_SERVERS' });
    expect(await counted()).toBe(5);
    expect((await db.query(`SELECT count(*)::int AS n FROM outbox WHERE type = 'mcp_server.created'`)).rows[0].n).toBe(5);
  });
});
