// Process helpers for the benchmark: spawn with a raised fd limit, read CPU
// and RSS of a pid from /proc (measured from outside the process), stop only
// what we started, by pid.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/**
 * The descriptor limit children get: 200,000 where the hard limit allows it.
 * Without CAP_SYS_RESOURCE (some sandboxes, even as root) the hard limit
 * cannot be raised and caps how many connections one server can hold.
 */
export const HARD_FD_LIMIT = (() => {
  const out = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return out === 'unlimited' ? Infinity : Number(out) || 1024;
})();
export const FD_LIMIT = Math.min(200_000, HARD_FD_LIMIT);

/** Wall clock in ms with sub-ms resolution, comparable across processes on this machine. */
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** utime and stime of one pid, in microseconds. */
export function cpuSplit(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1e6) / CLK_TCK, sys: (Number(fields[12]) * 1e6) / CLK_TCK };
}

/** utime + stime + cutime + cstime of one pid (its children that exited and were waited for included), in microseconds. */
export function cpuWithReaped(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1e6) / CLK_TCK;
}

/** utime+stime of one pid, in microseconds. */
export function cpuMicros(pid) {
  const { user, sys } = cpuSplit(pid);
  return user + sys;
}

export function sumCpuSplit(pids) {
  const out = { user: 0, sys: 0 };
  for (const p of pids) {
    const c = cpuSplit(p);
    out.user += c.user;
    out.sys += c.sys;
  }
  return out;
}

/** Resident set size of one pid, in bytes. */
export function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export const sumCpu = (pids) => pids.reduce((s, p) => s + cpuMicros(p), 0);
export const sumRss = (pids) => pids.reduce((s, p) => s + rssBytes(p), 0);

/** Direct children of a pid (nginx workers of a master). */
export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

const started = new Set();

/**
 * Spawns `cmd args` through `sh -c 'ulimit -n N; exec ...'` so the child (same
 * pid after exec) can hold tens of thousands of sockets. Output is kept (tail)
 * for error messages.
 *
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv; cwd?: string; name?: string; ipc?: boolean }} [options]
 */
export function spawnLimited(cmd, args, { env, cwd, name, ipc = false } = {}) {
  const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT}; exec "$0" "$@"`, cmd, ...args], {
    env: env ?? process.env,
    cwd,
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const proc = { name: name ?? cmd, child, pid: child.pid, output: '', exitCode: undefined };
  const keep = (d) => {
    proc.output = (proc.output + d.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  proc.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      proc.exitCode = code ?? signal;
      started.delete(proc);
      resolve(proc.exitCode);
    }),
  );
  started.add(proc);
  return proc;
}

/** Ends one process we started: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProc(proc, graceMs = 3000) {
  if (!proc || proc.exitCode !== undefined) return;
  try {
    process.kill(proc.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await proc.exited;
  clearTimeout(t);
}

/** Last resort on exit: SIGKILL whatever we started and is still running (by pid). */
export function killAllStarted() {
  for (const proc of started) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port, timeoutMs, proc) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode}):\n${proc.output}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open in ${timeoutMs} ms${proc ? `:\n${proc.output}` : ''}`);
    await sleep(50);
  }
}

/** Bounded wait for a condition polled every `everyMs`. Returns the last value of `check`. */
export async function waitUntil(check, { timeoutMs, everyMs = 100 }) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) return value;
    await sleep(everyMs);
  }
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
