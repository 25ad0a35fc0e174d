#!/usr/bin/env node
// Builds a commit's src/ (default HEAD) into a directory of its own, without
// touching dist/ (other engineers' tests rebuild and run dist/ while they
// work), and prints the path of its dist/ for BENCH_DIST:
//
//   BENCH_DIST=$(node bench/build-snapshot.mjs [commit]) node bench/run.mjs
//
// The snapshot is `git archive <commit> src` plus the tsconfig files, compiled
// with the repository's TypeScript; node_modules is a symlink to the
// repository's, package.json a copy (for "type": "module").
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const commit = process.argv[2] ?? 'HEAD';
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, ...opts });
  if (r.status !== 0) {
    process.stderr.write(r.stdout ?? '');
    process.stderr.write(r.stderr ?? '');
    process.exit(r.status ?? 1);
  }
  return r.stdout;
};

const sha = run('git', ['rev-parse', commit]).trim();
const dir = mkdtempSync(path.join(os.tmpdir(), `registry-bench-build-${sha.slice(0, 8)}-`));
const tar = spawnSync('git', ['archive', '--format=tar', sha, 'src', 'tsconfig.json', 'tsconfig.build.json'], { cwd: repo, maxBuffer: 256 * 2 ** 20 });
if (tar.status !== 0) {
  process.stderr.write(tar.stderr);
  process.exit(1);
}
run('tar', ['-x', '-C', dir], { input: tar.stdout });
copyFileSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
symlinkSync(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
mkdirSync(path.join(dir, 'dist'), { recursive: true });
run(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.build.json')], { cwd: dir });
writeFileSync(path.join(dir, 'dist', 'COMMIT'), `${sha}\n`);
console.log(path.join(dir, 'dist'));
