// One chaos run, start to end (see docs/chaos.md):
//   PostgreSQL + redis-server + 3 replicas (each reaching Redis through its own
//   FaultProxy) + nginx with the shipped config; a seeded history; >= 200
//   EventSource clients and a few raw slow readers through nginx (some slow
//   readers straight to a replica); >= 50 socket.io-client sockets through
//   nginx, each from its own loopback address; >= 8 writers through nginx for >= 60 s
//   while replicas, Redis and PostgreSQL are hurt in turn; then quiescence,
//   and every client is compared with the outbox.
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { FaultProxy } from '../support/fault-proxy.js';
import { sleep } from '../support/timing.js';
import { type ClientRecord, EsClient, filterMatcher, type SlowBehaviour, SlowClient } from './clients.js';
import { IoClient, type SocketRecord, type SocketSpec } from './socket-clients.js';
import { freePort, HOST, killAllStarted, logStream, Nginx, type Postgres, RedisServer, Replica, startPostgres } from './infra.js';
import { checkClient, type ClientResult, faultAt, type FaultRecord, medianMax, missingWrites, outboxProblems, type OutboxRow, ranges } from './verify.js';
import { type AckedWrite, type FailedWrite, Writer } from './writers.js';

export interface ChaosConfig {
  repoRoot: string;
  /** The service entry point (`dist/main.js`, built by `npm run chaos`). */
  main: string;
  /** Run a copy of `main`'s directory (so a rebuild of dist/ meanwhile cannot pull it away from restarts). */
  snapshot: boolean;
  /** Logs of every process, nginx's access log and the report; kept after the run. */
  logDir: string;
  writeSeconds: number;
  writers: number;
  /** Writes per second per writer. */
  writeRate: number;
  /** Events put in the outbox before the clients join (old history for resumes from 0). */
  seedEvents: number;
  /** Upper bound of the wait for every client to catch up after the writes (ms). */
  quiesceMs: number;
  clients: { unfiltered: number; reopen: number; history: number; deepResume: number; agent: number; mixed: number; rare: number; never: number };
  /** socket.io-client sockets through nginx, per group. */
  sockets: { changes: number; polling: number; agents: number; agentCreated: number; deepResume: number; history: number };
  /** Raw slow readers: per behaviour, how many through nginx and how many straight to a replica. */
  slow: Record<SlowBehaviour, { nginx: number; direct: number }>;
}

const int = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
};

/** Each count times `factor`, rounded (each at least 1 unless the factor is 0). */
function scaled<T extends Record<string, number>>(counts: T, factor: number): T {
  return Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, factor === 0 ? 0 : Math.max(1, Math.round(n * factor))])) as T;
}

/** Defaults are the issue's minimums (>= 200 SSE clients, >= 50 Socket.IO clients, >= 8 writers, >= 60 s); CHAOS_* variables override. */
export function chaosConfig(repoRoot: string): ChaosConfig {
  return {
    repoRoot,
    main: process.env.CHAOS_MAIN ?? path.join(repoRoot, 'dist', 'main.js'),
    snapshot: process.env.CHAOS_MAIN === undefined,
    logDir: process.env.CHAOS_LOG_DIR ?? path.join(repoRoot, '.cache', 'chaos'),
    writeSeconds: int('CHAOS_WRITE_SECONDS', 60),
    writers: int('CHAOS_WRITERS', 8),
    writeRate: int('CHAOS_WRITE_RATE', 10),
    seedEvents: int('CHAOS_SEED_EVENTS', 12_000),
    quiesceMs: int('CHAOS_QUIESCE_MS', 30_000),
    // 200 EventSources: 95 + 5 + 10 + 45 + 25 + 10 + 10 (reopen is part of unfiltered).
    clients: { unfiltered: 95, reopen: 10, history: 5, deepResume: 10, agent: 45, mixed: 25, rare: 10, never: 10 },
    // 56 Socket.IO clients (>= 50): 26 + 4 + 10 + 10 + 4 + 2; CHAOS_SOCKETS scales them (at most 240: one loopback address each).
    sockets: scaled({ changes: 26, polling: 4, agents: 10, agentCreated: 10, deepResume: 4, history: 2 }, Math.min(240, int('CHAOS_SOCKETS', 56)) / 56),
    // Direct readers take r1, r2, r3, r1... in this order: r2 (drained at T+36) gets a
    // stopped reader with megabytes waiting for it, and a stopped-then-slow one.
    slow: {
      'stopped-long': { nginx: 1, direct: 2 },
      'history-stopped': { nginx: 1, direct: 2 },
      'stop-then-slow': { nginx: 2, direct: 1 },
      slow: { nginx: 2, direct: 1 },
    },
  };
}

export interface ChaosTotals {
  clients: number;
  eventsourceClients: number;
  socketioClients: number;
  /** The Socket.IO clients' own counts (also included in the totals above). */
  io: {
    lost: number;
    duplicated: number;
    outOfOrder: number;
    unexpected: number;
    resets: number;
    fatal: number;
    behindAtEnd: number;
    longestGapMs: number;
    longestGapClient: string;
    resumeDistance: number;
    connections: number;
  };
  lost: number;
  duplicated: number;
  outOfOrder: number;
  unexpected: number;
  resets: number;
  fatalClients: number;
  clientsBehindAtEnd: number;
  acked: number;
  failedWrites: number;
  missingWrites: number;
  outboxProblems: number;
  longestGapMs: number;
  longestGapClient: string;
  longestLagMs: number;
  longestLagClient: string;
  /** Largest resume distance of a filtered EventSource (events behind the head). */
  filteredResumeDistance: number;
  unfilteredResumeDistance: number;
  /** Stream connection slots still counted in Redis once every client is gone, and at T+5 s. */
  slotsLeft: number;
  slotsMidRun: number;
  /** When slots are left: whose share holds them and what each replica reports open. */
  slotsDetail: string;
  /** Median commit-to-sequenced delay (ms) in the last 8 s of writes. */
  finalSequencingMedianMs: number;
}

export interface DrainRecord {
  start: number;
  end?: number;
  exitCode?: number | string | null;
  /** Writes cut while the replica drained: no answer, 500, or nginx's 502/504 (the connection closed under it). */
  cutWrites: FailedWrite[];
  /** Writes the draining replica took and refused with 503 (not executed; nginx does not retry a POST it has sent). */
  refusedWrites: FailedWrite[];
}

export interface ChaosResult {
  config: ChaosConfig;
  totals: ChaosTotals;
  clients: ClientResult[];
  faults: FaultRecord[];
  missing: AckedWrite[];
  failed: FailedWrite[];
  outboxProblems: string[];
  writeSeconds: number;
  writers: number;
  finalSeq: number;
  drain?: DrainRecord;
  /** Writes per second per writer: sets how far "near the head" is. */
  eventsPerSecond: number;
  report: string;
}

const NAMES = ['r1', 'r2', 'r3'];

export async function runChaos(config: ChaosConfig): Promise<ChaosResult> {
  if (!existsSync(config.main)) throw new Error(`${config.main} is missing: build first (npm run chaos does)`);
  rmSync(config.logDir, { recursive: true, force: true });
  mkdirSync(config.logDir, { recursive: true });
  let main = config.main;
  if (config.snapshot) {
    // Inside the repository, so node_modules and package.json ("type": "module") still resolve from it.
    const copy = path.join(config.repoRoot, '.cache', 'chaos-build', 'dist');
    rmSync(copy, { recursive: true, force: true });
    cpSync(path.dirname(config.main), copy, { recursive: true });
    main = path.join(copy, path.basename(config.main));
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'registry-chaos-'));
  chmodSync(tmp, 0o755);
  const t00 = Date.now();
  let T0 = 0;
  const stamp = () => (T0 ? `T${Date.now() >= T0 ? '+' : ''}${((Date.now() - T0) / 1000).toFixed(1)}s` : `setup ${((Date.now() - t00) / 1000).toFixed(1)}s`);
  const say = (msg: string) => process.stdout.write(`[chaos ${stamp()}] ${msg}\n`);

  let pgServer: Postgres | undefined;
  let redis: RedisServer | undefined;
  let nginx: Nginx | undefined;
  let db: pg.Client | undefined;
  const proxies: FaultProxy[] = [];
  const replicas: Replica[] = [];
  const esClients: EsClient[] = [];
  const ioClients: IoClient[] = [];
  const slowClients: SlowClient[] = [];
  const writers: Writer[] = [];
  let syncTimer: NodeJS.Timeout | undefined;
  let slotRedis: Redis | undefined;
  const eld = monitorEventLoopDelay({ resolution: 20 });

  try {
    // ---- infrastructure ------------------------------------------------------
    pgServer = await startPostgres(tmp, 'chaos');
    const redisPort = await freePort();
    redis = new RedisServer(redisPort, logStream(config.logDir, 'redis'));
    await redis.start();
    for (let i = 0; i < NAMES.length; i++) proxies.push(await FaultProxy.start(HOST, redisPort));
    const ports = await Promise.all(NAMES.map(() => freePort()));
    const adminKey = `ar_chaos_${randomBytes(24).toString('base64url')}`;
    const env = {
      DATABASE_URL: pgServer.url,
      REDIS_PREFIX: 'chaos',
      BOOTSTRAP_ADMIN_KEY: adminKey,
      LOG_LEVEL: 'info',
      // Readable lines: the report below folds WARN/ERROR lines.
      LOG_FORMAT: 'text',
      // ~270 streams (SSE and Socket.IO) on one key: room for them plus a killed replica's share until its lease ends.
      MAX_CONNECTIONS_PER_USER: '500',
      SHUTDOWN_GRACE_MS: '10000',
    };
    NAMES.forEach((name, i) => replicas.push(new Replica(name, ports[i], proxies[i], main, env, logStream(config.logDir, name))));
    await replicas[0].start('ready', 60_000); // migrations run once, here
    await Promise.all(replicas.slice(1).map((r) => r.start('ready', 60_000)));
    say(
      `PostgreSQL :${pgServer.port}, redis :${redisPort}, replicas ${replicas.map((r) => `${r.name} :${r.port} (redis via :${r.redisProxy.port})`).join(', ')}`,
    );

    db = new pg.Client({ connectionString: pgServer.url, application_name: 'chaos-harness' });
    await db.connect();
    const head = async () => {
      const r = await db!.query('SELECT last_seq::int AS last, EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL) AS pending FROM outbox_head');
      return { last: Number(r.rows[0].last), pending: Boolean(r.rows[0].pending) };
    };

    if (config.seedEvents > 0) {
      // Old history, written straight into the outbox (the sequencer numbers it
      // as it would any commit): thousands of events to resume across, without
      // minutes of REST writes. Its events name agents that do not exist and
      // carry ~1 KB each, so one replay page (5,000 events) is ~6 MB: more than
      // loopback socket buffers take at once, as a page of small events is on
      // a real network with ~100 KB buffers.
      await db.query(
        `INSERT INTO outbox (type, resource_id, version, actor, data)
         SELECT 'agent.updated', 'seed-' || g, g, 'chaos-seed', jsonb_build_object('changed', jsonb_build_array('description'), 'note', repeat('h', 900))
         FROM generate_series(1, $1::int) g`,
        [config.seedEvents],
      );
      const until = Date.now() + 60_000;
      for (;;) {
        const h = await head();
        if (!h.pending && h.last >= config.seedEvents) break;
        if (Date.now() > until) throw new Error(`the seeded history was not sequenced in 60 s (head ${h.last})`);
        await sleep(100);
      }
      say(`seeded ${config.seedEvents} events`);
    }

    nginx = new Nginx(path.join(config.logDir, 'nginx'), logStream(config.logDir, 'nginx'));
    await nginx.start(readFileSync(path.join(config.repoRoot, 'deploy', 'nginx', 'nginx.conf'), 'utf8'), ports);
    const ready = await fetch(`${nginx.url}/readyz`);
    if (ready.status !== 200) throw new Error(`nginx -> /readyz answered ${ready.status}`);
    say(`nginx :${nginx.port} (deploy/nginx/nginx.conf, upstreams ${ports.join(', ')})`);

    // ---- clients --------------------------------------------------------------
    const S0 = (await head()).last;
    const c = config.clients;
    let n = 0;
    const es = (group: string, events: string | undefined, start: number) => {
      const client = new EsClient(nginx!.url, adminKey, `es${++n}`, group, events, start);
      esClients.push(client);
      return client;
    };
    for (let i = 0; i < c.unfiltered; i++) es(i < c.reopen ? 'es:unfiltered+reopen' : 'es:unfiltered', undefined, S0);
    for (let i = 0; i < c.history; i++) es('es:unfiltered-from-0', undefined, 0);
    // Resumes from inside the replicas' memory window, thousands of (large) events back.
    for (let i = 0; i < c.deepResume; i++) es('es:unfiltered-deep-resume', undefined, Math.max(0, S0 - 8000));
    for (let i = 0; i < c.agent; i++) es('es:agent.*', 'agent.*', S0);
    for (let i = 0; i < c.mixed; i++) es('es:prompt.*,mcp_server.updated,trust_rule.created', 'prompt.*,mcp_server.updated,trust_rule.created', S0);
    for (let i = 0; i < c.rare; i++) es('es:trust_rule.*', 'trust_rule.*', S0);
    // A filter nothing matches (writers never delete a prompt): only the server's position updates move these.
    for (let i = 0; i < c.never; i++) es('es:prompt.deleted', 'prompt.deleted', S0);
    const direct = replicas.map((r) => ({ host: HOST, port: r.port }));
    let d = 0;
    for (const [behaviour, count] of Object.entries(config.slow) as [SlowBehaviour, { nginx: number; direct: number }][]) {
      // history-stopped: the whole history from the outbox; stopped-long: 8,000 (large) events from the memory window.
      const start = behaviour === 'history-stopped' ? 0 : behaviour === 'stopped-long' ? Math.max(0, S0 - 8000) : S0;
      const events = behaviour === 'slow' ? 'agent.*,prompt.*' : undefined;
      for (let i = 0; i < count.nginx; i++) {
        slowClients.push(new SlowClient([{ host: HOST, port: nginx.port }], adminKey, `slow${slowClients.length + 1}`, behaviour, events, start, 'nginx'));
      }
      for (let i = 0; i < count.direct; i++) {
        // Straight to a replica (each its own first), the next one on every reconnect.
        const targets = direct.map((_, k) => direct[(d + k) % direct.length]);
        d++;
        slowClients.push(new SlowClient(targets, adminKey, `slow${slowClients.length + 1}`, behaviour, events, start, 'direct'));
      }
    }
    for (const s of slowClients) {
      s.start();
      // These do not read at first (until T+30, T+55): their replays pile up in kernel buffers and in the replica.
      if (s.behaviour === 'history-stopped' || s.behaviour === 'stopped-long') s.reader.stop();
    }
    // Socket.IO: each client from its own loopback address (nginx hashes the client address to a replica).
    const sk = config.sockets;
    const socket = (group: string, spec: SocketSpec, start: number) => {
      const k = ioClients.length;
      ioClients.push(new IoClient(nginx!.url, adminKey, `io${k + 1}`, group, spec, start, `127.0.1.${10 + k}`));
    };
    for (let i = 0; i < sk.changes; i++) socket('io:changes', { channels: ['changes'] }, S0);
    for (let i = 0; i < sk.polling; i++) socket('io:changes(polling only)', { channels: ['changes'], transports: ['polling'] }, S0);
    for (let i = 0; i < sk.agents; i++) socket('io:agents', { channels: ['agents'] }, S0);
    for (let i = 0; i < sk.agentCreated; i++) socket('io:agents+agent.created', { channels: ['agents'], events: 'agent.created' }, S0);
    for (let i = 0; i < sk.deepResume; i++) socket('io:changes-deep-resume', { channels: ['changes'] }, Math.max(0, S0 - 8000));
    for (let i = 0; i < sk.history; i++) socket('io:changes-from-0', { channels: ['changes'] }, 0);
    for (const client of esClients) {
      client.open();
      await sleep(5);
    }
    for (const client of ioClients) {
      client.open();
      await sleep(10);
    }
    const openBy = Date.now() + 30_000;
    while ((esClients.some((x) => !x.isOpen) || ioClients.some((x) => !x.isOpen)) && Date.now() < openBy) await sleep(100);
    const notOpen = esClients.filter((x) => !x.isOpen);
    const ioNotOpen = ioClients.filter((x) => !x.isOpen);
    say(
      `${esClients.length} EventSource clients (${esClients.length - notOpen.length} open), ${ioClients.length} Socket.IO clients (${ioClients.length - ioNotOpen.length} subscribed) and ${slowClients.length} slow readers from seq ${S0}`,
    );
    if (notOpen.length > 0)
      say(
        `not open before the writes: ${notOpen
          .slice(0, 5)
          .map((x) => `${x.record.name} ${x.record.errors.at(-1)?.message ?? ''}`)
          .join('; ')}`,
      );
    if (ioNotOpen.length > 0)
      say(
        `sockets not subscribed before the writes: ${ioNotOpen
          .slice(0, 5)
          .map((x) => `${x.record.name} ${x.record.errors.at(-1)?.message ?? ''}`)
          .join('; ')}`,
      );
    syncTimer = setInterval(() => slowClients.forEach((s) => s.sync()), 250);

    // The cluster-wide stream connection counts (per user, per replica, live replicas only), read straight from Redis.
    slotRedis = new Redis({ host: HOST, port: redisPort, maxRetriesPerRequest: 1 });
    slotRedis.on('error', () => undefined);
    const slotsByReplica = async () => {
      const by = new Map<string, number>();
      for (const key of await slotRedis!.keys('chaos:conn:user:*')) {
        for (const [replica, count] of Object.entries(await slotRedis!.hgetall(key))) {
          if (await slotRedis!.exists(`chaos:replica:${replica}`)) by.set(replica, (by.get(replica) ?? 0) + Number(count));
        }
      }
      return by;
    };
    const slotCount = async () => [...(await slotsByReplica()).values()].reduce((a, b) => a + b, 0);
    let slotsMidRun = -1;
    eld.enable();

    // ---- writes and faults ------------------------------------------------------
    T0 = Date.now();
    const writesUntil = T0 + config.writeSeconds * 1000;
    for (let i = 0; i < config.writers; i++) writers.push(new Writer(i + 1, nginx.url, adminKey, config.writeRate));
    const writing = Promise.all(writers.map((w) => w.run(writesUntil)));
    say(`${writers.length} writers at ${config.writeRate}/s each for ${config.writeSeconds} s`);

    const faults: FaultRecord[] = [];
    const tasks: Promise<void>[] = [];
    let drain: { start: number; end?: number; exitCode?: number | string | null } | undefined;
    const fault = async (label: string, run: (rec: FaultRecord) => Promise<void>) => {
      const rec: FaultRecord = { label, start: Date.now() };
      faults.push(rec);
      say(`fault: ${label}`);
      try {
        await run(rec);
      } catch (error) {
        rec.detail = `${rec.detail ?? ''} harness error: ${(error as Error).message}`;
        say(`fault ${label} failed: ${(error as Error).message}`);
      }
      rec.end = Date.now();
      say(`fault over: ${label}${rec.detail ? ` (${rec.detail})` : ''}`);
    };
    const [r1, r2, r3] = replicas as [Replica, Replica, Replica];
    // A restart as a supervisor does it (Kubernetes, compose `restart:`): a process that exits during
    // its start (e.g. a fault that lands on it meanwhile) is started again, once; the fault's detail says so.
    const restart = async (r: Replica, rec: FaultRecord) => {
      try {
        await r.start('live');
      } catch (error) {
        const message = (error as Error).message;
        const code = /exited \((.*?)\) during start/.exec(message)?.[1];
        if (code === undefined) throw error;
        const cause = /^\s*(\w*Error\b[^\n]*)$/m.exec(message)?.[1]?.slice(0, 120) ?? 'see its log';
        rec.detail = `${rec.detail ? `${rec.detail}; ` : ''}${r.name} exited (${code}) during its start (${cause}), started again`;
        say(`${r.name} exited (${code}) during its start (${cause}); starting it again`);
        await r.start('live');
      }
    };
    const slowOf = (b: SlowBehaviour) => slowClients.filter((s) => s.behaviour === b);
    const reopen = esClients.filter((x) => x.record.group === 'es:unfiltered+reopen');
    const span = config.writeSeconds / 60; // the schedule stretches with longer runs
    const schedule: [number, string, () => Promise<void> | void][] = [
      [
        3,
        'slow readers: stop-then-slow ones stop reading, slow ones read 4 KB / 100 ms',
        () => {
          slowOf('stop-then-slow').forEach((s) => s.reader.stop());
          slowOf('slow').forEach((s) => s.reader.slow(4096, 100));
        },
      ],
      [
        5,
        '',
        async () => {
          slotsMidRun = await slotCount().catch(() => -1);
          say(`stream connection slots counted in Redis: ${slotsMidRun}`);
        },
      ],
      [
        8,
        '',
        () =>
          fault('SIGKILL r1, restart 3 s later', async (rec) => {
            r1.proc!.kill('SIGKILL');
            await r1.proc!.exited;
            await sleep(3000);
            await restart(r1, rec);
            rec.detail = `${rec.detail ? `${rec.detail}; ` : ''}r1 answering again after ${((Date.now() - rec.start) / 1000).toFixed(1)} s`;
          }),
      ],
      [12, `${reopen.length} EventSources closed (an app going away)`, () => reopen.forEach((x) => x.close())],
      [
        17,
        '',
        () =>
          fault('redis-server SIGKILL, restarted 2 s later', async () => {
            await redis!.restart(2000);
          }),
      ],
      [
        26,
        '',
        () =>
          fault("cut r2's Redis link for 5 s", async () => {
            r2.redisProxy.cut();
            await sleep(5000);
            r2.redisProxy.restore();
          }),
      ],
      [30, 'history-stopped readers start reading, 16 KB / 100 ms', () => slowOf('history-stopped').forEach((s) => s.reader.slow(16 * 1024, 100))],
      [35, 'stop-then-slow readers read again, 8 KB / 100 ms', () => slowOf('stop-then-slow').forEach((s) => s.reader.slow(8 * 1024, 100))],
      [
        36,
        '',
        () =>
          fault('SIGTERM r2 (drain), restart when it exits', async (rec) => {
            drain = { start: Date.now() };
            const took = await r2.proc!.stop('SIGTERM', 15_000);
            drain.end = Date.now();
            drain.exitCode = r2.proc!.exitCode;
            r2.drains.push(took);
            rec.detail = `exited ${r2.proc!.exitCode} after ${(took / 1000).toFixed(1)} s`;
            await restart(r2, rec);
          }),
      ],
      [42, `${reopen.length} EventSources reopened with ?lastEventId= of the last event they saw`, () => reopen.forEach((x) => x.open())],
      [
        44,
        '',
        () =>
          fault('pg_terminate_backend of every replica connection', async (rec) => {
            const res = await db!.query(
              `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
            );
            rec.detail = `${res.rows[0].n} backends terminated`;
          }),
      ],
      [
        48,
        '',
        () =>
          fault("stall r3's Redis link for 5 s (half-open)", async () => {
            r3.redisProxy.stall();
            await sleep(5000);
            r3.redisProxy.restore();
          }),
      ],
      [55, 'stopped-long readers read again', () => slowOf('stopped-long').forEach((s) => s.reader.normal())],
    ];
    for (const [at, what, run] of schedule) {
      const when = T0 + at * span * 1000;
      if (when > Date.now()) await sleep(when - Date.now());
      if (what) say(what);
      const result = run();
      if (result) tasks.push(result);
    }
    await writing;
    const writesEnd = Date.now();
    say(`writes over: ${writers.reduce((s, w) => s + w.acked.length, 0)} acknowledged, ${writers.reduce((s, w) => s + w.failed.length, 0)} failed`);
    let boundTimer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(tasks), new Promise((resolve) => (boundTimer = setTimeout(resolve, 30_000)))]);
    clearTimeout(boundTimer);
    slowClients.forEach((s) => s.reader.normal());

    // ---- quiescence -----------------------------------------------------------------
    const lastMatching = async () => {
      const res = await db!.query('SELECT type, max(seq)::int AS max FROM outbox WHERE seq IS NOT NULL GROUP BY type');
      return res.rows as { type: string; max: number }[];
    };
    const maxSeen = (rec: ClientRecord) => rec.received.reduce((m, e) => Math.max(m, e.seq), rec.startCursor);
    const behind = async () => {
      const byType = await lastMatching();
      const all = [...esClients.map((x) => x.record), ...ioClients.map((x) => x.record), ...slowClients.map((s) => (s.sync(), s.record))];
      return all.filter((rec) => {
        if (rec.fatal) return false;
        const match = filterMatcher(rec.events);
        const target = byType.filter((t) => match(t.type)).reduce((m, t) => Math.max(m, t.max), 0);
        return target > rec.startCursor && maxSeen(rec) < target;
      });
    };
    const quietBy = Date.now() + config.quiesceMs;
    let lagging: ClientRecord[] = [];
    for (;;) {
      const h = await head();
      lagging = await behind();
      if (!h.pending && lagging.length === 0) break;
      if (Date.now() > quietBy) break;
      await sleep(500);
    }
    say(
      lagging.length === 0
        ? 'every client caught up'
        : `${lagging.length} clients still behind after ${config.quiesceMs / 1000} s: ${lagging
            .slice(0, 8)
            .map((r) => `${r.name}(${r.group}) at ${maxSeen(r)}`)
            .join(', ')}`,
    );
    await sleep(1500); // late duplicates would show up now
    eld.disable();
    clearInterval(syncTimer);
    for (const x of esClients) x.close();
    for (const x of ioClients) x.close();
    for (const s of slowClients) s.close();

    // Every stream is gone: the cluster-wide connection counts in Redis must come
    // back to 0 (a replica's heartbeat rewrites its share every lease/3 = 10 s).
    // One exception takes longer by design: a Socket.IO session its client
    // abandoned without a goodbye is only known gone at engine.io's ping timeout
    // (pingInterval 25 s + pingTimeout 20 s). The hashed /ws/v1 upstream makes
    // such sessions: while a client's replica is down nginx moves it to the next
    // one; when it is back, the client's long-polling requests go back to it, it
    // answers "Session ID unknown", and the session on the other replica is left
    // to its heartbeat. While every slot left is a socket its replica still
    // reports open, the wait goes on up to 50 s.
    const connectionsListed = async () => {
      const res = await fetch(`${nginx!.url}/api/v1/admin/connections`, {
        headers: { authorization: `Bearer ${adminKey}` },
        signal: AbortSignal.timeout(5000),
      });
      if (res.status !== 200) throw new Error(`GET /admin/connections answered ${res.status}`);
      return ((await res.json()) as { replicas: { replica: string; sse: number; socketio: number }[] }).replicas;
    };
    let slotsLeft = -1;
    let slotsOrphaned = 0;
    const closedAt = Date.now();
    try {
      for (;;) {
        slotsLeft = await slotCount();
        if (slotsLeft === 0 || Date.now() > closedAt + 50_000) break;
        if (Date.now() > closedAt + 15_000) {
          const listed = await connectionsListed();
          const sse = listed.reduce((a, r) => a + r.sse, 0);
          const sockets = listed.reduce((a, r) => a + r.socketio, 0);
          if (sse > 0 || sockets < slotsLeft) break;
          slotsOrphaned = Math.max(slotsOrphaned, slotsLeft);
        }
        await sleep(500);
      }
    } catch (error) {
      say(`could not read connection counts: ${(error as Error).message}`);
    }
    const slotsAfter = ((Date.now() - closedAt) / 1000).toFixed(1);
    say(
      `stream connection slots still held in Redis with no client left: ${slotsLeft} after ${slotsAfter} s (${slotsMidRun} while the clients were connected)`,
    );
    // Evidence for a leak: whose share holds them, and what each replica says it still has open.
    let slotsDetail = slotsOrphaned > 0 ? `${slotsOrphaned} held by abandoned Socket.IO sessions until their ping timeout; 0 after ${slotsAfter} s` : '';
    if (slotsLeft > 0) {
      try {
        const by = [...(await slotsByReplica()).entries()]
          .filter(([, n]) => n !== 0)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ');
        const listed = await connectionsListed();
        slotsDetail = `slots in Redis by replica: ${by || '-'}; open connections the replicas report (GET /admin/connections): ${listed.map((r) => `${r.replica} sse ${r.sse} socketio ${r.socketio}`).join(', ')}`;
      } catch (error) {
        slotsDetail = `could not read the slot details: ${(error as Error).message}`;
      }
    }
    if (slotsDetail) say(slotsDetail);

    // ---- the truth ---------------------------------------------------------------------
    const rows = await db.query(
      `SELECT seq::int AS seq, type, resource_id AS id, version, (extract(epoch FROM sequenced_at) * 1000)::float8 AS wall,
              (extract(epoch FROM created_at) * 1000)::float8 AS created
       FROM outbox WHERE seq IS NOT NULL ORDER BY seq`,
    );
    const outbox: OutboxRow[] = rows.rows.map((r) => ({
      seq: r.seq,
      type: r.type,
      id: r.id,
      version: r.version,
      sequencedWall: Number(r.wall),
      createdWall: Number(r.created),
    }));
    const unsequenced = Number((await db.query('SELECT count(*)::int AS n FROM outbox WHERE seq IS NULL')).rows[0].n);
    const bySeq = new Map(outbox.map((r) => [r.seq, r]));
    const records = [...esClients.map((x) => x.record), ...ioClients.map((x) => x.record), ...slowClients.map((s) => s.record)];
    const results = records.map((rec) => checkClient(rec, outbox, bySeq, T0, writesEnd));
    const acked = writers.flatMap((w) => w.acked);
    const failed = writers.flatMap((w) => w.failed);
    const missing = missingWrites(acked, outbox);
    const problems = outboxProblems(outbox);
    if (unsequenced > 0) problems.push(`${unsequenced} committed events still have no seq`);

    const sum = (k: keyof ClientResult) => results.reduce((s, r) => s + (r[k] as number), 0);
    const worst = (k: 'maxGapMs' | 'maxLagMs', filter: (r: ClientResult) => boolean = () => true) =>
      results.filter(filter).reduce((a, b) => (b[k] > (a?.[k] ?? -1) ? b : a), undefined as ClientResult | undefined);
    const unfilteredLive = (r: ClientResult) => r.kind === 'eventsource' && r.group === 'es:unfiltered';
    const gap = worst('maxGapMs', unfilteredLive) ?? worst('maxGapMs')!;
    const lag = worst('maxLagMs')!;
    const esFiltered = results.filter((r) => r.kind === 'eventsource' && records.find((x) => x.name === r.name)!.events !== undefined);
    const esUnfiltered = results.filter((r) => r.kind === 'eventsource' && records.find((x) => x.name === r.name)!.events === undefined);
    const ioResults = results.filter((r) => r.kind === 'socketio');
    const ioSum = (k: keyof ClientResult) => ioResults.reduce((s, r) => s + (r[k] as number), 0);
    const ioGap = worst('maxGapMs', (r) => r.group === 'io:changes');
    const delays = (from: number, to: number) =>
      medianMax(outbox.filter((r) => r.sequencedWall >= from && r.sequencedWall < to).map((r) => r.sequencedWall - r.createdWall));
    const drainRecord: DrainRecord | undefined = drain
      ? {
          ...drain,
          cutWrites: failed.filter(
            (f) => (f.status === 0 || (f.status >= 500 && f.status !== 503)) && f.wall >= drain!.start && f.wall <= (drain!.end ?? writesEnd) + 1000,
          ),
          refusedWrites: failed.filter((f) => f.status === 503 && f.wall >= drain!.start && f.wall <= (drain!.end ?? writesEnd) + 1000),
        }
      : undefined;
    const totals: ChaosTotals = {
      clients: results.length,
      eventsourceClients: esClients.length,
      socketioClients: ioClients.length,
      io: {
        lost: ioSum('lost'),
        duplicated: ioSum('duplicated'),
        outOfOrder: ioSum('outOfOrder'),
        unexpected: ioSum('unexpected'),
        resets: ioSum('resets'),
        fatal: ioResults.filter((r) => r.fatal).length,
        behindAtEnd: lagging.filter((r) => r.kind === 'socketio').length,
        longestGapMs: ioGap?.maxGapMs ?? 0,
        longestGapClient: ioGap ? `${ioGap.name} (${ioGap.group}) from T+${((ioGap.maxGapStart - T0) / 1000).toFixed(1)}s` : '-',
        resumeDistance: ioResults.filter((r) => !/deep-resume|from-0/.test(r.group)).reduce((m, r) => Math.max(m, r.maxResumeDistance), 0),
        connections: ioSum('connections'),
      },
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      outOfOrder: sum('outOfOrder'),
      unexpected: sum('unexpected'),
      resets: sum('resets'),
      fatalClients: results.filter((r) => r.fatal).length,
      clientsBehindAtEnd: lagging.length,
      acked: acked.length,
      failedWrites: failed.length,
      missingWrites: missing.length,
      outboxProblems: problems.length,
      longestGapMs: gap.maxGapMs,
      longestGapClient: `${gap.name} (${gap.group}) from T+${((gap.maxGapStart - T0) / 1000).toFixed(1)}s`,
      longestLagMs: lag.maxLagMs,
      longestLagClient: `${lag.name} (${lag.group})`,
      filteredResumeDistance: esFiltered.reduce((m, r) => Math.max(m, r.maxResumeDistance), 0),
      unfilteredResumeDistance: esUnfiltered.filter((r) => r.group === 'es:unfiltered').reduce((m, r) => Math.max(m, r.maxResumeDistance), 0),
      slotsLeft,
      slotsMidRun,
      slotsDetail,
      finalSequencingMedianMs: delays(writesEnd - 8000, writesEnd + 1).median,
    };
    const report = buildReport({
      config,
      totals,
      results,
      faults,
      failed,
      missing,
      problems,
      T0,
      writesEnd,
      finalSeq: outbox.at(-1)?.seq ?? 0,
      S0,
      bySeq,
      records,
      replicas,
      nginx,
      eldP99: eld.percentile(99) / 1e6,
      eldMax: eld.max / 1e6,
      writers: writers.length,
      drain: drainRecord,
      delays,
      behind: lagging.map((r) => r.name),
    });
    process.stdout.write(`\n${report}\n`);
    return {
      config,
      totals,
      clients: results,
      faults,
      missing,
      failed,
      outboxProblems: problems,
      writeSeconds: (writesEnd - T0) / 1000,
      writers: writers.length,
      finalSeq: outbox.at(-1)?.seq ?? 0,
      drain: drainRecord,
      eventsPerSecond: config.writers * config.writeRate,
      report,
    };
  } finally {
    clearInterval(syncTimer);
    slotRedis?.disconnect();
    for (const w of writers) w.stop();
    for (const x of esClients) x.close();
    for (const x of ioClients) x.close();
    for (const s of slowClients) s.reader?.close();
    await nginx?.proc?.stop('SIGTERM', 2000);
    await Promise.all(replicas.map((r) => r.proc?.stop('SIGKILL') ?? Promise.resolve(0)));
    await Promise.all(proxies.map((p) => p.close()));
    await redis?.kill();
    await db?.end().catch(() => undefined);
    await pgServer?.stop().catch(() => undefined);
    killAllStarted();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- the report -------------------------------------------------------------------------

interface ReportInput {
  config: ChaosConfig;
  totals: ChaosTotals;
  results: ClientResult[];
  faults: FaultRecord[];
  failed: FailedWrite[];
  missing: AckedWrite[];
  problems: string[];
  T0: number;
  writesEnd: number;
  finalSeq: number;
  S0: number;
  bySeq: Map<number, OutboxRow>;
  records: ClientRecord[];
  replicas: Replica[];
  nginx: Nginx;
  eldP99: number;
  eldMax: number;
  writers: number;
  drain?: DrainRecord;
  delays: (from: number, to: number) => { median: number; max: number; n: number };
  /** Names of the clients still behind when the quiescence wait ended. */
  behind: string[];
}

function* rangeOf(from: number, to: number): Generator<number> {
  for (let q = from + 1; q < to; q++) yield q;
}

function tally<T>(items: T[], key: (t: T) => string): [string, number][] {
  const m = new Map<string, number>();
  for (const i of items) m.set(key(i), (m.get(key(i)) ?? 0) + 1);
  return [...m.entries()].sort((a, b) => b[1] - a[1]);
}

/** What the Socket.IO clients went through: why their connections ended, what they were told, what the app did. */
function socketDigest(x: ReportInput): string[] {
  const recs = x.records.filter((r): r is SocketRecord => r.kind === 'socketio');
  if (recs.length === 0) return [];
  const out: string[] = [];
  const t = (wall: number) => `T${wall >= x.T0 ? '+' : ''}${((wall - x.T0) / 1000).toFixed(1)}s`;
  const conns = recs.reduce((a, r) => a + r.connections, 0);
  const upgrades = recs.reduce((a, r) => a + r.upgrades, 0);
  out.push(
    `Socket.IO clients: ${recs.length}, ${conns} connections (${upgrades} upgraded to WebSocket), ${recs.reduce((a, r) => a + r.acks, 0)} subscriptions acknowledged`,
  );
  const disconnects = recs.flatMap((r) => r.disconnects).filter((d) => d.reason !== 'io client disconnect' && d.wall < x.writesEnd + 60_000);
  if (disconnects.length) {
    out.push('  disconnects (socket.io-client reason; the closing notice before it):');
    for (const [k, n] of tally(disconnects, (d) => `${faultAt(x.faults, d.wall)}: ${d.reason}${d.notice ? ` after closing "${d.notice}"` : ''}`).slice(0, 12))
      out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  const manual = recs.flatMap((r) => r.manualReconnects);
  if (manual.length) {
    out.push('  reconnects the app made itself (socket.io-client does not retry these):');
    for (const [k, n] of tally(manual, (m) => `${faultAt(x.faults, m.wall)}: ${m.why.replace(/\d+/g, '#').slice(0, 100)}`).slice(0, 10))
      out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  const abandoned = recs.flatMap((r) => r.abandonedHandshakes.map((h) => ({ r, h })));
  out.push(
    `  engine.io connections opened: ${recs.reduce((a, r) => a + r.engineOpens, 0)}; closed during the Socket.IO handshake (no connect, no connect_error): ${abandoned.length}`,
  );
  for (const { r, h } of abandoned.slice(0, 6))
    out.push(`    ${r.name} (${r.localAddress}): opened ${t(h.opened)}, closed ${t(h.closed)} (${h.reason}) [${faultAt(x.faults, h.opened)}]`);
  const failures = recs.flatMap((r) => r.subscribeFailures.map((f) => ({ r, f })));
  if (failures.length) {
    out.push('  subscriptions answered with an error or not answered:');
    for (const { r, f } of failures.slice(0, 6)) out.push(`    ${t(f.wall)} ${r.name} (${r.group}): ${f.message.slice(0, 120)}`);
  }
  return out;
}

function buildReport(x: ReportInput): string {
  const t = (wall: number) => `T${wall >= x.T0 ? '+' : ''}${((wall - x.T0) / 1000).toFixed(1)}s`;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const out: string[] = [];
  const tt = x.totals;
  out.push('==================== chaos suite: nothing lost, proven ====================');
  out.push(
    `${tt.clients} stream clients (${tt.eventsourceClients} WHATWG EventSource and ${tt.socketioClients} socket.io-client through nginx, ${tt.clients - tt.eventsourceClients - tt.socketioClients} raw slow readers), ${x.writers} writers for ${s(x.writesEnd - x.T0)}; clients joined at seq ${x.S0}, outbox ends at seq ${x.finalSeq}`,
  );
  out.push(
    `writes: ${tt.acked} acknowledged (2xx), ${tt.failedWrites} failed or ambiguous; harness event-loop delay p99 ${x.eldP99.toFixed(0)} ms, max ${x.eldMax.toFixed(0)} ms`,
  );
  out.push('');
  out.push('faults:');
  for (const f of x.faults) out.push(`  ${t(f.start)}..${f.end ? t(f.end) : '?'}  ${f.label}${f.detail ? `  (${f.detail})` : ''}`);
  for (const r of x.replicas) if (r.drains.length) out.push(`  ${r.name} drains: ${r.drains.map(s).join(', ')}`);
  out.push('');
  out.push('per client group:');
  out.push(`  ${'group'.padEnd(52)}   n  expected     lost  dup  ooo  unexp resets fatal  conns  max gap  max lag  resumed behind`);
  const groups = tally(x.results, (r) => r.group).map(([g]) => g);
  for (const g of groups) {
    const rs = x.results.filter((r) => r.group === g);
    const sum = (k: keyof ClientResult) => rs.reduce((a, r) => a + (r[k] as number), 0);
    const max = (k: 'maxGapMs' | 'maxLagMs') => rs.reduce((a, r) => Math.max(a, r[k]), 0);
    out.push(
      `  ${g.padEnd(52)} ${String(rs.length).padStart(3)} ${String(sum('expected')).padStart(9)} ${String(sum('lost')).padStart(8)} ${String(sum('duplicated')).padStart(4)} ${String(sum('outOfOrder')).padStart(4)} ${String(sum('unexpected')).padStart(6)} ${String(sum('resets')).padStart(6)} ${String(rs.filter((r) => r.fatal).length).padStart(5)} ${String(sum('connections')).padStart(6)} ${s(max('maxGapMs')).padStart(8)} ${s(max('maxLagMs')).padStart(8)} ${String(rs.reduce((a, r) => Math.max(a, r.maxResumeDistance), 0)).padStart(15)}`,
    );
  }
  out.push('  (max gap: longest time without a delivery during the writes; max lag: sequenced -> delivered;');
  out.push('   resumed behind: events between the head and the position a reconnect resumed from. Reopened, slow and');
  out.push('   history clients pause or replay by design; their gaps and lags include that.)');
  out.push('');
  out.push('commit -> sequenced delay per 5 s (median / max ms, events):');
  const line: string[] = [];
  for (let from = x.T0; from < x.writesEnd; from += 5000) {
    const d = x.delays(from, from + 5000);
    line.push(`${t(from)} ${d.median.toFixed(0)}/${d.max.toFixed(0)} (${d.n})`);
  }
  for (let i = 0; i < line.length; i += 4) out.push(`  ${line.slice(i, i + 4).join('   ')}`);
  if (x.drain) {
    out.push(
      `graceful drain (SIGTERM r2): exit ${x.drain.exitCode} after ${x.drain.end ? s(x.drain.end - x.drain.start) : '?'}; ` +
        `writes meanwhile cut (no answer, 500, 502, 504): ${x.drain.cutWrites.length}, refused with 503: ${x.drain.refusedWrites.length}`,
    );
    for (const w of [...x.drain.cutWrites, ...x.drain.refusedWrites].slice(0, 5))
      out.push(`    ${t(w.wall)} writer ${w.writer} ${w.op} -> ${w.status} ${w.detail.replace(/\s+/g, ' ').slice(0, 100)}`);
  }
  out.push(`stream connection slots counted in Redis: ${tt.slotsMidRun} at T+5s, ${tt.slotsLeft} after every client closed`);
  if (tt.slotsDetail) out.push(`  ${tt.slotsDetail}`);
  out.push('');

  // Where it went wrong: each anomaly next to the fault that was active or had just happened.
  // A client loses events in runs (a stall, a skipped range); each run is put on the fault
  // that was active or had just happened when the client last received something before it.
  const runs: { client: string; count: number; fault: string }[] = [];
  for (const r of x.results) {
    if (r.lost === 0) continue;
    const rec = x.records.find((c) => c.name === r.name)!;
    const received = new Set(rec.received.map((e) => e.seq));
    let i = 0;
    while (i < r.lostSeqs.length) {
      let j = i;
      // A run: lost seqs with nothing received in between.
      while (j + 1 < r.lostSeqs.length && ![...rangeOf(r.lostSeqs[j], r.lostSeqs[j + 1])].some((q) => received.has(q))) j++;
      const before = rec.received.filter((e) => e.seq < r.lostSeqs[i]).at(-1);
      runs.push({ client: r.name, count: j - i + 1, fault: faultAt(x.faults, before?.wall ?? x.T0 - 1) });
      i = j + 1;
    }
  }
  if (runs.length) {
    out.push('lost events, by the fault active or just past when the client last got something before them:');
    for (const [f, n] of tally(runs, (z) => z.fault)) {
      const mine = runs.filter((z) => z.fault === f);
      out.push(
        `  ${String(mine.reduce((a, z) => a + z.count, 0)).padStart(8)} events in ${n} runs at ${new Set(mine.map((z) => z.client)).size} clients  ${f}`,
      );
    }
    for (const r of x.results.filter((c) => c.lost > 0).slice(0, 8)) {
      out.push(
        `    e.g. ${r.name} (${r.group}, ${r.connections} connections${r.fatal ? `, gave up: ${r.fatal}` : ''}): lost ${r.lost} of ${r.expected}: ${ranges(r.lostSeqs)}`,
      );
    }
  }
  const dupBy = tally(
    x.results.flatMap((r) => r.duplicateSeqs),
    (d) => faultAt(x.faults, d.wall),
  );
  if (dupBy.length) {
    out.push('duplicates by the fault before they arrived:');
    for (const [f, n] of dupBy) out.push(`  ${String(n).padStart(8)}  ${f}`);
    for (const r of x.results.filter((c) => c.duplicated > 0).slice(0, 5))
      out.push(`    e.g. ${r.name} (${r.group}): ${ranges([...new Set(r.duplicateSeqs.map((d) => d.seq))].sort((a, b) => a - b))}`);
  }
  const oooBy = tally(
    x.results.flatMap((r) => r.outOfOrderSeqs),
    (d) => faultAt(x.faults, d.wall),
  );
  if (oooBy.length) {
    out.push('out-of-order events by the fault before they arrived:');
    for (const [f, n] of oooBy) out.push(`  ${String(n).padStart(8)}  ${f}`);
    for (const r of x.results.filter((c) => c.outOfOrder > 0).slice(0, 5))
      out.push(
        `    e.g. ${r.name} (${r.group}): ${r.outOfOrderSeqs
          .slice(0, 5)
          .map((o) => `${o.seq} after ${o.after} at ${t(o.wall)}`)
          .join('; ')}`,
      );
  }
  const behindRecs = x.records.filter((r) => x.behind.includes(r.name));
  if (behindRecs.length) {
    out.push('clients still behind when the wait ended (last event received, connections):');
    for (const r of behindRecs.slice(0, 12)) {
      const last = r.received.at(-1);
      out.push(
        `    ${r.name} (${r.group}): started after ${r.startCursor}, last seq ${last?.seq ?? '-'} at ${last ? t(last.wall) : '-'}, ${r.received.length} events, ${r.connections} connections`,
      );
    }
  }
  const unexpected = x.results.filter((r) => r.unexpected > 0);
  if (unexpected.length) {
    out.push('events a client should not have received (filter, range or type mismatch):');
    for (const r of unexpected.slice(0, 5)) out.push(`    ${r.name} (${r.group}): ${ranges(r.unexpectedSeqs)}`);
  }
  const resets = x.records.flatMap((r) => r.resets.map((z) => ({ r, z })));
  if (resets.length) {
    out.push('resets received:');
    for (const [k, n] of tally(resets, ({ z }) => `${faultAt(x.faults, z.wall)}: ${z.reason ?? '?'}`)) out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  out.push(...socketDigest(x));
  const fatal = x.records.filter((r) => r.fatal);
  if (fatal.length) {
    out.push('clients that gave up (an EventSource after a non-200 answer, as the WHATWG client does; a socket after a final refusal):');
    for (const [k, n] of tally(fatal, (r) => `${faultAt(x.faults, r.fatal!.wall)}: ${r.fatal!.message}`)) out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  const errors = x.records.flatMap((r) => r.errors.map((e) => ({ r, e })));
  if (errors.length) {
    out.push('stream errors seen by clients (reconnects follow unless the client gave up):');
    for (const [k, n] of tally(errors, ({ e }) => `${faultAt(x.faults, e.wall)}: ${(e.message || '').replace(/\d+/g, '#').slice(0, 90)}`).slice(0, 14))
      out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  if (x.failed.length) {
    out.push('failed or ambiguous writes (not 2xx; their outcome is not checked):');
    for (const [k, n] of tally(
      x.failed,
      (f) => `${faultAt(x.faults, f.wall)}: ${f.op} -> ${f.status} ${f.detail.replace(/\s+/g, ' ').replace(/\d+/g, '#').slice(0, 80)}`,
    ).slice(0, 14))
      out.push(`  ${String(n).padStart(8)}  ${k}`);
  }
  if (x.missing.length) {
    out.push('acknowledged writes missing from the outbox:');
    for (const w of x.missing.slice(0, 10)) out.push(`    writer ${w.writer} ${w.op}: ${w.type} ${w.id} v${w.version} at ${t(w.wall)}`);
  }
  if (x.problems.length) {
    out.push('outbox problems:');
    for (const p of x.problems) out.push(`    ${p}`);
  }
  out.push('');
  out.push(...logDigest(x.config.logDir, x.replicas, x.nginx));
  out.push('');
  out.push(
    `RESULT lost=${tt.lost} duplicated=${tt.duplicated} out_of_order=${tt.outOfOrder} unexpected=${tt.unexpected} resets=${tt.resets} ` +
      `gave_up=${tt.fatalClients} behind_at_end=${tt.clientsBehindAtEnd} missing_writes=${tt.missingWrites} outbox_problems=${tt.outboxProblems} ` +
      `longest_gap=${s(tt.longestGapMs)} [${tt.longestGapClient}] longest_lag=${s(tt.longestLagMs)} [${tt.longestLagClient}] ` +
      `filtered_resume_behind=${tt.filteredResumeDistance} slots_left=${tt.slotsLeft} final_sequencing_median=${tt.finalSequencingMedianMs.toFixed(0)}ms ` +
      `| socketio clients=${tt.socketioClients} lost=${tt.io.lost} duplicated=${tt.io.duplicated} out_of_order=${tt.io.outOfOrder} unexpected=${tt.io.unexpected} ` +
      `resets=${tt.io.resets} gave_up=${tt.io.fatal} behind_at_end=${tt.io.behindAtEnd} longest_gap=${s(tt.io.longestGapMs)} [${tt.io.longestGapClient}] resume_behind=${tt.io.resumeDistance}`,
  );
  out.push(`logs: ${x.config.logDir}`);
  return out.join('\n');
}

const ANSI_COLOR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Warnings and errors of each replica (numbers folded), and what nginx answered to stream and write requests. */
function logDigest(logDir: string, replicas: Replica[], nginx: Nginx): string[] {
  const out: string[] = ['replica logs (WARN/ERROR lines, numbers folded):'];
  for (const r of replicas) {
    const file = path.join(logDir, `${r.name}.log`);
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, 'utf8')
      .replace(ANSI_COLOR, '')
      .split('\n')
      .filter((l) => /\b(WARN|ERROR|error|Error)\b/.test(l) && !l.startsWith('====='));
    const folded = tally(lines, (l) =>
      l
        .replace(/^.*?(WARN|ERROR)\s*/, '$1 ')
        .replace(/\d+/g, '#')
        .slice(0, 150),
    );
    out.push(`  ${r.name} (${r.starts} starts): ${lines.length} lines`);
    for (const [k, n] of folded.slice(0, 8)) out.push(`    ${String(n).padStart(6)}  ${k}`);
  }
  const access = path.join(nginx.dir, 'access.log');
  if (existsSync(access)) {
    const lines = readFileSync(access, 'utf8').split('\n').filter(Boolean);
    const kind = (l: string) =>
      /"GET \/api\/v1\/stream\//.test(l) ? 'stream' : /"\w+ \/ws\/v1/.test(l) ? 'socket.io' : /"(POST|PATCH|DELETE) /.test(l) ? 'write' : 'other';
    const status = (l: string) => /" (\d{3}) /.exec(l)?.[1] ?? '?';
    out.push(
      `nginx answers: ${tally(lines, (l) => `${kind(l)} ${status(l)}`)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')}`,
    );
    const bad = lines.filter((l) => kind(l) === 'stream' && status(l) !== '200');
    for (const l of bad.slice(0, 4)) out.push(`    ${l.slice(0, 220)}`);
    // Socket.IO through the client-hashed upstream: where each client address went, and what was refused.
    const io = lines.filter((l) => kind(l) === 'socket.io');
    if (io.length) {
      // The last upstream nginx tried (a list when it moved on after a connection error).
      const upstream = (l: string) => /up=(.*?) rid=/.exec(l)?.[1]?.split(/,\s*/).at(-1) ?? '?';
      const port = (u: string) => {
        const i = replicas.findIndex((r) => u.endsWith(`:${r.port}`));
        return i >= 0 ? replicas[i].name : u;
      };
      out.push(
        `nginx /ws/v1 answers by replica: ${tally(io, (l) => `${port(upstream(l))} ${status(l)}`)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ')}`,
      );
      const first = new Map<string, string>();
      for (const l of io) {
        const from = l.split(' ')[0];
        if (!first.has(from)) first.set(from, port(upstream(l)));
      }
      out.push(
        `  first replica of each socket client address: ${tally([...first.values()], (v) => v)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ')}`,
      );
      for (const l of io.filter((z) => !/" (101|200) /.test(z)).slice(0, 4)) out.push(`    ${l.slice(0, 220)}`);
    }
  }
  return out;
}
