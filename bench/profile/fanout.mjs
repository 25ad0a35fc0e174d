#!/usr/bin/env node
// Where the publish→delivery time of W7 goes (issue 10), and what a
// connection costs in memory: 10,000 ordinary `node:http` SSE clients on one
// replica ("sub"), 200 agent creations at 50/s through another ("writer").
// Both replicas run bench/profile/probe.mjs (event-loop delay, stalls, GC, bus
// arrivals, flushes; CPU profile of the fan-out window); "sub" also runs with
// --expose-gc so the probe can tell retained heap from garbage.
//
// Per event it joins: the publisher's send time; the commit
// (pg_xact_commit_timestamp); the sequencer's numbering (sequenced_at); the
// Redis publish (a subscriber of our own on the bus channel); the arrival in
// sub's JS (probe: ioredis 'message'); the hub's flush of it (probe: the
// first and the last socket.write of the shared chunk carrying it); and the
// first and last arrival among the sampled clients. Prints markdown
// (docs/profiles/fanout.md is written from it).
//
//   BENCH_DIST=$(node bench/build-snapshot.mjs) node bench/profile/fanout.mjs [--subscribers 10000] [--events 200] [--rate 50] [--keep DIR]
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from '../lib/clients.mjs';
import { startPostgres, startRedis } from '../lib/infra.mjs';
import { killAllStarted, now, percentile, rssBytes, sleep, sumCpuSplit, sumCpu } from '../lib/proc.mjs';
import { ServiceSystem } from '../lib/systems.mjs';
import { snapshotByConstructor, summarize, summarizeHeap, toMarkdown } from './summarize.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i === -1 ? d : process.argv[i + 1];
};
const SUBSCRIBERS = Number(arg('subscribers', 10_000));
const EVENTS = Number(arg('events', 200));
const RATE = Number(arg('rate', 50));
const SAMPLE_EVERY = Number(arg('sample-every', 100));
const keep = arg('keep');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'registry-profile-'));
chmodSync(tmp, 0o755);
let postgres;
let redis;
let sys;
let pool;
const watchdog = setTimeout(() => {
  console.error('fanout profile: time limit (5 min) reached');
  void cleanup().finally(() => process.exit(1));
}, 5 * 60_000);
watchdog.unref();

async function cleanup() {
  await pool?.stop().catch(() => undefined);
  await sys?.stop().catch(() => undefined);
  await redis?.stop().catch(() => undefined);
  await postgres?.stop().catch(() => undefined);
  killAllStarted();
  rmSync(tmp, { recursive: true, force: true });
}

const log = (m) => console.error(`[fanout] ${m}`);
const out = [];
const print = (s = '') => out.push(s);
const f1 = (v) => (Number.isFinite(v) ? v.toFixed(1) : '–');
const MB = (b) => (b / 2 ** 20).toFixed(1);
const KB = (b) => (b / 1024).toFixed(2);

function stats(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { n: v.length, p50: percentile(v, 50), p90: percentile(v, 90), p99: percentile(v, 99), max: v.at(-1) ?? NaN };
}
const row = (label, s, note = '') => print(`| ${label} | ${f1(s.p50)} | ${f1(s.p90)} | ${f1(s.p99)} | ${f1(s.max)} | ${note} |`);

/** Signals a phase end to a replica's probe and reads what it wrote. */
async function phase(replica, n) {
  process.kill(replica.proc.pid, 'SIGUSR2');
  const file = path.join(tmp, `probe-${replica.proc.pid}.${n}.json`);
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    try {
      const data = JSON.parse(readFileSync(file, 'utf8'));
      return data;
    } catch {
      /* not yet (complete) */
    }
  }
  throw new Error(`no probe output ${file}`);
}

async function profileOf(replica, n) {
  const file = path.join(tmp, `probe-${replica.proc.pid}.${n}.cpuprofile`);
  for (let i = 0; i < 50; i++) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      await sleep(200);
    }
  }
  return undefined;
}

async function main() {
  postgres = await startPostgres(tmp);
  redis = await startRedis('redis-profile');
  // Memory figures are clean only without the allocation profiler and the heap snapshots (both take native memory): `--alloc` and `--snapshots` are separate runs.
  const env = { PROBE_CPU: '2', PROBE_GC: '1', PROBE_DIR: tmp };
  if (process.argv.includes('--alloc')) env.PROBE_HEAP = '1';
  if (process.argv.includes('--snapshots')) env.PROBE_SNAPSHOT = '1';
  sys = new ServiceSystem({ databaseUrl: postgres.url, redisUrl: redis.url, postgres, env });
  const probe = path.join(here, 'probe.mjs');
  // --sub-args "--max-semi-space-size=64": extra node flags for sub (a deployment knob, not a src change).
  const subArgs = String(arg('sub-args', '')).split(' ').filter(Boolean);
  sys.nodeArgsOf = (name) => (name === 'sub' ? ['--expose-gc', ...subArgs, '--import', probe] : ['--import', probe]);
  await sys.start();
  const { writer, sub } = sys.replicas;
  // --sub-args "--trace-gc-nvp": sub's stdout goes to a file as well (--gc-log FILE), for the promoted bytes per scavenge.
  if (arg('gc-log')) {
    const { createWriteStream } = await import('node:fs');
    const out = createWriteStream(arg('gc-log'));
    sub.proc.child.stdout.on('data', (d) => out.write(d));
  }
  pool = new ClientPool(2);
  pool.start();
  const target = sys.targets('main');

  // ---- memory: a fresh replica, then 10,000 connections --------------------------
  await pool.open(target, 1, { client: 'http' });
  await sleep(1500);
  const rss0 = rssBytes(sub.proc.pid);
  const p0 = await phase(sub, 0);
  await phase(writer, 0);
  const cpuOpen0 = sumCpu([sub.proc.pid]);
  const OPEN_CONCURRENCY = Number(arg('open-concurrency', 64)); // per client worker
  const opened = await pool.open(target, SUBSCRIBERS - 1, { client: 'http', sampleEvery: SAMPLE_EVERY, concurrency: OPEN_CONCURRENCY, timeoutMs: 120_000 });
  const cpuOpen1 = sumCpu([sub.proc.pid]);
  log(`${opened.opened + 1} http subscribers in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  await sleep(8000);
  const rss1 = rssBytes(sub.proc.pid);
  const p1 = await phase(sub, 1);
  await phase(writer, 1);
  const held = (await pool.stats()).open;

  if (process.argv.includes('--memory-only'))
    return memoryOnly({ p0, p1, rss0, rss1, n: opened.opened, opened, cpuOpen: cpuOpen1 - cpuOpen0, subArgs, openConcurrency: OPEN_CONCURRENCY });

  // ---- the fan-out window --------------------------------------------------------------
  await sleep(1000);
  await pool.samples();
  const headBefore = await sys.head();
  const tap = await sys.busTap();
  const before = await pool.stats();
  const cpu0 = sumCpuSplit([sub.proc.pid]);
  const wcpu0 = sumCpuSplit([writer.proc.pid]);
  const cl0 = sumCpu(pool.pids());
  const t0 = now();
  const pub = sys.createPublisher(`fan-${Date.now().toString(36)}`);
  let i = 0;
  const period = 1000 / RATE;
  for (; i < EVENTS; i++) {
    const wait = t0 + i * period - now();
    if (wait > 0.5) await sleep(wait);
    pub.send(i);
  }
  const wait = await pool.waitFrames(before.frames, held * EVENTS, { timeoutMs: 90_000, stallMs: 8000 });
  const elapsed = wait.at - t0;
  const cpu1 = sumCpuSplit([sub.proc.pid]);
  const wcpu1 = sumCpuSplit([writer.proc.pid]);
  const cl1 = sumCpu(pool.pids());
  await pub.flush();
  await tap.stop();
  const p2 = await phase(sub, 2);
  const w2 = await phase(writer, 2);
  const samples = await pool.samples();
  const after = await pool.stats();
  const subProfile = await profileOf(sub, 2);
  const writerProfile = await profileOf(writer, 2);
  if (keep) {
    for (const f of readdirSync(tmp).filter((x) => /\.(cpuprofile|heapprofile|heapsnapshot)$/.test(x)))
      copyFileSync(path.join(tmp, f), path.join(keep, `fanout-${f}`));
  }
  log(`${wait.frames}/${held * EVENTS} frames in ${(elapsed / 1000).toFixed(1)} s`);

  // ---- join per event ----------------------------------------------------------------------
  const times = await sys.commitTimes(headBefore, headBefore + EVENTS + 10);
  const flushes = p2.flushes.filter((f) => f.count >= Math.min(1000, held / 2));
  const flushOf = (seq) => flushes.find((f) => f.firstId <= seq && seq <= f.lastId);
  const busOf = (bus, seq) => bus.find((b) => b[1] <= seq && seq <= b[2]);
  const byId = new Map();
  for (const s of samples) {
    const e = byId.get(s.id) ?? { first: Infinity, last: -Infinity, n: 0 };
    e.first = Math.min(e.first, s.recv);
    e.last = Math.max(e.last, s.recv);
    e.n++;
    byId.set(s.id, e);
  }
  const ev = [];
  for (const [id, t] of times) {
    const seq = Number(id);
    const sent = pub.sent.get(t.key);
    const c = byId.get(id);
    const fl = flushOf(seq);
    const arrival = busOf(p2.bus, seq);
    ev.push({
      seq,
      sent,
      commit: t.ms,
      sequenced: t.sequenced,
      published: tap.times.get(id),
      arrived: arrival?.[0],
      handlerMs: arrival?.[3],
      flushStart: fl?.first,
      flushEnd: fl?.last,
      firstRecv: c?.first,
      lastRecv: c?.last,
    });
  }
  const seg = (a, b) => stats(ev.map((e) => e[b] - e[a]));
  const e2e = stats(samples.map((s) => s.recv - (pub.sent.get(times.get(s.id)?.key) ?? NaN)));

  print(`## Setup`);
  print();
  print(
    `${held.toLocaleString('en-US')} SSE subscribers on replica "sub", each an ordinary \`http.get\` (\`agent: false\`) in 2 client worker processes, ${SAMPLE_EVERY === 1 ? 'every one' : `every ${SAMPLE_EVERY}th`} decoding its frames; ${EVENTS} agent creations at ${RATE}/s through \`POST /api/v1/agents\` on replica "writer" (the elected sequencer). One PostgreSQL, one Redis. Both replicas ran with \`--import bench/profile/probe.mjs\`.`,
  );
  print();
  print(
    `Delivered ${wait.frames.toLocaleString('en-US')} / ${(held * EVENTS).toLocaleString('en-US')} frames in ${(elapsed / 1000).toFixed(1)} s (publishing took ${((EVENTS - 1) / RATE).toFixed(1)} s); ${(after.frames - before.frames) / Math.max(1, after.reads - before.reads) > 0 ? ((after.frames - before.frames) / Math.max(1, after.reads - before.reads)).toFixed(2) : '–'} frames per client read.`,
  );
  print(
    `CPU (from /proc) during the window: sub ${((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / 1000).toFixed(0)} ms (user ${((cpu1.user - cpu0.user) / 1000).toFixed(0)}, kernel ${((cpu1.sys - cpu0.sys) / 1000).toFixed(0)}) = ${((cpu1.user + cpu1.sys - cpu0.user - cpu0.sys) / Math.max(1, wait.frames)).toFixed(2)} µs per delivered event; writer ${((wcpu1.user + wcpu1.sys - wcpu0.user - wcpu0.sys) / 1000).toFixed(0)} ms; load clients ${((cl1 - cl0) / 1000).toFixed(0)} ms (${((cl1 - cl0) / 1000 / elapsed).toFixed(2)} cores).`,
  );
  print();
  print(`## Where publish→delivery goes (ms; per event, ${ev.length} events, ${samples.length.toLocaleString('en-US')} samples)`);
  print();
  print('| segment | p50 | p90 | p99 | max | measured by |');
  print('| --- | ---: | ---: | ---: | ---: | --- |');
  row('send → commit (writer: HTTP, auth, transaction)', seg('sent', 'commit'), 'publisher clock, `pg_xact_commit_timestamp`');
  row('commit → numbered (NOTIFY, sequencer wake-up, lock, UPDATE)', seg('commit', 'sequenced'), '`outbox.sequenced_at` (clock_timestamp in the UPDATE)');
  row('numbered → on Redis (commit of numbering, PUBLISH)', seg('sequenced', 'published'), 'own Redis subscriber');
  row("on Redis → in sub's JS (ioredis `message`)", seg('published', 'arrived'), 'probe on ioredis emit');
  row("in sub's JS → flush starts (coalescing wait, loop busy)", seg('arrived', 'flushStart'), 'probe: first `socket.write` of the chunk');
  row('flush starts → flush ends (one write per socket)', seg('flushStart', 'flushEnd'), 'probe: last `socket.write` of the chunk');
  row('flush start → first sampled client has it', seg('flushStart', 'firstRecv'), 'client clock');
  row('flush end → last sampled client has it', seg('flushEnd', 'lastRecv'), 'client clock');
  row('**send → delivery (every sample)**', e2e, '');
  row('commit → delivery (every sample)', stats(samples.map((s) => s.recv - (times.get(s.id)?.ms ?? NaN))), '');
  print();
  const fd = stats(flushes.map((f) => f.last - f.first));
  const fe = stats(flushes.map((f) => f.lastId - f.firstId + 1));
  const gap = stats(flushes.slice(1).map((f, k) => f.first - flushes[k].last));
  print(
    `**Flushes** (sub): ${flushes.length} for ${EVENTS} events; events per flush p50 ${fe.p50} (max ${fe.max}); sockets per flush ${stats(flushes.map((f) => f.count)).p50}; duration p50 ${f1(fd.p50)} ms, p99 ${f1(fd.p99)} ms, max ${f1(fd.max)} ms (= ${f1((fd.p50 * 1000) / Math.max(1, held))} µs per socket at p50); gap between the end of one flush and the start of the next p50 ${f1(gap.p50)} ms.`,
  );
  print();
  const stallsSub = p2.stalls;
  const stallMs = stallsSub.reduce((a, s) => a + s[1], 0);
  const gcMs = p2.gcs.reduce((a, g) => a + g[1], 0);
  const gcByKind = {};
  for (const g of p2.gcs) gcByKind[g[2]] = (gcByKind[g[2]] ?? 0) + g[1];
  print(
    `**Event loop** of sub during the window: delay p50 ${p2.eld.p50} ms, p99 ${p2.eld.p99} ms, max ${p2.eld.max} ms; ${stallsSub.length} stalls over 15 ms totalling ${stallMs.toFixed(0)} ms of ${((p2.end - p2.start) / 1000).toFixed(1)} s; GC ${p2.gcs.length} pauses, ${gcMs.toFixed(0)} ms (${Object.entries(
      gcByKind,
    )
      .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
      .join(', ')}). Writer: delay p50 ${w2.eld.p50} ms, p99 ${w2.eld.p99} ms, max ${w2.eld.max} ms; GC ${w2.gcs.reduce((a, g) => a + g[1], 0).toFixed(0)} ms.`,
  );
  print();
  const handler = stats(p2.bus.map((b) => b[3]));
  print(
    `Bus messages received by sub: ${p2.bus.length} (time in their listeners p50 ${f1(handler.p50)} ms, max ${f1(handler.max)} ms: a message that finds the hub idle is flushed synchronously inside it).`,
  );
  print();

  // ---- memory ------------------------------------------------------------------------------
  const m0 = p0.afterGc?.memory ?? p0.memory;
  const m1 = p1.afterGc?.memory ?? p1.memory;
  const n = opened.opened;
  print(`## Memory of sub: 1 → ${(n + 1).toLocaleString('en-US')} connections (fresh replica)`);
  print();
  if (env.PROBE_HEAP || env.PROBE_SNAPSHOT)
    print(
      `(This run had the ${[env.PROBE_HEAP && 'allocation profiler', env.PROBE_SNAPSHOT && 'heap snapshots'].filter(Boolean).join(' and ')} on: they take native memory of their own, so its RSS figures are not the replica's.)\n`,
    );
  print('| | 1 connection | after opening, settled 8 s | per connection |');
  print('| --- | ---: | ---: | ---: |');
  print(`| RSS (MB) | ${MB(rss0)} | ${MB(rss1)} | ${KB((rss1 - rss0) / n)} KB |`);
  print(
    `| V8 heap used before a full GC (MB) | ${MB(p0.memory.heapUsed)} | ${MB(p1.memory.heapUsed)} | ${KB((p1.memory.heapUsed - p0.memory.heapUsed) / n)} KB |`,
  );
  print(`| V8 heap used after a full GC: retained (MB) | ${MB(m0.heapUsed)} | ${MB(m1.heapUsed)} | ${KB((m1.heapUsed - m0.heapUsed) / n)} KB |`);
  print(
    `| V8 heap committed, before GC (MB) | ${MB(p0.memory.heapTotal)} | ${MB(p1.memory.heapTotal)} | ${KB((p1.memory.heapTotal - p0.memory.heapTotal) / n)} KB |`,
  );
  print(
    `| … new space (young generation) (MB) | ${MB(p0.heapSpaces.new_space?.size ?? 0)} | ${MB(p1.heapSpaces.new_space?.size ?? 0)} | ${KB(((p1.heapSpaces.new_space?.size ?? 0) - (p0.heapSpaces.new_space?.size ?? 0)) / n)} KB |`,
  );
  print(
    `| … old space (MB) | ${MB(p0.heapSpaces.old_space?.size ?? 0)} | ${MB(p1.heapSpaces.old_space?.size ?? 0)} | ${KB(((p1.heapSpaces.old_space?.size ?? 0) - (p0.heapSpaces.old_space?.size ?? 0)) / n)} KB |`,
  );
  print(`| V8 heap committed after the GC (MB) | ${MB(m0.heapTotal)} | ${MB(m1.heapTotal)} | ${KB((m1.heapTotal - m0.heapTotal) / n)} KB |`);
  print(
    `| external + array buffers (MB) | ${MB(m0.external + m0.arrayBuffers)} | ${MB(m1.external + m1.arrayBuffers)} | ${KB((m1.external + m1.arrayBuffers - m0.external - m0.arrayBuffers) / n)} KB |`,
  );
  print(
    `| RSS not in the V8 heap or external (native: libuv handles, malloc arenas, code) (MB) | ${MB(rss0 - p0.memory.heapTotal - p0.memory.external)} | ${MB(rss1 - p1.memory.heapTotal - p1.memory.external)} | ${KB((rss1 - p1.memory.heapTotal - p1.memory.external - (rss0 - p0.memory.heapTotal - p0.memory.external)) / n)} KB |`,
  );
  print(`| RSS right after the forced GC (MB) | ${MB(m0.rss)} | ${MB(m1.rss)} | ${KB((m1.rss - m0.rss) / n)} KB |`);
  print();
  const heapFile = path.join(tmp, `probe-${sub.proc.pid}.1.heapprofile`);
  let heapProfile;
  for (let k = 0; k < 20 && !heapProfile; k++) {
    try {
      heapProfile = JSON.parse(readFileSync(heapFile, 'utf8'));
    } catch {
      await sleep(200);
    }
  }
  if (heapProfile) {
    const h = summarizeHeap(heapProfile);
    print(
      `Allocated while the connections opened (V8 sampling heap profiler, collected objects included): ${MB(h.totalBytes)} MB, ${KB(h.totalBytes / n)} KB per connection, by component:`,
    );
    print();
    print('| component | KB per connection | share |');
    print('| --- | ---: | ---: |');
    for (const [c, v] of h.byComp.slice(0, 14)) print(`| ${c} | ${KB(v / n)} | ${((100 * v) / h.totalBytes).toFixed(0)}% |`);
    print();
    print('| allocating function | KB per connection |');
    print('| --- | ---: |');
    for (const [f, v] of h.byFn.slice(0, 15)) print(`| \`${f.replace(/\|/g, '\\|')}\` | ${KB(v / n)} |`);
    print();
  }
  // Retained objects per connection: heap snapshots after a full GC, 1 and N+1 connections.
  try {
    const snap = (k) => snapshotByConstructor(JSON.parse(readFileSync(path.join(tmp, `probe-${sub.proc.pid}.${k}.heapsnapshot`), 'utf8')));
    const a = snap(0);
    const b = snap(1);
    const delta = [...b.entries()]
      .map(([k, v]) => ({ k, count: v.count - (a.get(k)?.count ?? 0), size: v.size - (a.get(k)?.size ?? 0) }))
      .filter((d) => d.size > 0)
      .sort((x, y) => y.size - x.size);
    const total = delta.reduce((t, d) => t + d.size, 0);
    print(
      `Retained after a full GC (heap snapshots at 1 and ${(n + 1).toLocaleString('en-US')} connections, difference by constructor; ${KB(total / n)} KB per connection in all):`,
    );
    print();
    print('| object | more objects | per connection | bytes per connection |');
    print('| --- | ---: | ---: | ---: |');
    for (const d of delta.slice(0, 18))
      print(
        `| \`${d.k.slice(0, 60).replace(/\|/g, '\\|')}\` | ${d.count.toLocaleString('en-US')} | ${(d.count / n).toFixed(2)} | ${(d.size / n).toFixed(0)} |`,
      );
    print();
  } catch (error) {
    log(`no heap snapshots: ${error.message}`);
  }
  print(
    `Opening the ${n.toLocaleString('en-US')} connections took ${(opened.ms / 1000).toFixed(1)} s and ${((cpuOpen1 - cpuOpen0) / 1000).toFixed(0)} ms of sub's CPU (${((cpuOpen1 - cpuOpen0) / n).toFixed(0)} µs per connection: HTTP parse, auth query, Redis slot, head, hub join); GC during the opening: ${p1.gcs.length} pauses, ${p1.gcs.reduce((a, g) => a + g[1], 0).toFixed(0)} ms.`,
  );
  print();

  // ---- CPU profiles --------------------------------------------------------------------------
  if (subProfile) {
    print(`## CPU profile of sub during the fan-out window`);
    print();
    print(toMarkdown(summarize(subProfile), { top: 20, per: wait.frames, unit: 'delivered event' }));
    print();
  }
  if (writerProfile) {
    print(`## CPU profile of writer during the fan-out window`);
    print();
    print(toMarkdown(summarize(writerProfile), { top: 15, per: EVENTS, unit: 'write' }));
    print();
  }
  print(
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}, load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; service build: ${sys.main}.`,
  );
  if (arg('dump')) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(arg('dump'), JSON.stringify({ ev, flushes, stalls: p2.stalls, gcs: p2.gcs, bus: p2.bus, eld: p2.eld }, null, 1));
  }
}

/** `--memory-only`: one line of the memory comparison table (RSS, heap before/after a full GC, per connection). */
function memoryOnly({ p0, p1, rss0, rss1, n, opened, cpuOpen, subArgs, openConcurrency }) {
  const m0 = p0.afterGc.memory;
  const m1 = p1.afterGc.memory;
  print(
    `| ${subArgs.join(' ') || '(defaults)'}, ${openConcurrency * 2} opening at a time | ${(opened.ms / 1000).toFixed(1)} s | ${KB((rss1 - rss0) / n)} | ${KB((p1.memory.heapUsed - p0.memory.heapUsed) / n)} | ${KB((p1.memory.heapTotal - p0.memory.heapTotal) / n)} | ${KB((m1.heapUsed - m0.heapUsed) / n)} | ${KB((m1.rss - m0.rss) / n)} | ${MB(p0.heapSpaces.new_space?.size ?? 0)} → ${MB(p1.heapSpaces.new_space?.size ?? 0)} | ${p1.gcs.length} (${p1.gcs.reduce((a, g) => a + g[1], 0).toFixed(0)} ms) | ${(cpuOpen / n).toFixed(0)} |`,
  );
}

main()
  .then(async () => {
    console.log(out.join('\n'));
    await cleanup();
    process.exit(0);
  })
  .catch(async (error) => {
    console.error(error);
    console.log(out.join('\n'));
    await cleanup();
    process.exit(1);
  });
