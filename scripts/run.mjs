#!/usr/bin/env node
// The README's commands go through here so they work on a fresh machine:
//   start   build when needed, then run the service (embedded PostgreSQL by default)
//   migrate build when needed, then apply migrations
//   test    check that redis-server is installed, build, run jest (ESM mode)
//   bench   build, then run the benchmarks (`bench --gateway`: the MCP gateway's, bench/gateway.mjs)
//   chaos   install redis-server and nginx if missing, build, run the chaos suite (test/chaos)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [command, ...rest] = process.argv.slice(2);

function run(cmd, args, env = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

function build(force = false) {
  if (!existsSync(path.join(root, 'node_modules'))) {
    console.error('node_modules is missing: run `npm ci` first');
    process.exit(1);
  }
  const main = path.join(root, 'dist', 'main.js');
  if (!force && existsSync(main) && statSync(main).mtimeMs >= newestMtime(path.join(root, 'src'))) return;
  const status = run(process.execPath, [path.join(root, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js'), 'build']);
  if (status !== 0) process.exit(status);
}

// The admin GUI (gui/, served at /admin from gui/dist): rebuilt with Vite when its sources are newer.
function buildGui() {
  const index = path.join(root, 'gui', 'dist', 'index.html');
  const sources = Math.max(
    newestMtime(path.join(root, 'gui', 'src')),
    statSync(path.join(root, 'gui', 'index.html')).mtimeMs,
    statSync(path.join(root, 'src', 'events', 'socket-protocol.ts')).mtimeMs,
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  const status = run(process.execPath, [
    path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
    'build',
    '--config',
    'gui/vite.config.ts',
    '--logLevel',
    'warn',
  ]);
  if (status !== 0) process.exit(status);
}

// The client library (packages/client, imported by examples/ as a package) and the browser demo
// built from it (served at /demo): rebuilt when their sources are newer than their output.
function buildClientAndDemo() {
  const client = path.join(root, 'packages', 'client');
  const clientOut = path.join(client, 'dist', 'index.js');
  const clientBuilt = existsSync(clientOut) ? statSync(clientOut).mtimeMs : 0;
  if (clientBuilt < newestMtime(path.join(client, 'src'))) {
    const status = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(client, 'tsconfig.build.json')]);
    if (status !== 0) process.exit(status);
  }
  const demo = path.join(root, 'examples', 'browser-demo');
  const demoOut = path.join(demo, 'dist', 'index.html');
  const demoSources = Math.max(statSync(path.join(demo, 'index.html')).mtimeMs, statSync(path.join(demo, 'main.ts')).mtimeMs, statSync(clientOut).mtimeMs);
  if (existsSync(demoOut) && statSync(demoOut).mtimeMs >= demoSources) return;
  const status = run(process.execPath, [
    path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'),
    'build',
    '--config',
    path.join(demo, 'vite.config.ts'),
    '--logLevel',
    'warn',
  ]);
  if (status !== 0) process.exit(status);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Only checks: installing system packages is .ci/run's job (and the bench's preflight), never the tests'. */
function ensureRedis() {
  if (has('redis-server')) return;
  console.error(
    'redis-server is not installed, and the tests start one (jest global setup).\n' +
      'Install it (Debian/Ubuntu: apt-get install -y redis-server), or run .ci/run, which installs what is missing.',
  );
  process.exit(1);
}

/** Only checks, like ensureRedis: .ci/run installs nginx (the chaos suite's load balancer). */
function ensureNginx() {
  if (has('nginx') || existsSync('/usr/sbin/nginx')) return;
  console.error(
    'The chaos suite puts its replicas behind nginx, which is not installed.\n' +
      'Install it (Debian/Ubuntu: apt-get install -y nginx), or run .ci/run, which installs what is missing.',
  );
  process.exit(1);
}

const jestOptions = {
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim(),
};

switch (command) {
  case 'start':
    build();
    buildGui();
    buildClientAndDemo();
    process.exit(run(process.execPath, [path.join(root, 'dist', 'main.js'), ...rest]));
    break;
  case 'migrate':
    build();
    process.exit(run(process.execPath, [path.join(root, 'dist', 'migrate.js'), ...rest]));
    break;
  case 'test':
    ensureRedis();
    build();
    buildGui();
    buildClientAndDemo();
    process.exit(
      run(process.execPath, [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), ...rest], {
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim(),
      }),
    );
    break;
  case 'chaos':
    ensureRedis();
    ensureNginx();
    build();
    process.exit(
      run(
        process.execPath,
        [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '-c', path.join(root, 'test', 'chaos', 'jest.config.mjs'), '--runInBand', ...rest],
        jestOptions,
      ),
    );
    break;
  case 'bench':
    ensureRedis();
    build();
    // `npm run bench -- --gateway [...]`: the MCP gateway's figures (bench/gateway.mjs) instead of the streaming workloads.
    if (rest.includes('--gateway')) process.exit(run(process.execPath, [path.join(root, 'bench', 'gateway.mjs'), ...rest.filter((a) => a !== '--gateway')]));
    process.exit(run(process.execPath, [path.join(root, 'bench', 'run.mjs'), ...rest]));
    break;
  default:
    console.error('usage: run.mjs start|migrate|test|bench|chaos [args]');
    process.exit(2);
}
