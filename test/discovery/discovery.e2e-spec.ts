import { SseClient } from '../support/sse-client.js';
import { api, createKey, sleep, startTestApp, type TestApp } from '../support/test-env.js';

const agent = (id: string, tags: string[] = []) => ({ id, name: id, tags, model: { provider: 'openai', name: 'gpt-5' } });

describe('discovery', () => {
  let t: TestApp;
  let editor: string;
  let viewer: string;

  beforeAll(async () => {
    // Not about probing: no health events among the changes this suite counts.
    t = await startTestApp({ env: { HEALTH_PROBES: 'false' } });
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
    for (const id of ['d1', 'd2', 'd3']) expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent(id) })).status).toBe(201);
    expect((await api(t.baseUrl, 'POST', '/api/v1/agents/d1/prompts', { key: editor, body: { template: 'You are d1', activate: true } })).status).toBe(201);
    const server = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
      key: editor,
      body: { id: 'github', name: 'GitHub', url: 'https://mcp.example.test/github', headers: { Authorization: 'Bearer s3cret' } },
    });
    expect(server.status).toBe(201);
    const rule = await api(t.baseUrl, 'POST', '/api/v1/trust-rules', {
      key: t.adminKey,
      body: { agentId: 'd1', mcpServerId: 'github', toolPattern: 'issues.*', effect: 'allow' },
    });
    expect(rule.status).toBe(201);
  });
  afterAll(() => t.close());

  it('returns every section with the cursor it is consistent with, by role', async () => {
    const res = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: editor });
    expect(res.status).toBe(200);
    const feed = await api(t.baseUrl, 'GET', '/api/v1/events?after=0&limit=1000', { key: editor });
    expect(res.body.cursor).toBe(feed.body.head);
    expect(res.body.agents.map((a: { id: string }) => a.id)).toEqual(['d1', 'd2', 'd3']);
    expect(res.body.prompts).toEqual([expect.objectContaining({ agentId: 'd1', version: 1, active: true })]);
    expect(res.body.mcp_servers[0].headers).toEqual({ Authorization: '***' });
    expect(res.text).not.toContain('s3cret');
    expect(res.body.trust_rules).toHaveLength(1);
    expect(res.body.counts).toEqual({ agents: 3, prompts: 1, mcp_servers: 1, trust_rules: 1 });

    const asViewer = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: viewer });
    expect(asViewer.body.trust_rules).toBeUndefined();
    expect(asViewer.body.counts).toEqual({ agents: 3, prompts: 1, mcp_servers: 1 });
    expect(asViewer.headers.get('etag')).not.toBe(res.headers.get('etag'));
  });

  it('answers 304 to a matching If-None-Match until something changes', async () => {
    const first = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: viewer });
    const etag = first.headers.get('etag')!;
    const again = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: viewer, headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect((await api(t.baseUrl, 'PATCH', '/api/v1/agents/d2', { key: editor, body: { description: 'now' } })).status).toBe(200);
    const changed = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: viewer, headers: { 'if-none-match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.body.cursor).toBeGreaterThan(first.body.cursor);
    expect(changed.body.agents.find((a: { id: string }) => a.id === 'd2').description).toBe('now');
  });

  it('streams the same snapshot progressively: sections in pages, then complete', async () => {
    const json = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: editor });
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/discovery?stream=true&pageSize=2`, { authorization: `Bearer ${editor}` });
    await c.waitFor((x) => x.ended, 5000, 'discovery stream end');
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const frames = c.frames.filter((f) => f.retry === undefined);
    expect(frames.map((f) => f.event)).toEqual(['agents', 'agents', 'prompts', 'mcp_servers', 'trust_rules', 'complete']);
    const agents = frames.filter((f) => f.event === 'agents').flatMap((f) => JSON.parse(f.data).items);
    expect(agents).toEqual(json.body.agents);
    expect(JSON.parse(frames[0].data)).toMatchObject({ page: 0, pages: 2, total: 3 });
    const complete = JSON.parse(frames.at(-1)!.data);
    expect(complete).toEqual({ cursor: json.body.cursor, counts: json.body.counts });
    expect((await api(t.baseUrl, 'GET', '/api/v1/discovery?stream=yes', { key: editor })).status).toBe(400);
  });

  it('snapshot + changes from its cursor reproduce the final state under concurrent writes, with no repeat', async () => {
    let stop = false;
    let n = 0;
    const writers = Array.from({ length: 4 }, (_, w) =>
      (async () => {
        while (!stop) {
          const id = `c${w}-${n++}`;
          await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent(id) });
          if (n % 3 === 0) await api(t.baseUrl, 'PATCH', `/api/v1/agents/${id}`, { key: editor, body: { description: 'updated' } });
          if (n % 5 === 0) await api(t.baseUrl, 'DELETE', `/api/v1/agents/${id}`, { key: editor });
        }
      })(),
    );
    await sleep(150);
    const snap = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: editor });
    const stream = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes?events=agent.*&lastEventId=${snap.body.cursor}`, {
      authorization: `Bearer ${editor}`,
    });
    await sleep(200);
    stop = true;
    await Promise.all(writers);
    // A discovery call numbers everything committed: its cursor is the true end.
    const final = await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: editor });
    await stream.waitFor((x) => x.events.some((e) => e.id >= final.body.cursor) || final.body.cursor === snap.body.cursor, 10_000, 'stream to reach the end');
    stream.close();

    const state = new Map<string, number>(snap.body.agents.map((a: { id: string; version: number }) => [a.id, a.version]));
    const repeats: string[] = [];
    for (const e of stream.events) {
      const { id, version, action } = e.data;
      if (action === 'created') {
        if (state.has(id)) repeats.push(`created ${id} already in snapshot`);
        state.set(id, version);
      } else if (action === 'updated') {
        if ((state.get(id) ?? 0) >= version) repeats.push(`update ${id} v${version} already in snapshot`);
        state.set(id, version);
      } else if (action === 'deleted') {
        if (!state.has(id)) repeats.push(`delete of ${id} not in state`);
        state.delete(id);
      }
    }
    expect(repeats).toEqual([]);
    const expected = new Map<string, number>(final.body.agents.map((a: { id: string; version: number }) => [a.id, a.version]));
    expect(Object.fromEntries(state)).toEqual(Object.fromEntries(expected));
    expect(stream.events.length).toBeGreaterThan(0);
  });
});
