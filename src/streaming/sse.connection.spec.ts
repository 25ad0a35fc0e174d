import http from 'node:http';
import net from 'node:net';
import { EventFilter } from './event-filter.js';
import { toHubEvent } from './event-window.js';
import { CLOSE_TIMEOUT_MS, encodeSse, SseConnection, type SseOwner } from './sse.connection.js';

/** A bare HTTP server whose every request becomes an SseConnection (as the service does after hijacking). */
async function serve(onConn: (conn: SseConnection, socket: net.Socket) => void) {
  const server = http.createServer((req) => {
    const conn = new SseConnection(req.socket, EventFilter.parse(undefined, 'admin'), 1 << 20, owner, 'user-1');
    conn.open({ requestId: 'r1', retryMs: 1000 });
    onConn(conn, req.socket);
  });
  const closed: string[] = [];
  const owner: SseOwner = { connectionClosed: (_c, reason) => closed.push(reason) };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { server, port, closed };
}

function client(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d) => (text += d.toString()));
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  const until = async (predicate: (t: string) => boolean) => {
    for (let i = 0; i < 200 && !predicate(text); i++) await new Promise((r) => setTimeout(r, 10));
    return text;
  };
  return { socket, until, ended: new Promise<void>((r) => socket.on('close', () => r())) };
}

describe('SseConnection', () => {
  it('holdUntilClose(): the frames written before close() and the end of the response leave in one system call', async () => {
    let writes = 0;
    let held = -1;
    const { server, port } = await serve((conn, socket) => {
      // Counted at the socket's own write paths (one call each is one write/writev system call on a TCP socket).
      const s = socket as net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
      const write = s._write.bind(s);
      const writev = s._writev.bind(s);
      s._write = (...a: unknown[]) => (writes++, write(...a));
      s._writev = (...a: unknown[]) => (writes++, writev(...a));
      setTimeout(() => {
        conn.holdUntilClose();
        for (const f of ['event: result\ndata: 1\n\n', 'event: complete\ndata: 2\n\n', 'data: 3\n\n', 'data: [DONE]\n\n']) conn.writeFrame(f);
        held = writes;
        conn.close('complete');
      }, 50);
    });
    try {
      const c = client(port);
      await c.ended;
      const text = await c.until((t) => t.endsWith('0\r\n\r\n'));
      expect(text.indexOf('data: 1')).toBeLessThan(text.indexOf('data: 2'));
      expect(text.indexOf('data: 3')).toBeLessThan(text.indexOf('data: [DONE]'));
      expect(text).toMatch(/data: \[DONE\]\n\n\r\n0\r\n\r\n$/);
      expect([held, writes]).toEqual([0, 1]);
    } finally {
      server.close();
    }
  });

  it('releases the HTTP server state of its socket and still sees the client leave', async () => {
    let socket!: net.Socket;
    let conn!: SseConnection;
    const { server, port, closed } = await serve((c, s) => {
      conn = c;
      socket = s;
    });
    try {
      const c = client(port);
      await c.until((t) => t.includes('retry: 1000'));
      const s = socket as net.Socket & { parser?: unknown; _httpMessage?: unknown };
      expect(s.parser).toBeNull();
      expect(s._httpMessage).toBeNull();
      expect(socket.listenerCount('data')).toBe(0);

      const event = toHubEvent({ seq: 7, type: 'agent.updated', resource: 'agent', json: '{"seq":7}' });
      conn.write(encodeSse([event]));
      const text = await c.until((t) => t.includes('id: 7'));
      expect(text).toMatch(/^HTTP\/1.1 200 OK\r\n/);
      expect(text).toContain('Transfer-Encoding: chunked');
      expect(text).toContain('id: 7\nevent: agent.updated\ndata: {"seq":7}\n\n');

      c.socket.end();
      await c.ended;
      for (let i = 0; i < 100 && closed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(closed).toEqual(['client closed']);
      expect(conn.closed).toBe(true);
    } finally {
      server.close();
    }
  });

  it('ends the stream with a retry hint and the last chunk, then closes the socket', async () => {
    let conn!: SseConnection;
    const { server, port, closed } = await serve((c) => (conn = c));
    try {
      const c = client(port);
      await c.until((t) => t.includes('retry: 1000'));
      conn.close('draining', 250);
      await c.ended; // closed by the server without waiting on the client
      const text = await c.until((t) => t.endsWith('0\r\n\r\n'));
      expect(text).toContain('retry: 250\n\n');
      expect(text.endsWith('0\r\n\r\n')).toBe(true);
      expect(closed).toEqual(['draining']);
    } finally {
      server.close();
    }
  });
});

/** `count` events of about `size` bytes each, as the window or a shared outbox read holds them. */
function page(count: number, size = 300) {
  const pad = 'x'.repeat(size);
  return Array.from({ length: count }, (_, i) => toHubEvent({ seq: i + 1, type: 'agent.updated', resource: 'agent', json: `{"seq":${i + 1},"p":"${pad}"}` }));
}

/** A client that sends its request and does not read until told to. */
function pausedClient(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.pause();
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  let bytes = 0;
  const read = () => {
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.resume();
  };
  return { socket, read, bytes: () => bytes, ended: new Promise<void>((r) => socket.on('close', () => r())) };
}

/**
 * Runs `run` against a connection whose client does not read until told to
 * (`client.read()`): the server side's SseConnection and socket, and the close
 * reasons its owner got. `onConn` runs as the connection is made (in that tick).
 * The client and the server are closed afterwards, whatever happened.
 */
async function withPausedClient(
  run: (p: { conn: SseConnection; socket: net.Socket; closed: string[]; client: ReturnType<typeof pausedClient> }) => Promise<void>,
  onConn?: (conn: SseConnection) => void,
): Promise<void> {
  let conn: SseConnection | undefined;
  let socket!: net.Socket;
  const { server, port, closed } = await serve((c, s) => {
    conn = c;
    socket = s;
    onConn?.(c);
  });
  const client = pausedClient(port);
  try {
    for (let i = 0; i < 100 && !conn; i++) await new Promise((r) => setTimeout(r, 10));
    await run({ conn: conn!, socket, closed, client });
  } finally {
    client.socket.destroy();
    server.close();
  }
}

describe('SseConnection under back-pressure', () => {
  it('finishes a replay whose first page the kernel does not take at once (written before the socket is released)', async () => {
    let replay!: Promise<void>;
    // The handler writes a 3 MB page in the same tick as the connection is
    // made, as a resume served from the window does; the client reads later.
    const events = page(40_000); // ~13 MB: more than loopback's kernel buffers take
    await withPausedClient(
      async ({ client: c }) => {
        let done = false;
        void replay.then(() => (done = true));
        await new Promise((r) => setTimeout(r, 200)); // the socket is released meanwhile
        expect(done).toBe(false); // blocked on the client, as it should be
        c.read();
        for (let i = 0; i < 500 && !done; i++) await new Promise((r) => setTimeout(r, 10));
        expect(done).toBe(true);
        const total = events.reduce((n, e) => n + e.frame.length, 0);
        for (let i = 0; i < 200 && c.bytes() < total; i++) await new Promise((r) => setTimeout(r, 10));
        expect(c.bytes()).toBeGreaterThan(total);
      },
      (conn) => {
        replay = conn.writeReplay(events);
      },
    );
  });

  it('keeps at most one slice queued per connection during a replay, whatever the page size', async () => {
    await withPausedClient(async ({ conn, socket }) => {
      const events = page(40_000); // ~13 MB
      void conn.writeReplay(events);
      await new Promise((r) => setTimeout(r, 300));
      // 1 MiB bound: half of it at most per slice, plus what was queued before.
      expect(socket.writableLength).toBeGreaterThan(0);
      expect(socket.writableLength).toBeLessThanOrEqual(512 * 1024 + 1024);
    });
  });

  it('cuts a client that stopped reading as a slow consumer when frames (writeFrame) pile up past maxBufferBytes', async () => {
    await withPausedClient(async ({ conn, socket, closed }) => {
      const frame = `event: progress\ndata: ${'x'.repeat(100_000)}\n\n`;
      let most = 0;
      // 50 MB offered, more than loopback's kernel buffers and the 1 MiB bound take together.
      for (let i = 0; i < 500 && !conn.closed; i++) {
        conn.writeFrame(frame);
        most = Math.max(most, socket.writableLength);
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
      }
      expect(conn.closed).toBe(true);
      expect(socket.destroyed).toBe(true);
      expect(closed).toEqual(['slow consumer: send buffer full']);
      // The bound and one frame at most were ever queued.
      expect(most).toBeLessThanOrEqual((1 << 20) + frame.length + 64);
    });
  });

  it('closes a connection whose client stopped reading within the close timeout', async () => {
    await withPausedClient(async ({ conn, socket, closed }) => {
      void conn.writeReplay(page(40_000));
      await new Promise((r) => setTimeout(r, 200));
      expect(socket.writableLength).toBeGreaterThan(0); // kernel buffers are full
      const started = Date.now();
      conn.close('draining', 250);
      for (let i = 0; i < 400 && !socket.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
      expect(socket.destroyed).toBe(true);
      expect(Date.now() - started).toBeLessThan(CLOSE_TIMEOUT_MS + 500);
      expect(closed).toEqual(['draining']);
    });
  });
});
