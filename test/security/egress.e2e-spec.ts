import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgressDispatcher, egressDenial, egressFetch, type Resolver } from '../../src/egress/egress.dispatcher.js';
import { EgressDeniedError, EgressPolicy } from '../../src/egress/egress.policy.js';
import { api, startTestApp, type TestApp } from '../support/test-env.js';

describe('security: MCP server URLs and the egress policy', () => {
  describe('registration (a service with DATABASE_URL: private networks off by default)', () => {
    let t: TestApp;
    let open: TestApp;
    beforeAll(async () => {
      t = await startTestApp();
      open = await startTestApp({ env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true' } });
    });
    afterAll(async () => {
      await t.close();
      await open.close();
    });
    const register = (app: TestApp, id: string, url: string) =>
      api(app.baseUrl, 'POST', '/api/v1/mcp-servers', { key: app.adminKey, body: { id, name: id, url } });

    it('refuses metadata and link-local hosts with 400 naming url, whatever the settings', async () => {
      for (const [i, url] of [
        'http://169.254.169.254/latest/meta-data/',
        'http://[fd00:ec2::254]/latest/meta-data/',
        'http://[::ffff:169.254.169.254]/',
        'http://[fe80::1]/mcp',
        'http://0xa9fea9fe/',
        'http://metadata.google.internal/computeMetadata/v1/',
        'http://0.0.0.0:8080/mcp',
      ].entries()) {
        for (const app of [t, open]) {
          const res = await register(app, `meta-${i}`, url);
          expect([url, res.status]).toEqual([url, 400]);
          expect(res.headers.get('content-type')).toContain('application/problem+json');
          expect(res.body.errors).toEqual([{ field: 'url', message: expect.stringContaining('never allowed') }]);
        }
      }
    });

    it('refuses private and loopback hosts unless MCP_ALLOW_PRIVATE_NETWORKS, on create and on update', async () => {
      for (const url of ['http://127.0.0.1:8080/mcp', 'http://10.0.0.5/mcp', 'http://localhost:9000/mcp', 'http://[::1]:9000/mcp']) {
        const res = await register(t, 'private', url);
        expect([url, res.status, res.body.errors?.[0]?.field]).toEqual([url, 400, 'url']);
        expect(res.body.errors[0].message).toContain('MCP_ALLOW_PRIVATE_NETWORKS');
      }
      expect((await register(open, 'local', 'http://127.0.0.1:8080/mcp')).status).toBe(201);
      expect((await register(t, 'public', 'https://mcp.example.com/mcp')).status).toBe(201);
      const moved = await api(t.baseUrl, 'PATCH', '/api/v1/mcp-servers/public', { key: t.adminKey, body: { url: 'http://169.254.169.254/' } });
      expect(moved.status).toBe(400);
      expect(moved.body.errors[0].field).toBe('url');
      expect((await api(t.baseUrl, 'GET', '/api/v1/mcp-servers/public', { key: t.adminKey })).body.url).toBe('https://mcp.example.com/mcp');
    });
  });

  describe('connect time: the dispatcher checks every resolved address', () => {
    let server: http.Server;
    let port: number;
    let connections = 0;
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        if (req.url === '/redirect-to-metadata') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/', connection: 'close' }).end();
        else res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end('mcp ok');
      });
      server.on('connection', () => connections++);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const denied = async (promise: Promise<unknown>): Promise<EgressDeniedError> => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      const denial = egressDenial(error);
      expect(denial).toBeInstanceOf(EgressDeniedError);
      return denial!;
    };

    it('reaches a loopback server only when private networks are allowed', async () => {
      const allowed = createEgressDispatcher(new EgressPolicy({ allowPrivateNetworks: true }));
      const closed = createEgressDispatcher(new EgressPolicy({ allowPrivateNetworks: false }));
      try {
        const res = await egressFetch(allowed)(`http://127.0.0.1:${port}/mcp`);
        expect(await res.text()).toBe('mcp ok');
        const before = connections;
        expect((await denied(egressFetch(closed)(`http://127.0.0.1:${port}/mcp`))).address).toBe('127.0.0.1');
        expect((await denied(egressFetch(closed)(`http://localhost:${port}/mcp`))).reason).toContain('MCP_ALLOW_PRIVATE_NETWORKS');
        expect(connections).toBe(before); // refused before connecting
      } finally {
        await Promise.all([allowed.close(), closed.close()]);
      }
    });

    it('refuses a name that resolves (or re-resolves: DNS rebinding) to a metadata address, and redirects there', async () => {
      let answers = [['127.0.0.1'], ['169.254.169.254']];
      const rebinding: Resolver = async () => (answers.shift() ?? ['169.254.169.254']).map((address) => ({ address, family: 4 }));
      const dispatcher = createEgressDispatcher(new EgressPolicy({ allowPrivateNetworks: true }), { resolve: rebinding });
      const get = egressFetch(dispatcher);
      try {
        // First resolution: loopback (allowed here). The server closes the connection, so the next request connects again.
        expect(await (await get(`http://mcp.rebind.test:${port}/mcp`)).text()).toBe('mcp ok');
        const second = await denied(get(`http://mcp.rebind.test:${port}/mcp`));
        expect(second).toMatchObject({ host: 'mcp.rebind.test', address: '169.254.169.254' });
        // One refused record refuses the name, whatever the others are.
        answers = [['127.0.0.1', '169.254.169.254']];
        await denied(get(`http://mcp.rebind.test:${port}/mcp`));
        // A redirect opens a new connection through the same checks.
        answers = [];
        await denied(get(`http://127.0.0.1:${port}/redirect-to-metadata`));
        await denied(get('http://[fd00:ec2::254]/latest/meta-data/'));
      } finally {
        await dispatcher.close();
      }
    });
  });
});
