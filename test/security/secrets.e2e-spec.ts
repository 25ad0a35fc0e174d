import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { McpServerService } from '../../src/registry/mcp-servers/mcp-server.service.js';
import { query } from '../support/security.js';
import { SseClient } from '../support/sse-client.js';
import { api, createTestDatabase, startTestApp } from '../support/test-env.js';

const KEY_A = 'first secret key, at least thirty-two characters';
const KEY_B = 'second secret key, at least thirty-two characters too';
const URL_WITH_KEY = 'https://mcp.example.test/sse?api_key=sk-live-123456&region=eu';

function rotate(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('dist/rotate-secrets.js')], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('security: secrets stay secret', () => {
  it("stores an MCP URL's query string encrypted and shows it masked everywhere", async () => {
    const t = await startTestApp({ env: { SECRET_KEY: KEY_A } });
    try {
      const stream = await SseClient.connect(`${t.baseUrl}/api/v1/stream/changes`, { authorization: `Bearer ${t.adminKey}` });
      const created = await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', {
        key: t.adminKey,
        body: { id: 'keyed', name: 'Keyed', url: URL_WITH_KEY, headers: { Authorization: 'Bearer hdr-secret' } },
      });
      expect(created.status).toBe(201);
      expect(created.body.url).toBe('https://mcp.example.test/sse?api_key=***&region=***');
      for (const path of ['/api/v1/mcp-servers/keyed', '/api/v1/mcp-servers', '/api/v1/discovery', '/api/v1/events?after=0']) {
        const res = await api(t.baseUrl, 'GET', path, { key: t.adminKey });
        expect([path, res.text.includes('sk-live-123456')]).toEqual([path, false]);
      }
      const [row] = await query(t.databaseUrl, "SELECT url, url_secret FROM mcp_servers WHERE id = 'keyed'");
      expect(row.url).toBe('https://mcp.example.test/sse?api_key=***&region=***');
      expect(row.url_secret).toMatch(/^v1\./);
      expect(Buffer.from(row.url_secret.split('.')[3], 'base64url').toString('latin1')).not.toContain('sk-live');
      const servers = t.app.get(McpServerService);
      expect(await servers.getUrl('keyed')).toBe(URL_WITH_KEY);

      // Sending the masked URL back keeps the stored one; a new URL replaces it and is an `updated` change.
      const same = await api(t.baseUrl, 'PATCH', '/api/v1/mcp-servers/keyed', { key: t.adminKey, body: { url: created.body.url, name: 'Renamed' } });
      expect(same.status).toBe(200);
      expect(await servers.getUrl('keyed')).toBe(URL_WITH_KEY);
      const moved = await api(t.baseUrl, 'PATCH', '/api/v1/mcp-servers/keyed', {
        key: t.adminKey,
        body: { url: 'https://mcp.example.test/sse?api_key=sk-live-rotated' },
      });
      expect(moved.body.url).toBe('https://mcp.example.test/sse?api_key=***');
      expect(await servers.getUrl('keyed')).toBe('https://mcp.example.test/sse?api_key=sk-live-rotated');
      await stream.waitFor((c) => c.events.filter((e) => e.data.id === 'keyed').length >= 3, 5000, 'the three events');
      const changes = stream.events.filter((e) => e.data.id === 'keyed').map((e) => e.data.data?.changed);
      expect(changes).toEqual([undefined, ['name'], ['url']]);
      expect(JSON.stringify(stream.frames)).not.toContain('sk-live');
      stream.close();
    } finally {
      await t.close();
    }
  });

  it('refuses to start in production without SECRET_KEY, naming it', () => {
    const result = spawnSync(process.execPath, [path.resolve('dist/main.js')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', DATABASE_URL: 'postgres://u:p@127.0.0.1:1/db', PORT: '0' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SECRET_KEY must be set when NODE_ENV=production');
  });

  it('rotates SECRET_KEY: the new key with SECRET_KEY_PREVIOUS reads old secrets, rotate-secrets re-encrypts, the old key is no longer needed', async () => {
    const db = await createTestDatabase();
    try {
      const before = await startTestApp({ databaseUrl: db.url, env: { SECRET_KEY: KEY_A } });
      const body = { id: 'rotating', name: 'R', url: URL_WITH_KEY, headers: { 'X-Api-Key': 'hdr-123' } };
      expect((await api(before.baseUrl, 'POST', '/api/v1/mcp-servers', { key: before.adminKey, body })).status).toBe(201);
      await before.app.close();

      // Step 1: replicas run with the new key and the previous one.
      const during = await startTestApp({ databaseUrl: db.url, adminKey: before.adminKey, env: { SECRET_KEY: KEY_B, SECRET_KEY_PREVIOUS: KEY_A } });
      expect(await during.app.get(McpServerService).getHeaders('rotating')).toEqual({ 'X-Api-Key': 'hdr-123' });
      expect(await during.app.get(McpServerService).getUrl('rotating')).toBe(URL_WITH_KEY);
      // Step 2: re-encrypt everything (while that replica runs).
      const rotated = await rotate({ DATABASE_URL: db.url, SECRET_KEY: KEY_B, SECRET_KEY_PREVIOUS: KEY_A });
      expect(rotated).toMatchObject({ code: 0, out: expect.stringContaining('2 secret(s) re-encrypted with SECRET_KEY') });
      expect((await rotate({ DATABASE_URL: db.url, SECRET_KEY: KEY_B })).out).toContain('0 secret(s) re-encrypted with SECRET_KEY, 2 already current');
      await during.app.close();

      // Step 3: SECRET_KEY_PREVIOUS is dropped; the new key alone opens everything, the old one nothing.
      const after = await startTestApp({ databaseUrl: db.url, adminKey: before.adminKey, env: { SECRET_KEY: KEY_B } });
      expect(await after.app.get(McpServerService).getHeaders('rotating')).toEqual({ 'X-Api-Key': 'hdr-123' });
      expect(await after.app.get(McpServerService).getUrl('rotating')).toBe(URL_WITH_KEY);
      await after.app.close();
      const old = await startTestApp({ databaseUrl: db.url, adminKey: before.adminKey, env: { SECRET_KEY: KEY_A } });
      await expect(old.app.get(McpServerService).getHeaders('rotating')).rejects.toThrow(/cannot decrypt/);
      await old.app.close();
      // Without a key that opens them, rotation stops and names the server.
      const stuck = await rotate({ DATABASE_URL: db.url, SECRET_KEY: KEY_A });
      expect(stuck.code).toBe(1);
      expect(stuck.out).toContain('MCP server "rotating": no configured key decrypts its secret');
      expect((await rotate({ DATABASE_URL: db.url })).code).toBe(2);
    } finally {
      await db.drop();
    }
  });
});
