// A preload for profiling a replica from outside its source:
//
//   node --import ./bench/profile/probe.mjs dist/main.js
//
// Each SIGUSR2 ends a "phase": what was recorded since the previous one is
// written to `${PROBE_OUT}.<n>.json` (default PROBE_OUT: `${PROBE_DIR:-/tmp}/probe-<pid>`) and recording starts over. With
// PROBE_CPU=1, V8's sampling CPU profiler (the one `--cpu-prof` uses) runs
// during every phase after the first (PROBE_CPU=2: phase 2 only) and writes
// `${PROBE_OUT}.<n>.cpuprofile`, so a profile covers the load window only, not start-up.
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
// - with PROBE_HEAP=1, what phase 1 allocated, by function (sampling heap
//   profiler, collected objects included): `${PROBE_OUT}.1.heapprofile`;
// - memory (process.memoryUsage, v8 heap spaces) at the end of each phase;
//   with PROBE_GC=1 and `--expose-gc`, also after a full GC (what is retained,
//   as opposed to garbage not yet collected); with PROBE_SNAPSHOT=1 a heap
//   snapshot at the end of phases 0 and 1.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import net from 'node:net';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import v8 from 'node:v8';

const OUT = process.env.PROBE_OUT ?? path.join(process.env.PROBE_DIR ?? '/tmp', `probe-${process.pid}`);
// PROBE_CPU=1: profile every phase after the first; PROBE_CPU=2,3: only those phases.
const CPU_PHASES =
  process.env.PROBE_CPU === '1'
    ? undefined
    : new Set(
        String(process.env.PROBE_CPU ?? '')
          .split(',')
          .filter(Boolean)
          .map(Number),
      );
const CPU = process.env.PROBE_CPU === '1' || CPU_PHASES.size > 0;
const cpuIn = (p) => CPU && p > 0 && (CPU_PHASES === undefined || CPU_PHASES.has(p));
const CPU_INTERVAL_US = Number(process.env.PROBE_CPU_INTERVAL_US ?? 500);
const now = () => performance.timeOrigin + performance.now();

let phase = 0;
let phaseStart = now();
let eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
let stalls = [];
let gcs = [];
let bus = [];
// Buffer -> record, weakly: a chunk written once (a cursor frame at a join)
// leaves nothing behind once it is garbage; a record joins `flushList` when
// its chunk is written a second time (a flush to a group).
let flushes = new WeakMap();
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
  for (const e of list.getEntries())
    gcs.push([
      Math.round(performance.timeOrigin + e.startTime),
      Math.round(e.duration * 100) / 100,
      GC_KINDS[/** @type {any} */ (e).detail?.kind ?? /** @type {any} */ (e).kind] ?? String(/** @type {any} */ (e).detail?.kind),
    ]);
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
      if (++rec.count === 2) flushList.push(rec);
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
let cpuRunning = false;
function startCpu() {
  if (!cpuIn(phase)) return;
  cpuRunning = true;
  session ??= new inspector.Session();
  try {
    session.connect();
  } catch {
    /* already connected */
  }
  session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: CPU_INTERVAL_US }, () => session.post('Profiler.start')));
}
function stopCpu(file) {
  if (!cpuRunning || !session) return;
  cpuRunning = false;
  session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(file, JSON.stringify(res.profile));
  });
}

// ---- allocation profile (PROBE_HEAP=1: phase 1 only) ------------------------------------------
// V8's sampling heap profiler, counting objects that were collected too: what
// the phase allocated, by allocating function (not only what is still alive).
const HEAP = process.env.PROBE_HEAP === '1';
function startHeap() {
  if (!HEAP || phase !== 1) return;
  session ??= new inspector.Session();
  try {
    session.connect();
  } catch {
    /* already connected */
  }
  session.post('HeapProfiler.enable', () =>
    session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }),
  );
}
function stopHeap(file) {
  if (!HEAP || phase !== 1 || !session) return;
  session.post('HeapProfiler.stopSampling', (err, res) => {
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
  // PROBE_SNAPSHOT=1: a heap snapshot at the end of phases 0 and 1 (what is retained, by constructor).
  if (process.env.PROBE_SNAPSHOT === '1' && phase <= 1) v8.writeHeapSnapshot(`${OUT}.${phase}.heapsnapshot`);
  const out = {
    pid: process.pid,
    phase,
    start: phaseStart,
    end,
    eld: {
      min: ms(eld.min),
      mean: ms(eld.mean),
      p50: ms(eld.percentile(50)),
      p90: ms(eld.percentile(90)),
      p99: ms(eld.percentile(99)),
      max: ms(eld.max),
      count: eld.count,
    },
    stalls,
    gcs,
    bus,
    flushes: flushList,
    memory,
    heapSpaces: spaces,
    afterGc,
  };
  writeFileSync(`${OUT}.${phase}.json`, JSON.stringify(out));
  stopCpu(`${OUT}.${phase}.cpuprofile`);
  stopHeap(`${OUT}.${phase}.heapprofile`);
  phase++;
  phaseStart = now();
  eld.disable();
  eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  stalls = [];
  gcs = [];
  bus = [];
  flushes = new WeakMap();
  flushList = [];
  startCpu();
  startHeap();
}
process.on('SIGUSR2', dump);
