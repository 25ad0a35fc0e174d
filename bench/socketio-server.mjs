// Plain socket.io 4 with @socket.io/redis-adapter: the Socket.IO baseline of
// the bench (W9, W10). Two processes on one Redis, as a socket.io cluster is
// deployed: the publishing node takes `POST /pub?room=R` (the service's event
// JSON) and broadcasts `io.to(R).emit('event', event)`; the adapter carries it
// over Redis to the measured node, which writes it to its clients in room R
// (one encode per broadcast, as socket.io does). A client joins the room named
// in its handshake query (`?room=R`) on connection. Nothing else: no auth, no
// filters, no resume, the defaults of socket.io (the handshake request is kept).
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT);
const pubClient = new Redis(process.env.REDIS_URL);
const subClient = pubClient.duplicate();

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url.startsWith('/pub')) {
    const room = new URL(req.url, 'http://x').searchParams.get('room') ?? 'bench';
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      io.to(room).emit('event', JSON.parse(Buffer.concat(parts).toString()));
      res.writeHead(204).end();
    });
    return;
  }
  if (req.url === '/ready') return res.writeHead(200).end('ok');
  res.writeHead(404).end();
});

const io = new Server(server, { serveClient: false, adapter: createAdapter(pubClient, subClient) });
io.on('connection', (socket) => {
  const room = socket.handshake.query.room;
  if (typeof room === 'string') socket.join(room);
});

await Promise.all([pubClient.ping(), subClient.ping()]);
server.listen(port, '127.0.0.1');
for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    io.close();
    pubClient.disconnect();
    subClient.disconnect();
    process.exit(0);
  });
