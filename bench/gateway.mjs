#!/usr/bin/env node
// MCP gateway bench (issue 13, item 6), against a direct SDK connection to the same backend as the floor:
//   - overhead per tool call: p50/p95 of sequential `tools/call`, direct vs through a streaming session
//     (POST request + its `response` event), through a tool stream (POST /api/v1/mcp/stream) and through
//     /mcp (the same SDK client as the floor, pointed at the gateway). Each way is compared with a floor
//     driven by the same kind of client: /mcp with the SDK client straight to the backend, sessions and
//     tool streams (plain node:http requests) with a plain POST straight to the backend. A bare hop (the
//     SDK client through bench/hop-proxy.mjs, a minimal node:http proxy) shows what one more HTTP hop costs
//     on the machine, whatever the code in it;
//   - events per second through one streaming session (a backend tool sending N progress notifications);
//   - memory per idle session and N concurrent sessions on one replica (each with its SSE stream open
//     and its backend initialized), every one of them answering a request at the end.
//
//   npm run bench -- --gateway [--quick] [--calls N] [--events N] [--sessions N] [--write | --overhead-only]
//   node bench/gateway.mjs …            (the same; BENCH_DIST / BENCH_NODE as for bench/run.mjs)
//   node bench/gateway.mjs --overhead-only --ways mcp [--profile DIR]
//                                       (one way only, e.g. for a CPU profile of the replica on that path)
//
// The overhead figures include the replica's CPU time per measured call (replicaCpuMsPerCall: every way run
// counted), steadier than latency for A/B runs of two builds on a noisy machine.
//
// --write puts the figures into docs/gateway.md (between its bench markers).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres, startRedis } from './lib/infra.mjs';
import { cpuMicros, freePort, killAllStarted, percentile, rssBytes, sleep, spawnLimited, stopProc, waitForPort } from './lib/proc.mjs';
import { ServiceSystem } from './lib/systems.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}
const quick = arg('quick', false) === true;
const CALLS = Number(arg('calls', quick ? 300 : 2000));
const EVENTS = Number(arg('events', quick ? 5000 : 50_000));
const SESSIONS = Number(arg('sessions', quick ? 100 : 1000));
const write = arg('write', false) === true;
/** Only the overhead per tool call (for A/B runs of two builds: BENCH_DIST); nothing is written to the docs. */
const overheadOnly = arg('overhead-only', false) === true;
if (write && overheadOnly) throw new Error('--write needs every figure: leave out --overhead-only');
/** The ways the overhead measurement drives (`--ways mcp,session`: only those, e.g. to profile one path); all by default. */
const ALL_WAYS = ['direct', 'plain', 'session', 'toolStream', 'mcp', 'hop'];
const WAYS = new Set(String(arg('ways', ALL_WAYS.join(','))).split(','));
/** `--profile DIR`: the replica runs with --cpu-prof and writes its profile there when it stops (summarize with bench/profile/summarize.mjs). */
const profileDir = arg('profile', undefined);
if (write && (WAYS.size < ALL_WAYS.length || profileDir)) throw new Error('--write needs every way and no profiler');
/** Backend sessions of an unused streaming session are released after this (the replica's setting for the bench). */
const BACKEND_IDLE_MS = 3000;
const t0 = performance.now();
const log = (m) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`);

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(port, method, pathname, { key = undefined, body = undefined } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: pathname,
        agent,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, text, body: json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** A minimal SSE reader: `onFrame({id, event, data})` per frame; returns the request (destroy to close). */
function openSse(port, pathname, key, onFrame, onStatus) {
  let buffer = '';
  const req = http.get(
    { host: '127.0.0.1', port, path: pathname, agent: false, headers: { accept: 'text/event-stream', authorization: `Bearer ${key}` } },
    (res) => {
      onStatus?.(res.statusCode);
      res.setEncoding('utf8');
      res.on('data', (text) => {
        buffer += text;
        // One pass over the chunk, one slice at the end (slicing per frame is quadratic in the chunk size).
        let at = 0;
        let end;
        while ((end = buffer.indexOf('\n\n', at)) !== -1) {
          const block = buffer.slice(at, end);
          at = end + 2;
          const frame = { event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) frame.id = line.slice(4);
            else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) frame.data += line.slice(6);
          }
          if (frame.data !== '' || frame.id !== undefined) onFrame(frame);
        }
        buffer = buffer.slice(at);
      });
      res.on('error', () => undefined);
    },
  );
  req.on('error', () => undefined);
  return req;
}

const stats = (ms) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
};
const round = (v, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

async function heapUsed(port) {
  const res = await request(port, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith('nodejs_heap_size_used_bytes '));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/**
 * A full garbage collection in a replica started with `--inspect-port`: SIGUSR1 opens its
 * inspector (loopback only), and the DevTools protocol's HeapProfiler.collectGarbage runs one;
 * heap figures then count what is retained, not garbage not yet collected.
 */
async function collectGarbage(pid, inspectPort) {
  process.kill(pid, 'SIGUSR1');
  let target;
  for (let i = 0; i < 50 && !target; i++) {
    await sleep(100);
    try {
      target = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json())[0];
    } catch {
      /* not listening yet */
    }
  }
  if (!target) throw new Error('the replica’s inspector did not open');
  const WS = globalThis.WebSocket ?? (await import('ws')).default;
  const ws = /** @type {WebSocket} */ (new WS(target.webSocketDebuggerUrl));
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
    ws.addEventListener('message', (m) => {
      if (JSON.parse(String(m.data)).id === 1) resolve();
    });
    ws.addEventListener('error', reject);
  });
  ws.close();
}

async function main() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'gateway-bench-'));
  chmodSync(root, 0o755); // embedded PostgreSQL's initdb may run as another user
  const replicaNode = process.env.BENCH_NODE ? execFileSync(process.env.BENCH_NODE, ['--version'], { encoding: 'utf8' }).trim() : process.version;
  const figures = { when: new Date().toISOString(), node: process.version, replicaNode, cpus: os.cpus().length, loadAverage: round(os.loadavg()[0], 1), quick };
  try {
    log('starting PostgreSQL, Redis, the MCP backend and one replica');
    const [pg, redis] = await Promise.all([startPostgres(root), startRedis('gateway-bench-redis')]);
    const backendPort = await freePort();
    const backend = spawnLimited(process.execPath, [path.join(here, 'gateway-backend.mjs'), String(backendPort)], { name: 'mcp-backend', cwd: repo });
    await waitForPort(backendPort, 20_000, backend);
    const backendUrl = `http://127.0.0.1:${backendPort}/mcp`;
    const hopPort = await freePort();
    const hop = spawnLimited(process.env.BENCH_NODE ?? process.execPath, [path.join(here, 'hop-proxy.mjs'), String(hopPort), String(backendPort)], {
      name: 'hop-proxy',
      cwd: repo,
    });
    await waitForPort(hopPort, 20_000, hop);
    const sys = new ServiceSystem({
      databaseUrl: pg.url,
      redisUrl: redis.url,
      env: {
        MCP_ALLOW_PRIVATE_NETWORKS: 'true',
        HEALTH_PROBES: 'false',
        GATEWAY_MAX_SESSIONS_PER_CLIENT: String(SESSIONS + 10),
        GATEWAY_MAX_PENDING_EVENTS: String(Math.max(1000, EVENTS + 100)),
        GATEWAY_BACKEND_IDLE_MS: String(BACKEND_IDLE_MS),
      },
      nodeArgs: typeof profileDir === 'string' ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)] : [],
    });
    const replica = await sys.startReplica('gateway');
    let port = replica.port;
    const key = sys.adminKey;
    const created = await request(port, 'POST', '/api/v1/mcp-servers', {
      key,
      body: { id: 'bench', name: 'bench', url: backendUrl, healthCheck: { intervalMs: 3_600_000, timeoutMs: 10_000, failureThreshold: 100 } },
    });
    if (created.status !== 201) throw new Error(`registering the backend failed: ${created.status} ${created.text}`);

    // ---- 1. overhead per tool call -------------------------------------------------
    log(`overhead: ${CALLS} sequential echo calls each way, direct and through the gateway, taking turns`);
    const direct = new Client({ name: 'bench-direct', version: '1' });
    const directTransport = new StreamableHTTPClientTransport(new URL(backendUrl));
    await direct.connect(directTransport);
    // The same SDK client through the aggregated endpoint: what an off-the-shelf MCP client sees.
    const viaGateway = new Client({ name: 'bench-mcp', version: '1' });
    await viaGateway.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }),
    );
    // The same SDK client again, through the bare hop.
    const viaHop = new Client({ name: 'bench-hop', version: '1' });
    await viaHop.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${hopPort}/mcp`)));
    const session = await request(port, 'POST', '/api/v1/gateway/stream', { key, body: { servers: ['bench'] } });
    if (session.status !== 201) throw new Error(`opening a session failed: ${session.status} ${session.text}`);
    const sid = session.body.session_id;
    const waiters = new Map();
    let burst;
    const stream = openSse(port, `/api/v1/gateway/stream/${sid}`, key, (f) => {
      if (f.event === 'response' || f.event === 'error') {
        const id = JSON.parse(f.data).id;
        waiters.get(id)?.(f);
        waiters.delete(id);
      } else if (f.event === 'notification' && burst) burst.onEvent();
    });
    await sleep(300);
    const viaDirect = () => direct.callTool({ name: 'echo', arguments: { text: 'x' } });
    // The floor for the ways driven by a plain node:http client (sessions, tool streams): the same client posting the
    // JSON-RPC call to the backend in the direct client's MCP session (the SDK client costs ~0.3 ms more per call).
    const viaDirectPlain = () =>
      new Promise((resolve, reject) => {
        const payload = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 'plain', method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }));
        const req = http.request(
          {
            host: '127.0.0.1',
            port: backendPort,
            method: 'POST',
            path: '/mcp',
            agent,
            headers: {
              'content-type': 'application/json',
              'content-length': payload.length,
              accept: 'application/json, text/event-stream',
              'mcp-session-id': directTransport.sessionId,
              'mcp-protocol-version': directTransport.protocolVersion ?? '2025-11-25',
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (text += d));
            res.on('end', () => (text.includes('"result"') ? resolve() : reject(new Error(`direct plain call: ${res.statusCode} ${text}`))));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    const viaSession = (i) =>
      new Promise((resolve, reject) => {
        waiters.set(`c${i}`, resolve);
        request(port, 'POST', `/api/v1/gateway/stream/${sid}/request`, {
          key,
          body: { jsonrpc: '2.0', id: `c${i}`, method: 'tools/call', params: { name: 'bench__echo', arguments: { text: 'x' } } },
        }).then((r) => r.status !== 202 && reject(new Error(r.text)), reject);
      });
    const viaMcp = () => viaGateway.callTool({ name: 'bench__echo', arguments: { text: 'x' } });
    const viaBareHop = () => viaHop.callTool({ name: 'echo', arguments: { text: 'x' } });
    const viaToolStream = () =>
      request(port, 'POST', '/api/v1/mcp/stream', {
        key,
        body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'bench__echo', arguments: { text: 'x' } } },
      }).then((r) => {
        if (!r.text.includes('[DONE]') || r.text.includes('event: error')) throw new Error(r.text);
      });
    // The four ways take turns call by call, so they share whatever load the machine has at each moment.
    const directMs = [];
    const plainMs = [];
    const sessionMs = [];
    const toolStreamMs = [];
    const mcpMs = [];
    const hopMs = [];
    const timed = async (fn, out, way) => {
      if (!WAYS.has(way)) return;
      const started = performance.now();
      await fn();
      if (out) out.push(performance.now() - started);
    };
    let cpuAtStart = { replica: 0, backend: 0 };
    for (let i = 0; i < Math.min(200, CALLS) + CALLS; i++) {
      const warm = i < Math.min(200, CALLS);
      if (i === Math.min(200, CALLS)) cpuAtStart = { replica: cpuMicros(replica.proc.pid), backend: cpuMicros(backend.pid), at: performance.now() };
      await timed(viaDirect, warm ? undefined : directMs, 'direct');
      await timed(viaDirectPlain, warm ? undefined : plainMs, 'plain');
      await timed(() => viaSession(i), warm ? undefined : sessionMs, 'session');
      await timed(viaToolStream, warm ? undefined : toolStreamMs, 'toolStream');
      await timed(viaMcp, warm ? undefined : mcpMs, 'mcp');
      await timed(viaBareHop, warm ? undefined : hopMs, 'hop');
    }
    // CPU time per measured call (every way run counted): a steadier A/B figure than latency on a noisy machine.
    const gatewayWays = ['session', 'toolStream', 'mcp'].filter((w) => WAYS.has(w)).length;
    const cpuPerCall = (micros, calls) => (calls > 0 ? round(micros / 1000 / calls, 3) : null);
    const replicaCpuMsPerCall = cpuPerCall(cpuMicros(replica.proc.pid) - cpuAtStart.replica, CALLS * gatewayWays);
    const backendCpuMsPerCall = cpuPerCall(cpuMicros(backend.pid) - cpuAtStart.backend, CALLS * [...WAYS].filter((w) => ALL_WAYS.includes(w)).length);
    /** The replica's CPU use over the measured calls, in cores (0.5: half of one core). */
    const replicaCores = round((cpuMicros(replica.proc.pid) - cpuAtStart.replica) / 1000 / (performance.now() - cpuAtStart.at), 3);
    await direct.close();
    await viaGateway.close();
    await viaHop.close();
    await stopProc(hop);
    const d = stats(directMs);
    const p = stats(plainMs);
    const s = stats(sessionMs);
    const t = stats(toolStreamMs);
    const m = stats(mcpMs);
    const h = stats(hopMs);
    figures.overhead = {
      calls: CALLS,
      directMs: { p50: round(d.p50), p95: round(d.p95), p99: round(d.p99) },
      directPlainMs: { p50: round(p.p50), p95: round(p.p95), p99: round(p.p99) },
      sessionMs: { p50: round(s.p50), p95: round(s.p95), p99: round(s.p99) },
      toolStreamMs: { p50: round(t.p50), p95: round(t.p95), p99: round(t.p99) },
      mcpMs: { p50: round(m.p50), p95: round(m.p95), p99: round(m.p99) },
      hopMs: { p50: round(h.p50), p95: round(h.p95), p99: round(h.p99) },
      mcpOverheadP50Ms: round(m.p50 - d.p50),
      // One more HTTP hop with nothing done in it, and what /mcp costs beyond that.
      hopOverheadP50Ms: round(h.p50 - d.p50),
      mcpOverHopP50Ms: round(m.p50 - h.p50),
      sessionOverheadP50Ms: round(s.p50 - p.p50),
      toolStreamOverheadP50Ms: round(t.p50 - p.p50),
      // The same two against the SDK client's direct call, the floor the issue names for every way.
      sessionOverSdkP50Ms: round(s.p50 - d.p50),
      toolStreamOverSdkP50Ms: round(t.p50 - d.p50),
      ways: [...WAYS],
      replicaCpuMsPerCall,
      backendCpuMsPerCall,
      replicaCores,
    };
    log(`overhead: ${JSON.stringify(figures.overhead)}`);
    if (overheadOnly) {
      stream.destroy();
      await stopProc(replica.proc);
    } else {
      // ---- 2. events per second through one session ------------------------------------
      log(`throughput: one tools/call sending ${EVENTS} progress notifications, direct (the floor), then through one session`);
      const floorClient = new Client({ name: 'bench-direct', version: '1' });
      await floorClient.connect(new StreamableHTTPClientTransport(new URL(backendUrl)));
      let floorCount = 0;
      const floorStarted = performance.now();
      await floorClient.callTool({ name: 'burst', arguments: { count: EVENTS } }, undefined, { onprogress: () => floorCount++, timeout: 300_000 });
      const floorSeconds = (performance.now() - floorStarted) / 1000;
      await floorClient.close();
      const done = new Promise((resolve) => {
        let count = 0;
        let first = 0;
        burst = {
          onEvent() {
            if (count === 0) first = performance.now();
            if (++count === EVENTS) resolve({ count, first, last: performance.now() });
          },
        };
      });
      const started = performance.now();
      const answered = new Promise((resolve) => waiters.set('burst', resolve));
      await request(port, 'POST', `/api/v1/gateway/stream/${sid}/request`, {
        key,
        body: { jsonrpc: '2.0', id: 'burst', method: 'tools/call', params: { name: 'bench__burst', arguments: { count: EVENTS } } },
      });
      const result = await Promise.race([done, sleep(120_000).then(() => undefined)]);
      await Promise.race([answered, sleep(30_000)]);
      if (!result) throw new Error('the progress burst did not arrive within 120 s');
      figures.throughput = {
        events: EVENTS,
        directEventsPerSecond: Math.round(floorCount / floorSeconds),
        seconds: round((result.last - started) / 1000, 3),
        eventsPerSecond: Math.round(EVENTS / ((result.last - started) / 1000)),
        eventsPerSecondFromFirst: Math.round(EVENTS / ((result.last - result.first) / 1000)),
      };
      log(`throughput: ${JSON.stringify(figures.throughput)}`);
      stream.destroy();
      await request(port, 'DELETE', `/api/v1/gateway/stream/${sid}`, { key });
      await sleep(1000);

      // ---- 3. memory per idle session, N concurrent sessions ------------------------------
      // A fresh replica, so the baseline holds no garbage of the phases above.
      await stopProc(replica.proc);
      const inspectPort = await freePort();
      sys.nodeArgsOf = (name) => (name === 'gateway-sessions' ? [`--inspect-port=127.0.0.1:${inspectPort}`] : []);
      const fresh = await sys.startReplica('gateway-sessions');
      port = fresh.port;
      for (let i = 0; i < 20; i++) await request(port, 'GET', '/metrics');
      await sleep(2000);
      log(`sessions: opening ${SESSIONS} sessions, each with its stream open and its backend initialized`);
      await collectGarbage(fresh.proc.pid, inspectPort);
      const heapBefore = await heapUsed(port);
      const rssBefore = rssBytes(fresh.proc.pid);
      const sessions = [];
      const answers = new Map();
      for (let i = 0; i < SESSIONS; i += 20) {
        await Promise.all(
          Array.from({ length: Math.min(20, SESSIONS - i) }, async () => {
            const res = await request(port, 'POST', '/api/v1/gateway/stream', { key, body: { servers: ['bench'] } });
            if (res.status !== 201) throw new Error(`session ${sessions.length}: ${res.status} ${res.text}`);
            const id = res.body.session_id;
            let status = 0;
            const req = openSse(
              port,
              `/api/v1/gateway/stream/${id}`,
              key,
              (f) => {
                if (f.event === 'response') answers.get(id)?.();
              },
              (st) => (status = st),
            );
            sessions.push({ id, req, status: () => status });
          }),
        );
      }
      await sleep(3000);
      const open = sessions.filter((x) => x.status() === 200).length;
      await collectGarbage(fresh.proc.pid, inspectPort);
      const heapHeld = await heapUsed(port);
      const rssHeld = rssBytes(fresh.proc.pid);
      // Idle: nothing asked for a while, so each replica released the sessions' backend MCP sessions.
      await sleep(BACKEND_IDLE_MS + 4000);
      await collectGarbage(fresh.proc.pid, inspectPort);
      const heapAfter = await heapUsed(port);
      const rssAfter = rssBytes(fresh.proc.pid);
      // Every session is live: one request each, answered on its own stream.
      let answeredCount = 0;
      const allAnswered = Promise.all(sessions.map((x) => new Promise((resolve) => answers.set(x.id, () => (answeredCount++, resolve())))));
      for (let i = 0; i < sessions.length; i += 50) {
        await Promise.all(
          sessions
            .slice(i, i + 50)
            .map((x) => request(port, 'POST', `/api/v1/gateway/stream/${x.id}/request`, { key, body: { jsonrpc: '2.0', id: 1, method: 'ping' } })),
        );
      }
      await Promise.race([allAnswered, sleep(60_000)]);
      figures.sessions = {
        sessions: SESSIONS,
        streamsOpen: open,
        answered: answeredCount,
        heapPerSessionKB: round((heapAfter - heapBefore) / SESSIONS / 1024, 1),
        rssPerSessionKB: round((rssAfter - rssBefore) / SESSIONS / 1024, 1),
        withBackendHeapPerSessionKB: round((heapHeld - heapBefore) / SESSIONS / 1024, 1),
        withBackendRssPerSessionKB: round((rssHeld - rssBefore) / SESSIONS / 1024, 1),
      };
      log(`sessions: ${JSON.stringify(figures.sessions)}`);
      for (const x of sessions) x.req.destroy();

      await stopProc(fresh.proc);
    }
    await stopProc(backend);
    await redis.stop();
    await pg.stop();
  } finally {
    killAllStarted();
    rmSync(root, { recursive: true, force: true });
  }
  figures.seconds = round((performance.now() - t0) / 1000, 1);
  const out = path.join(repo, 'bench', 'results', 'gateway.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(figures, null, 2)}\n`);
  log(`figures written to ${path.relative(repo, out)}`);
  if (write) render(figures);
}

const BEGIN = '<!-- gateway-bench:begin -->';
const END = '<!-- gateway-bench:end -->';

function render(f) {
  const file = path.join(repo, 'docs', 'gateway.md');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# MCP gateway\n\n${BEGIN}\n${END}\n`;
  const o = f.overhead;
  const table = [
    BEGIN,
    `Measured ${f.when.slice(0, 10)} on ${f.cpus} cores (load average ${f.loadAverage} at the start: other work shared them), Node ${f.replicaNode ?? f.node} for the replica (${f.node} for the clients), one replica, one backend process, by \`npm run bench -- --gateway --write\`${f.quick ? ' (--quick)' : ''}:`,
    '',
    '| Figure | Target | Measured |',
    '|---|---|---|',
    `| Tool call, direct SDK client (floor of \`/mcp\`), p50 / p95 | | ${o.directMs.p50} / ${o.directMs.p95} ms (${o.calls} calls) |`,
    `| Tool call, direct plain \`node:http\` POST (floor of sessions and tool streams), p50 / p95 | | ${o.directPlainMs.p50} / ${o.directPlainMs.p95} ms |`,
    `| Tool call through a streaming session (plain client), p50 / p95 | p50 ≤ floor + 1 ms | ${o.sessionMs.p50} / ${o.sessionMs.p95} ms (+${o.sessionOverheadP50Ms} ms; +${o.sessionOverSdkP50Ms} ms over the SDK floor) |`,
    `| Tool call through a tool stream (plain client), p50 / p95 | p50 ≤ floor + 1 ms | ${o.toolStreamMs.p50} / ${o.toolStreamMs.p95} ms (+${o.toolStreamOverheadP50Ms} ms; +${o.toolStreamOverSdkP50Ms} ms over the SDK floor) |`,
    `| Tool call through \`/mcp\` (the same SDK client), p50 / p95 | p50 ≤ floor + 1 ms | ${o.mcpMs.p50} / ${o.mcpMs.p95} ms (+${o.mcpOverheadP50Ms} ms) |`,
    `| Tool call through a bare hop (the same SDK client through a minimal \`node:http\` proxy: what one more hop costs here), p50 / p95 | | ${o.hopMs.p50} / ${o.hopMs.p95} ms (+${o.hopOverheadP50Ms} ms; \`/mcp\` is +${o.mcpOverHopP50Ms} ms over it) |`,
    `| Progress notifications, direct SDK client (floor: the backend's own rate) | | ${f.throughput.directEventsPerSecond.toLocaleString('en')}/s |`,
    `| Events through one session (backend → gateway → Redis → SSE) | ≥ 10,000/s | ${f.throughput.eventsPerSecond.toLocaleString('en')}/s (${f.throughput.events.toLocaleString('en')} events in ${f.throughput.seconds} s) |`,
    `| Memory per idle session, stream open, backend released (heap after a full GC / RSS) | ≤ 50 KB | ${f.sessions.heapPerSessionKB} / ${f.sessions.rssPerSessionKB} KB |`,
    `| Memory per session while its backend MCP session is held (heap after a full GC / RSS) | | ${f.sessions.withBackendHeapPerSessionKB} / ${f.sessions.withBackendRssPerSessionKB} KB |`,
    `| Concurrent sessions on one replica | 1,000 | ${f.sessions.streamsOpen} streams open, ${f.sessions.answered} answered |`,
    END,
  ].join('\n');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const next = start === -1 || end === -1 ? `${text.trimEnd()}\n\n${table}\n` : `${text.slice(0, start)}${table}${text.slice(end + END.length)}`;
  writeFileSync(file, next);
  log('docs/gateway.md updated');
}

main().catch((error) => {
  console.error(error);
  killAllStarted();
  process.exit(1);
});
