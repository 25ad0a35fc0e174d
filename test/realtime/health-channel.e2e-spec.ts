import { io, type Socket } from 'socket.io-client';
import type { ChangeMessage, ClientToServerEvents, HealthCheckMessage, HealthSnapshotMessage, ServerToClientEvents } from '../../src/events/socket-protocol.js';
import { SOCKET_PATH } from '../../src/events/socket-protocol.js';
import { McpFixtureHost } from '../support/mcp-fixtures.js';
import { api, createKey, startTestApp, type TestApp, waitFor } from '../support/test-env.js';

const FAST = { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 1, healthyThreshold: 1, failureThreshold: 100 };

/** The Socket.IO `health` channel carries what the SSE health stream does: a snapshot, health events, live checks. */
describe('Socket.IO health channel (real MCP fixtures)', () => {
  let t: TestApp;
  let host: McpFixtureHost;
  let socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;

  beforeAll(async () => {
    host = await McpFixtureHost.start();
    t = await startTestApp({ redis: true, env: { MCP_ALLOW_PRIVATE_NETWORKS: 'true', HEALTH_OWNER_LEASE_MS: '600' } });
    const f = host.add('gamma');
    expect(
      (await api(t.baseUrl, 'POST', '/api/v1/mcp-servers', { key: t.adminKey, body: { id: 'gamma', name: 'gamma', url: f.url, healthCheck: FAST } })).status,
    ).toBe(201);
    await waitFor(
      async () => (await api(t.baseUrl, 'GET', '/api/v1/health', { key: t.adminKey })).body.items?.[0]?.status === 'healthy',
      10_000,
      'gamma healthy',
    );
  });
  afterAll(async () => {
    socket?.disconnect();
    await t?.close();
    await host?.close();
  });

  it('sends the snapshot, then live health.check results and the health events of a server going down', async () => {
    const viewer = await createKey(t, 'viewer');
    socket = io(t.baseUrl, { path: SOCKET_PATH, auth: { token: viewer }, transports: ['websocket'], forceNew: true, reconnection: false });
    const snapshots: HealthSnapshotMessage[] = [];
    const checks: HealthCheckMessage[] = [];
    const events: ChangeMessage[] = [];
    socket.on('health.snapshot', (s) => snapshots.push(s));
    socket.on('health.check', (c) => checks.push(c));
    socket.on('event', (e) => events.push(e));
    await new Promise<void>((resolve) => socket!.once('connect', () => resolve()));
    const ack = await socket.emitWithAck('subscribe', { channels: ['health'] });
    expect(ack.ok).toBe(true);
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0].servers.map((s) => [s.id, s.status, s.circuit.state])).toEqual([['gamma', 'healthy', 'closed']]);
    await waitFor(() => checks.some((c) => c.serverId === 'gamma' && c.ok), 5000, 'a live check');
    host.fixtures.get('gamma')!.mode = 'fail';
    await waitFor(
      () => events.some((e) => e.type === 'mcp_server.health_changed' && e.id === 'gamma' && (e.data as { to?: string })?.to === 'unhealthy'),
      8000,
      'gamma unhealthy',
    );
    expect(checks.some((c) => c.serverId === 'gamma' && !c.ok)).toBe(true);
    // Only health events on this channel (and notices): no registry changes.
    expect(events.every((e) => e.type.startsWith('mcp_server.health') || e.type.startsWith('mcp_server.circuit') || e.type.startsWith('system.'))).toBe(true);
  });
});
