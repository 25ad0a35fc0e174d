import { io, type Socket } from 'socket.io-client';
import type { ChangeMessage, ClientToServerEvents, PresenceChange, ServerToClientEvents, SocketError, SubscribeAck } from '../../src/events/socket-protocol.js';
import { SOCKET_PATH } from '../../src/events/socket-protocol.js';
import { Cluster, type Replica } from '../support/replicas.js';
import { api, createTestDatabase, redisUrl, sleep, waitFor } from '../support/test-env.js';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
const agent = (id: string) => ({ id, name: id, model: { provider: 'anthropic', name: 'claude' } });

interface Recorder {
  socket: Client;
  events: ChangeMessage[];
  cursors: number[];
  closing: { reason: string; reconnect: boolean }[];
  joined: PresenceChange[];
  left: PresenceChange[];
  disconnects: string[];
}

/** An unmodified socket.io-client that records what it gets; connected (or rejected: `error`). */
async function connect(
  replica: Replica,
  options: { token?: string; headers?: Record<string, string>; reconnection?: boolean } = {},
): Promise<Recorder & { error?: SocketError }> {
  const socket: Client = io(replica.url, {
    path: SOCKET_PATH,
    auth: options.token ? { token: options.token } : {},
    extraHeaders: options.headers,
    transports: ['websocket'],
    reconnection: options.reconnection ?? false,
    forceNew: true,
  });
  const r: Recorder = { socket, events: [], cursors: [], closing: [], joined: [], left: [], disconnects: [] };
  socket.on('event', (e) => r.events.push(e));
  socket.on('cursor', (c) => r.cursors.push(c.cursor));
  socket.on('closing', (n) => r.closing.push(n));
  socket.on('user.connected', (p) => r.joined.push(p));
  socket.on('user.disconnected', (p) => r.left.push(p));
  socket.on('disconnect', (reason) => r.disconnects.push(reason));
  const outcome = await new Promise<SocketError | undefined>((resolve) => {
    socket.once('connect', () => resolve(undefined));
    socket.once('connect_error', (e: Error & { data?: SocketError }) => resolve(e.data ?? { code: 'transport', detail: e.message }));
  });
  return { ...r, error: outcome };
}

describe('Socket.IO channel across two replicas (real processes, socket.io-client)', () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: Cluster;
  let r1: Replica;
  let r2: Replica;
  const sockets: Client[] = [];
  const open = async (replica: Replica, options: Parameters<typeof connect>[1] = {}) => {
    const c = await connect(replica, options);
    sockets.push(c.socket);
    return c;
  };
  const key = async (role: 'viewer' | 'editor' | 'admin', name = `${role}-${Math.random().toString(36).slice(2, 8)}`) => {
    const res = await api(r1.url, 'POST', '/api/v1/api-keys', { key: cluster.adminKey, body: { name, role } });
    expect(res.status).toBe(201);
    return { key: res.body.key as string, id: `key:${res.body.id as string}` };
  };
  const create = async (id: string, via = r1) =>
    expect((await api(via.url, 'POST', '/api/v1/agents', { key: cluster.adminKey, body: agent(id) })).status).toBe(201);

  beforeAll(async () => {
    db = await createTestDatabase();
    cluster = new Cluster(db.url, redisUrl(), { MAX_CONNECTIONS_PER_USER: '3', CREDENTIAL_CHECK_MS: '300' });
    [r1, r2] = [await cluster.start('io1'), await cluster.start('io2')];
  }, 90_000);
  afterEach(() => {
    for (const s of sockets.splice(0)) s.disconnect();
  });
  afterAll(async () => {
    await cluster.stop();
    await db.drop();
  });

  it('acknowledges a subscription with its cursor and delivers only what the channels and filter select', async () => {
    const c = await open(r1, { token: cluster.adminKey });
    expect(c.error).toBeUndefined();
    const ack: SubscribeAck = await c.socket.emitWithAck('subscribe', { channels: ['agents'], events: 'agent.created' });
    expect(ack).toMatchObject({ ok: true, channels: ['agents'] });
    const cursor = (ack as { cursor: number }).cursor;
    expect(cursor).toBeGreaterThanOrEqual(0);
    await create('io-filtered-1', r2);
    await create('io-filtered-2', r2);
    await api(r2.url, 'PATCH', '/api/v1/agents/io-filtered-1', { key: cluster.adminKey, body: { name: 'renamed' } }); // agent.updated: filtered out
    await waitFor(() => c.events.length >= 2, 5000, 'two agent.created events');
    expect(c.events.map((e) => [e.type, e.id])).toEqual([
      ['agent.created', 'io-filtered-1'],
      ['agent.created', 'io-filtered-2'],
    ]);
    expect(c.events[0].seq).toBeGreaterThan(cursor);
    expect(c.events[0].actor).toBeDefined();
    // The filtered-out update, last, moves the cursor the client is told about (no event carries it).
    await waitFor(() => c.cursors.some((x) => x > c.events[1].seq), 3000, 'a cursor past the filtered-out event');
    expect(c.events).toHaveLength(2);
  });

  it('resumes with lastEventId on another replica with nothing lost or repeated', async () => {
    const first = await open(r1, { token: cluster.adminKey });
    const ack = await first.socket.emitWithAck('subscribe', { channels: ['changes'] });
    expect(ack.ok).toBe(true);
    await create('resume-a');
    await waitFor(() => first.events.some((e) => e.id === 'resume-a'), 5000, 'resume-a');
    const last = first.events.at(-1)!.seq;
    first.socket.disconnect();
    for (const id of ['resume-b', 'resume-c', 'resume-d']) await create(id, r1);
    const second = await open(r2, { token: cluster.adminKey });
    const resumed = await second.socket.emitWithAck('subscribe', { channels: ['changes'], lastEventId: last });
    expect(resumed.ok).toBe(true);
    await create('resume-e', r2);
    await waitFor(() => second.events.some((e) => e.id === 'resume-e'), 5000, 'resume-e');
    const seqs = second.events.map((e) => e.seq);
    expect(seqs[0]).toBe(last + 1);
    seqs.forEach((s, i) => i > 0 && expect(s).toBe(seqs[i - 1] + 1));
    expect(second.events.filter((e) => e.type === 'agent.created').map((e) => e.id)).toEqual(['resume-b', 'resume-c', 'resume-d', 'resume-e']);
  });

  it('answers bad payloads with an error acknowledgement, never a crash', async () => {
    const c = await open(r1, { token: cluster.adminKey });
    const unknownChannel = await c.socket.emitWithAck('subscribe', { channels: ['nope' as never] });
    expect(unknownChannel).toMatchObject({ error: { code: 'validation_failed', field: 'channels.0' } });
    const garbage = await c.socket.emitWithAck('subscribe', 'not an object' as never);
    expect((garbage as { error?: SocketError }).error?.code).toBe('validation_failed');
    const badCursor = await c.socket.emitWithAck('subscribe', { channels: ['changes'], lastEventId: 'abc' });
    expect(badCursor).toMatchObject({ error: { field: 'lastEventId' } });
    const badFilter = await c.socket.emitWithAck('subscribe', { channels: ['agents'], events: 'prompt.*' });
    expect(badFilter).toMatchObject({ error: { field: 'events' } });
    // No ack function: handled, nothing thrown (an untyped emit, as a careless client would send).
    (c.socket as unknown as { emit(event: string, payload: unknown): void }).emit('subscribe', { channels: ['changes'] });
    const still = await c.socket.emitWithAck('unsubscribe', {});
    expect(still.ok).toBe(true);
    expect(c.socket.connected).toBe(true);
  });

  it('refuses a bad key and a cookie handshake from a foreign Origin; accepts the cookie from the service origin', async () => {
    const bad = await open(r1, { token: `ar_${'x'.repeat(40)}` });
    expect(bad.error?.code).toBe('unauthorized');
    const none = await open(r1);
    expect(none.error?.code).toBe('unauthorized');
    await api(r1.url, 'POST', '/api/v1/users', { key: cluster.adminKey, body: { username: 'io-user', password: 'a long enough password', role: 'viewer' } });
    const login = await api(r1.url, 'POST', '/api/v1/auth/login', { body: { username: 'io-user', password: 'a long enough password' } });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    expect(cookie).toMatch(/^ar_session=/);
    const foreign = await open(r1, { headers: { cookie, origin: 'https://evil.example' } });
    expect(foreign.error?.code).toBe('forbidden');
    const own = await open(r1, { headers: { cookie, origin: r1.url } });
    expect(own.error).toBeUndefined();
  });

  it('counts sockets against the per-user limit shared with SSE (over it: too_many_requests)', async () => {
    const { key: k } = await key('viewer');
    const held = [await open(r1, { token: k }), await open(r2, { token: k }), await open(r1, { token: k })];
    expect(held.map((c) => c.error)).toEqual([undefined, undefined, undefined]);
    const over = await open(r2, { token: k });
    expect(over.error?.code).toBe('too_many_requests');
    held[0].socket.disconnect();
    const again = await waitFor(
      async () => {
        const c = await open(r2, { token: k });
        return c.error ? (c.socket.disconnect(), false) : c;
      },
      5000,
      'a slot after a disconnect',
    );
    expect(again.socket.connected).toBe(true);
  });

  it('ends the socket on every replica within a second of its key being revoked', async () => {
    const { key: k, id } = await key('editor');
    const c = await open(r2, { token: k });
    await c.socket.emitWithAck('subscribe', { channels: ['changes'] });
    const revokedAt = Date.now();
    expect((await api(r1.url, 'DELETE', `/api/v1/api-keys/${id.slice(4)}`, { key: cluster.adminKey })).status).toBe(204);
    await waitFor(() => c.disconnects.length > 0, 3000, 'the socket to end');
    expect(Date.now() - revokedAt).toBeLessThan(1500);
    expect(c.closing[0]).toEqual({ reason: 'credential revoked', reconnect: false });
    expect(c.disconnects[0]).toBe('io server disconnect');
  });

  it('delivers admin notices through the outbox: live, on resume, and listed while active', async () => {
    const watcher = await open(r2, { token: cluster.adminKey });
    const ack = await watcher.socket.emitWithAck('subscribe', { channels: ['agents'] });
    const before = (ack as { cursor: number }).cursor;
    const posted = await api(r1.url, 'POST', '/api/v1/admin/notices', {
      key: cluster.adminKey,
      body: { kind: 'system.maintenance', message: 'Upgrade at 22:00 UTC', expiresAt: new Date(Date.now() + 3600_000).toISOString() },
    });
    expect(posted.status).toBe(201);
    await waitFor(() => watcher.events.some((e) => e.type === 'system.maintenance'), 5000, 'the notice, live');
    expect(watcher.events.find((e) => e.type === 'system.maintenance')!.data).toMatchObject({ message: 'Upgrade at 22:00 UTC' });
    const late = await open(r1, { token: cluster.adminKey });
    await late.socket.emitWithAck('subscribe', { channels: ['changes'], lastEventId: before });
    await waitFor(() => late.events.some((e) => e.type === 'system.maintenance' && e.id === posted.body.id), 5000, 'the notice, on resume');
    const active = await api(r2.url, 'GET', '/api/v1/notices', { key: (await key('viewer')).key });
    expect(active.body.items.map((n: { id: string }) => n.id)).toContain(posted.body.id);
    const forbidden = await api(r1.url, 'POST', '/api/v1/admin/notices', { key: (await key('editor')).key, body: { kind: 'system.alert', message: 'x' } });
    expect(forbidden.status).toBe(403);
  });

  it('lists live connections by transport, user and replica, and drops a principal’s sockets anywhere', async () => {
    const { key: k, id } = await key('viewer', 'listed');
    const a = await open(r1, { token: k, reconnection: true });
    const b = await open(r2, { token: k, reconnection: true });
    await sleep(300);
    const listing = await waitFor(
      async () => {
        const res = await api(r1.url, 'GET', '/api/v1/admin/connections', { key: cluster.adminKey });
        const row = res.body.users?.find((u: { userId: string }) => u.userId === id);
        return row?.socketio === 2 ? res.body : false;
      },
      6000,
      'both sockets listed',
    );
    expect(listing.replicas.length).toBeGreaterThanOrEqual(2);
    expect(listing.users.find((u: { userId: string }) => u.userId === id)).toMatchObject({ name: 'listed', kind: 'api_key', socketio: 2 });
    const dropped = await api(r2.url, 'POST', '/api/v1/admin/connections/disconnect', { key: cluster.adminKey, body: { userId: id } });
    expect(dropped.status).toBe(202);
    await waitFor(() => a.closing.length > 0 && b.closing.length > 0, 3000, 'both sockets dropped');
    expect(a.closing[0]).toEqual({ reason: 'disconnected by an admin', reconnect: true });
    // A transport close, not "io server disconnect": the client reconnects by itself.
    await waitFor(() => a.socket.connected && b.socket.connected, 10_000, 'automatic reconnection');
  });

  it('tells everyone who is online across replicas, and heals when a replica is killed', async () => {
    const r3 = await cluster.start('io3');
    await api(r1.url, 'POST', '/api/v1/users', { key: cluster.adminKey, body: { username: 'present', password: 'another long password', role: 'viewer' } });
    const login = await api(r1.url, 'POST', '/api/v1/auth/login', { body: { username: 'present', password: 'another long password' } });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    const observer = await open(r1, { token: cluster.adminKey });
    const tab1 = await open(r3, { headers: { cookie, origin: r3.url } });
    const tab2 = await open(r3, { headers: { cookie, origin: r3.url } });
    expect([tab1.error, tab2.error]).toEqual([undefined, undefined]);
    await waitFor(() => observer.joined.some((p) => p.user.name === 'present' && p.user.tabs === 2), 5000, 'present with two tabs');
    r3.process.kill('SIGKILL');
    await r3.exited;
    await waitFor(() => observer.left.some((p) => p.user.name === 'present' && p.user.tabs === 0), 15_000, 'present gone after its replica died');
  });
});
