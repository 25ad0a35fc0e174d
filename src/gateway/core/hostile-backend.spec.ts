import { HostileBackend, type Misbehaviour } from '../../../test/support/hostile-backend.js';
import type { BackendSession } from './backend-connector.js';
import type { GatewayError } from './gateway-errors.js';
import { connectorFor } from '../../../test/support/backend-connector.js';
import { waitFor } from '../../../test/support/timing.js';

/**
 * A backend that answers like a buggy or hostile MCP server (test/support/hostile-backend.ts, by hand): every call
 * gets a clear answer or error at once (not its timeout), the session goes on serving, the backend's failures count
 * against its circuit and its own errors do not.
 */
describe('BackendConnector: a misbehaving backend', () => {
  let b: HostileBackend;
  let session: BackendSession;
  let breaker: { successes: number; failures: string[] };
  beforeAll(async () => {
    b = await HostileBackend.start();
    const c = connectorFor(b.url, { serverId: 'h', timeoutMs: 8000 });
    breaker = c.breaker;
    session = await c.connector.open('h', { timeoutMs: 8000 });
  });
  afterAll(async () => {
    await session.close();
    await b.stop();
  });

  /** One call: its outcome, how long it took, the failures it added to the circuit; then the session must still serve. */
  async function call(name: Misbehaviour, onProgress?: (p: unknown) => void) {
    const before = breaker.failures.length;
    const started = performance.now();
    const outcome = await session.callTool(name, {}, onProgress ? { onProgress } : {}).then(
      (result) => ({ result, error: undefined }),
      (error: GatewayError) => ({ result: undefined, error }),
    );
    const ms = performance.now() - started;
    expect(await session.callTool('ok', {})).toMatchObject({ content: [{ text: 'fine' }] });
    expect(session.closed).toBe(false);
    return { ...outcome, ms, failures: breaker.failures.slice(before) };
  }

  it.each([
    ['content-not-array', 'a result that is not valid MCP (content: '],
    ['string-result', 'h: answered with a message that is not JSON-RPC'],
    ['no-result', 'h: answered with a message that is not JSON-RPC'],
    ['other-id-json', "h: answered with another request's id (1"],
    ['other-id-sse', "h: ended the request's stream without its answer (it sent an answer with another request's id (1"],
    ['bad-json', 'h: answered with invalid JSON ('],
    ['bad-sse-then-end', "h: ended the request's stream without its answer (it sent an event that is not JSON)"],
  ] as [Misbehaviour, string][])('%s: fails the call at once with what was wrong, counted against the circuit', async (name, said) => {
    const { error, ms, failures } = await call(name);
    expect(error?.toJsonRpc()).toEqual({ code: -32002, message: expect.stringContaining(said), data: { reason: 'backend', server: 'h' } });
    expect(ms).toBeLessThan(2000);
    expect(failures).toHaveLength(1);
  });

  it.each([
    ['schema-mismatch', "h answered with a result that breaks the tool's own output schema (Structured content does not match"],
    ['no-structured-content', "h answered with a result that breaks the tool's own output schema (Tool no-structured-content has an output schema"],
  ] as [Misbehaviour, string][])(
    '%s: a result against the output schema the backend listed is its fault (-32002, counted), not the caller’s (-32602/-32600)',
    async (name, said) => {
      await session.listTools(); // the SDK checks results against the schemas it was given by tools/list
      const { error, failures } = await call(name);
      expect(error?.toJsonRpc()).toEqual({ code: -32002, message: expect.stringContaining(said), data: { reason: 'backend', server: 'h' } });
      expect(failures).toHaveLength(1);
    },
  );

  it('passes a backend error coded -32000 through as its own (not "closed the connection"), its message bounded, not counted', async () => {
    const { error, ms, failures } = await call('huge-error');
    const rpc = error!.toJsonRpc();
    expect(rpc.code).toBe(-32000);
    expect(rpc.message).toMatch(/^boom x{1000}/);
    expect(rpc.message.length).toBeLessThan(1100);
    expect(rpc.message).toContain('1000005 characters, cut');
    expect(ms).toBeLessThan(2000);
    expect(failures).toEqual([]);
  });

  it.each([
    ['sampling', { error: { code: -32601, message: 'Method not found' } }],
    ['roots', { error: { code: -32601, message: 'Method not found' } }],
    ['elicitation', { error: { code: -32601, message: 'Method not found' } }],
    ['ping', { result: {} }],
  ] as [Misbehaviour, unknown][])('answers the backend’s own %s request at once, and its call completes', async (name, answer) => {
    const { result, ms } = await call(name);
    const seen = JSON.parse((result!.content[0] as { text: string }).text) as { answer: unknown; ms: number };
    expect(seen.answer).toMatchObject(answer as object);
    expect(seen.ms).toBeLessThan(1000);
    expect(ms).toBeLessThan(2000);
  });

  it('takes the first of two answers, and an invalid event followed by the answer', async () => {
    expect((await call('twice')).result).toMatchObject({ content: [{ text: 'first' }] });
    expect((await call('bad-sse-then-answer')).result).toMatchObject({ content: [{ text: 'after the bad event' }] });
  });

  it('gives a call no progress sent on another call’s stream with its token, nor progress that is not a number', async () => {
    const held: unknown[] = [];
    const waiting = session.callTool('wait', {}, { onProgress: (p) => held.push(p) });
    for (let i = 0; i < 200 && b.held === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const mine: unknown[] = [];
    expect((await call('progress-other-token', (p) => mine.push(p))).result).toMatchObject({ content: [{ text: 'done' }] });
    b.release();
    expect(await waiting).toMatchObject({ content: [{ text: 'released' }] });
    expect(held).toEqual([]);
    expect(mine).toEqual([]);
    const odd: unknown[] = [];
    expect((await call('progress-odd-values', (p) => odd.push(p))).result).toMatchObject({ content: [{ text: 'done' }] });
    expect(odd).toEqual([
      { progress: 1e308, total: -1 },
      { progress: -5, total: -1 },
      { progress: 2, total: -1 },
    ]);
  });

  it('fails a call answered by a 500 error page at once with a bounded message, counted against the circuit', async () => {
    const { error, ms, failures } = await call('html-500');
    expect(error?.toJsonRpc()).toMatchObject({ code: -32002, message: expect.stringContaining('HTTP 500') });
    expect(error!.message.length).toBeLessThan(400);
    expect(ms).toBeLessThan(2000);
    expect(failures).toHaveLength(1);
  });
});

/**
 * A backend that sends `notifications/progress` every 50 ms and never answers: each progress resets the call's own
 * timeout (400 ms here), so only the total cap (MCP_CALL_MAX_TOTAL_MS, 800 ms here) ends the call — before it, such
 * a call held its caller, its stream and a backend connection for as long as the backend went on.
 */
describe('BackendConnector: a backend that reports progress forever', () => {
  const CAP_MS = 800;
  let b: HostileBackend;
  let session: BackendSession;
  let breaker: { successes: number; failures: string[] };
  beforeAll(async () => {
    b = await HostileBackend.start();
    const c = connectorFor(b.url, { serverId: 'p', timeoutMs: 400, maxTotalMs: CAP_MS });
    breaker = c.breaker;
    session = await c.connector.open('p');
  });
  afterAll(async () => {
    await session.close();
    await b.stop();
  });

  it('fails the call at MCP_CALL_MAX_TOTAL_MS with a timeout naming it, cancels it at the backend, counted like a timeout', async () => {
    const progress: unknown[] = [];
    const failuresBefore = breaker.failures.length;
    const started = performance.now();
    const outcome = await Promise.race([
      session.callTool('progress-forever', {}, { onProgress: (p) => progress.push(p) }).then(
        () => 'answered',
        (error: GatewayError) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still running after 5 s'), 5000).unref()),
    ]);
    const ms = performance.now() - started;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as GatewayError).toJsonRpc()).toEqual({
      code: -32001,
      message: 'p was still running after 800 ms, the total time cap of a call that reports progress (MCP_CALL_MAX_TOTAL_MS): it was cancelled',
      data: { reason: 'timeout', server: 'p' },
    });
    expect(ms).toBeGreaterThanOrEqual(CAP_MS - 5);
    expect(ms).toBeLessThan(CAP_MS + 400);
    // Progress reset the call's own timeout (400 ms) until the cap.
    expect(progress.length).toBeGreaterThanOrEqual(10);
    // The backend is told at once (the SDK's own maxTotalTimeout told it only when the call's own timer fired, one
    // per-call timeout later), and the call's stream let go of: the backend stops sending.
    await waitFor(() => b.cancelled.length === 1, 2000, 'notifications/cancelled at the backend');
    expect(performance.now() - started).toBeLessThan(CAP_MS + 250);
    await waitFor(() => b.progressing === 0, 2000, 'the backend to stop sending progress');
    expect(breaker.failures.slice(failuresBefore)).toEqual([expect.stringContaining('MCP_CALL_MAX_TOTAL_MS')]);
    // The session goes on serving.
    expect(await session.callTool('ok', {})).toMatchObject({ content: [{ text: 'fine' }] });
    expect(session.closed).toBe(false);
  });

  it('lets a call that reports progress run past its own timeout and answer within the cap', async () => {
    const progress: unknown[] = [];
    const result = await session.callTool('progress-forever', { answerAfterMs: 550 }, { onProgress: (p) => progress.push(p) });
    expect(result).toMatchObject({ content: [{ text: expect.stringMatching(/^answered after \d+ progress notifications$/) }] });
    expect(progress.length).toBeGreaterThanOrEqual(8);
  });

  it('bounds a call without progress by its own timeout, as before', async () => {
    const started = performance.now();
    const error = await session.callTool('progress-forever', {}).then(
      () => undefined,
      (e: GatewayError) => e,
    );
    expect(error?.toJsonRpc()).toEqual({ code: -32001, message: 'p did not answer in time', data: { reason: 'timeout', server: 'p' } });
    expect(performance.now() - started).toBeLessThan(CAP_MS);
    await waitFor(() => b.progressing === 0, 2000, 'the backend to stop sending progress');
  });
});
