import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { backoffDelay, follow, followFeed, HttpError, memoryCursorStore, StreamResetError, type ChangeEvent, type StreamStatus } from '../src/index.js';
import { fileCursorStore } from '../src/node.js';
import { change, frame, problem, ProtocolServer, sseHead, waitUntil } from './protocol-server.js';

/** Collects `n` events from an iterator, then leaves the loop (which must close the stream). */
async function take(it: AsyncIterable<ChangeEvent>, n: number): Promise<number[]> {
  const seqs: number[] = [];
  if (n === 0) return seqs;
  for await (const e of it) {
    seqs.push(e.seq);
    if (seqs.length >= n) break;
  }
  return seqs;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const fast = { initialMs: 5, maxMs: 50 };

describe('follow() against a real SSE server', () => {
  let server: ProtocolServer;
  afterEach(async () => server?.stop());

  it('replays after `from`, resumes with Last-Event-ID after each cut, and never repeats an event the server sends again', async () => {
    const log = range(1, 30).map((s) => change(s));
    let connection = 0;
    server = await ProtocolServer.start((req, res) => {
      connection++;
      const after = Number(req.headers['last-event-id'] ?? new URL(req.url!, 'http://x').searchParams.get('lastEventId') ?? 0);
      sseHead(res);
      // A replica that replays from a little before the cursor (overlap) and cuts the stream after 7 events.
      const from = Math.max(0, after - 3);
      for (const e of log.filter((e) => e.seq > from).slice(0, 7)) frame(res, e.type, e, e.seq);
      if (connection < 20) res.end();
    });
    const statuses: StreamStatus[] = [];
    const seqs = await take(follow({ baseUrl: server.url, apiKey: 'k', from: 2, backoff: fast, onStatus: (s) => statuses.push(s) }), 28);
    expect(seqs).toEqual(range(3, 30));
    const sent = server.requests.map((r) => r.headers['last-event-id']);
    expect(sent[0]).toBe('2');
    // Each reconnection resumes after the newest event received, so each Last-Event-ID is past the previous one.
    for (let i = 1; i < sent.length; i++) expect(Number(sent[i])).toBeGreaterThan(Number(sent[i - 1]));
    expect(Number(sent.at(-1))).toBeGreaterThan(20);
    expect(server.requests.every((r) => r.headers.authorization === 'Bearer k')).toBe(true);
    expect(statuses.filter((s) => s.state === 'retrying').length).toBeGreaterThanOrEqual(3);
    // The loop's `break` closed the stream.
    await waitUntil(() => server.open.size === 0, 5000, 'the stream to close');
  });

  it('sends the filter, takes the cursor frames as its position, and keeps it in the cursor store after each event the caller finished', async () => {
    server = await ProtocolServer.start((_req, res) => {
      sseHead(res);
      frame(res, 'cursor', '40', 40);
      frame(res, 'agent.updated', change(45), 45);
      frame(res, 'cursor', '50', 50);
    });
    const store = memoryCursorStore();
    const it = follow({ baseUrl: server.url, events: ['agent.updated', 'prompt.*'], cursorStore: store, backoff: fast })[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value?.seq).toBe(45);
    expect(store.value).toBe(40); // not yet 45: the caller has not finished with it
    const pending = it.next();
    await waitUntil(() => store.value === 50, 5000, 'the cursor frame to be saved');
    // return() while a next() waits on a quiet stream: takes effect at once (an async generator's own would wait forever).
    await it.return(undefined);
    expect(await pending).toEqual({ done: true, value: undefined });
    await waitUntil(() => server.open.size === 0, 5000, 'the stream to close');
    expect(server.requests[0].url).toBe('/api/v1/stream/changes?events=agent.updated%2Cprompt.*');
    expect(server.requests[0].headers['last-event-id']).toBeUndefined();
  });

  it('treats a stream silent for twice the heartbeat as dead and resumes; a stream with keep-alives is not', async () => {
    let connection = 0;
    server = await ProtocolServer.start((req, res) => {
      connection++;
      sseHead(res);
      if (connection === 1) {
        frame(res, 'agent.created', change(1, 'agent.created'), 1);
        return; // then silence, the connection left open: a half-dead TCP path
      }
      const keepAlive = setInterval(() => res.write(':keep-alive\n\n'), 40);
      res.on('close', () => clearInterval(keepAlive));
      if (req.headers['last-event-id'] === '1') setTimeout(() => frame(res, 'agent.updated', change(2), 2), 600);
    });
    const errors: unknown[] = [];
    const seqs = await take(
      follow({ baseUrl: server.url, from: 0, heartbeatMs: 100, backoff: fast, onStatus: (s) => s.state === 'retrying' && errors.push(s.error) }),
      2,
    );
    expect(seqs).toEqual([1, 2]);
    expect(connection).toBe(2); // the second stream, silent but for keep-alives for 600 ms (> 2 x 100), was kept
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).name).toBe('StreamIdleError');
  });

  it('backs off on 503 and 429 honouring Retry-After, and gives up at once on 401 with the problem details', async () => {
    let connection = 0;
    server = await ProtocolServer.start((_req, res) => {
      connection++;
      if (connection === 1) return problem(res, 503, 'service_unavailable', 'draining');
      if (connection === 2) return problem(res, 429, 'too_many_requests', 'slots', { 'retry-after': '1' });
      if (connection === 3) {
        sseHead(res);
        frame(res, 'agent.created', change(7, 'agent.created'), 7);
        res.end();
        return;
      }
      problem(res, 401, 'unauthorized', 'the API key was revoked');
    });
    const delays: number[] = [];
    const seen: number[] = [];
    let thrown: unknown;
    try {
      for await (const e of follow({ baseUrl: server.url, from: 6, backoff: fast, onStatus: (s) => s.state === 'retrying' && delays.push(s.delayMs) }))
        seen.push(e.seq);
    } catch (error) {
      thrown = error;
    }
    expect(seen).toEqual([7]);
    expect(thrown).toBeInstanceOf(HttpError);
    expect((thrown as HttpError).status).toBe(401);
    expect((thrown as HttpError).problem?.detail).toBe('the API key was revoked');
    expect(delays[1]).toBeGreaterThanOrEqual(1000); // Retry-After: 1
    expect(connection).toBe(4);
  });

  it('on reset: waits for the refetch hook, then continues from the reset cursor; without a hook the gap is an error', async () => {
    server = await ProtocolServer.start((req, res) => {
      sseHead(res);
      if (req.headers['last-event-id'] === '5') {
        frame(res, 'reset', { cursor: 900, reason: 'the cursor is older than retention' }, 900);
        frame(res, 'agent.updated', change(901), 901);
      } else if (req.headers['last-event-id'] === '901') {
        frame(res, 'agent.updated', change(902), 902);
      }
      res.end();
    });
    const order: string[] = [];
    const store = memoryCursorStore();
    const seqs: number[] = [];
    for await (const e of follow({
      baseUrl: server.url,
      from: 5,
      cursorStore: store,
      backoff: fast,
      onReset: async (info) => {
        order.push(`reset ${info.cursor} ${info.reason}`);
        await new Promise((r) => setTimeout(r, 50));
        order.push('refetched');
      },
    })) {
      order.push(`event ${e.seq}`);
      seqs.push(e.seq);
      if (seqs.length === 2) break;
    }
    expect(order).toEqual(['reset 900 the cursor is older than retention', 'refetched', 'event 901', 'event 902']);

    await expect(take(follow({ baseUrl: server.url, from: 5, backoff: fast }), 1)).rejects.toBeInstanceOf(StreamResetError);
  });

  it('an abort ends the iteration quietly and closes the connection; the EventTarget form delivers the same events', async () => {
    server = await ProtocolServer.start((_req, res) => {
      sseHead(res);
      frame(res, 'agent.created', change(1, 'agent.created'), 1);
      frame(res, 'agent.updated', change(2), 2);
    });
    const ac = new AbortController();
    const seen: number[] = [];
    const loop = (async () => {
      for await (const e of follow({ baseUrl: server.url, from: 0, signal: ac.signal })) seen.push(e.seq);
    })();
    await waitUntil(() => seen.length === 2, 5000, 'two events');
    ac.abort();
    await loop;
    await waitUntil(() => server.open.size === 0, 5000, 'the stream to close');

    const feed = followFeed({ baseUrl: server.url, from: 0 });
    const got: number[] = [];
    feed.addEventListener('change', (e) => got.push((e as CustomEvent<ChangeEvent>).detail.seq));
    await waitUntil(() => got.length === 2, 5000, 'two feed events');
    feed.close();
    await feed.done;
    expect(got).toEqual([1, 2]);
  });

  it('fileCursorStore keeps the position across restarts and refuses a file that is not a cursor', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cursor-'));
    try {
      const file = path.join(dir, 'nested', 'cursor');
      const store = fileCursorStore(file);
      expect(await store.load()).toBeUndefined();
      await Promise.all([store.save(1), store.save(2), store.save(3)]);
      await store.save(4);
      expect(readFileSync(file, 'utf8').trim()).toBe('4');
      expect(await fileCursorStore(file).load()).toBe(4);
      writeFileSync(file, 'garbage');
      await expect(fileCursorStore(file).load()).rejects.toThrow('does not hold a cursor');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('backoffDelay grows exponentially to its cap, with jitter inside the bounds', () => {
    expect(backoffDelay(0, { initialMs: 100, jitter: 0 })).toBe(100);
    expect(backoffDelay(3, { initialMs: 100, jitter: 0 })).toBe(800);
    expect(backoffDelay(30, { initialMs: 100, maxMs: 5000, jitter: 0 })).toBe(5000);
    expect(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0)).toBe(200);
    expect(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 1)).toBe(400);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(4, { initialMs: 100 });
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1600);
    }
  });
});
