import { type ChangeEvent, follow, mirror, type StreamStatus, StreamResetError } from '../../packages/client/src/index.js';
import { OutboxRetention } from '../../src/outbox/outbox.retention.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { api, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

/**
 * The client library against the real service through a fault-injecting TCP
 * proxy: a cut that outlasts retention (the stream answers `reset`), and a
 * stalled path (no byte, not even a keep-alive).
 */
describe('@agentic-registry/client: reset and dead streams', () => {
  let t: TestApp;
  let proxy: FaultProxy;
  const conn = () => ({ baseUrl: `http://127.0.0.1:${proxy.port}`, apiKey: t.adminKey, heartbeatMs: 300, backoff: { initialMs: 50, maxMs: 500 } });
  const create = async (id: string) => {
    const res = await api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: { id, name: id, model: { provider: 'anthropic', name: 'claude' } } });
    expect(res.status).toBe(201);
  };
  const head = async () => (await api(t.baseUrl, 'GET', '/api/v1/events?limit=1&after=999999999', { key: t.adminKey })).body.head as number;
  const sequenced = async () =>
    waitFor(async () => {
      const h = await head();
      const pending = await api(t.baseUrl, 'GET', `/api/v1/events?after=${h}&limit=1`, { key: t.adminKey });
      return pending.body.items.length === 0 ? h : undefined;
    });

  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  beforeAll(async () => {
    t = await startTestApp({ env: { SSE_KEEPALIVE_MS: '300', HEALTH_PROBES: 'false' } });
    proxy = await FaultProxy.start('127.0.0.1', Number(new URL(t.baseUrl).port));
  }, 60_000);
  afterAll(async () => {
    // Bounded: a straggling socket must not hold the suite (FaultProxy.close waits for its server to close).
    if (proxy) await Promise.race([proxy.close(), new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
    await t?.close();
  });

  it('mirror(): a disconnection that outlasts retention ends in a reset, a reloaded snapshot, and a mirror equal to the database', async () => {
    await create('r-keep');
    await create('r-gone');
    const m = mirror(conn());
    cleanups.push(() => m.close());
    let reloads = 0;
    m.addEventListener('reload', () => reloads++);
    await m.ready;
    expect(m.get('agents', 'r-gone')).toBeDefined();

    proxy.cut();
    for (let i = 0; i < 6; i++) await create(`r-new-${i}`);
    expect((await api(t.baseUrl, 'DELETE', '/api/v1/agents/r-gone', { key: t.adminKey })).status).toBe(204);
    await sequenced();
    // Retention keeps only the last two events: the mirror's position is gone from the outbox.
    expect(await t.app.get(OutboxRetention).prune(0, 2)).toBeGreaterThan(0);
    // Until the replica has read the new retention edge it may still serve the range from its memory
    // window (no gap, so no reset): wait until a resume from the mirror's position is answered with a reset.
    const position = m.cursor;
    await waitFor(
      async () => {
        try {
          await follow({ baseUrl: t.baseUrl, apiKey: t.adminKey, from: position, signal: AbortSignal.timeout(1000) }).next();
          return false;
        } catch (error) {
          return error instanceof StreamResetError;
        }
      },
      15_000,
      'the replica to answer a reset',
    );
    proxy.restore();

    const end = await head();
    await waitFor(() => m.cursor >= end, 20_000, `the mirror at ${end} (is at ${m.cursor})`);
    expect(reloads).toBe(2); // the first snapshot, and the one the reset asked for
    const truth = (await api(t.baseUrl, 'GET', '/api/v1/discovery', { key: t.adminKey })).body;
    const ids = (items: { id: string }[]) => items.map((a) => a.id).sort();
    expect(ids(m.list('agents'))).toEqual(ids(truth.agents));
    expect(m.get('agents', 'r-gone')).toBeUndefined();
    expect(m.get('agents', 'r-new-5')).toEqual(truth.agents.find((a: { id: string }) => a.id === 'r-new-5'));
    m.close();
    await m.done;
  }, 60_000);

  it('follow(): a stalled path (no byte for twice the heartbeat) is dropped and resumed without loss', async () => {
    const start = await sequenced();
    const got: ChangeEvent[] = [];
    const statuses: StreamStatus[] = [];
    const ac = new AbortController();
    cleanups.push(() => ac.abort());
    const reading = (async () => {
      for await (const e of follow({ ...conn(), from: start, signal: ac.signal, onStatus: (s) => statuses.push(s) })) got.push(e);
    })();
    await create('s-1');
    await waitFor(() => got.length === 1, 10_000, 'the first event');
    proxy.stall();
    await create('s-2');
    await create('s-3');
    // Dropped as idle at least once while stalled (the keep-alives stopped coming), and retried.
    await waitFor(() => statuses.some((s) => s.state === 'retrying' && (s.error as Error).name === 'StreamIdleError'), 10_000, 'an idle drop');
    proxy.restore();
    await waitFor(() => got.length === 3, 15_000, 'the events written while stalled');
    ac.abort();
    await reading;
    expect(got.map((e) => e.seq)).toEqual([start + 1, start + 2, start + 3]);
    expect(got.map((e) => e.id)).toEqual(['s-1', 's-2', 's-3']);
  }, 60_000);

  it('follow() without an onReset hook stops with StreamResetError rather than skip events', async () => {
    const iterator = follow({ ...conn(), from: 1 });
    cleanups.push(() => iterator.return());
    await expect(iterator.next()).rejects.toMatchObject({ name: 'StreamResetError', reason: 'cursor is older than the retention window' });
  });
});
