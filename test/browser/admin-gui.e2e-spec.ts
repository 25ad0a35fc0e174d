/**
 * The admin GUI in real headless Chromium (Debian's, driven by playwright-core)
 * against two real replicas on one PostgreSQL and one Redis: two users in two
 * browser profiles, each on its own replica.
 */
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import type { Page, WebSocketRoute } from 'playwright-core';
import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, redisUrl, sleep } from '../support/test-env.js';
import { assertChromium, type Browser, ensureGuiBuilt, horizontalOverflow, openBrowser, screenshot, tabTo } from './browser.js';

const ALICE = { username: 'alice', password: 'alice-secret-pass-1', role: 'admin' };
const BOB = { username: 'bob', password: 'bob-secret-pass-12', role: 'editor' };

const connection = (page: Page) => page.locator('[data-testid=connection]');
const agentRow = (page: Page, id: string) => page.locator(`[data-row="agent:${id}"]`);

async function waitLive(page: Page, timeout = 20_000): Promise<void> {
  await page.locator('[data-testid=connection][data-status=live]').waitFor({ timeout });
}

async function lastSeq(page: Page): Promise<number> {
  return Number(await connection(page).getAttribute('data-last-seq'));
}

describe('admin GUI in Chromium, two users on two replicas', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  let admin: string;
  let viewerKey: string;
  let alice: Browser;
  let bob: Browser;
  /** While true, alice's page cannot open a WebSocket (the routed socket is closed at once). */
  let socketBlocked = false;
  let aliceSockets = 0;

  beforeAll(async () => {
    assertChromium();
    ensureGuiBuilt();
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl());
    r1 = await cluster.start('gui-a');
    r2 = await cluster.start('gui-b');
    admin = cluster.adminKey;
    const post = async (path: string, body: unknown) => {
      const res = await api(r1.url, 'POST', `/api/v1${path}`, { key: admin, body });
      if (res.status >= 300) throw new Error(`${path}: ${res.status} ${res.text}`);
      return res.body;
    };
    await post('/users', ALICE);
    await post('/users', BOB);
    viewerKey = (await post('/api-keys', { name: 'dashboard', role: 'viewer' })).key;
    await post('/agents', { id: 'pmo', name: 'Project manager', model: { provider: 'openai', name: 'gpt-5', temperature: 0.2 }, tags: ['ops', 'planning'] });
    await post('/agents', { id: 'support', name: 'Support triage', model: { provider: 'anthropic', name: 'claude-sonnet' }, tags: ['support'] });
    await post('/agents/pmo/prompts', { template: 'You are the PMO agent.\nPlan the work for {{project}}.\nBe brief.', variables: ['project'] });
    await post('/agents/pmo/prompts', {
      template: 'You are the PMO agent.\nPlan and track the work for {{project}}.\nReport risks weekly.\nBe brief.',
      variables: ['project'],
      activate: true,
    });
    await post('/mcp-servers', { id: 'github', name: 'GitHub', url: 'https://mcp.example.com/github', headers: { Authorization: 'Bearer ghp_x' } });
    await post('/trust-rules', { agentId: 'pmo', mcpServerId: 'github', toolPattern: 'issues.*', effect: 'allow', priority: 10 });

    [alice, bob] = await Promise.all([openBrowser('alice'), openBrowser('bob')]);
    // Alice's WebSocket goes through a route the test can hold down (after the server drops it).
    await alice.page.routeWebSocket(/\/ws\/v1\//, (ws: WebSocketRoute) => {
      if (!socketBlocked) {
        aliceSockets++;
        ws.connectToServer();
        return;
      }
      // Held down: like a replica that accepts the transport and drops it at once (Engine.IO
      // open packet, then a close), so the client's own backoff keeps retrying meanwhile.
      ws.send(`0${JSON.stringify({ sid: 'held-down', upgrades: [], pingInterval: 25_000, pingTimeout: 20_000, maxPayload: 100_000 })}`);
      ws.onMessage(() => void ws.close({ code: 1001, reason: 'held down by the test' }));
    });
  });

  afterAll(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await cluster?.stop();
    await db?.drop();
  });

  afterEach(() => {
    // No console errors and no uncaught exceptions, on any page, in any step.
    expect(alice.errors.errors).toEqual([]);
    expect(bob.errors.errors).toEqual([]);
  });

  it('serves the GUI at /admin: index revalidated, hashed assets cached for a year, SPA routes, problem+json for a missing asset, strict CSP', async () => {
    const index = await fetch(`${r1.url}/admin/`);
    const html = await index.text();
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    expect(index.headers.get('referrer-policy')).toBe('same-origin');

    const again = await fetch(`${r1.url}/admin/`, { headers: { 'if-none-match': index.headers.get('etag')! } });
    expect(again.status).toBe(304);

    const asset = /src="(\/admin\/assets\/[^"]+\.js)"/.exec(html)![1];
    const js = await fetch(`${r2.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');

    const route = await fetch(`${r1.url}/admin/mcp-servers`);
    expect(route.status).toBe(200);
    expect(await route.text()).toBe(html);

    const missing = await fetch(`${r1.url}/admin/assets/index-00000000.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
  });

  it('signs in with the keyboard (alice on replica A) and with the mouse (bob on replica B); each sees the other online', async () => {
    await alice.page.goto(`${r1.url}/admin/`);
    // Keyboard only: the username field has focus, Tab to the password, Enter submits.
    await alice.page.locator('#username').waitFor();
    await alice.page.keyboard.type(ALICE.username);
    await alice.page.keyboard.press('Tab');
    await alice.page.keyboard.type(ALICE.password);
    await alice.page.keyboard.press('Enter');

    await bob.page.goto(`${r2.url}/admin/`);
    await bob.page.fill('#username', BOB.username);
    await bob.page.fill('#password', BOB.password);
    await bob.page.click('button[type=submit]');

    await Promise.all([waitLive(alice.page), waitLive(bob.page)]);
    expect(await agentRow(alice.page, 'pmo').locator('[data-field=active-prompt]').textContent()).toBe('v2');
    await alice.page.locator('[data-testid=presence] [data-user=bob]').waitFor();
    await bob.page.locator('[data-testid=presence] [data-user=alice]').waitFor();
    expect(await alice.page.locator('[data-testid=me]').textContent()).toContain('alice');
  });

  it("bob edits an agent: alice's row changes and a toast names bob, within 1 s", async () => {
    const a = alice.page;
    const b = bob.page;
    await agentRow(b, 'pmo').getByRole('button', { name: 'Edit pmo' }).click();
    const form = b.locator('[data-testid=agent-form]');
    await form.locator('input[name=name]').fill('Project manager (EU)');
    const seen = a.waitForFunction(
      () => {
        const name = document.querySelector('[data-row="agent:pmo"] [data-field=name]')?.textContent;
        const toast = document.querySelector('[data-testid=toasts]')?.textContent ?? '';
        return name === 'Project manager (EU)' && /bob updated agent pmo/.test(toast) ? performance.timeOrigin + performance.now() : false;
      },
      undefined,
      { polling: 'raf', timeout: 5000 },
    );
    const saved = b.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().endsWith('/api/v1/agents/pmo'));
    // From bob's click (his PATCH included) to alice's screen showing the row and the toast.
    const clickedAt = Date.now();
    await form.getByRole('button', { name: 'Save' }).click();
    expect((await saved).status()).toBe(200);
    const shownAt = (await (await seen).jsonValue()) as number;
    expect(shownAt - clickedAt).toBeLessThan(1000);
    // bob's own change: his row changed, no toast about himself.
    expect(await agentRow(b, 'pmo').locator('[data-field=name]').textContent()).toBe('Project manager (EU)');
    expect(await b.locator('[data-testid=toasts]').textContent()).not.toContain('bob updated');
    await screenshot(a, '01-alice-toast-from-bob');
  });

  it('an admin notice appears as a banner in both browsers', async () => {
    const message = 'Maintenance tonight 22:00–22:15 UTC: writes may be refused.';
    const res = await api(r2.url, 'POST', '/api/v1/admin/notices', {
      key: admin,
      body: { kind: 'system.maintenance', message, expiresAt: new Date(Date.now() + 3600_000).toISOString() },
    });
    expect(res.status).toBe(201);
    await Promise.all([
      alice.page.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: 3000 }),
      bob.page.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: 3000 }),
    ]);
    // A page opened now gets it from GET /notices.
    await bob.page.reload();
    await waitLive(bob.page);
    await bob.page.getByRole('alert').filter({ hasText: message }).waitFor({ timeout: 3000 });
    await screenshot(bob.page, '02-bob-notice');
  });

  it('the server drops alice\'s socket: "live updates paused", the tables still refresh by polling', async () => {
    const a = alice.page;
    // Her principal id, as the cluster lists connections (each replica reports every second or so).
    let aliceId: string | undefined;
    for (let i = 0; i < 50 && !aliceId; i++) {
      const connections = await api(r1.url, 'GET', '/api/v1/admin/connections', { key: admin });
      aliceId = (connections.body.users as { userId: string; name: string; socketio: number }[]).find(
        (u) => u.name === ALICE.username && u.socketio > 0,
      )?.userId;
      if (!aliceId) await sleep(100);
    }
    expect(aliceId).toBeDefined();

    socketBlocked = true;
    const dropped = await api(r2.url, 'POST', '/api/v1/admin/connections/disconnect', { key: admin, body: { userId: aliceId } });
    expect(dropped.status).toBe(202);
    await a.locator('[data-testid=connection][data-status=paused]').waitFor({ timeout: 5000 });
    expect(await connection(a).textContent()).toContain('Live updates paused');
    const seqAtDrop = await lastSeq(a);

    // Changes while alice's socket is down: made by bob's replica, seen by alice through polling.
    const patched = await api(r2.url, 'PATCH', '/api/v1/agents/support', {
      key: admin,
      body: { name: 'Support triage (gap)' },
      headers: { 'if-match': '"1"' },
    });
    expect(patched.status).toBe(200);
    const created = await api(r2.url, 'POST', '/api/v1/mcp-servers', {
      key: admin,
      body: { id: 'linear', name: 'Linear', url: 'https://mcp.example.com/linear' },
    });
    expect(created.status).toBe(201);
    await a.waitForFunction(() => document.querySelector('[data-row="agent:support"] [data-field=name]')?.textContent === 'Support triage (gap)', undefined, {
      timeout: 6000,
    });
    await a.getByRole('link', { name: /MCP servers/ }).click();
    await a.locator('[data-row="mcp_server:linear"]').waitFor({ timeout: 6000 });
    // Still paused, and no event came over a socket: that was the REST poll.
    expect(await connection(a).getAttribute('data-status')).toBe('paused');
    expect(await lastSeq(a)).toBe(seqAtDrop);
    await screenshot(a, '03-alice-paused-polling');
  });

  it('the socket comes back: live again, resumed from its last seq with every event of the gap, once', async () => {
    const a = alice.page;
    const seqAtDrop = await lastSeq(a);
    const gap = await api(r1.url, 'GET', `/api/v1/events?after=${seqAtDrop}&limit=100`, { key: admin });
    const gapSeqs = (gap.body.items as { seq: number; type: string }[]).map((e) => e.seq);
    expect(gapSeqs.length).toBeGreaterThanOrEqual(2);
    const socketsBefore = aliceSockets;

    socketBlocked = false;
    await waitLive(a, 30_000);
    expect(aliceSockets).toBeGreaterThan(socketsBefore);
    await a.waitForFunction((want) => Number(document.querySelector('[data-testid=connection]')?.getAttribute('data-last-seq')) >= want, Math.max(...gapSeqs));

    await a.getByRole('link', { name: 'Activity' }).click();
    const shown = await a.locator('[data-testid=activity-table] tr[data-seq]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
    for (const seq of gapSeqs) expect(shown).toContain(seq);
    expect(new Set(shown).size).toBe(shown.length);
    // The gap's changes by another principal arrived as toasts too.
    expect(await a.locator('[data-testid=toasts]').textContent()).toContain('API key bootstrap-admin created MCP server linear');

    // Live again for real: a new change arrives over the socket.
    const before = await lastSeq(a);
    await api(r2.url, 'PATCH', '/api/v1/mcp-servers/linear', { key: admin, body: { name: 'Linear (live)' } });
    await a.getByRole('link', { name: /MCP servers/ }).click();
    await a.waitForFunction(() => document.querySelector('[data-row="mcp_server:linear"] [data-field=name]')?.textContent === 'Linear (live)', undefined, {
      timeout: 3000,
    });
    expect(await lastSeq(a)).toBeGreaterThan(before);
    // The health badge: green/yellow/red from the health module's status, grey "unknown" until it has one.
    const badges = await a.locator('[data-field=health]').evaluateAll((els) => els.map((e) => `${e.className}|${e.textContent}`));
    const colour: Record<string, string> = { unknown: 'unknown', healthy: 'green', degraded: 'yellow', unhealthy: 'red' };
    for (const badge of badges) {
      const [cls, label] = badge.split('|') as [string, string];
      expect(Object.keys(colour)).toContain(label);
      expect(cls).toBe(`badge ${colour[label]}`);
    }
    await screenshot(a, '04-alice-live-again');
  });

  it('a stale edit gets 412: "changed by someone else — reload", and Reload brings the current version', async () => {
    const a = alice.page;
    await a.getByRole('link', { name: /Agents/ }).click();
    await agentRow(a, 'support').getByRole('button', { name: 'Edit support' }).click();
    const form = a.locator('[data-testid=agent-form]');
    await form.locator('input[name=name]').fill('Support (alice)');
    // Meanwhile bob changes the same agent.
    const other = await api(r2.url, 'PATCH', '/api/v1/agents/support', { key: admin, body: { description: 'changed by bob' } });
    expect(other.status).toBe(200);
    await alice.errors.expecting([/status of 412/], async () => {
      await form.getByRole('button', { name: 'Save' }).click();
      await form.locator('[data-testid=conflict]').waitFor();
    });
    expect(await form.locator('[data-testid=conflict]').textContent()).toContain('Changed by someone else — reload');
    await screenshot(a, '05-alice-conflict');
    await form.getByRole('button', { name: 'Reload' }).click();
    await a.waitForFunction(
      () => document.querySelector<HTMLTextAreaElement>('[data-testid=agent-form] textarea[name=description]')?.value === 'changed by bob',
    );
    expect(await form.locator('[data-testid=conflict]').count()).toBe(0);
    await form.locator('input[name=name]').fill('Support (alice)');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    await bob.page.waitForFunction(() => document.querySelector('[data-row="agent:support"] [data-field=name]')?.textContent === 'Support (alice)', undefined, {
      timeout: 3000,
    });
  });

  it('keyboard: New agent is reachable with Tab, the form works with keys, Escape closes a dialog', async () => {
    const a = alice.page;
    await a.goto(`${r1.url}/admin/agents`);
    await waitLive(a);
    await tabTo(a, /^New agent$/);
    await a.keyboard.press('Enter');
    const form = a.locator('[data-testid=agent-form]');
    await form.waitFor();
    expect(await a.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name)).toBe('id');
    await a.keyboard.type('research');
    await a.keyboard.press('Tab');
    await a.keyboard.type('Research assistant');
    await a.keyboard.press('Tab'); // description
    await a.keyboard.press('Tab');
    await a.keyboard.type('openai');
    await a.keyboard.press('Tab');
    await a.keyboard.type('gpt-5-mini');
    await a.keyboard.press('Enter');
    await form.waitFor({ state: 'detached' });
    await agentRow(a, 'research').waitFor();
    await agentRow(bob.page, 'research').waitFor({ timeout: 3000 });

    await tabTo(a, /Edit research/);
    await a.keyboard.press('Enter');
    await form.waitFor();
    await a.keyboard.press('Escape');
    await form.waitFor({ state: 'detached' });
    expect(await a.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Edit research');
  });

  it('a viewer signs in with an API key (kept in memory) on a narrow screen: read-only, no horizontal scroll', async () => {
    const viewer = await openBrowser('viewer', { width: 390, height: 844 });
    try {
      const v = viewer.page;
      await v.goto(`${r2.url}/admin/`);
      await v.getByRole('button', { name: 'Sign in with an API key' }).click();
      await v.fill('#apikey', viewerKey);
      await v.keyboard.press('Enter');
      await waitLive(v);
      expect(await v.locator('[data-testid=me]').textContent()).toContain('dashboard');
      expect(await v.evaluate(() => JSON.stringify({ ...window.localStorage }))).not.toContain(viewerKey);
      expect(await v.getByRole('button', { name: 'New agent' }).count()).toBe(0);
      expect(await v.getByRole('button', { name: /^Edit / }).count()).toBe(0);
      expect(await horizontalOverflow(v)).toBeLessThanOrEqual(0);
      await screenshot(v, '06-viewer-narrow-agents', true);
      for (const tab of [/MCP servers/, /Trust rules/, /Prompts/]) {
        await v.getByRole('link', { name: tab }).click();
        expect(await horizontalOverflow(v)).toBeLessThanOrEqual(0);
      }
      expect(await v.getByRole('button', { name: /^Activate / }).count()).toBe(0);
      await v.getByRole('link', { name: /MCP servers/ }).click();
      await screenshot(v, '07-viewer-narrow-mcp', true);
      // Changes reach the viewer live too.
      await api(r1.url, 'PATCH', '/api/v1/agents/research', { key: admin, body: { description: 'for the viewer' } });
      await v.getByRole('link', { name: /Agents/ }).click();
      await v.locator('[data-testid=toasts]').filter({ hasText: 'updated agent research' }).waitFor({ timeout: 3000 });
      expect(viewer.errors.errors).toEqual([]);
    } finally {
      await viewer.close();
    }
  });

  it('the overview at 1280×800 (the README screenshot)', async () => {
    const a = alice.page;
    await a.goto(`${r1.url}/admin/agents`);
    await waitLive(a);
    await a.locator('[data-testid=presence] [data-user=bob]').waitFor();
    // A change by bob (his session, from his page), for the toast and the highlighted row in the picture.
    const status = await bob.page.evaluate(async () => {
      const res = await fetch('/api/v1/agents/pmo', {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tags: ['ops', 'planning', 'eu'] }),
      });
      return res.status;
    });
    expect(status).toBe(200);
    await a.locator('[data-testid=toasts] .toast').first().waitFor({ timeout: 3000 });
    await sleep(300);
    const file = await screenshot(a, '00-overview');
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') copyFileSync(file, path.resolve('docs/admin-gui.png'));
  });
});
