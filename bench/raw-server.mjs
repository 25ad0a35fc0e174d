// Node's floor: a minimal `node:http` SSE server. Each published event is
// serialized once into one HTTP/1.1 chunk (the same wire format as the
// service) and written to every subscriber's socket with one socket.write of
// that shared Buffer. No framework, no auth, no database: what any Node SSE
// fan-out costs at least, per write and per connection.
//
//   GET  /sub[?last=N]   subscribe (replays the kept events with id > N first)
//   POST /pub[?n=K]      publish the body as K events (K > 1 only to fill the replay store)
import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const CRLF = Buffer.from('\r\n');
const HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n' +
    'Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n',
  'latin1',
);
const REPLAY_KEEP = 50_000;

const subscribers = new Set();
const kept = []; // pre-encoded chunks, oldest first
let seq = 0;

function encode(id, body) {
  const frame = Buffer.from(`id: ${id}\nevent: agent.updated\ndata: ${body}\n\n`);
  return Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, CRLF]);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/sub') {
    const socket = req.socket;
    socket.setNoDelay(true);
    socket.write(HEAD);
    const last = url.searchParams.get('last');
    if (last !== null) {
      const from = Math.max(0, kept.length - (seq - Number(last)));
      socket.cork();
      for (let i = from; i < kept.length; i++) socket.write(kept[i]);
      socket.uncork();
    }
    subscribers.add(socket);
    socket.on('close', () => subscribers.delete(socket));
    return;
  }
  if (req.method === 'POST' && url.pathname === '/pub') {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = Buffer.concat(parts).toString();
      const n = Number(url.searchParams.get('n') ?? 1);
      for (let k = 0; k < n; k++) {
        const buf = encode(++seq, body);
        kept.push(buf);
        if (n === 1) for (const s of subscribers) s.write(buf);
      }
      if (kept.length > REPLAY_KEEP) kept.splice(0, kept.length - REPLAY_KEEP);
      res.writeHead(202, { 'content-type': 'text/plain' }).end(String(seq));
    });
    return;
  }
  res.writeHead(404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log(`raw SSE server on ${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`));
