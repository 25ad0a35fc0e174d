#!/usr/bin/env node
// Profiles the write path (issue 10): one replica, 16 concurrent clients
// creating agents through REST for 15 s, under V8's CPU profiler (started and
// stopped by bench/profile/probe.mjs around the load, so start-up and warm-up
// are not in it), with event-loop delay and GC from the same probe, the
// statements PostgreSQL ran (pg_stat_statements) and what its backends waited
// on (pg_stat_activity, sampled). Then the same transaction's SQL variants
// with `pg` directly, to measure what fewer round trips and no table lock
// would give. Prints markdown (docs/profiles/write-path.md is written from it).
//
//   BENCH_DIST=$(node bench/build-snapshot.mjs) node bench/profile/write-path.mjs [--seconds 15] [--keep DIR]
//   … --replicas 3   the load round-robin over 3 replicas, every one profiled (W6's 3-replica case);
//                    the `pg` variants and the bare Node server are then left out
//
// Everything on 127.0.0.1, bounded, and every process it starts is ended by pid.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ClientPool } from '../lib/clients.mjs';
import { startPostgres, startRedis } from '../lib/infra.mjs';
import { freePort, killAllStarted, percentile, sleep, spawnLimited, stopProc, sumCpuSplit, sumCpu, waitForPort } from '../lib/proc.mjs';
import { ServiceSystem } from '../lib/systems.mjs';
import { summarize, toMarkdown } from './summarize.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf(`--${n}`);
  return i === -1 ? d : process.argv[i + 1];
};
const SECONDS = Number(arg('seconds', 15));
const VARIANT_SECONDS = Number(arg('variant-seconds', 8));
const CONCURRENCY = 16;
const keep = arg('keep');
const REPLICAS = Number(arg('replicas', 1));

const tmp = mkdtempSync(path.join(os.tmpdir(), 'registry-profile-'));
chmodSync(tmp, 0o755);
let postgres;
let redis;
let sys;
let pool;
const watchdog = setTimeout(() => {
  console.error('write-path profile: time limit (5 min) reached');
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

const log = (m) => console.error(`[write-path] ${m}`);
const out = [];
const print = (s = '') => out.push(s);

function stats(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  return { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99) };
}

function shares(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(0)}%`)
    .join(', ');
}

async function main() {
  postgres = await startPostgres(tmp);
  redis = await startRedis('redis-profile');
  sys = new ServiceSystem({ databaseUrl: postgres.url, redisUrl: redis.url, postgres, env: { PROBE_CPU: '1', PROBE_DIR: tmp } });
  sys.nodeArgsOf = () => ['--import', path.join(here, 'probe.mjs')];
  const writer = await sys.startReplica('writer');
  const replicas = [writer];
  for (let i = 2; i <= REPLICAS; i++) replicas.push(await sys.startReplica(`r${i}`));
  const pids = replicas.map((x) => x.proc.pid);
  sys.db = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool = new ClientPool(2);
  pool.start();
  const targets = sys.writeTargets();
  const prefix = `wp-${Date.now().toString(36)}`;

  log('warm-up (3 s)');
  await pool.writes('httpwrites', { targets, prefix: `${prefix}-warm` }, CONCURRENCY, 3);
  await sys.resetWrites(prefix);
  await sleep(1000);
  // Idle CPU of the replica (timers, lease renewal, polls) over 2 s.
  const idle0 = sumCpu(pids);
  await sleep(2000);
  const idleMsPerSec = (sumCpu(pids) - idle0) / 1000 / 2;

  for (const pid of pids) process.kill(pid, 'SIGUSR2'); // phase 0 ends: the profiler starts
  await sleep(200);
  const activity = sys.sampleActivity('bench');
  const perReplica0 = pids.map((pid) => sumCpu([pid]));
  const c0 = sumCpuSplit(pids);
  const pg0 = sys.postgresCpu();
  const cl0 = sumCpu(pool.pids());
  log(`load: ${CONCURRENCY} clients for ${SECONDS} s`);
  const r = await pool.writes('httpwrites', { targets, prefix: `${prefix}-load` }, CONCURRENCY, SECONDS);
  const act = await activity.stop();
  for (let i = 0; i < 100; i++) {
    if (!(await sys.db.query('SELECT EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL) AS p')).rows[0].p) break;
    await sleep(50);
  }
  const c1 = sumCpuSplit(pids);
  const perReplica1 = pids.map((pid) => sumCpu([pid]));
  const pg1 = sys.postgresCpu();
  const cl1 = sumCpu(pool.pids());
  for (const pid of pids) process.kill(pid, 'SIGUSR2'); // phase 1 ends: profile written
  const statements = await sys.statements('bench');
  await sleep(1500);
  const files = readdirSync(tmp);
  const read = (pid, ext) =>
    JSON.parse(
      readFileSync(
        path.join(
          tmp,
          files.find((f) => f.startsWith(`probe-${pid}.1.${ext}`)),
        ),
        'utf8',
      ),
    );
  const probe = read(writer.proc.pid, 'json');
  const profiles = pids.map((pid) => read(pid, 'cpuprofile'));
  const profile = profiles[0];
  if (keep)
    pids.forEach((pid, i) =>
      copyFileSync(
        path.join(
          tmp,
          files.find((f) => f.startsWith(`probe-${pid}.1.cpuprofile`)),
        ),
        path.join(keep, `write-path${i ? `-r${i + 1}` : ''}.cpuprofile`),
      ),
    );
  const ok = r.ok;
  const lat = stats(r.latencies);
  const cpuUser = (c1.user - c0.user) / 1000 / ok;
  const cpuSys = (c1.sys - c0.sys) / 1000 / ok;

  print(`## Load`);
  print();
  print(
    `${CONCURRENCY} clients (2 worker processes, keep-alive \`node:http\`) creating agents through \`POST /api/v1/agents\` on ${REPLICAS === 1 ? 'one replica' : `${REPLICAS} replicas (round-robin, as a load balancer would)`} for ${SECONDS} s, after a 3 s warm-up.`,
  );
  print();
  print('| figure | value |');
  print('| --- | ---: |');
  print(`| writes | ${ok.toLocaleString('en-US')} (${JSON.stringify(r.statuses)}) |`);
  print(`| writes/s | ${(ok / (r.ms / 1000)).toFixed(0)} |`);
  print(`| latency p50 / p99 (ms) | ${lat.p50.toFixed(1)} / ${lat.p99.toFixed(1)} |`);
  print(
    `| replica CPU per write (ms, /proc: user + kernel${REPLICAS > 1 ? ', all replicas' : ''}) | ${(cpuUser + cpuSys).toFixed(3)} (${cpuUser.toFixed(3)} + ${cpuSys.toFixed(3)}) |`,
  );
  if (REPLICAS > 1)
    print(`| … per replica (writer/sequencer first) | ${perReplica1.map((v, i) => ((v - perReplica0[i]) / 1000 / ok).toFixed(3)).join(' / ')} |`);
  print(
    `| … of which the replica${REPLICAS > 1 ? "s'" : "'s"} idle background (timers, lease, polls: ${idleMsPerSec.toFixed(1)} ms/s) | ${((idleMsPerSec * (r.ms / 1000)) / ok).toFixed(3)} |`,
  );
  print(`| PostgreSQL CPU per write (ms, all backends) | ${((pg1 - pg0) / 1000 / ok).toFixed(3)} |`);
  print(`| load client CPU per write (ms) | ${((cl1 - cl0) / 1000 / ok).toFixed(3)} |`);
  print(`| event-loop delay p50 / p99 / max (ms) | ${probe.eld.p50} / ${probe.eld.p99} / ${probe.eld.max} |`);
  const gcMs = probe.gcs.reduce((a, g) => a + g[1], 0);
  print(`| GC pauses | ${probe.gcs.length} (${gcMs.toFixed(0)} ms, ${((gcMs * 1000) / ok).toFixed(1)} µs per write) |`);
  print(`| PostgreSQL backends, sampled every 50 ms (${act.samples} samples) | ${shares(act.counts)} |`);
  print();
  print(`## Statements per write (pg_stat_statements, every client of the database)`);
  print();
  print('| per write | mean ms | statement |');
  print('| ---: | ---: | --- |');
  const calls = statements.reduce((a, s) => a + s.calls, 0);
  for (const s of statements.slice(0, 16))
    print(`| ${(s.calls / ok).toFixed(3)} | ${(s.ms / Math.max(1, s.calls)).toFixed(3)} | \`${s.query.slice(0, 110).replace(/\|/g, '\\|')}\` |`);
  print(`| **${(calls / ok).toFixed(2)}** | | all statements |`);
  print();
  print(`## CPU profile of the replica during the load${REPLICAS > 1 ? ' (the writer, which also sequences)' : ''}`);
  print();
  print(toMarkdown(summarize(profile), { top: 30, per: ok, unit: 'write' }));
  print();
  for (let i = 1; i < profiles.length; i++) {
    print(`## CPU profile of replica ${i + 1} during the load`);
    print();
    print(toMarkdown(summarize(profiles[i]), { top: 15, per: ok, unit: 'write' }));
    print();
  }
  if (REPLICAS > 1) {
    print(
      `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}, load average at the end ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; service build: ${sys.main}.`,
    );
    return;
  }

  // ---- the same transaction's SQL without the service ----------------------------
  const floorUrl = await sys.floorUrl();
  const keyHash = createHash('sha256').update(sys.adminKey).digest('hex');
  const resetFloor = async () => {
    const c = new pg.Client({ connectionString: floorUrl });
    await c.connect();
    await c.query('TRUNCATE agents CASCADE; TRUNCATE outbox');
    await c.query("INSERT INTO registry_counts VALUES ('agents', 0) ON CONFLICT (kind) DO UPDATE SET n = 0");
    await c.end();
    await sleep(300);
  };
  const fc = new pg.Client({ connectionString: floorUrl });
  await fc.connect();
  await fc.query(`
    CREATE TABLE IF NOT EXISTS api_keys (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text, prefix text, key_hash text UNIQUE NOT NULL,
      role text, created_by text, created_at timestamptz DEFAULT now(), revoked_at timestamptz, expires_at timestamptz, last_used_at timestamptz);
    CREATE TABLE IF NOT EXISTS prompts (agent_id text NOT NULL REFERENCES agents(id) ON DELETE CASCADE, version integer NOT NULL, active boolean NOT NULL DEFAULT false,
      PRIMARY KEY (agent_id, version));
    CREATE UNIQUE INDEX IF NOT EXISTS prompts_one_active ON prompts (agent_id) WHERE active;
    CREATE TABLE IF NOT EXISTS registry_counts (kind text PRIMARY KEY, n integer NOT NULL);
    INSERT INTO api_keys (name, key_hash, role) VALUES ('bench', '${keyHash}', 'admin') ON CONFLICT DO NOTHING;`);
  await fc.end();
  print(`## The same write with \`pg\` directly (${CONCURRENCY} connections, ${VARIANT_SECONDS} s each)`);
  print();
  print('| variant | round trips | writes/s | p50 / p99 ms | PostgreSQL CPU ms/write | backends waiting (sampled) |');
  print('| --- | ---: | ---: | ---: | ---: | --- |');
  const VARIANTS = [
    ['floor', 4, "BEGIN; INSERT agent; INSERT outbox (trigger: NOTIFY); COMMIT — the issue's floor"],
    [
      'service-sql',
      8,
      "the service's statements in its order: API-key SELECT; BEGIN; advisory xact lock; count(*); INSERT; SELECT agent; INSERT outbox; COMMIT",
    ],
    ['cap-last', 5, 'API-key SELECT; BEGIN; INSERT … RETURNING; INSERT outbox; cap counter UPDATE … WHERE n < cap (last); COMMIT'],
    ['single', 1, 'one statement (CTE: cap counter, agent, outbox row), API key cached'],
  ];
  for (const [variant, trips, what] of VARIANTS) {
    await resetFloor();
    const a = sys.sampleActivity('bench_floor');
    const p0 = sys.postgresCpu();
    const v = await pool.writes('pgwrites', { url: floorUrl, variant, keyHash, prefix: `${prefix}-${variant}` }, CONCURRENCY, VARIANT_SECONDS);
    const p1 = sys.postgresCpu();
    const va = await a.stop();
    const vl = stats(v.latencies);
    log(`${variant}: ${(v.ok / (v.ms / 1000)).toFixed(0)}/s ${JSON.stringify(v.statuses)}`);
    print(
      `| \`${variant}\`: ${what} | ${trips} | ${(v.ok / (v.ms / 1000)).toFixed(0)} | ${vl.p50.toFixed(1)} / ${vl.p99.toFixed(1)} | ${((p1 - p0) / 1000 / Math.max(1, v.ok)).toFixed(3)} | ${shares(va.counts)} |`,
    );
  }
  print();

  // ---- the same REST write in bare Node (node:http + pg), no framework ------------------
  print(
    `## The same REST write in bare Node (\`bench/profile/raw-writer.mjs\`: \`node:http\` + \`pg\`, no Nest/Fastify/TypeORM/zod; ${CONCURRENCY} clients, ${VARIANT_SECONDS} s each)`,
  );
  print();
  print('| server | writes/s | p50 / p99 ms | server CPU ms/write (user + kernel) | PostgreSQL CPU ms/write |');
  print('| --- | ---: | ---: | ---: | ---: |');
  for (const mode of ['service-sql', 'single']) {
    await resetFloor();
    const port = await freePort();
    const proc = spawnLimited(process.execPath, [path.join(here, 'raw-writer.mjs')], {
      name: `raw-writer-${mode}`,
      env: { ...process.env, PORT: String(port), DATABASE_URL: floorUrl, MODE: mode },
    });
    await waitForPort(port, 10_000, proc);
    const tgt = [{ port, headers: { authorization: `Bearer ${sys.adminKey}` } }];
    await pool.writes('httpwrites', { targets: tgt, prefix: `${prefix}-rw-warm-${mode}` }, CONCURRENCY, 2);
    await resetFloor();
    const s0 = sumCpuSplit([proc.pid]);
    const q0 = sys.postgresCpu();
    const v = await pool.writes('httpwrites', { targets: tgt, prefix: `${prefix}-rw-${mode}` }, CONCURRENCY, VARIANT_SECONDS);
    const s1 = sumCpuSplit([proc.pid]);
    const q1 = sys.postgresCpu();
    await stopProc(proc);
    const vl = stats(v.latencies);
    log(`raw writer ${mode}: ${(v.ok / (v.ms / 1000)).toFixed(0)}/s ${JSON.stringify(v.statuses)}`);
    const per = (x) => (x / 1000 / Math.max(1, v.ok)).toFixed(3);
    print(
      `| bare Node, ${mode === 'single' ? 'API key cached, 1 statement' : "the service's 8 statements"} | ${(v.ok / (v.ms / 1000)).toFixed(0)} | ${vl.p50.toFixed(1)} / ${vl.p99.toFixed(1)} | ${per(s1.user + s1.sys - s0.user - s0.sys)} (${per(s1.user - s0.user)} + ${per(s1.sys - s0.sys)}) | ${per(q1 - q0)} |`,
    );
  }
  print(
    `| the service (above), for comparison | ${(ok / (r.ms / 1000)).toFixed(0)} | ${lat.p50.toFixed(1)} / ${lat.p99.toFixed(1)} | ${(cpuUser + cpuSys).toFixed(3)} (${cpuUser.toFixed(3)} + ${cpuSys.toFixed(3)}) | ${((pg1 - pg0) / 1000 / ok).toFixed(3)} |`,
  );
  print();
  print(
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}, load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; service build: ${sys.main}.`,
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
