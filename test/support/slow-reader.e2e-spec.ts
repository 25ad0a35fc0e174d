import http from 'node:http';
import type net from 'node:net';
import { SlowReader } from './slow-reader.js';
import { sleep, waitFor } from './timing.js';

/**
 * A tiny SSE server: each request gets events `from+1 ...` (from = Last-Event-ID
 * or 0), as fast as the socket takes them, up to `total`; `drop()` ends every
 * open stream. Records each response so tests can look at its backlog.
 */
async function sseServer(total: number) {
  const responses: { res: http.ServerResponse; lastEventId?: string; socket: net.Socket; written: number }[] = [];
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== 'Bearer k') {
      res.writeHead(401).end();
      return;
    }
    const lastEventId = req.headers['last-event-id'] as string | undefined;
    const entry = { res, lastEventId, socket: req.socket, written: 0 };
    responses.push(entry);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('retry: 100\n\n');
    let next = Number(lastEventId ?? 0) + 1;
    const pad = 'x'.repeat(200);
    const pump = () => {
      while (next <= total) {
        const frame = `id: ${next}\nevent: agent.updated\ndata: {"seq":${next},"pad":"${pad}"}\n\n`;
        const ok = res.write(frame);
        entry.written += frame.length;
        next++;
        if (!ok) return void res.once('drain', pump);
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    responses,
    drop: () => {
      for (const r of responses) r.res.end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of responses) r.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('SlowReader (raw-socket SSE client)', () => {
  const readers: SlowReader[] = [];
  const start = (port: number, extra: Partial<ConstructorParameters<typeof SlowReader>[0]> = {}) => {
    const r = SlowReader.start({ targets: [{ host: '127.0.0.1', port }], path: '/stream', headers: { authorization: 'Bearer k' }, ...extra });
    readers.push(r);
    return r;
  };
  afterEach(() => {
    for (const r of readers.splice(0)) r.close();
  });

  it('parses chunked SSE frames in order and resumes with Last-Event-ID when the stream ends', async () => {
    const server = await sseServer(50);
    try {
      const r = start(server.port);
      await r.waitFor((x) => x.events.length === 50, 5000, '50 events');
      expect(r.retryMs).toBe(100);
      server.drop();
      await waitFor(() => server.responses.length === 2, 5000, 'the reconnection');
      expect(server.responses[1].lastEventId).toBe('50');
      expect(r.events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      // The server has the request before the reader has the answer's status line.
      await r.waitFor((x) => x.statuses.length === 2, 5000, 'the second answer');
      expect(r.statuses).toEqual([200, 200]);
    } finally {
      await server.close();
    }
  });

  it('stop(): reads nothing, so the sender backs up; then slow() and normal() catch up', async () => {
    const total = 40_000; // ~10 MB: more than loopback kernel buffers hold
    const server = await sseServer(total);
    try {
      const r = start(server.port);
      r.stop();
      await sleep(500);
      const sender = server.responses[0];
      // The kernel buffers took what they could (megabytes on loopback) and the server is blocked.
      const written = sender.written;
      expect(written).toBeLessThan(total * 250);
      await sleep(200);
      expect(sender.written - written).toBeLessThan(100_000);
      expect(r.bodyBytes).toBeLessThan(64 * 1024);
      const before = r.bodyBytes;
      r.slow(16 * 1024, 50);
      await sleep(500);
      const rate = (r.bodyBytes - before) / 0.5;
      expect(rate).toBeGreaterThan(50 * 1024);
      expect(rate).toBeLessThan(16 * 1024 * 20 * 1.5);
      r.normal();
      await r.waitFor((x) => x.events.length === total, 20_000, 'every event');
      expect(r.events.every((e, i) => e.seq === i + 1)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('records a non-200 answer and tries again, taking the next target', async () => {
    const server = await sseServer(3);
    try {
      const r = start(server.port, { headers: { authorization: 'Bearer wrong' }, retryMs: 50 });
      await waitFor(() => r.statuses.length >= 2, 5000, 'two attempts');
      expect(r.statuses.slice(0, 2)).toEqual([401, 401]);
      r.close();
      const refused = start(1, { retryMs: 50 });
      await waitFor(() => refused.statuses.length >= 1, 5000, 'a failed attempt');
      expect(refused.statuses[0]).toBe(0);
      const two = SlowReader.start({
        targets: [
          { host: '127.0.0.1', port: 1 },
          { host: '127.0.0.1', port: server.port },
        ],
        path: '/s',
        headers: { authorization: 'Bearer k' },
        retryMs: 50,
      });
      readers.push(two);
      await two.waitFor((x) => x.events.length === 3, 5000, 'events from the second target');
      expect(two.statuses).toEqual([0, 200]);
    } finally {
      await server.close();
    }
  });
});
