import pg from 'pg';
import { OutboxRetention } from '../../src/outbox/outbox.retention.js';
import { expectContiguous, SseClient } from '../support/sse-client.js';
import { api, createKey, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'openai', name: 'gpt-5' } });

describe('SSE change stream (one replica)', () => {
  let t: TestApp;
  let editor: string;
  let viewer: string;
  let db: pg.Client;
  const clients: SseClient[] = [];
  const open = async (query = '', headers: Record<string, string> = {}, key = viewer) => {
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes${query}`, { authorization: `Bearer ${key}`, ...headers });
    clients.push(c);
    return c;
  };
  const head = async () => Number((await db.query('SELECT last_seq FROM outbox_head')).rows[0].last_seq);
  /** Appends `n` committed events straight into the outbox (as a mutation would). */
  const appendEvents = async (n: number, type = 'agent.updated', data: object | null = null) => {
    await db.query(`INSERT INTO outbox (type, resource_id, version, actor, data) SELECT $1, 'bulk-' || g, g, 'test', $3::jsonb FROM generate_series(1, $2) g`, [
      type,
      n,
      data === null ? null : JSON.stringify(data),
    ]);
  };

  beforeAll(async () => {
    t = await startTestApp({ env: { SSE_KEEPALIVE_MS: '300', SSE_RETRY_MS: '1500', MAX_CONNECTIONS_PER_USER: '50', STREAM_WINDOW_SIZE: '100' } });
    editor = await createKey(t, 'editor');
    viewer = await createKey(t, 'viewer');
    db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await db.end();
    await t.close();
  });

  it('sends the SSE headers, a retry hint and keep-alive comments', async () => {
    const c = await open();
    expect(c.status).toBe(200);
    expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(c.headers['cache-control']).toBe('no-cache');
    // close, not keep-alive: the server never reuses a stream's connection (see SseConnection.head).
    expect(c.headers['connection']).toBe('close');
    expect(c.headers['x-accel-buffering']).toBe('no');
    await c.waitFor((x) => x.frames.some((f) => f.retry === 1500), 2000, 'retry');
    await c.waitFor((x) => x.frames.some((f) => f.event === 'comment' && f.data === 'keep-alive'), 3000, 'keep-alive');
  });

  it('delivers each mutation as id/event/data with the lightweight delta', async () => {
    const c = await open();
    await sleep(50);
    const before = await head();
    expect((await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('streamed') })).status).toBe(201);
    expect((await api(t.baseUrl, 'PATCH', '/api/v1/agents/streamed', { key: editor, body: { description: 'x' } })).status).toBe(200);
    await c.waitForEvents(2);
    const [created, updated] = c.events;
    expect(created).toMatchObject({ id: before + 1, event: 'agent.created' });
    expect(created.data).toEqual({
      seq: before + 1,
      type: 'agent.created',
      resource: 'agent',
      id: 'streamed',
      action: 'created',
      version: 1,
      actor: expect.stringMatching(/^api_key:editor-/),
      ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(updated).toMatchObject({ id: before + 2, event: 'agent.updated', data: { version: 2, data: { changed: ['description'] } } });
  });

  it('filters by exact names and resource.* and rejects unknown types and bad ids', async () => {
    const prompts = await open('?events=prompt.*,agent.deleted');
    const all = await open();
    await sleep(50);
    await appendEvents(2, 'agent.updated');
    await appendEvents(1, 'prompt.activated', { agentId: 'a', version: 2 });
    await appendEvents(1, 'agent.deleted');
    await all.waitForEvents(4);
    await prompts.waitForEvents(2);
    expect(prompts.events.map((e) => e.event)).toEqual(['prompt.activated', 'agent.deleted']);

    const unknown = await api(t.baseUrl, 'GET', '/api/v1/stream/changes?events=agent.exploded', { key: viewer });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors[0].field).toBe('events');
    const badId = await api(t.baseUrl, 'GET', '/api/v1/stream/changes', { key: viewer, headers: { 'last-event-id': 'abc' } });
    expect(badId.status).toBe(400);
    expect(badId.body.errors[0].field).toBe('Last-Event-ID');
    const badQuery = await api(t.baseUrl, 'GET', '/api/v1/stream/changes?lastEventId=-3', { key: viewer });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.errors[0].field).toBe('lastEventId');
    expect((await api(t.baseUrl, 'GET', '/api/v1/stream/changes')).status).toBe(401);
  });

  it('delivers only what the role may read (trust rules: editor and up)', async () => {
    const asViewer = await open('', {}, viewer);
    const asEditor = await open('', {}, editor);
    await sleep(50);
    await appendEvents(1, 'trust_rule.created');
    await appendEvents(1, 'agent.updated');
    await asEditor.waitForEvents(2);
    await asViewer.waitForEvents(1);
    await sleep(100);
    expect(asViewer.events.map((e) => e.event)).toEqual(['agent.updated']);
    expect(asEditor.events.map((e) => e.event)).toEqual(['trust_rule.created', 'agent.updated']);
  });

  it('resumes from Last-Event-ID (header or query) with no gap and no duplicate', async () => {
    const first = await open();
    await sleep(50);
    const start = await head();
    await appendEvents(5);
    await first.waitForEvents(5);
    const resumeFrom = first.events[2].id; // saw 3 of 5, pretend the rest was lost
    first.close();
    await appendEvents(5);
    await waitFor(async () => (await head()) === start + 10, 5000, 'sequenced');
    const byHeader = await open('', { 'last-event-id': String(resumeFrom) });
    const byQuery = await open(`?lastEventId=${resumeFrom}`);
    await appendEvents(3); // live events after the replay
    await byHeader.waitForEvents(10);
    await byQuery.waitForEvents(10);
    await sleep(100);
    expectContiguous(
      byHeader.events.map((e) => e.id),
      resumeFrom + 1,
      start + 13,
    );
    expectContiguous(
      byQuery.events.map((e) => e.id),
      resumeFrom + 1,
      start + 13,
    );
  });

  it('replays from the outbox when the cursor is older than the window, sharing queries', async () => {
    const start = await head();
    await appendEvents(250); // window holds 100
    await waitFor(async () => (await head()) === start + 250, 5000, 'sequenced');
    const resumers = await Promise.all([open(`?lastEventId=${start}`), open(`?lastEventId=${start}`), open(`?lastEventId=${start}`)]);
    for (const r of resumers) {
      await r.waitForEvents(250);
      expectContiguous(
        r.events.map((e) => e.id),
        start + 1,
        start + 250,
      );
    }
  });

  it('sends an explicit reset when the cursor is older than retention, then follows', async () => {
    await appendEvents(20);
    // Nothing left to number first, then the head: read the other way round, the sequencer may number the 20 in between.
    const last = await waitFor(async () =>
      (await db.query('SELECT count(*)::int AS n FROM outbox WHERE seq IS NULL')).rows[0].n === 0 ? await head() : undefined,
    );
    const removed = await t.app.get(OutboxRetention).prune(0, 5);
    expect(removed).toBeGreaterThan(0);
    const c = await open('?lastEventId=1');
    await c.waitFor((x) => x.frames.some((f) => f.event === 'reset'), 5000, 'reset');
    const reset = c.frames.find((f) => f.event === 'reset')!;
    expect(JSON.parse(reset.data)).toEqual({ cursor: last, reason: 'cursor is older than the retention window' });
    expect(reset.id).toBe(String(last));
    await appendEvents(1);
    await c.waitForEvents(1);
    expect(c.events[0].id).toBe(last + 1);

    const feed = await api(t.baseUrl, 'GET', '/api/v1/events?after=1', { key: viewer });
    expect(feed.status).toBe(410);
    expect(feed.body.cursor).toBe(last + 1);
  });

  it('serves the same events over REST with after/limit/events', async () => {
    const start = await head();
    await appendEvents(3, 'agent.updated');
    await appendEvents(2, 'prompt.created');
    await waitFor(async () => (await head()) === start + 5, 5000, 'sequenced');
    const page1 = await api(t.baseUrl, 'GET', `/api/v1/events?after=${start}&limit=2`, { key: viewer });
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((e: { seq: number }) => e.seq)).toEqual([start + 1, start + 2]);
    expect(page1.body.items[0]).toMatchObject({ type: 'agent.updated', actor: 'test', ts: expect.any(String) });
    const page2 = await api(t.baseUrl, 'GET', `/api/v1/events?after=${page1.body.next}&limit=10`, { key: viewer });
    expect(page2.body.items.map((e: { seq: number }) => e.seq)).toEqual([start + 3, start + 4, start + 5]);
    expect(page2.body.next).toBe(start + 5);
    const prompts = await api(t.baseUrl, 'GET', `/api/v1/events?after=${start}&events=prompt.*`, { key: viewer });
    expect(prompts.body.items.map((e: { type: string }) => e.type)).toEqual(['prompt.created', 'prompt.created']);
    expect((await api(t.baseUrl, 'GET', '/api/v1/events?after=x', { key: viewer })).status).toBe(400);
  });

  it('disconnects a subscriber that does not drain, without slowing the others', async () => {
    const slow = await open();
    const fast = await open();
    slow.pause();
    await sleep(50);
    const start = await head();
    const big = { blob: 'x'.repeat(4000) };
    // ~16 MB of frames at a pace a reading client keeps up with.
    for (let i = 0; i < 80; i++) {
      await appendEvents(50, 'agent.updated', big);
      await sleep(15);
    }
    await fast.waitForEvents(4000, 30_000);
    expectContiguous(
      fast.events.map((e) => e.id),
      start + 1,
      start + 4000,
    );
    const metrics = await waitFor(
      async () => {
        const m = await api(t.baseUrl, 'GET', '/metrics');
        return /registry_sse_disconnects_total\{reason="slow consumer"\} [1-9]/.test(m.text) ? m : undefined;
      },
      15_000,
      'slow consumer disconnected',
    ).catch(async (e: Error) => {
      const registry = (await api(t.baseUrl, 'GET', '/metrics')).text.split('\n').filter((l) => l.startsWith('registry_'));
      throw new Error(`${e.message}; metrics:\n${registry.join('\n')}`);
    });
    expect(metrics.text).toMatch(/registry_sse_connections [0-9]/);
  });

  it('limits connections per user, counting an SSE stream as one connection', async () => {
    const limited = await startTestApp({ env: { MAX_CONNECTIONS_PER_USER: '2' } });
    try {
      const key = await createKey(limited, 'viewer');
      const url = `${limited.baseUrl}/api/v1/stream/changes`;
      const a = await SseClient.connect(url, { authorization: `Bearer ${key}` });
      const b = await SseClient.connect(url, { authorization: `Bearer ${key}` });
      clients.push(a, b);
      const third = await api(limited.baseUrl, 'GET', '/api/v1/stream/changes', { key });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('5');
      // Other users are not affected.
      const other = await SseClient.connect(url, { authorization: `Bearer ${limited.adminKey}` });
      clients.push(other);
      expect(other.status).toBe(200);
      a.close();
      await waitFor(
        async () => {
          const c = await SseClient.connect(url, { authorization: `Bearer ${key}` });
          clients.push(c);
          return c.status === 200;
        },
        5000,
        'slot released',
      );
    } finally {
      for (const c of clients.splice(0)) c.close();
      await limited.close();
    }
  });
});
