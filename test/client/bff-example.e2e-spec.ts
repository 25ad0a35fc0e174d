import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../support/ports.mjs';
import { api, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return t;
}

/** The example imports the built package (`@agentic-registry/client` → packages/client/dist), as a user's script does. */
function ensureClientBuilt(): void {
  const built = path.resolve('packages/client/dist/index.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newest(path.resolve('packages/client/src'))) return;
  const result = spawnSync(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'packages/client/tsconfig.build.json'], {
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error('building packages/client failed');
}

/** examples/bff-mirror.mjs, run as the README says, against the real service. */
describe('examples/bff-mirror.mjs', () => {
  let t: TestApp;
  let child: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    ensureClientBuilt();
    t = await startTestApp({ env: { HEALTH_PROBES: 'false' } });
  }, 60_000);
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    await t?.close();
  });

  it('serves the registry from its replica, and a change made afterwards shows up there', async () => {
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: { id: 'before', name: 'B', model: { provider: 'x', name: 'y' } } })).status,
    ).toBe(201);
    const viewer = (await api(t.baseUrl, 'POST', '/api/v1/api-keys', { key: t.adminKey, body: { name: 'bff', role: 'viewer' } })).body.key as string;
    const port = await freePort();
    child = spawn(process.execPath, [path.resolve('examples/bff-mirror.mjs')], {
      env: { PATH: process.env.PATH, REGISTRY_URL: t.baseUrl, REGISTRY_API_KEY: viewer, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(() => output.includes('serving on'), 20_000, `the BFF to start:\n${output}`);
    const get = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${port}${p}`);
      return { status: res.status, body: (await res.json()) as any };
    };
    expect((await get('/agents')).body.map((a: { id: string }) => a.id)).toEqual(['before']);

    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/agents', { key: t.adminKey, body: { id: 'after', name: 'A', model: { provider: 'x', name: 'y' } } })).status,
    ).toBe(201);
    const after = await waitFor(async () => {
      const res = await get('/agents/after');
      return res.status === 200 ? res.body : undefined;
    }, 10_000);
    expect(after).toEqual((await api(t.baseUrl, 'GET', '/api/v1/agents/after', { key: viewer })).body);
    expect((await get('/state')).body.agents).toHaveLength(2);
    expect((await get('/nothing')).status).toBe(404);
    expect(output).toContain('agent.created: agents/after');
  }, 60_000);
});
