import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { FaultProxy } from './fault-proxy.js';
import { sleep, waitFor } from './timing.js';

const redisUrl = () => process.env.TEST_REDIS_URL!;

/** An echo server that counts what it sees. */
async function echoServer() {
  const stats = { connections: 0, bytes: 0, ends: 0, sockets: new Set<net.Socket>() };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    stats.connections++;
    stats.sockets.add(socket);
    socket.on('data', (d) => {
      stats.bytes += d.length;
      socket.write(d);
    });
    socket.on('end', () => {
      stats.ends++;
      socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => stats.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of stats.sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A client connection that collects what it receives and how it ended. */
function connect(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const state = { received: Buffer.alloc(0), connected: false, ended: false, closed: false, error: undefined as string | undefined };
  socket.on('connect', () => (state.connected = true));
  socket.on('data', (d: Buffer) => (state.received = Buffer.concat([state.received, d])));
  socket.on('end', () => (state.ended = true));
  socket.on('error', (e: NodeJS.ErrnoException) => (state.error = e.code ?? e.message));
  socket.on('close', () => (state.closed = true));
  return { socket, state };
}

describe('FaultProxy (against a real echo server)', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let proxy: FaultProxy;
  const sockets: net.Socket[] = [];
  const open = (port = proxy.port) => {
    const c = connect(port);
    sockets.push(c.socket);
    return c;
  };

  beforeEach(async () => {
    echo = await echoServer();
    proxy = await FaultProxy.start('127.0.0.1', echo.port);
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await proxy.close();
    await echo.close();
  });

  it('forwards bytes both ways, intact, with backpressure', async () => {
    const c = open();
    const payload = randomBytes(4 * 1024 * 1024);
    c.socket.write(payload);
    await waitFor(() => c.state.received.length >= payload.length, 10_000, 'the echo');
    expect(c.state.received.equals(payload)).toBe(true);
    expect(proxy.bytesToUpstream).toBe(payload.length);
    expect(proxy.bytesToClient).toBe(payload.length);
    expect(proxy.connections).toBe(1);
  });

  it('forwards a FIN as a FIN (half-close) and forgets closed connections', async () => {
    const c = open();
    c.socket.write('last words');
    c.socket.end();
    await waitFor(() => c.state.closed, 5000, 'close');
    expect(c.state.received.toString()).toBe('last words');
    expect(c.state.error).toBeUndefined();
    expect(echo.stats.ends).toBe(1);
    await waitFor(() => proxy.connections === 0, 2000, 'the proxy to forget the connection');
  });

  it('cut(): drops every connection at once and resets new ones until restore()', async () => {
    const a = open();
    const b = open();
    a.socket.write('x');
    b.socket.write('y');
    await waitFor(() => a.state.received.length === 1 && b.state.received.length === 1, 5000, 'echoes');
    proxy.cut();
    expect(proxy.state).toBe('cut');
    await waitFor(() => a.state.closed && b.state.closed, 5000, 'both connections to drop');
    expect(a.state.error).toBe('ECONNRESET');
    await waitFor(() => echo.stats.sockets.size === 0, 5000, 'upstream connections to drop');

    const refused = open();
    await waitFor(() => refused.state.closed, 5000, 'the new connection to be reset');
    expect(refused.state.received.length).toBe(0);
    expect(proxy.refused).toBeGreaterThanOrEqual(1);
    expect(echo.stats.connections).toBe(2);

    proxy.restore();
    const after = open();
    after.socket.write('back');
    await waitFor(() => after.state.received.toString() === 'back', 5000, 'echo after restore');
    expect(echo.stats.connections).toBe(3);
  });

  it('stall(): keeps connections open, forwards nothing either way, then restore() delivers what was held', async () => {
    const c = open();
    c.socket.write('before');
    await waitFor(() => c.state.received.toString() === 'before', 5000, 'echo before the stall');
    proxy.stall();
    expect(proxy.state).toBe('stalled');
    const bytesAtStall = echo.stats.bytes;
    c.socket.write('during');
    // A new connection is accepted (the kernel completes the handshake) but goes nowhere.
    const late = open();
    late.socket.write('late');
    await sleep(400);
    expect(echo.stats.bytes).toBe(bytesAtStall);
    expect(c.state.received.toString()).toBe('before');
    expect(c.state.closed).toBe(false);
    expect(late.state.connected).toBe(true);
    expect(echo.stats.connections).toBe(1);

    // Bytes from the server side are held too.
    const serverSide = [...echo.stats.sockets][0];
    serverSide.write('push');
    await sleep(200);
    expect(c.state.received.toString()).toBe('before');

    proxy.restore();
    await waitFor(() => c.state.received.toString().length === 'beforeduringpush'.length, 5000, 'held bytes');
    expect(['beforepushduring', 'beforeduringpush']).toContain(c.state.received.toString());
    await waitFor(() => late.state.received.toString() === 'late', 5000, 'the late connection to go through');
    expect(echo.stats.connections).toBe(2);
  });

  it('stall(): a FIN or a reset sent during the stall is held back (half-open), then forwarded', async () => {
    const c = open();
    c.socket.write('hi');
    await waitFor(() => c.state.received.length === 2, 5000, 'echo');
    proxy.stall();
    c.socket.end();
    await sleep(300);
    expect(echo.stats.ends).toBe(0);
    expect(c.state.ended).toBe(false);
    proxy.restore();
    await waitFor(() => echo.stats.ends === 1 && c.state.closed, 5000, 'the FIN to go through and back');

    const d = open();
    d.socket.write('yo');
    await waitFor(() => d.state.received.length === 2, 5000, 'echo');
    proxy.stall();
    d.socket.resetAndDestroy();
    await sleep(300);
    expect(echo.stats.sockets.size).toBe(1);
    proxy.restore();
    await waitFor(() => echo.stats.sockets.size === 0, 5000, 'the upstream side to close after restore');
  });

  it('closes the client side when the target refuses the connection', async () => {
    await echo.close();
    const c = open();
    await waitFor(() => c.state.closed, 5000, 'the client connection to close');
    expect(c.state.error).toBe('ECONNRESET');
    expect(c.state.received.length).toBe(0);
    echo = await echoServer(); // for afterEach
  });

  it('close(): stops listening', async () => {
    const port = proxy.port;
    await proxy.close();
    const c = open(port);
    await waitFor(() => c.state.closed, 5000, 'the refused connection');
    expect(c.state.error).toBe('ECONNREFUSED');
    proxy = await FaultProxy.start('127.0.0.1', echo.port); // for afterEach
  });

  it('between ioredis and a real redis-server: cut and restore, the client reconnects', async () => {
    const target = new URL(redisUrl());
    const redisProxy = await FaultProxy.start('127.0.0.1', Number(target.port));
    const redis = new Redis({ host: '127.0.0.1', port: redisProxy.port, retryStrategy: () => 50, maxRetriesPerRequest: null });
    const closes: number[] = [];
    redis.on('close', () => closes.push(Date.now()));
    redis.on('error', () => undefined);
    try {
      expect(await redis.ping()).toBe('PONG');
      redisProxy.cut();
      await waitFor(() => closes.length >= 1, 5000, 'ioredis to notice the cut');
      const pending = redis.ping();
      await sleep(300);
      redisProxy.restore();
      expect(await pending).toBe('PONG');
      redisProxy.stall();
      const stalled = redis.ping();
      const outcome = await Promise.race([stalled.then(() => 'answered'), sleep(400).then(() => 'waiting')]);
      expect(outcome).toBe('waiting');
      redisProxy.restore();
      expect(await stalled).toBe('PONG');
    } finally {
      redis.disconnect();
      await redisProxy.close();
    }
  });
});
