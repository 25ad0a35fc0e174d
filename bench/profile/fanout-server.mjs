// A bare Node SSE fan-out server with a choice of flush strategy, to measure
// what a strategy change in the hub would give before making it
// (bench/profile/flush-strategies.mjs). Same wire format as the service and
// bench/raw-server.mjs; no framework, database or bus.
//
//   PORT=0 STRATEGY=per-event|coalesce|rolling node bench/profile/fanout-server.mjs
//
// - per-event: every published event is written to every socket at once (nchan, raw-server.mjs).
// - coalesce: the service's hub today (src/streaming/stream.hub.ts): an event
//   that finds the hub idle is flushed at once; while the last flush ended
//   less than its own duration (capped at 10 ms) ago, events wait for the next
//   flush; a flush writes one chunk with every pending event to every socket,
//   in one synchronous loop.
// - rolling: one write per socket per pass as well, but the pass is cut in
//   slices of SLICE_MS, with the event loop free between slices, and each
//   socket gets everything newer than its own cursor when its turn comes: an
//   event published mid-pass reaches the sockets not yet visited in that same
//   pass, and the others in the next one, so it waits at most one pass.
//
//   GET /sub          subscribe
//   POST /pub         publish the body as one event (its JSON carries "bt")
//   GET /stats        {"flushes", "writes", "passes"}
import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const STRATEGY = process.env.STRATEGY ?? 'coalesce';
const SLICE_MS = Number(process.env.SLICE_MS ?? 5);
const MAX_COALESCE_MS = 10;
const CRLF = Buffer.from('\r\n');
const HEAD = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n' +
    'Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n',
  'latin1',
);

const subs = []; // { socket, cursor, closed }
const frames = []; // frames[seq - 1]
let seq = 0;
const stats = { flushes: 0, writes: 0, passes: 0, durations: [] }; // durations: ms per flush (per-event, coalesce) or per pass (rolling)

function chunkOf(list) {
  let size = 0;
  for (const f of list) size += f.length;
  const head = Buffer.from(`${size.toString(16)}\r\n`, 'latin1');
  return Buffer.concat([head, ...list, CRLF]);
}

function writeTo(sub, chunk) {
  if (sub.closed) return;
  sub.socket.write(chunk);
  stats.writes++;
}

// ---- per-event -------------------------------------------------------------------------
function perEvent() {
  const start = performance.now();
  const chunk = chunkOf([frames[seq - 1]]);
  for (const sub of subs) {
    writeTo(sub, chunk);
    sub.cursor = seq;
  }
  stats.flushes++;
  stats.durations.push(performance.now() - start);
}

// ---- coalesce (the hub today) ------------------------------------------------------------
let pending = [];
let queued = false;
let lastEnd = -Infinity;
let lastMs = 0;
function coalesce() {
  pending.push(frames[seq - 1]);
  if (queued) return;
  const wait = lastEnd + Math.min(lastMs, MAX_COALESCE_MS) - performance.now();
  if (wait <= 0) flushAll();
  else {
    queued = true;
    setTimeout(() => {
      queued = false;
      flushAll();
    }, wait);
  }
}
function flushAll() {
  if (pending.length === 0) return;
  const chunk = chunkOf(pending);
  pending = [];
  const start = performance.now();
  for (const sub of subs) {
    writeTo(sub, chunk);
    sub.cursor = seq;
  }
  stats.flushes++;
  lastEnd = performance.now();
  lastMs = lastEnd - start;
  stats.durations.push(lastMs);
}

// ---- rolling -------------------------------------------------------------------------------
let at = 0; // next socket index of the pass
let running = false;
let clean = 0; // sockets visited in a row that were already up to date
let passStart = 0;
function rolling() {
  if (running) return;
  running = true;
  setImmediate(slice);
}
function slice() {
  const until = performance.now() + SLICE_MS;
  const cache = new Map(); // cursor -> chunk, for this slice
  let n = 0;
  while (clean < subs.length) {
    if (at >= subs.length) {
      at = 0;
      stats.passes++;
      if (passStart) stats.durations.push(performance.now() - passStart);
      passStart = performance.now();
    }
    const sub = subs[at++];
    if (sub.cursor >= seq) {
      clean++;
    } else {
      clean = 0;
      let chunk = cache.get(sub.cursor);
      if (!chunk) {
        chunk = chunkOf(frames.slice(sub.cursor, seq));
        cache.set(sub.cursor, chunk);
      }
      writeTo(sub, chunk);
      sub.cursor = seq;
    }
    if ((++n & 63) === 0 && performance.now() > until) {
      setImmediate(slice);
      return;
    }
  }
  stats.flushes++;
  running = false;
  passStart = 0;
}
function publishedRolling() {
  clean = 0;
  rolling();
}

const onPublish = { 'per-event': perEvent, coalesce, rolling: publishedRolling }[STRATEGY];
if (!onPublish) throw new Error(`unknown STRATEGY ${STRATEGY}`);

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/sub')) {
    const socket = req.socket;
    socket.setNoDelay(true);
    socket.write(HEAD);
    const sub = { socket, cursor: seq, closed: false };
    subs.push(sub);
    socket.on('close', () => {
      sub.closed = true;
      const i = subs.indexOf(sub);
      if (i !== -1) subs.splice(i, 1);
    });
    return;
  }
  if (req.method === 'POST' && req.url.startsWith('/pub')) {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      seq++;
      frames.push(Buffer.from(`id: ${seq}\nevent: agent.updated\ndata: ${Buffer.concat(parts).toString()}\n\n`));
      onPublish();
      res.writeHead(202, { 'content-type': 'text/plain' }).end(String(seq));
    });
    return;
  }
  if (req.url === '/stats') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
  res.writeHead(404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log(`fan-out server (${STRATEGY}) on ${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`));
