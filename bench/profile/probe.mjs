// A preload for profiling a replica from outside its source:
//
//   node --import ./bench/profile/probe.mjs dist/main.js
//
// Each SIGUSR2 ends a "phase": what was recorded since the previous one is
// written to `${PROBE_OUT}.<n>.json` (default PROBE_OUT: `${PROBE_DIR:-/tmp}/probe-<pid>`) and recording starts over. With
// PROBE_CPU=1, V8's sampling CPU profiler (the one `--cpu-prof` uses) runs
// during every phase after the first and writes `${PROBE_OUT}.<n>.cpuprofile`,
// so a profile covers the load window only, not start-up.
//
// What it records (wall clock: performance.timeOrigin + performance.now(), as
// the benchmark's clients):
// - event-loop delay (perf_hooks.monitorEventLoopDelay, 5 ms resolution) and
//   the stalls themselves: a 5 ms timer that fires more than 15 ms late;
// - garbage collections (PerformanceObserver 'gc'): when, how long, which kind;
// - bus arrivals: every 'message' an ioredis client emits (the replica's
//   subscription), with the first and last seq it carries;
// - flushes: SSE chunks carrying events (`<hex>\r\nid: ...`) written with
//   socket.write; the same Buffer written to many sockets is one flush of the
//   hub: time of its first and last write, how many sockets, first and last seq;
// - memory (process.memoryUsage, v8 heap spaces) at the end of each phase;
//   with PROBE_GC=1 and `--expose-gc`, also after a full GC (what is retained,
//   as opposed to garbage not yet collected).
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import net from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import v8 from 'node:v8';

const OUT = process.env.PROBE_OUT ?? path.join(process.env.PROBE_DIR ?? '/tmp', `probe-${process.pid}`);
const CPU = process.env.PROBE_CPU === '1';
const CPU_INTERVAL_US = Number(process.env.PROBE_CPU_INTERVAL_US ?? 500);
const now = () => performance.timeOrigin + performance.now();

let phase = 0;
let phaseStart = now();
let eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
let stalls = [];
let gcs = [];
let bus = [];
let flushes = new Map(); // Buffer -> record
let flushList = [];

// ---- stalls --------------------------------------------------------------------
const TICK_MS = 5;
let expected = now() + TICK_MS;
setInterval(() => {
  const t = now();
  const late = t - expected;
  if (late > 15) stalls.push([Math.round(expected), Math.round(late * 10) / 10]);
  expected = t + TICK_MS;
}, TICK_MS).unref();

// ---- GC ----------------------------------------------------------------------------
const GC_KINDS = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([Math.round(performance.timeOrigin + e.startTime), Math.round(e.duration * 100) / 100, GC_KINDS[e.detail?.kind ?? e.kind] ?? String(e.detail?.kind)]);
}).observe({ entryTypes: ['gc'] });

// ---- bus arrivals (ioredis 'message') ------------------------------------------------
try {
  // The service's own copy of ioredis (CommonJS: one module instance per path).
  const require = createRequire(path.join(process.cwd(), 'package.json'));
  const { Redis } = require('ioredis');
  const emit = Redis.prototype.emit;
  Redis.prototype.emit = function (event, ...args) {
    if (event === 'message' && typeof args[1] === 'string') {
      const m = args[1];
      const t = now();
      const first = m.slice(0, m.indexOf('\t'));
      const lastLine = m.lastIndexOf('\n', m.length - 2) + 1;
      const last = m.slice(lastLine, m.indexOf('\t', lastLine));
      bus.push([t, Number(first), Number(last)]);
      const r = emit.call(this, event, ...args);
      bus[bus.length - 1].push(now() - t); // time spent in the listeners (decode, hub.onEvents, a flush if one ran synchronously)
      return r;
    }
    return emit.call(this, event, ...args);
  };
} catch (error) {
  console.error(`probe: ioredis not hooked: ${error.message}`);
}

// ---- flushes (socket.write of a shared SSE chunk) -------------------------------------
const ID = Buffer.from('\r\nid: ');
const write = net.Socket.prototype.write;
net.Socket.prototype.write = function (chunk, ...rest) {
  if (Buffer.isBuffer(chunk) && chunk.length > 8) {
    let rec = flushes.get(chunk);
    if (rec) {
      const r = write.call(this, chunk, ...rest);
      rec.last = now();
      rec.count++;
      return r;
    }
    const at = chunk.indexOf(ID);
    if (at !== -1 && at < 10) {
      const t = now();
      const firstId = Number(chunk.toString('latin1', at + 6, chunk.indexOf(10, at + 6)));
      const lastAt = chunk.lastIndexOf('\nid: ');
      const lastId = Number(chunk.toString('latin1', lastAt + 5, chunk.indexOf(10, lastAt + 5)));
      rec = { first: t, last: t, count: 0, firstId, lastId, bytes: chunk.length };
      flushes.set(chunk, rec);
      flushList.push(rec);
      const r = write.call(this, chunk, ...rest);
      rec.last = now();
      rec.count++;
      return r;
    }
  }
  return write.call(this, chunk, ...rest);
};

// ---- CPU profile ---------------------------------------------------------------------
let session;
function startCpu() {
  if (!CPU) return;
  session ??= new inspector.Session();
  try {
    session.connect();
  } catch {
    /* already connected */
  }
  session.post('Profiler.enable', () =>
    session.post('Profiler.setSamplingInterval', { interval: CPU_INTERVAL_US }, () => session.post('Profiler.start')),
  );
}
function stopCpu(file) {
  if (!CPU || !session) return;
  session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(file, JSON.stringify(res.profile));
  });
}

// ---- phases ------------------------------------------------------------------------------
const ms = (ns) => Math.round((ns / 1e6) * 100) / 100;
function dump() {
  const end = now();
  const heapSpaces = () => Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
  const memory = process.memoryUsage();
  const spaces = heapSpaces();
  let afterGc;
  if (process.env.PROBE_GC === '1' && typeof globalThis.gc === 'function') {
    globalThis.gc();
    afterGc = { memory: process.memoryUsage(), heapSpaces: heapSpaces() };
  }
  const out = {
    pid: process.pid,
    phase,
    start: phaseStart,
    end,
    eld: { min: ms(eld.min), mean: ms(eld.mean), p50: ms(eld.percentile(50)), p90: ms(eld.percentile(90)), p99: ms(eld.percentile(99)), max: ms(eld.max), count: eld.count },
    stalls,
    gcs,
    bus,
    flushes: flushList.filter((f) => f.count > 1),
    memory,
    heapSpaces: spaces,
    afterGc,
  };
  writeFileSync(`${OUT}.${phase}.json`, JSON.stringify(out));
  if (phase > 0) stopCpu(`${OUT}.${phase}.cpuprofile`);
  phase++;
  phaseStart = now();
  eld.disable();
  eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  stalls = [];
  gcs = [];
  bus = [];
  flushes = new Map();
  flushList = [];
  startCpu();
}
process.on('SIGUSR2', dump);
