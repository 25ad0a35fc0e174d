import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { connectorFor } from '../../../test/support/backend-connector.js';
import { HostileBackend } from '../../../test/support/hostile-backend.js';
import { PollingBackend } from '../../../test/support/polling-backend.js';
import { StaleBackendSession } from './backend-connector.js';
import type { GatewayError } from './gateway-errors.js';
import { MAX_IDLE_RESUMES, MIN_RESUME_DELAY_MS } from './lean-streamable-http.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A backend may end a request's SSE stream before its answer once an event carried an id (MCP 2025-11-25, SEP-1699:
 * "polling"), and the client resumes it with a GET carrying Last-Event-ID: the answer (and the request's progress)
 * comes on the resumed stream. Against a real SDK server that does this (closeSSEStream), and a hand-written one that
 * abuses it.
 */
describe('BackendConnector: a request stream the backend ends early is resumed', () => {
  let polling: PollingBackend;
  beforeAll(async () => {
    polling = await PollingBackend.start({ retryMs: 50 });
  });
  afterAll(async () => {
    await polling.close();
  });

  /** A `poll` call whose stream the backend ends `ends` times: its result, its progress and the event ids it resumed from. */
  async function poll(ends: number) {
    const { connector, breaker } = connectorFor(polling.url);
    const session = await connector.open('b', { timeoutMs: 10_000 });
    const before = polling.resumes.length;
    const progress: Progress[] = [];
    const result = await session.callTool('poll', { ends }, { onProgress: (p) => progress.push(p) });
    return { session, breaker, result, progress, resumes: polling.resumes.slice(before) };
  }

  it('resumes once: the answer comes on the resumed stream, with the progress sent meanwhile', async () => {
    const { session, breaker, result, progress, resumes } = await poll(1);
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'polled 1' }] });
    expect(progress).toEqual([{ progress: 1, total: 1 }]);
    expect(resumes).toHaveLength(1);
    expect(breaker.failures).toEqual([]);
    expect(session.closed).toBe(false);
    await session.close();
  }, 20_000);

  it('resumes as often as the backend ends the stream (twice): each time from the last event id', async () => {
    const { session, breaker, result, progress, resumes } = await poll(2);
    expect(result).toMatchObject({ content: [{ type: 'text', text: 'polled 2' }] });
    expect(progress).toEqual([
      { progress: 1, total: 2 },
      { progress: 2, total: 2 },
    ]);
    expect(resumes).toHaveLength(2);
    // The second resume starts after the progress event read on the first resumed stream, not at the priming event.
    expect(resumes[1]).not.toBe(resumes[0]);
    expect(breaker.failures).toEqual([]);
    // The session serves the next call as well.
    expect(await session.callTool('poll', { ends: 0 })).toMatchObject({ content: [{ text: 'polled 0' }] });
    await session.close();
  }, 20_000);

  it('stops resuming when the call is cancelled or times out during the wait before the resume: no GET after', async () => {
    const slow = await PollingBackend.start({ retryMs: 1500 });
    try {
      const { connector } = connectorFor(slow.url);
      const session = await connector.open('b', { timeoutMs: 10_000 });
      // Cancelled by its caller while it waits to resume.
      const aborted = new AbortController();
      const call = session.callTool('poll', { ends: 1 }, { signal: aborted.signal }).catch((e: GatewayError) => e);
      for (let i = 0; i < 500 && slow.ends === 0; i++) await sleep(10);
      expect(slow.ends).toBe(1);
      await sleep(100);
      const cancelledAt = performance.now();
      aborted.abort(new Error('the client went away'));
      expect(await call).toMatchObject({ code: 'cancelled' });
      expect(performance.now() - cancelledAt).toBeLessThan(500);
      // Timed out while it waits to resume.
      const started = performance.now();
      await expect(session.callTool('poll', { ends: 1 }, { timeoutMs: 600 })).rejects.toMatchObject({ code: 'timeout' });
      expect(performance.now() - started).toBeLessThan(1400);
      // Past the backend's retry delay: neither call resumed its stream, and the backend saw both cancelled.
      await sleep(2000);
      expect(slow.resumes).toEqual([]);
      expect([slow.calls, slow.cancelled]).toEqual([2, 2]);
      expect(session.closed).toBe(false);
      await session.close();
    } finally {
      await slow.close();
    }
  }, 20_000);
});

describe('BackendConnector: a backend that ends request streams early and abuses it', () => {
  let b: HostileBackend;
  beforeEach(async () => {
    b = await HostileBackend.start();
  });
  afterEach(async () => {
    await b.stop();
  });

  it('fails a call whose every resumed stream ends with no new event: a bounded number of resumes, a clear error, well before its timeout', async () => {
    const { connector, breaker } = connectorFor(b.url, { serverId: 'h', timeoutMs: 8000 });
    const session = await connector.open('h', { timeoutMs: 8000 });
    const started = performance.now();
    const error = (await session.callTool('end-every-stream', {}).catch((e: unknown) => e)) as GatewayError;
    expect(error.toJsonRpc()).toEqual({
      code: -32002,
      message: expect.stringContaining(`h: ended the request's stream without its answer, and ${MAX_IDLE_RESUMES} resumptions in a row brought no new event`),
      data: { reason: 'backend', server: 'h' },
    });
    // The backend asks for `retry: 20`: each resume still waits MIN_RESUME_DELAY_MS (a server's `retry: 0` was a tight loop).
    expect(performance.now() - started).toBeGreaterThanOrEqual(MAX_IDLE_RESUMES * MIN_RESUME_DELAY_MS - 5);
    expect(performance.now() - started).toBeLessThan(3000);
    expect(b.resumes).toEqual(Array.from({ length: MAX_IDLE_RESUMES }, () => expect.stringMatching(/^end-every-stream-/)));
    expect(breaker.failures).toHaveLength(1);
    expect(await session.callTool('ok', {})).toMatchObject({ content: [{ text: 'fine' }] });
    await session.close();
  }, 20_000);

  it('fails a call at once when its resume is refused: 405 (no GET streams), 404 (the session is gone: retired, the call not made again)', async () => {
    const { connector } = connectorFor(b.url, { serverId: 'h', timeoutMs: 8000 });
    const session = await connector.open('h', { timeoutMs: 8000 });
    let started = performance.now();
    const refused = (await session.callTool('resume-405', {}).catch((e: unknown) => e)) as GatewayError;
    expect(refused.toJsonRpc()).toMatchObject({ code: -32002, message: expect.stringContaining('HTTP 405') });
    expect(refused.message).toContain('does not offer');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(b.resumes).toEqual([expect.stringMatching(/^resume-405-/)]);
    expect(session.closed).toBe(false);
    started = performance.now();
    const calls = b.posted.filter((m) => m === 'tools/call').length;
    const gone = (await session.callTool('resume-404', {}).catch((e: unknown) => e)) as GatewayError;
    expect(gone).not.toBeInstanceOf(StaleBackendSession);
    expect(gone.toJsonRpc()).toMatchObject({ code: -32002, message: expect.stringContaining('HTTP 404') });
    expect(gone.message).toContain('no longer knows the session');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(b.posted.filter((m) => m === 'tools/call').length).toBe(calls + 1);
    // The backend no longer knows the session: it takes no new call (the next one opens a new session).
    expect(session.closed).toBe(true);
    await session.close();
  }, 20_000);
});
