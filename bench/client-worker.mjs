// Load client worker (a child process driven over IPC by bench/lib/clients.mjs).
//
// It must stay lighter than what it measures: raw sockets (node:net), a
// hand-written request, and per read only a byte scan for "\n\n" to count SSE
// frames. Only "sampled" connections (every Nth) decode their frames, taking
// the `id:` and the publisher's timestamp `"bt":` of each with the time it
// arrived, for the latency figures.
//
// Transports: 'sse' (this service, nchan, the raw Node server). A Socket.IO
// transport (a later issue) plugs in as another `protocol` with its own
// handshake and frame counter; everything else (IPC, stats, samples) is shared.
import net from 'node:net';

const NN = Buffer.from('\n\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const now = () => performance.timeOrigin + performance.now();

let frames = 0;
let bytes = 0;
let reads = 0;
let closedAfterOpen = 0;
const conns = new Set();
// Samples of sampled connections: parallel arrays (recv time ms, bt ms or -1, id string).
let sRecv = [];
let sBt = [];
let sId = [];
let sTarget = [];

function parseSampled(conn, buf) {
  const t = now();
  const text = conn.carry + buf.toString('latin1');
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n\n', start);
    if (end === -1) break;
    const frame = text.slice(start, end);
    start = end + 2;
    const i = frame.indexOf('id: ');
    if (i === -1) continue;
    const nl = frame.indexOf('\n', i);
    const id = frame.slice(i + 4, nl === -1 ? frame.length : nl);
    const b = frame.indexOf('"bt":');
    sRecv.push(t);
    sBt.push(b === -1 ? -1 : parseFloat(frame.slice(b + 5, b + 30)));
    sId.push(id);
    sTarget.push(conn.target);
    conn.events++;
  }
  conn.carry = text.slice(start);
}

/** Counts SSE frames in a body slice: occurrences of "\n\n" (one may straddle two reads). */
function countFrames(conn, buf, from) {
  let n = 0;
  if (conn.lastNl && buf[from] === 10) n++;
  let i = buf.indexOf(NN, from);
  while (i !== -1) {
    n++;
    i = buf.indexOf(NN, i + 2);
  }
  conn.lastNl = buf[buf.length - 1] === 10;
  return n;
}

function onBody(conn, buf, from) {
  reads++;
  bytes += buf.length - from;
  frames += countFrames(conn, buf, from);
  if (conn.sampled) parseSampled(conn, from === 0 ? buf : buf.subarray(from));
}

function requestBytes(target) {
  let head = `GET ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nAccept: text/event-stream\r\n`;
  for (const [k, v] of Object.entries(target.headers ?? {})) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** Opens one SSE connection; resolves 'ok' once a 200 head arrived, else an error string. */
function openOne(target, request, sampled, localAddress, timeoutMs, targetIndex) {
  return new Promise((resolve) => {
    const conn = { socket: null, sampled, target: targetIndex, carry: '', lastNl: false, head: null, events: 0, open: false };
    let settled = false;
    const settle = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    // `onread` hands every read to us in one shared buffer, without the stream
    // machinery ('data' events, a Buffer per read): the cheapest read Node has.
    const socket = net.connect({
      port: target.port,
      host: '127.0.0.1',
      localAddress,
      onread: { buffer: READ_BUFFER, callback: (n, buf) => onRead(buf.subarray(0, n)) },
    });
    conn.socket = socket;
    const timer = setTimeout(() => {
      socket.destroy();
      settle('timeout');
    }, timeoutMs);
    socket.on('connect', () => socket.write(request));
    const onRead = (buf) => {
      if (conn.open) return onBody(conn, buf, 0);
      conn.head = conn.head ? Buffer.concat([conn.head, buf]) : Buffer.from(buf);
      const end = conn.head.indexOf(HEAD_END);
      if (end === -1) {
        if (conn.head.length > 16_384) socket.destroy();
        return;
      }
      const status = conn.head.toString('latin1', 9, 12);
      if (status !== '200') {
        socket.destroy();
        settle(`status ${status}`);
        return;
      }
      const rest = conn.head;
      conn.head = null;
      conn.open = true;
      conns.add(conn);
      if (rest.length > end + 4) onBody(conn, rest, end + 4);
      settle('ok');
    };
    socket.on('error', (e) => settle(e.code ?? e.message));
    socket.on('close', () => {
      if (conn.open) {
        conn.open = false;
        closedAfterOpen++;
        conns.delete(conn);
      }
      settle('closed');
    });
  });
}

async function open({ targets, count, offset = 0, sampleEvery = 0, concurrency = 200, localAddress, timeoutMs = 60_000 }) {
  const requests = targets.map(requestBytes);
  const results = new Map();
  let next = 0;
  const runOne = async () => {
    while (next < count) {
      const i = next++;
      const g = offset + i; // global connection index: picks the target and whether it is sampled
      const t = g % targets.length;
      const sampled = sampleEvery > 0 && g % sampleEvery === 0;
      const r = await openOne(targets[t], requests[t], sampled, localAddress, timeoutMs, t);
      results.set(r, (results.get(r) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, runOne));
  return { opened: results.get('ok') ?? 0, results: Object.fromEntries(results) };
}

/** One resuming client, every frame decoded: time to receive `expect` events. */
function replay({ target, expect, timeoutMs = 60_000, localAddress }) {
  return new Promise((resolve) => {
    const socket = net.connect({ port: target.port, host: '127.0.0.1', localAddress });
    const r = { tSent: 0, tHead: 0, tFirst: 0, tLast: 0, events: 0, firstId: null, lastId: null, status: null };
    let head = null;
    let carry = '';
    const done = (why) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...r, end: why });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.on('connect', () => {
      r.tSent = now();
      socket.write(requestBytes(target));
    });
    const body = (text) => {
      text = carry + text;
      let start = 0;
      for (;;) {
        const end = text.indexOf('\n\n', start);
        if (end === -1) break;
        const frame = text.slice(start, end);
        start = end + 2;
        const i = frame.indexOf('id: ');
        if (i === -1 || frame.includes('event: reset')) continue;
        const nl = frame.indexOf('\n', i);
        const id = frame.slice(i + 4, nl === -1 ? frame.length : nl);
        if (r.events === 0) {
          r.tFirst = now();
          r.firstId = id;
        }
        r.events++;
        r.lastId = id;
        if (r.events >= expect) {
          r.tLast = now();
          return done('ok');
        }
      }
      carry = text.slice(start);
    };
    socket.on('data', (buf) => {
      if (head !== 'done') {
        head = head ? Buffer.concat([head, buf]) : buf;
        const end = head.indexOf(HEAD_END);
        if (end === -1) return;
        r.status = head.toString('latin1', 9, 12);
        r.tHead = now();
        const rest = head.subarray(end + 4).toString('latin1');
        head = 'done';
        if (r.status !== '200') return done(`status ${r.status}`);
        return body(rest);
      }
      body(buf.toString('latin1'));
    });
    socket.on('error', (e) => done(e.code ?? e.message));
    socket.on('close', () => done('closed'));
  });
}

function closeAll() {
  for (const c of conns) {
    c.open = false;
    c.socket.destroy();
  }
  conns.clear();
}

process.on('message', async (msg) => {
  let reply;
  switch (msg.op) {
    case 'open':
      reply = await open(msg);
      break;
    case 'stats':
      reply = { frames, bytes, reads, open: conns.size, closedAfterOpen };
      break;
    case 'samples':
      reply = { recv: sRecv, bt: sBt, id: sId, target: sTarget };
      sRecv = [];
      sBt = [];
      sId = [];
      sTarget = [];
      break;
    case 'close':
      closeAll();
      reply = { open: conns.size };
      break;
    case 'replay':
      reply = await replay(msg);
      break;
    case 'exit':
      closeAll();
      process.send({ reqId: msg.reqId }, () => process.exit(0));
      return;
    default:
      reply = { error: `unknown op ${msg.op}` };
  }
  process.send({ reqId: msg.reqId, ...reply });
});
process.on('disconnect', () => process.exit(0));
