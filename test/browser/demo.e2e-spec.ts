/**
 * The client library's browser demo (/demo, built from examples/browser-demo
 * with the library's package) in real headless Chromium against two real
 * replicas and real MCP servers: it follows changes, opens a gateway session,
 * sends requests and shows responses, notifications and heartbeats live, and
 * streams a tool call with a progress bar, then cancels one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { EverythingServer, type McpFixture, McpFixtureHost } from '../support/mcp-fixtures.js';
import { freePort } from '../support/ports.mjs';
import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, redisUrl, waitFor } from '../support/test-env.js';
import { assertChromium, type Browser, openBrowser, screenshot } from './browser.js';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name === 'node_modules') continue;
    const full = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return t;
}

/** `npm test` builds only the server: the library's package and the demo are built here when missing or stale. */
function ensureDemoBuilt(): void {
  const index = path.resolve('examples/browser-demo/dist/index.html');
  const sources = Math.max(newest(path.resolve('examples/browser-demo')), newest(path.resolve('packages/client/src')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  for (const args of [
    [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'packages/client/tsconfig.build.json'],
    [path.resolve('node_modules/vite/bin/vite.js'), 'build', '--config', 'examples/browser-demo/vite.config.ts', '--logLevel', 'warn'],
  ]) {
    const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`building the demo failed: ${args.join(' ')}`);
  }
}

const noProbes = { intervalMs: 600_000, timeoutMs: 2000, unhealthyThreshold: 3, healthyThreshold: 1 };

describe('the client library’s browser demo in Chromium', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let cluster: Cluster;
  let host: McpFixtureHost;
  let everything: EverythingServer;
  let alpha: McpFixture;
  let r1: Replica;
  let r2: Replica;
  let browser: Browser;

  beforeAll(async () => {
    assertChromium();
    ensureDemoBuilt();
    db = await createTestDatabase();
    [host, everything] = await Promise.all([McpFixtureHost.start(), freePort().then((port) => EverythingServer.start(port))]);
    alpha = host.add('alpha');
    alpha.tools = ['echo', 'progress', 'wait'];
    cluster = new Cluster(db.url, redisUrl(), { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_PROBES: 'false', GATEWAY_HEARTBEAT_MS: '300' });
    [r1, r2] = await Promise.all([cluster.start('demo-a'), cluster.start('demo-b')]);
    for (const [id, url] of [
      ['alpha', alpha.statefulUrl],
      ['everything', everything.url],
    ] as const) {
      expect((await api(r1.url, 'POST', '/api/v1/mcp-servers', { key: cluster.adminKey, body: { id, name: id, url, healthCheck: noProbes } })).status).toBe(
        201,
      );
    }
    browser = await openBrowser('demo');
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
    await everything?.stop();
    await host?.close();
    await db?.drop();
  });

  it('is served like the admin GUI: strict CSP, hashed assets cached for a year, 404 for a missing asset', async () => {
    const page = await fetch(`${r1.url}/demo/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    const script = /src="(\/demo\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${r1.url}${script}`);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toContain('/gateway/stream'); // the library is in the bundle
    const missing = await fetch(`${r1.url}/demo/assets/nothing-here.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    await missing.body?.cancel();
  });

  it('follows changes, drives a gateway session, streams a tool call with progress and cancels one, with no console error', async () => {
    const { page, errors } = browser;
    await page.goto(`${r1.url}/demo/`);
    await page.fill('#api-key', cluster.adminKey);
    await page.click('#connect');
    await page.locator('#changes-state', { hasText: 'open' }).waitFor();

    // A change made elsewhere (on the other replica) appears live.
    expect(
      (await api(r2.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: { id: 'demo-agent', name: 'Demo', model: { provider: 'x', name: 'y' } } }))
        .status,
    ).toBe(201);
    await page.locator('#changes li', { hasText: 'agent.created demo-agent' }).waitFor();

    // A gateway session: servers reported, heartbeats counted, a request answered, progress notifications shown.
    await page.fill('#servers', 'alpha, everything');
    await page.click('#open-session');
    await page.locator('#session-state', { hasText: 'open:' }).waitFor();
    expect(await page.locator('#session-servers li').allTextContents()).toEqual(['alpha: ready', 'everything: ready']);
    await waitFor(async () => Number(await page.textContent('#heartbeats')) >= 2, 10_000, 'heartbeats shown');
    await page.fill('#method', 'tools/list');
    await page.fill('#params', '{}');
    await page.click('#send');
    const listed = page.locator('#session-log li[data-result="tools/list"]');
    await listed.waitFor();
    expect(await listed.textContent()).toContain('alpha__progress');
    await page.fill('#method', 'tools/call');
    await page.fill('#params', '{"name": "alpha__progress", "arguments": {"steps": 2, "delayMs": 20}}');
    await page.click('#send');
    await page.locator('#session-log li[data-result="tools/call"]').waitFor();
    await waitFor(
      async () => (await page.locator('#session-log li', { hasText: 'notifications/progress' }).count()) === 2,
      10_000,
      'two progress notifications',
    );
    await page.fill('#params', '{"name": "nowhere__echo"}');
    await page.click('#send');
    await page.locator('#session-log li.error', { hasText: 'tools/call failed: JSON-RPC' }).waitFor();

    // A streamed tool call: the progress bar moves to the end, then the result.
    await page.fill('#tool-server', 'alpha');
    await page.fill('#tool-name', 'progress');
    await page.fill('#tool-args', '{"steps": 4, "delayMs": 150}');
    // Every state the page shows, recorded as it changes.
    await page.evaluate(() => {
      const el = document.getElementById('tool-state')!;
      const seen: string[] = [];
      (window as unknown as { toolStates: string[] }).toolStates = seen;
      new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await page.click('#call-tool');
    await page.locator('#tool-state', { hasText: /complete in|failed/ }).waitFor();
    const states = await page.evaluate(() => (window as unknown as { toolStates: string[] }).toolStates);
    expect(states.filter((t) => t.startsWith('progress'))).toEqual([1, 2, 3, 4].map((i) => `progress ${i}/4 — step ${i} of 4`));
    expect(states.at(-1)).toMatch(/^complete in [\d.]+ ms$/);
    expect(await page.getAttribute('#tool-progress', 'max')).toBe('4');
    expect(await page.evaluate(() => (document.getElementById('tool-progress') as HTMLProgressElement).value)).toBe(4);
    expect(await page.textContent('#tool-result')).toContain('"content"');
    await screenshot(page, 'client-demo');

    // Cancelled mid-way: the backend sees the cancellation.
    const waiting = alpha.waiting;
    const cancelled = alpha.cancelled;
    await page.fill('#tool-name', 'wait');
    await page.fill('#tool-args', '{}');
    await page.click('#call-tool');
    await waitFor(() => alpha.waiting > waiting, 10_000, 'the call running at the backend');
    await page.click('#cancel-tool');
    await page.locator('#tool-state', { hasText: 'cancelled' }).waitFor();
    await waitFor(() => alpha.cancelled > cancelled, 10_000, 'the backend call cancelled');

    await page.click('#close-session');
    await page.locator('#session-state', { hasText: 'closed: closed by the client' }).waitFor();
    expect(errors.errors).toEqual([]);
  }, 120_000);
});
