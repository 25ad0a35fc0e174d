import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { type BreakerStore, MemoryBreakerStore, RedisBreakerStore } from '../../src/health/breaker.store.js';
import { CircuitBreakers } from '../../src/health/circuit-breakers.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { SseClient } from '../support/sse-client.js';
import { api, redisUrl, sleep, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const settings = { failureThreshold: 2, coolDownMs: 600, maxCoolDownMs: 1500, timeoutMs: 300 };

describe('circuit breaker stores: Redis (Lua) and memory follow the same rules', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(redisUrl());
  });
  afterAll(async () => {
    await redis.quit();
  });

  for (const kind of ['redis', 'memory'] as const) {
    it(`${kind}: closed → open → half_open (one trial) → open with a doubled cool-down, capped → half_open → closed`, async () => {
      const store: BreakerStore = kind === 'redis' ? new RedisBreakerStore(redis, `cb${randomBytes(4).toString('hex')}`) : new MemoryBreakerStore();
      const id = 'srv';
      expect((await store.apply(id, 'allow', settings)).allowed).toBe(true);
      expect((await store.apply(id, 'failure', settings, 'boom')).state.state).toBe('closed');
      await store.apply(id, 'success', settings); // a success in between resets the count
      expect((await store.apply(id, 'failure', settings, 'boom')).state).toMatchObject({ state: 'closed', failures: 1 });
      const opened = await store.apply(id, 'failure', settings, 'boom');
      expect(opened).toMatchObject({ transitioned: true, state: { state: 'open', failures: 2, coolDownMs: 600 } });
      expect(opened.state.retryAt! - Date.now()).toBeGreaterThan(400);
      expect((await store.apply(id, 'allow', settings)).allowed).toBe(false);
      await store.apply(id, 'failure', settings, 'late'); // failures while open change nothing
      await sleep(650);
      const trial = await store.apply(id, 'allow', settings);
      expect(trial).toMatchObject({ allowed: true, transitioned: true, state: { state: 'half_open' } });
      expect((await store.apply(id, 'allow', settings)).allowed).toBe(false); // one trial at a time
      const reopened = await store.apply(id, 'failure', settings, 'still down');
      expect(reopened.state).toMatchObject({ state: 'open', coolDownMs: 1200 });
      await sleep(1250);
      expect((await store.apply(id, 'allow', settings)).state.state).toBe('half_open');
      expect((await store.apply(id, 'failure', settings, 'down')).state.coolDownMs).toBe(1500); // capped at maxCoolDownMs
      await sleep(1550);
      expect((await store.apply(id, 'allow', settings)).allowed).toBe(true);
      await sleep(350); // a trial that never reports back frees its slot after timeoutMs
      expect((await store.apply(id, 'allow', settings)).allowed).toBe(true);
      const closed = await store.apply(id, 'success', settings);
      expect(closed).toMatchObject({ transitioned: true, state: { state: 'closed', failures: 0, coolDownMs: 600 } });
      const log = await store.log(id);
      expect(log.map((t) => `${t.from}>${t.to}`)).toEqual([
        'closed>open',
        'open>half_open',
        'half_open>open',
        'open>half_open',
        'half_open>open',
        'open>half_open',
        'half_open>closed',
      ]);
      expect(log[0].reason).toBe('2 consecutive failures: boom');
      for (let i = 1; i < log.length; i++) expect(log[i].at).toBeGreaterThan(log[i - 1].at);
      await store.remove(id);
      expect((await store.read([id])).get(id)).toMatchObject({ state: 'closed', failures: 0 });
    }, 15_000);
  }
});

describe('circuit breaker per MCP server (one replica on Redis)', () => {
  let t: TestApp;
  let host: McpFixtureHost;
  const clients: SseClient[] = [];
  const circuitEvents = (c: SseClient, id: string) => c.events.filter((e) => e.event === 'mcp_server.circuit_changed' && e.data.id === id);
  const transitions = (c: SseClient, id: string) => circuitEvents(c, id).map((e) => `${e.data.data.from}>${e.data.data.to}`);
  const stream = async () => {
    const c = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes?events=mcp_server.*`, { authorization: `Bearer ${t.adminKey}` });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    host = await McpFixtureHost.start();
    t = await startTestApp({ redis: true, env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_OWNER_LEASE_MS: '600' } });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await t?.close();
    await host?.close();
  });

  it('probes walk it closed → open → half_open → open (longer cool-down) → half_open → closed, each transition an event with old and new state', async () => {
    const flaky = host.add('flaky');
    const c = await stream();
    const healthCheck = {
      intervalMs: 1000,
      timeoutMs: 500,
      unhealthyThreshold: 1,
      healthyThreshold: 1,
      failureThreshold: 2,
      coolDownMs: 1000,
      maxCoolDownMs: 5000,
    };
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id: 'flaky', name: 'Flaky', url: flaky.url, healthCheck } })).status,
    ).toBe(201);
    await c.waitFor(
      () => c.events.some((e) => e.event === 'mcp_server.health_changed' && e.data.id === 'flaky' && e.data.data.to === 'healthy'),
      10_000,
      'flaky healthy',
    );

    flaky.set('fail');
    await c.waitFor(() => transitions(c, 'flaky').length >= 3, 10_000, 'open, half_open, open');
    flaky.set('ok');
    await c.waitFor(() => transitions(c, 'flaky').length >= 5, 10_000, 'half_open, closed');
    expect(transitions(c, 'flaky')).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open', 'half_open>closed']);
    const [open1, half1, open2, half2, closed] = circuitEvents(c, 'flaky');
    expect(open1.data.data).toMatchObject({ reason: expect.stringMatching(/^2 consecutive failures: initialize/), failures: 2, coolDownMs: 1000 });
    expect(open2.data.data).toMatchObject({ reason: expect.stringMatching(/^trial call failed/), coolDownMs: 2000 });
    expect(half1.data.data.reason).toMatch(/cool-down of 1000 ms over/);
    expect(closed.data.data.reason).toBe('trial call succeeded');
    // The cool-downs were kept (the client sees the events within ms of their commit).
    expect(half1.at - open1.at).toBeGreaterThan(900);
    expect(half2.at - open2.at).toBeGreaterThan(1900);
    // Ordered like every other change, with the health changes between them.
    const ids = c.events.map((e) => e.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    const health = await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/flaky/health', { key: t.adminKey });
    expect(health.body.circuit).toMatchObject({ state: 'closed', failures: 0, reason: 'trial call succeeded' });
  }, 30_000);

  it('counts gateway calls like probes: CircuitBreakers.allow / recordFailure / recordSuccess', async () => {
    const gw = host.add('gw');
    const c = await stream();
    const healthCheck = { intervalMs: 3_600_000, timeoutMs: 500, failureThreshold: 3, coolDownMs: 800, maxCoolDownMs: 5000 };
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id: 'gw', name: 'GW', url: gw.url, healthCheck, enabled: false } }))
        .status,
    ).toBe(201);
    const breakers = t.app.get(CircuitBreakers);
    await waitFor(async () => (await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/gw/health', { key: t.adminKey })).status === 200, 5000, 'gw known');
    await sleep(300); // the directory has the server's thresholds (disabled: no probe interferes)
    for (let i = 0; i < 3; i++) {
      expect(await breakers.allow('gw')).toBe(true);
      await breakers.recordFailure('gw', 'tools/call timed out');
    }
    expect(await breakers.allow('gw')).toBe(false);
    expect(await breakers.state('gw')).toMatchObject({ state: 'open', failures: 3 });
    await sleep(850);
    expect(await breakers.allow('gw')).toBe(true); // the trial
    expect(await breakers.allow('gw')).toBe(false);
    await breakers.recordSuccess('gw');
    expect(await breakers.allow('gw')).toBe(true);
    await c.waitFor(() => transitions(c, 'gw').length >= 3, 5000, 'three transitions');
    expect(transitions(c, 'gw')).toEqual(['closed>open', 'open>half_open', 'half_open>closed']);
    expect(circuitEvents(c, 'gw')[0].data.data.reason).toBe('3 consecutive failures: tools/call timed out');
  });
});
