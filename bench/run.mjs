#!/usr/bin/env node
// `npm run bench`: fan-out cost, latency and memory of this service side by
// side with nchan (nginx, C, Redis mode) and a raw Node `http` SSE server,
// write throughput against a raw `pg` floor, and a resume storm, from one run
// on this machine. See docs/benchmarks.md (written by this run).
//
//   node bench/run.mjs [--quick] [--systems service,nchan,raw,socketio] [--workloads W3,W7,W1,W2,W4,W5,W8,W6,W9,W10]
//                      [--workers N] [--no-report]
//
// BENCH_DIST=<dir> runs the service from a copy of dist/ (other engineers'
// builds replace dist/ while they work); BENCH_NODE=<node binary> runs its
// replicas on another Node (the harness itself stays on this one).
//   node bench/run.mjs --render     (rewrite the docs from bench/results/latest.json)
//   node bench/run.mjs --workloads W7 --systems service --out /tmp/a.json   (figures to another file: A/B runs)
//   node bench/run.mjs --workloads W6 --systems service --merge [--reason "..."]
//                                   (re-run some workloads and put them into the last
//                                    full run's figures; the page lists what was re-run, when and why)
//
// A full run (all systems, all workloads, full size) writes docs/benchmarks.md
// and docs/benchmarks.svg; every run writes bench/results/latest.json.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientPool } from './lib/clients.mjs';
import { ensurePackages, startPostgres, startRedis } from './lib/infra.mjs';
import { CLK_TCK, HARD_FD_LIMIT, killAllStarted, now } from './lib/proc.mjs';
import { renderMarkdown, renderSvg, renderTable } from './lib/report.mjs';
import { NchanSystem, PlainSocketIoSystem, RawSystem, ServiceSystem } from './lib/systems.mjs';
import { cluster, fanout, fanoutHttp, idle, replay, resumeStorm, SIZES, socketFanout, socketIdle, writes } from './lib/workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const BUDGET_MS = 9 * 60_000; // the whole run must stay under 10 minutes

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return fallback;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}

const quick = arg('quick', false) === true;
const ALL_SYSTEMS = 'service,nchan,raw,socketio';
const systemNames = String(arg('systems', ALL_SYSTEMS)).split(',');
const ALL_WORKLOADS = 'W3,W7,W1,W2,W4,W5,W8,W6,W10,W9';
const workloadNames = String(arg('workloads', ALL_WORKLOADS)).split(',');
const workers = Number(arg('workers', 2));
const fullRun = !quick && systemNames.length === ALL_SYSTEMS.split(',').length && workloadNames.length === ALL_WORKLOADS.split(',').length;
const writeReport = arg('no-report', false) !== true;
const merge = arg('merge', false) === true;
const sizes = structuredClone(quick ? SIZES.quick : SIZES.full);
// One server process can hold at most its descriptor limit in connections; where
// the hard limit cannot be raised (no CAP_SYS_RESOURCE) W3 runs at what fits.
const FD_RESERVE = 64; // listening socket, database pool, Redis, stdio, epoll...
const w3Requested = sizes.W3.connections;
sizes.W3.connections = Math.min(w3Requested, HARD_FD_LIMIT - FD_RESERVE);

const started = now();
const log = (m) => console.log(`[${((now() - started) / 1000).toFixed(1).padStart(6)} s] ${m}`);

const WORKLOADS = {
  W1: { run: fanout, title: `W1 fan-out: ${sizes.W1.subscribers} subscribers, ${sizes.W1.events} events at ${sizes.W1.rate}/s` },
  W2: { run: fanout, title: `W2 fan-out: ${sizes.W2.subscribers} subscribers, ${sizes.W2.events} events at ${sizes.W2.rate}/s` },
  W3: { run: idle, title: `W3 idle: ${sizes.W3.connections} connections on one server (memory)`, fresh: true },
  W4: { run: cluster, title: `W4 cluster: ${sizes.W4.subscribers} subscribers over 3 nodes, ${sizes.W4.rate} mutations/s` },
  W5: { run: replay, title: `W5 replay: one client resuming ${sizes.W5.behind} events behind` },
  W6: {
    run: writes,
    title: `W6 writes: ${sizes.W6.concurrency} clients creating agents for ${sizes.W6.seconds} s (raw pg floor, 1 and 3 replicas)`,
    only: ['service'],
  },
  // W7 against nchan (what issue 10 compares with); the raw Node server is left out to keep the run under 10 minutes.
  W7: {
    run: fanoutHttp,
    title: `W7 fan-out to ordinary http clients: ${sizes.W7.subscribers} subscribers, ${sizes.W7.events} events at ${sizes.W7.rate}/s`,
    fresh: true,
    only: ['service', 'nchan'],
  },
  W8: { run: resumeStorm, title: `W8 resume storm: ${sizes.W8.clients} clients resuming ${sizes.W8.behind} events behind at once`, only: ['service'] },
  // Socket.IO (issue 11): this service's /ws/v1 against plain socket.io + @socket.io/redis-adapter, same socket.io-client clients.
  W9: {
    run: socketFanout,
    title: `W9 Socket.IO fan-out: ${sizes.W9.subscribers} subscribers, ${sizes.W9.events} events at ${sizes.W9.rate}/s (filters and resume on)`,
    only: ['service', 'socketio'],
  },
  W10: {
    run: socketIdle,
    title: `W10 Socket.IO idle: ${sizes.W10.connections} connections on a fresh server (memory)`,
    fresh: true,
    only: ['service', 'socketio'],
  },
};

/** Whether a workload runs on a system: its `only` list, else every SSE system (all but plain socket.io). */
function applies(spec, systemName) {
  return spec.only ? spec.only.includes(systemName) : systemName !== 'socketio';
}

let tmp;
let loadAtStart;
let postgres;
const redises = [];
const systems = [];
let pool;

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await pool?.stop().catch(() => undefined);
    for (const s of systems) await s.stop().catch(() => undefined);
    for (const r of redises) await r.stop().catch(() => undefined);
    await postgres?.stop().catch(() => undefined);
    killAllStarted();
    if (tmp && !process.env.BENCH_KEEP_TMP) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const event of ['uncaughtException', 'unhandledRejection']) {
  process.on(event, (error) => {
    console.error(`bench: ${event}:`, error);
    void cleanup().finally(() => process.exit(1));
  });
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** CPU time (ms) all cores of the machine spent busy so far (/proc/stat: everything but idle and iowait). */
function machineBusy() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return ((total - f[3] - (f[4] ?? 0)) * 1000) / CLK_TCK;
}

/** `--render`: rewrite docs/benchmarks.md and .svg from bench/results/latest.json (no measuring). */
function renderOnly() {
  const report = JSON.parse(readFileSync(path.join(here, 'results', 'latest.json'), 'utf8'));
  writeFileSync(path.join(repo, 'docs', 'benchmarks.md'), renderMarkdown(report));
  writeFileSync(path.join(repo, 'docs', 'benchmarks.svg'), renderSvg(report));
  console.log(renderTable(report));
}

async function main() {
  if (arg('render', false) === true) return renderOnly();
  const dist = process.env.BENCH_DIST ? path.resolve(process.env.BENCH_DIST) : path.join(repo, 'dist');
  if (!existsSync(path.join(dist, 'main.js'))) throw new Error(`${dist}/main.js is missing: run \`npm run bench\` (it builds first)`);
  ensurePackages();
  loadAtStart = os.loadavg();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'registry-bench-'));
  chmodSync(tmp, 0o755); // PostgreSQL runs as its own user and must reach its data dir
  log(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; temp ${tmp}`);
  if (sizes.W3.connections < w3Requested) {
    log(`the hard descriptor limit here is ${HARD_FD_LIMIT} and cannot be raised: W3 runs ${sizes.W3.connections} connections, not ${w3Requested}`);
  }

  const needService = systemNames.includes('service');
  if (needService) {
    postgres = await startPostgres(tmp);
    log('PostgreSQL started');
  }
  const serviceRedis = await startRedis('redis-service');
  const nchanRedis = await startRedis('redis-nchan');
  redises.push(serviceRedis, nchanRedis);
  const socketioRedis = systemNames.includes('socketio') ? await startRedis('redis-socketio') : undefined;
  if (socketioRedis) redises.push(socketioRedis);
  for (const name of systemNames) {
    const sys =
      name === 'service'
        ? new ServiceSystem({ databaseUrl: postgres.url, redisUrl: serviceRedis.url, postgres })
        : name === 'nchan'
          ? new NchanSystem({ root: tmp, redisPort: nchanRedis.port })
          : name === 'raw'
            ? new RawSystem()
            : name === 'socketio'
              ? new PlainSocketIoSystem({ redisUrl: socketioRedis.url })
              : undefined;
    if (!sys) throw new Error(`unknown system ${name} (service, nchan, raw, socketio)`);
    await sys.start();
    systems.push(sys);
    log(`${sys.label} started`);
  }
  pool = new ClientPool(workers);
  pool.start();

  const results = {};
  for (const w of workloadNames) {
    const spec = WORKLOADS[w];
    if (!spec) throw new Error(`unknown workload ${w}`);
    results[w] = {};
    log(spec.title);
    for (const sys of systems) {
      if (!applies(spec, sys.name)) continue;
      if (now() - started > BUDGET_MS) {
        log(`  ${sys.name}: skipped (time budget spent)`);
        results[w][sys.name] = { skipped: 'time budget' };
        continue;
      }
      try {
        if (spec.fresh) await sys.restartMeasured();
        const t0 = now();
        const busy0 = machineBusy();
        const load0 = os.loadavg()[0];
        results[w][sys.name] = await spec.run(w, sys, pool, sizes[w], log);
        results[w][sys.name].wallMs = now() - t0;
        // Cores busy on the whole machine meanwhile (ours and anyone else's: other tests share these cores).
        results[w][sys.name].machineBusyCores = Math.min(os.cpus().length, (machineBusy() - busy0) / (now() - t0));
        results[w][sys.name].loadAverageAtStart = load0;
      } catch (error) {
        log(`  ${sys.name}: FAILED ${error.stack ?? error}`);
        results[w][sys.name] = { error: String(error.message ?? error) };
        await pool.closeAll().catch(() => undefined);
      }
    }
  }

  const meta = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    node: process.env.BENCH_NODE ? `${process.version} (service replicas: ${process.env.BENCH_NODE})` : process.version,
    quick,
    sizes,
    w3Requested,
    fdHardLimit: Number.isFinite(HARD_FD_LIMIT) ? HARD_FD_LIMIT : 'unlimited',
    totalSeconds: (now() - started) / 1000,
    workers,
    build: existsSync(path.join(dist, 'COMMIT'))
      ? `commit ${readFileSync(path.join(dist, 'COMMIT'), 'utf8').trim().slice(0, 12)}`
      : 'dist/ of the working tree',
    loadAverage: { start: loadAtStart, end: os.loadavg() },
  };
  let report = { meta, results };
  let complete = fullRun;
  // --out FILE: the figures go there (and --merge merges into it) instead of the shared latest.json, e.g. for A/B runs of two builds.
  const latest = typeof arg('out', undefined) === 'string' ? path.resolve(arg('out')) : path.join(here, 'results', 'latest.json');
  if (merge) {
    // --merge: these workloads were re-run (e.g. other work on the machine made the first figures noisy);
    // they replace the previous run's figures for these systems, and the page says so.
    const prev = JSON.parse(readFileSync(latest, 'utf8'));
    if (prev.meta.quick !== quick) throw new Error('--merge: the previous run was of another size (--quick)');
    const replaced = {};
    for (const [w, bySystem] of Object.entries(results)) {
      replaced[w] = Object.fromEntries(Object.keys(bySystem).map((k) => [k, prev.results[w]?.[k]]));
      prev.results[w] = { ...prev.results[w], ...bySystem };
      prev.meta.sizes[w] = sizes[w]; // a workload new since the last full run has no size there yet
    }
    const reason = arg('reason', undefined);
    prev.meta.reruns = [
      ...(prev.meta.reruns ?? []),
      {
        date: meta.date,
        workloads: Object.keys(results),
        systems: systemNames,
        loadAverage: meta.loadAverage,
        totalSeconds: meta.totalSeconds,
        reason: typeof reason === 'string' ? reason : undefined,
        replaced,
      },
    ];
    report = prev;
    complete = !quick && ALL_WORKLOADS.split(',').every((w) => ALL_SYSTEMS.split(',').every((k) => (applies(WORKLOADS[w], k) ? report.results[w]?.[k] : true)));
  }
  mkdirSync(path.join(here, 'results'), { recursive: true });
  writeFileSync(latest, JSON.stringify(report, null, 2));
  console.log(`\n${renderTable(report)}`);
  if (complete && writeReport && arg('out', undefined) === undefined) {
    writeFileSync(path.join(repo, 'docs', 'benchmarks.md'), renderMarkdown(report));
    writeFileSync(path.join(repo, 'docs', 'benchmarks.svg'), renderSvg(report));
    log('wrote docs/benchmarks.md and docs/benchmarks.svg');
  } else {
    log('partial or quick run: docs/benchmarks.md left as it is (bench/results/latest.json has the figures)');
  }
  log(`total ${meta.totalSeconds.toFixed(0)} s`);
}

const watchdog = setTimeout(() => {
  console.error('bench: hard time limit (9.8 min) reached; stopping');
  void cleanup().finally(() => process.exit(1));
}, 9.8 * 60_000);
watchdog.unref();

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
