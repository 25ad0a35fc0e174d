#!/usr/bin/env node
// What an idle Socket.IO connection keeps on a replica (W10 in the benchmark):
// a fresh replica ("sub", with bench/profile/probe.mjs and --expose-gc), one
// socket.io-client connection (subscribed as W10's are), then N more; memory
// after a full GC at both points and, with --snapshots, heap snapshots whose
// difference by constructor is what the N connections retain. Prints markdown.
//
//   BENCH_DIST=$(node bench/build-snapshot.mjs) node bench/profile/socketio-memory.mjs [--connections 3000] [--snapshots | --alloc]
//
// --alloc: what the openings allocate, by component and function (V8's sampling heap profiler; its own memory spoils RSS).
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from '../lib/clients.mjs';
import { startPostgres, startRedis } from '../lib/infra.mjs';
import { killAllStarted, rssBytes, sleep } from '../lib/proc.mjs';
import { ServiceSystem } from '../lib/systems.mjs';
import { snapshotByConstructor, summarizeHeap } from './summarize.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i === -1 ? d : process.argv[i + 1];
};
const N = Number(arg('connections', 3000));
const snapshots = process.argv.includes('--snapshots');
const alloc = process.argv.includes('--alloc');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'registry-profile-'));
chmodSync(tmp, 0o755);
let postgres;
let redis;
let sys;
let pool;
const watchdog = setTimeout(() => {
  console.error('socketio memory profile: time limit (5 min) reached');
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

const log = (m) => console.error(`[socketio-memory] ${m}`);
const KB = (b) => (b / 1024).toFixed(2);

/** Signals a phase end to the replica's probe and reads what it wrote. */
async function phase(replica, n) {
  process.kill(replica.proc.pid, 'SIGUSR2');
  const file = path.join(tmp, `probe-${replica.proc.pid}.${n}.json`);
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      /* not yet (complete) */
    }
  }
  throw new Error(`no probe output ${file}`);
}

async function main() {
  postgres = await startPostgres(tmp);
  redis = await startRedis('redis-profile');
  const env = { PROBE_GC: '1', PROBE_DIR: tmp, ...(snapshots ? { PROBE_SNAPSHOT: '1' } : {}), ...(alloc ? { PROBE_HEAP: '1' } : {}) };
  sys = new ServiceSystem({ databaseUrl: postgres.url, redisUrl: redis.url, postgres, env });
  const probe = path.join(here, 'probe.mjs');
  sys.nodeArgsOf = (name) => (name === 'sub' ? ['--expose-gc', '--import', probe] : []);
  await sys.start();
  const { sub } = sys.replicas;
  pool = new ClientPool(2);
  pool.start();
  const targets = await sys.socketTargets();
  await pool.open(targets, 1, { client: 'socketio' });
  await sleep(1500);
  const rss0 = rssBytes(sub.proc.pid);
  const p0 = await phase(sub, 0);
  const opened = await pool.open(targets, N, { client: 'socketio', concurrency: 64, timeoutMs: 120_000 });
  log(`${opened.opened + 1} Socket.IO connections in ${(opened.ms / 1000).toFixed(1)} s ${JSON.stringify(opened.results)}`);
  await sleep(8000);
  const rss1 = rssBytes(sub.proc.pid);
  const p1 = await phase(sub, 1);
  const n = opened.opened;
  const [m0, m1] = [p0.afterGc.memory, p1.afterGc.memory];
  const out = [];
  out.push(
    `${n.toLocaleString('en-US')} idle Socket.IO connections (socket.io-client, WebSocket, each subscribed with a channel, a filter and a cursor) on a fresh replica, per connection: ` +
      `RSS ${KB((rss1 - rss0) / n)} KB; V8 heap used ${KB((p1.memory.heapUsed - p0.memory.heapUsed) / n)} KB, committed ${KB((p1.memory.heapTotal - p0.memory.heapTotal) / n)} KB; ` +
      `after a full GC: heap used ${KB((m1.heapUsed - m0.heapUsed) / n)} KB, RSS ${KB((m1.rss - m0.rss) / n)} KB, external ${KB((m1.external - m0.external) / n)} KB.`,
  );
  if (snapshots) {
    const snap = (k) => snapshotByConstructor(JSON.parse(readFileSync(path.join(tmp, `probe-${sub.proc.pid}.${k}.heapsnapshot`), 'utf8')));
    const a = snap(0);
    const b = snap(1);
    const delta = [...b.entries()]
      .map(([k, v]) => ({ k, count: v.count - (a.get(k)?.count ?? 0), size: v.size - (a.get(k)?.size ?? 0) }))
      .filter((d) => d.size > 0)
      .sort((x, y) => y.size - x.size);
    const total = delta.reduce((t, d) => t + d.size, 0);
    out.push('');
    out.push(`Retained after a full GC, difference of the heap snapshots by constructor (${KB(total / n)} KB per connection in all):`);
    out.push('');
    out.push('| object | more objects | per connection | bytes per connection |');
    out.push('| --- | ---: | ---: | ---: |');
    for (const d of delta.slice(0, 30))
      out.push(
        `| \`${d.k.slice(0, 60).replace(/\|/g, '\\|')}\` | ${d.count.toLocaleString('en-US')} | ${(d.count / n).toFixed(2)} | ${(d.size / n).toFixed(0)} |`,
      );
  }
  if (alloc) {
    let profile;
    for (let k = 0; k < 50 && !profile; k++) {
      try {
        profile = JSON.parse(readFileSync(path.join(tmp, `probe-${sub.proc.pid}.1.heapprofile`), 'utf8'));
      } catch {
        await sleep(200);
      }
    }
    const h = summarizeHeap(profile);
    out.push('');
    out.push(`Allocated while the connections opened (collected objects included): ${KB(h.totalBytes / n)} KB per connection, by component:`);
    out.push('');
    out.push('| component | KB per connection | share |');
    out.push('| --- | ---: | ---: |');
    for (const [c, v] of h.byComp.slice(0, 14)) out.push(`| ${c} | ${KB(v / n)} | ${((100 * v) / h.totalBytes).toFixed(0)}% |`);
    out.push('');
    out.push('| allocating function | KB per connection |');
    out.push('| --- | ---: |');
    for (const [f, v] of h.byFn.slice(0, 20)) out.push(`| \`${f.replace(/\|/g, '\\|')}\` | ${KB(v / n)} |`);
  }
  console.log(out.join('\n'));
}

main()
  .then(async () => {
    await cleanup();
    process.exit(0);
  })
  .catch(async (error) => {
    console.error(error);
    await cleanup();
    process.exit(1);
  });
