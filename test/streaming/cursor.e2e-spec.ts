import { EventSource } from 'eventsource';
import pg from 'pg';
import { SseClient } from '../support/sse-client.js';
import { api, createKey, recordFigure, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

describe('the client cursor is always the server cursor', () => {
  let t: TestApp;
  let editor: string;

  beforeAll(async () => {
    t = await startTestApp();
    editor = await createKey(t, 'editor');
  });
  afterAll(() => t.close());

  const head = async () => (await api(t.baseUrl, 'GET', '/api/v1/events?after=999999999&limit=1', { key: editor })).body.head as number;

  it('gives a fresh connection its position at once, so a drop before any event loses nothing (unmodified eventsource client)', async () => {
    const before = await head();
    await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('before-fresh') });
    // A commit is numbered by the sequencer a moment after the write returns: wait for the
    // number, or the event would (correctly) arrive after a cursor taken before it.
    const start = await waitFor(
      async () => {
        const h = await head();
        return h > before ? h : false;
      },
      5000,
      'before-fresh numbered',
    );
    const received: string[] = [];
    const opened: string[] = [];
    let source = new EventSource(`${t.baseUrl}/api/v1/stream/changes`, {
      fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, authorization: `Bearer ${editor}` } }),
    });
    // The position arrives without any change event (a `cursor` event no listener here asks for).
    let lastId = '';
    source.addEventListener('cursor', (e) => (lastId = e.lastEventId));
    await waitFor(() => lastId !== '' && Number(lastId) >= start, 5000, 'the cursor frame');
    source.close();
    // Changes happen while the client is away...
    await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('while-away-1') });
    await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent('while-away-2') });
    // ...and a client resuming from the id it holds sees them.
    source = new EventSource(`${t.baseUrl}/api/v1/stream/changes`, {
      fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, authorization: `Bearer ${editor}`, 'last-event-id': lastId } }),
    });
    source.addEventListener('agent.created', (e) => received.push(JSON.parse(e.data).id));
    source.addEventListener('open', () => opened.push('open'));
    try {
      await waitFor(() => received.length >= 2, 5000, 'the events from the gap');
      expect(received).toEqual(['while-away-1', 'while-away-2']);
    } finally {
      source.close();
    }
  });

  it('moves a filtered client past events it does not get, so its resume does not rescan them', async () => {
    const filtered = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes?events=prompt.*`, { authorization: `Bearer ${editor}` });
    try {
      await filtered.waitFor((c) => c.lastEventId !== undefined, 5000, 'the cursor on joining');
      for (let i = 0; i < 5; i++) await api(t.baseUrl, 'POST', '/api/v1/agents', { key: editor, body: agent(`filtered-out-${i}`) });
      const now = await waitFor(
        async () => {
          const h = await head();
          return h >= 5 + Number(filtered.frames.find((f) => f.id !== undefined)!.id) ? h : false;
        },
        5000,
        'the five events numbered',
      );
      await filtered.waitFor((c) => Number(c.lastEventId) === now, 3000, `the cursor to reach ${now}`);
      expect(filtered.events).toEqual([]); // no change event was delivered, only the position
    } finally {
      filtered.close();
    }
  });

  it('never skips events in the REST feed when retention prunes while a page is read', async () => {
    // Enough history to prune one event at a time under the readers' feet.
    const direct = new pg.Client({ connectionString: t.databaseUrl });
    await direct.connect();
    try {
      await direct.query(`INSERT INTO outbox (type, resource_id) SELECT 'agent.updated', 'prune-' || g FROM generate_series(1, 400) g`);
      const top = await waitFor(
        async () => {
          const h = await head();
          return h >= 400 ? h : false;
        },
        10_000,
        'sequenced',
      );
      const { rows } = await direct.query('SELECT pruned_through FROM outbox_head');
      let pruned = Number(rows[0].pruned_through);
      const skipped: string[] = [];
      let gone = 0;
      for (let i = 0; i < 300 && pruned < top - 10; i++) {
        const after = pruned; // a valid cursor: at the edge of retention
        const read = api(t.baseUrl, 'GET', `/api/v1/events?after=${after}&limit=5`, { key: editor });
        await sleep(Math.random() * 2);
        // Retention removes the next event meanwhile (what OutboxRetention does, one event at a time).
        await direct.query('BEGIN');
        await direct.query('DELETE FROM outbox WHERE seq <= $1', [after + 1]);
        await direct.query('UPDATE outbox_head SET pruned_through = $1', [after + 1]);
        await direct.query('COMMIT');
        pruned = after + 1;
        const res = await read;
        if (res.status === 410) gone++;
        else if (res.body.items[0].seq !== after + 1) skipped.push(`after=${after}: first=${res.body.items[0].seq}`);
      }
      expect(skipped).toEqual([]);
      recordFigure(`feed under pruning: 300 reads, ${gone} answered 410 with the cursor, none skipped`);
    } finally {
      await direct.end();
    }
  });
});
