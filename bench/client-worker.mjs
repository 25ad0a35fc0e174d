// Load client worker (a child process driven over IPC by bench/lib/clients.mjs).
//
// It must stay lighter than what it measures: raw sockets (node:net), a
// hand-written request, and per read only a byte scan for "\n\n" to count SSE
// frames. Only "sampled" connections (every Nth) decode their frames, taking
// the `id:` and the publisher's timestamp `"bt":` of each with the time it
// arrived, for the latency figures.
//
// Clients: 'raw' (the default: node:net sockets as above) or 'http' (W7: an
// ordinary `http.get` per connection with `agent: false`, keep-alive off, the
// body read from 'data' events as any Node SSE client would). Both count
// frames the same way.
//
// Besides subscribers, a worker runs the write load of W6 ('httpwrites':
// REST creations over keep-alive connections; 'pgwrites': the same
// transaction with `pg` directly, the floor) and the resume storm of W8
// ('resume': many connections opened at once, each counting its own frames).
//
// Transports: 'sse' (this service, nchan, the raw Node server) and, with
// client 'socketio' (W9, W10), Socket.IO through socket.io-client, the same
// client for this service and plain socket.io; IPC, stats and samples are shared.
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';

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
      onread: {
        buffer: READ_BUFFER,
        callback: (/** @type {number} */ n, /** @type {Buffer} */ buf) => {
          onRead(buf.subarray(0, n));
          return true;
        },
      },
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
    socket.on('error', (/** @type {NodeJS.ErrnoException} */ e) => settle(e.code ?? e.message));
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

/**
 * Opens one SSE connection the way an ordinary Node client does: `http.get`
 * with `agent: false` (a connection of its own, `Connection: close`), the
 * body from 'data' events (already de-chunked by Node's parser).
 */
function openOneHttp(target, sampled, localAddress, timeoutMs, targetIndex) {
  return new Promise((resolve) => {
    const conn = { socket: null, req: null, sampled, target: targetIndex, carry: '', lastNl: false, events: 0, open: false };
    let settled = false;
    const settle = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = http.get(
      {
        host: '127.0.0.1',
        port: target.port,
        path: target.path,
        localAddress,
        agent: false,
        headers: { accept: 'text/event-stream', ...(target.headers ?? {}) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          req.destroy();
          settle(`status ${res.statusCode}`);
          return;
        }
        conn.open = true;
        conns.add(conn);
        res.on('data', (buf) => onBody(conn, buf, 0));
        res.on('error', () => undefined);
        res.on('close', () => {
          if (conn.open) {
            conn.open = false;
            closedAfterOpen++;
            conns.delete(conn);
          }
        });
        settle('ok');
      },
    );
    conn.req = req;
    req.on('socket', (socket) => {
      conn.socket = socket;
    });
    const timer = setTimeout(() => {
      req.destroy();
      settle('timeout');
    }, timeoutMs);
    req.on('error', (/** @type {NodeJS.ErrnoException} */ e) => settle(e.code ?? e.message));
    req.on('close', () => settle('closed'));
  });
}

/**
 * Opens one Socket.IO connection with socket.io-client (W9, W10; the same client
 * for this service and plain socket.io): WebSocket transport only, no
 * reconnection. With `target.subscribe` it then subscribes (this service's
 * protocol) and is open once the ack says ok. Every `event` message counts as
 * a frame; sampled connections note its `seq` and the publisher's timestamp.
 */
let ioConnect;
async function openOneSocketIo(target, sampled, localAddress, timeoutMs, targetIndex) {
  ioConnect ??= (await import('socket.io-client')).io;
  return new Promise((resolve) => {
    const conn = { io: null, sampled, target: targetIndex, events: 0, open: false };
    let settled = false;
    const settle = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result !== 'ok') socket.disconnect();
      resolve(result);
    };
    const socket = ioConnect(`http://127.0.0.1:${target.port}`, {
      path: target.path,
      transports: ['websocket'],
      auth: target.auth,
      query: target.query,
      reconnection: false,
      forceNew: true,
      localAddress,
      timeout: timeoutMs,
    });
    conn.io = socket;
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    const ready = () => {
      conn.open = true;
      conns.add(conn);
      settle('ok');
    };
    socket.on('event', (e) => {
      frames++;
      if (!conn.sampled) return;
      sRecv.push(now());
      sBt.push(typeof e?.data?.bt === 'number' ? e.data.bt : -1);
      sId.push(String(e?.seq));
      sTarget.push(conn.target);
      conn.events++;
    });
    socket.on('connect', () => {
      if (!target.subscribe) return ready();
      socket.timeout(timeoutMs).emit('subscribe', target.subscribe, (err, ack) => {
        if (err) settle('subscribe timeout');
        else if (ack?.ok) ready();
        else settle(`subscribe ${ack?.error?.code ?? 'failed'}`);
      });
    });
    socket.on('connect_error', (e) => settle(e?.data?.code ?? e?.message ?? 'connect_error'));
    socket.on('disconnect', () => {
      if (conn.open) {
        conn.open = false;
        closedAfterOpen++;
        conns.delete(conn);
      }
      settle('closed');
    });
  });
}

async function open({ targets, count, offset = 0, sampleEvery = 0, concurrency = 200, localAddress, timeoutMs = 60_000, client = 'raw' }) {
  const requests = targets.map(requestBytes);
  const results = new Map();
  let next = 0;
  const runOne = async () => {
    while (next < count) {
      const i = next++;
      const g = offset + i; // global connection index: picks the target and whether it is sampled
      const t = g % targets.length;
      const sampled = sampleEvery > 0 && g % sampleEvery === 0;
      const r =
        client === 'http'
          ? await openOneHttp(targets[t], sampled, localAddress, timeoutMs, t)
          : client === 'socketio'
            ? await openOneSocketIo(targets[t], sampled, localAddress, timeoutMs, t)
            : await openOne(targets[t], requests[t], sampled, localAddress, timeoutMs, t);
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
    socket.on('error', (/** @type {NodeJS.ErrnoException} */ e) => done(e.code ?? e.message));
    socket.on('close', () => done('closed'));
  });
}

function closeAll() {
  for (const c of conns) {
    c.open = false;
    if (c.io) c.io.disconnect();
    else if (c.req) c.req.destroy();
    else c.socket.destroy();
  }
  conns.clear();
}

// ---- W8: a resume storm ------------------------------------------------------

/**
 * `count` connections to `target` opened at once (no concurrency limit), each
 * counting its own frames; resolves when every one has `expect` frames (or on
 * timeout). Connections stay open until `close`, like live clients would.
 * Times are this machine's wall clock.
 */
function resume({ target, count, expect, localAddress, timeoutMs = 60_000 }) {
  const request = requestBytes(target);
  const t0 = now();
  let complete = 0;
  let settledCount = 0;
  const doneAt = [];
  const results = {};
  return new Promise((resolve) => {
    const finish = (why) => {
      clearTimeout(timer);
      const sorted = doneAt.slice().sort((a, b) => a - b);
      resolve({ end: why, t0, opened: results.ok ?? 0, results, complete, doneMs: sorted, lastDone: sorted.length ? t0 + sorted[sorted.length - 1] : NaN });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    let lost = 0; // opened, then closed before it had everything
    const check = () => {
      if (settledCount === count && complete + lost >= (results.ok ?? 0)) finish(complete === count ? 'ok' : 'partial');
    };
    for (let i = 0; i < count; i++) {
      const conn = { socket: null, lastNl: false, head: null, frames: 0, open: false, done: false };
      const socket = net.connect({
        port: target.port,
        host: '127.0.0.1',
        localAddress,
        onread: {
          buffer: READ_BUFFER,
          callback: (/** @type {number} */ n, /** @type {Buffer} */ buf) => {
            onRead(buf.subarray(0, n));
            return true;
          },
        },
      });
      conn.socket = socket;
      let settled = false;
      const settle = (r) => {
        if (settled) return;
        settled = true;
        results[r] = (results[r] ?? 0) + 1;
        settledCount++;
        check();
      };
      const body = (buf, from) => {
        reads++;
        bytes += buf.length - from;
        const n = countFrames(conn, buf, from);
        frames += n;
        conn.frames += n;
        if (!conn.done && conn.frames >= expect) {
          conn.done = true;
          complete++;
          doneAt.push(now() - t0);
          check();
        }
      };
      const onRead = (buf) => {
        if (conn.open) return body(buf, 0);
        conn.head = conn.head ? Buffer.concat([conn.head, buf]) : Buffer.from(buf);
        const end = conn.head.indexOf(HEAD_END);
        if (end === -1) return;
        const status = conn.head.toString('latin1', 9, 12);
        if (status !== '200') {
          socket.destroy();
          return settle(`status ${status}`);
        }
        const rest = conn.head;
        conn.head = null;
        conn.open = true;
        conns.add(conn);
        settle('ok');
        if (rest.length > end + 4) body(rest, end + 4);
      };
      socket.on('connect', () => socket.write(request));
      socket.on('error', (/** @type {NodeJS.ErrnoException} */ e) => settle(e.code ?? e.message));
      socket.on('close', () => {
        if (conn.open) {
          conn.open = false;
          closedAfterOpen++;
          conns.delete(conn);
          if (!conn.done) {
            // Gone before it had everything: it will never complete.
            results.closedEarly = (results.closedEarly ?? 0) + 1;
            lost++;
            check();
          }
        }
        settle('closed');
      });
    }
  });
}

// ---- W6: write load ----------------------------------------------------------

/**
 * `concurrency` loops, each creating agents through REST (POST
 * /api/v1/agents, keep-alive) one after another for `seconds`, spread over
 * `targets` round-robin (a load balancer). Ids are `${prefix}-${n}`.
 */
async function httpWrites({ targets, seconds, concurrency, prefix }) {
  const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
  const statuses = {};
  const lat = [];
  let n = 0;
  let ok = 0;
  let rr = 0;
  const t0 = now();
  const until = t0 + seconds * 1000;
  const post = (t, body) =>
    new Promise((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: targets[t].port,
          method: 'POST',
          path: '/api/v1/agents',
          agent: agents[t],
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...targets[t].headers },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
          res.on('error', () => resolve('error'));
        },
      );
      req.on('error', (/** @type {NodeJS.ErrnoException} */ e) => resolve(e.code ?? 'error'));
      req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
      req.end(body);
    });
  const loop = async () => {
    while (now() < until) {
      const id = `${prefix}-${n++}`;
      const body = JSON.stringify({ id, name: id, model: { provider: 'openai', name: 'gpt-5' }, tags: ['bench'] });
      const t = rr++ % targets.length;
      const s = now();
      const status = await post(t, body);
      if (status === 201) {
        ok++;
        lat.push(now() - s);
      }
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const t1 = now();
  for (const a of agents) a.destroy();
  return { ok, statuses, ms: t1 - t0, latencies: lat };
}

/**
 * The floor: the same write as one transaction with `pg` directly (BEGIN;
 * INSERT the row; INSERT the outbox row, whose statement trigger sends the
 * NOTIFY; COMMIT), `concurrency` connections, for `seconds`. Other variants
 * (bench/profile/write-path.mjs) measure what the service's statements cost
 * without the service, and what fewer round trips would give.
 */
const MODEL = JSON.stringify({ provider: 'openai', name: 'gpt-5' });
const INSERT_AGENT = 'INSERT INTO agents (id, name, description, model, tags, metadata) VALUES ($1, $2, $3, $4, $5, $6)';
const INSERT_OUTBOX = 'INSERT INTO outbox (type, resource_id, version, actor, data) VALUES ($1, $2, $3, $4, $5)';
const agentParams = (id) => [id, id, '', MODEL, ['bench'], '{}'];
const outboxParams = (id) => ['agent.created', id, 1, 'bench', null];
const WRITE_VARIANTS = {
  // The floor: 4 round trips.
  floor: async (c, id) => {
    await c.query('BEGIN');
    await c.query(INSERT_AGENT, agentParams(id));
    await c.query(INSERT_OUTBOX, outboxParams(id));
    await c.query('COMMIT');
  },
  // The service's statements for POST /agents, in its order (auth lookup, then the
  // transaction with the cap check under a transaction-scoped advisory lock): 8 round trips.
  'service-sql': async (c, id, key) => {
    await c.query('SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [key]);
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [7_346_110_101]);
    await c.query('SELECT count(*)::int AS n FROM agents');
    await c.query(INSERT_AGENT, agentParams(id));
    await c.query('SELECT a.*, (SELECT p.version FROM prompts p WHERE p.agent_id = a.id AND p.active) AS active_prompt_version FROM agents a WHERE a.id = $1', [
      id,
    ]);
    await c.query(INSERT_OUTBOX, outboxParams(id));
    await c.query('COMMIT');
  },
  // The same without the advisory lock and count (the cap as a counter row updated last,
  // so the row lock is held for the COMMIT only) and with INSERT ... RETURNING: 5 round trips.
  'cap-last': async (c, id, key) => {
    await c.query('SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())', [key]);
    await c.query('BEGIN');
    await c.query(`${INSERT_AGENT} RETURNING *`, agentParams(id));
    await c.query(INSERT_OUTBOX, outboxParams(id));
    const r = await c.query("UPDATE registry_counts SET n = n + 1 WHERE kind = 'agents' AND n < $1 RETURNING n", [10_000_000]);
    if (r.rowCount !== 1) throw new Error('cap');
    await c.query('COMMIT');
  },
  // One statement, its own transaction: cap counter, row, outbox row (API key cached): 1 round trip.
  single: async (c, id) => {
    const r = await c.query(
      `WITH cap AS (UPDATE registry_counts SET n = n + 1 WHERE kind = 'agents' AND n < $7 RETURNING n),
            a AS (INSERT INTO agents (id, name, description, model, tags, metadata) SELECT $1, $2, $3, $4, $5, $6 FROM cap RETURNING *),
            o AS (INSERT INTO outbox (type, resource_id, version, actor, data) SELECT 'agent.created', a.id, a.version, 'bench', NULL FROM a)
       SELECT * FROM a`,
      [...agentParams(id), 10_000_000],
    );
    if (r.rowCount !== 1) throw new Error('cap');
  },
};

async function pgWrites({ url, seconds, concurrency, prefix, variant = 'floor', keyHash = '' }) {
  const write = WRITE_VARIANTS[variant];
  const clients = [];
  for (let i = 0; i < concurrency; i++) {
    const c = new pg.Client({ connectionString: url, application_name: 'bench-floor' });
    await c.connect();
    clients.push(c);
  }
  const statuses = {};
  const lat = [];
  let n = 0;
  let ok = 0;
  const t0 = now();
  const until = t0 + seconds * 1000;
  const loop = async (c) => {
    while (now() < until) {
      const id = `${prefix}-${n++}`;
      const s = now();
      try {
        await write(c, id, keyHash);
        ok++;
        lat.push(now() - s);
        statuses.ok = (statuses.ok ?? 0) + 1;
      } catch (e) {
        statuses[e.code ?? e.message] = (statuses[e.code ?? e.message] ?? 0) + 1;
        await c.query('ROLLBACK').catch(() => undefined);
      }
    }
  };
  await Promise.all(clients.map(loop));
  const t1 = now();
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  return { ok, statuses, ms: t1 - t0, latencies: lat };
}

process.on('message', async (/** @type {any} */ msg) => {
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
    case 'resume':
      reply = await resume(msg);
      break;
    case 'httpwrites':
      reply = await httpWrites(msg);
      break;
    case 'pgwrites':
      reply = await pgWrites(msg);
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
